//! Routes one request frame: version check against the ApiVersions table, header and body decode,
//! the handler's in-order part now, the rest (durability and long-poll waits) as a future.
//! Knows nothing of sockets; the connection decides how to read, queue and write.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use tracing::Instrument;

use super::Context;
use super::codec::{self, CodecError};
use super::handlers::{self, produce::Produced, produce_legacy};
use super::request_quota::{self, Busy};
use super::versions;
use crate::broker::Metered;

/// An encoded response frame (length prefix included), ready once the future resolves.
pub(crate) type PendingResponse = Pin<Box<dyn Future<Output = Result<Bytes, CodecError>> + Send>>;

/// What the connection must do after a request was dispatched.
#[must_use]
pub(crate) enum Dispatched {
    /// Write the response once it resolves, after every earlier response of the connection.
    Respond(PendingResponse),
    /// Nothing is written back (acks=0 produce).
    NoResponse,
    /// Write the response once it resolves, then close the connection (a failed or
    /// out-of-order SASL exchange); no later request of the connection is read.
    RespondThenClose(PendingResponse),
}

impl std::fmt::Debug for Dispatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dispatched::Respond(_) => f.write_str("Respond(..)"),
            Dispatched::NoResponse => f.write_str("NoResponse"),
            Dispatched::RespondThenClose(_) => f.write_str("RespondThenClose(..)"),
        }
    }
}

/// A request that ends the connection: Kafka closes it rather than answering.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DispatchError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("unknown api key {api_key} (v{version})")]
    UnknownApiKey { api_key: i16, version: i16 },
    #[error("{api:?} v{version} is not served")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error(
        "acks=0 produce failed on {failed_partitions} partitions; closing so the client notices"
    )]
    AcksZeroFailed { failed_partitions: usize },
    #[error("{api:?} before SASL authentication (or after the session expired)")]
    Unauthenticated { api: ApiKey },
}

/// Dispatches one request frame (without its length prefix). The handler's synchronous part
/// (produce appends, metadata auto-creation, admin changes) has happened when this returns.
pub(crate) async fn dispatch(ctx: &Context, frame: Bytes) -> Result<Dispatched, DispatchError> {
    let started = std::time::Instant::now();
    // A SASL v0 token has no request header: not a request to count.
    let is_raw_token = ctx.session.expects_raw_token();
    let prefix = codec::peek_request_prefix(&frame).ok();
    // Boxed: the connection task's future would otherwise nest one level deeper than rustc's
    // layout depth allows.
    let result = Box::pin(dispatch_unobserved(ctx, frame)).await;
    if is_raw_token {
        return result;
    }
    super::request_metrics::observe(prefix, started, result)
}

async fn dispatch_unobserved(ctx: &Context, frame: Bytes) -> Result<Dispatched, DispatchError> {
    if ctx.session.expects_raw_token() {
        let (reply, after) = handlers::sasl::raw_token(ctx, frame).await;
        return Ok(respond_then(Ok(reply), after));
    }
    let prefix = codec::peek_request_prefix(&frame)?;
    let version = prefix.api_version;
    let api = ApiKey::try_from(prefix.api_key).map_err(|()| DispatchError::UnknownApiKey {
        api_key: prefix.api_key,
        version,
    })?;
    if !versions::is_served(api, version) {
        if api == ApiKey::ApiVersions {
            // KIP-511: the body of an unknown version cannot be parsed; answer at v0 with our
            // table so the client retries with a version we serve.
            tracing::debug!(
                version,
                correlation_id = prefix.correlation_id,
                "unsupported ApiVersions version"
            );
            let response = handlers::api_versions::unsupported_version();
            return Ok(ready(codec::encode_response(
                api,
                0,
                prefix.correlation_id,
                &response,
            )));
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    if !ctx.session.admits(api) {
        return Err(DispatchError::Unauthenticated { api });
    }
    let (header, body) = codec::decode_request_header(frame, api, version)?;
    let span = tracing::info_span!(
        "request",
        api = ?api,
        version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    );
    let call = Call {
        api,
        version,
        correlation_id: header.correlation_id,
    };
    let client_id = header.client_id.as_deref().unwrap_or("");
    if !matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
        && ctx.broker.has_quota(Metered::Request)
    {
        // Request quotas meter every request by client id; its throttle comes from the
        // client's earlier requests.
        let mut ctx = ctx.for_client(client_id);
        ctx.request_throttle_ms = request_quota::throttle_ms(&ctx);
        let busy = Busy::default();
        let dispatched = busy.time(route(&ctx, call, body)).instrument(span).await?;
        return Ok(metered(ctx, busy, dispatched));
    }
    if matches!(
        api,
        ApiKey::JoinGroup | ApiKey::ConsumerGroupHeartbeat | ApiKey::Produce | ApiKey::Fetch
    ) {
        // Member ids and DescribeGroups carry the client id of the join; quotas meter produce
        // and fetch by client id.
        let ctx = ctx.for_client(client_id);
        return route(&ctx, call, body).instrument(span).await;
    }
    route(ctx, call, body).instrument(span).await
}

/// What every response needs from its request.
#[derive(Debug, Clone, Copy)]
struct Call {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
}

impl Call {
    fn decode<M: Decodable>(self, body: &mut Bytes) -> Result<M, CodecError> {
        codec::decode_body(body, self.api, self.version)
    }

    fn encode<M: Encodable>(self, response: &M) -> Result<Bytes, CodecError> {
        codec::encode_response(self.api, self.version, self.correlation_id, response)
    }
}

/// Decode, run to completion in request order, encode (late when a request quota throttles).
macro_rules! inline {
    ($ctx:ident, $call:ident, $body:ident, $handler:path) => {{
        let request = $call.decode(&mut $body)?;
        let mut response = $handler($ctx, $call.version, request).await;
        let wait = request_quota::apply($ctx, &mut response);
        answer_after(wait, $call.encode(&response))
    }};
}

/// Decode now; run when every earlier response of the connection is complete, so reads see
/// the effects of earlier requests (e.g. a fetch after an acks=all produce).
macro_rules! deferred {
    ($ctx:ident, $call:ident, $body:ident, $handler:path) => {{
        let request = $call.decode(&mut $body)?;
        let ctx = $ctx.clone();
        pending(async move {
            let response = $handler(&ctx, $call.version, request).await;
            throttled_encode(&ctx, $call, response).await
        })
    }};
}

async fn route(ctx: &Context, call: Call, mut body: Bytes) -> Result<Dispatched, DispatchError> {
    use handlers::{
        add_offsets_to_txn, add_partitions_to_txn, alter_client_quotas, alter_configs,
        alter_partition_reassignments, alter_user_scram_credentials, api_versions,
        consumer_group_describe, consumer_group_heartbeat, create_acls, create_partitions,
        create_topics, delete_acls, delete_groups, delete_records, delete_topics, describe_acls,
        describe_client_quotas, describe_cluster, describe_configs, describe_groups,
        describe_log_dirs, describe_producers, describe_transactions,
        describe_user_scram_credentials, elect_leaders, end_txn, fetch, find_coordinator,
        heartbeat, incremental_alter_configs, init_producer_id, join_group, leave_group,
        list_groups, list_offsets, list_offsets_v0, list_partition_reassignments,
        list_transactions, metadata, offset_commit, offset_delete, offset_fetch,
        offset_for_leader_epoch, produce, sync_group, txn_offset_commit, unregister_broker,
    };
    tracing::debug!(body_bytes = body.len(), "request");
    let Call { api, version, .. } = call;
    let dispatched = match api {
        ApiKey::ApiVersions => inline!(ctx, call, body, api_versions::handle),
        ApiKey::Metadata => inline!(ctx, call, body, metadata::handle),
        ApiKey::FindCoordinator => inline!(ctx, call, body, find_coordinator::handle),
        ApiKey::Produce if version < versions::PRODUCE_DECODED_MIN => {
            let request = produce_legacy::decode_request(&mut body, version)?;
            tracing::warn!("produce v{version} is not supported; answering UNSUPPORTED_VERSION");
            if request.acks == 0 {
                let failed_partitions = request.topics.iter().map(|t| t.partitions.len()).sum();
                return Err(DispatchError::AcksZeroFailed { failed_partitions });
            }
            ready(produce_legacy::respond(
                version,
                call.correlation_id,
                &request,
            ))
        }
        ApiKey::Produce => match produce::handle(ctx, version, call.decode(&mut body)?).await {
            Produced::NoResponse {
                failed_partitions: 0,
            } => Dispatched::NoResponse,
            Produced::NoResponse { failed_partitions } => {
                return Err(DispatchError::AcksZeroFailed { failed_partitions });
            }
            Produced::Respond(response) => {
                let ctx = ctx.clone();
                pending(async move { throttled_encode(&ctx, call, response.await).await })
            }
        },
        ApiKey::Fetch => deferred!(ctx, call, body, fetch::handle),
        // Idempotent and transactional producers.
        ApiKey::InitProducerId => deferred!(ctx, call, body, init_producer_id::handle),
        ApiKey::AddPartitionsToTxn => deferred!(ctx, call, body, add_partitions_to_txn::handle),
        ApiKey::AddOffsetsToTxn => deferred!(ctx, call, body, add_offsets_to_txn::handle),
        ApiKey::EndTxn => deferred!(ctx, call, body, end_txn::handle),
        ApiKey::TxnOffsetCommit => deferred!(ctx, call, body, txn_offset_commit::handle),
        ApiKey::DescribeProducers => deferred!(ctx, call, body, describe_producers::handle),
        ApiKey::DescribeTransactions => deferred!(ctx, call, body, describe_transactions::handle),
        ApiKey::ListTransactions => deferred!(ctx, call, body, list_transactions::handle),
        ApiKey::ListOffsets if version < versions::LIST_OFFSETS_DECODED_MIN => {
            let request = list_offsets_v0::decode_request(&mut body)?;
            let ctx = ctx.clone();
            pending(async move { list_offsets_v0::respond(&ctx, call.correlation_id, &request) })
        }
        ApiKey::ListOffsets => deferred!(ctx, call, body, list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => deferred!(ctx, call, body, offset_for_leader_epoch::handle),
        // Group coordination: join and sync wait for the rebalance, commits for durability.
        ApiKey::JoinGroup => deferred!(ctx, call, body, join_group::handle),
        ApiKey::SyncGroup => deferred!(ctx, call, body, sync_group::handle),
        ApiKey::Heartbeat => deferred!(ctx, call, body, heartbeat::handle),
        ApiKey::LeaveGroup => deferred!(ctx, call, body, leave_group::handle),
        ApiKey::OffsetCommit => deferred!(ctx, call, body, offset_commit::handle),
        ApiKey::OffsetFetch => deferred!(ctx, call, body, offset_fetch::handle),
        ApiKey::OffsetDelete => deferred!(ctx, call, body, offset_delete::handle),
        ApiKey::ListGroups => deferred!(ctx, call, body, list_groups::handle),
        ApiKey::DescribeGroups => deferred!(ctx, call, body, describe_groups::handle),
        ApiKey::DeleteGroups => deferred!(ctx, call, body, delete_groups::handle),
        ApiKey::ConsumerGroupHeartbeat => {
            deferred!(ctx, call, body, consumer_group_heartbeat::handle)
        }
        ApiKey::ConsumerGroupDescribe => {
            deferred!(ctx, call, body, consumer_group_describe::handle)
        }
        // Admin APIs: each runs in request order, so later requests see its changes.
        ApiKey::CreateTopics => inline!(ctx, call, body, create_topics::handle),
        ApiKey::DeleteTopics => inline!(ctx, call, body, delete_topics::handle),
        ApiKey::CreatePartitions => inline!(ctx, call, body, create_partitions::handle),
        ApiKey::DescribeConfigs => inline!(ctx, call, body, describe_configs::handle),
        ApiKey::AlterConfigs => inline!(ctx, call, body, alter_configs::handle),
        ApiKey::IncrementalAlterConfigs => {
            inline!(ctx, call, body, incremental_alter_configs::handle)
        }
        ApiKey::DeleteRecords => inline!(ctx, call, body, delete_records::handle),
        ApiKey::DescribeCluster => inline!(ctx, call, body, describe_cluster::handle),
        ApiKey::DescribeLogDirs => inline!(ctx, call, body, describe_log_dirs::handle),
        // Waits for raft leadership to move: answered when done, without holding up the
        // connection's later requests.
        ApiKey::ElectLeaders => deferred!(ctx, call, body, elect_leaders::handle),
        ApiKey::AlterPartitionReassignments => {
            inline!(ctx, call, body, alter_partition_reassignments::handle)
        }
        ApiKey::ListPartitionReassignments => {
            inline!(ctx, call, body, list_partition_reassignments::handle)
        }
        ApiKey::UnregisterBroker => inline!(ctx, call, body, unregister_broker::handle),
        // SASL: the session's exchange, in request order; a failure closes the connection.
        ApiKey::SaslHandshake => {
            let request = call.decode(&mut body)?;
            let (response, after) = handlers::sasl::handshake(ctx, version, &request);
            respond_then(call.encode(&response), after)
        }
        ApiKey::SaslAuthenticate => {
            let request = call.decode(&mut body)?;
            let (response, after) = handlers::sasl::authenticate(ctx, &request).await;
            respond_then(call.encode(&response), after)
        }
        ApiKey::DescribeAcls => inline!(ctx, call, body, describe_acls::handle),
        ApiKey::DescribeClientQuotas => {
            inline!(ctx, call, body, describe_client_quotas::handle)
        }
        ApiKey::AlterClientQuotas => inline!(ctx, call, body, alter_client_quotas::handle),
        ApiKey::CreateAcls => inline!(ctx, call, body, create_acls::handle),
        ApiKey::DeleteAcls => inline!(ctx, call, body, delete_acls::handle),
        ApiKey::DescribeUserScramCredentials => {
            inline!(ctx, call, body, describe_user_scram_credentials::handle)
        }
        ApiKey::AlterUserScramCredentials => {
            inline!(ctx, call, body, alter_user_scram_credentials::handle)
        }
        // Every other key is absent from the versions table, so `is_served` already refused it.
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    Ok(dispatched)
}

/// A request metered against a request quota: its answer's handling time counts too, and the
/// whole is metered once it is answered.
fn metered(ctx: super::Context, busy: Busy, dispatched: Dispatched) -> Dispatched {
    match dispatched {
        Dispatched::Respond(pending) => Dispatched::Respond(Box::pin(async move {
            let frame = busy.time(pending).await;
            busy.meter(&ctx);
            frame
        })),
        Dispatched::NoResponse => {
            busy.meter(&ctx);
            Dispatched::NoResponse
        }
        // SASL requests are not metered; nothing else closes after answering.
        closing @ Dispatched::RespondThenClose(_) => closing,
    }
}

/// A deferred answer, encoded once a request quota's throttle (if any) has passed.
async fn throttled_encode<R: Encodable + request_quota::Throttled>(
    ctx: &super::Context,
    call: Call,
    mut response: R,
) -> Result<Bytes, CodecError> {
    let wait = request_quota::apply(ctx, &mut response);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    call.encode(&response)
}

/// An encoded answer, written at once or, throttled by a request quota, after `wait`.
fn answer_after(wait: Duration, response: Result<Bytes, CodecError>) -> Dispatched {
    if wait.is_zero() {
        return ready(response);
    }
    pending(async move {
        tokio::time::sleep(wait).await;
        response
    })
}

/// A SASL answer, closing the connection afterwards when `after` says so (late, by its delay).
fn respond_then(response: Result<Bytes, CodecError>, after: handlers::sasl::After) -> Dispatched {
    match after {
        handlers::sasl::After::KeepOpen => ready(response),
        handlers::sasl::After::Close { delay } => {
            Dispatched::RespondThenClose(Box::pin(async move {
                tokio::time::sleep(delay).await;
                response
            }))
        }
    }
}

fn ready(response: Result<Bytes, CodecError>) -> Dispatched {
    Dispatched::Respond(Box::pin(std::future::ready(response)))
}

/// Boxes the rest of a request, still inside its `request` span.
fn pending(
    response: impl Future<Output = Result<Bytes, CodecError>> + Send + 'static,
) -> Dispatched {
    Dispatched::Respond(Box::pin(response.instrument(tracing::Span::current())))
}
