//! Routes one request frame: version check against the ApiVersions table, header and body decode,
//! the handler's in-order part now, the rest (durability and long-poll waits) as a future.
//! Knows nothing of sockets; the connection decides how to read, queue and write.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tracing::Instrument;

use super::Context;
use super::codec::{self, CodecError};
use super::handlers::{self, produce::Produced, produce_legacy};
use super::versions;

/// An encoded response frame (length prefix included), ready once the future resolves.
pub(crate) type PendingResponse = Pin<Box<dyn Future<Output = Result<Bytes, CodecError>> + Send>>;

/// What the connection must do after a request was dispatched.
#[must_use]
pub(crate) enum Dispatched {
    /// Write the response once it resolves, after every earlier response of the connection.
    Respond(PendingResponse),
    /// Nothing is written back (acks=0 produce).
    NoResponse,
}

impl std::fmt::Debug for Dispatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dispatched::Respond(_) => f.write_str("Respond(..)"),
            Dispatched::NoResponse => f.write_str("NoResponse"),
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
}

/// Dispatches one request frame (without its length prefix). The handler's synchronous part
/// (produce appends, metadata auto-creation, admin changes) has happened when this returns.
pub(crate) async fn dispatch(ctx: &Context, frame: Bytes) -> Result<Dispatched, DispatchError> {
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
    let (header, body) = codec::decode_request_header(frame, api, version)?;
    let span = tracing::info_span!(
        "request",
        api = ?api,
        version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    );
    route(ctx, api, version, header.correlation_id, body)
        .instrument(span)
        .await
}

/// Decode, run to completion in request order, encode.
macro_rules! inline {
    ($ctx:ident, $api:ident, $version:ident, $correlation_id:ident, $body:ident, $handler:path) => {{
        let request = codec::decode_body(&mut $body, $api, $version)?;
        let response = $handler($ctx, $version, request).await;
        ready(codec::encode_response(
            $api,
            $version,
            $correlation_id,
            &response,
        ))
    }};
}

/// Decode now; run when every earlier response of the connection is complete, so reads see
/// the effects of earlier requests (e.g. a fetch after an acks=all produce).
macro_rules! deferred {
    ($ctx:ident, $api:ident, $version:ident, $correlation_id:ident, $body:ident, $handler:path) => {{
        let request = codec::decode_body(&mut $body, $api, $version)?;
        let ctx = $ctx.clone();
        pending(async move {
            let response = $handler(&ctx, $version, request).await;
            codec::encode_response($api, $version, $correlation_id, &response)
        })
    }};
}

async fn route(
    ctx: &Context,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: Bytes,
) -> Result<Dispatched, DispatchError> {
    tracing::debug!(body_bytes = body.len(), "request");
    let dispatched = match api {
        ApiKey::ApiVersions => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::api_versions::handle
            )
        }
        ApiKey::Metadata => inline!(
            ctx,
            api,
            version,
            correlation_id,
            body,
            handlers::metadata::handle
        ),
        ApiKey::Produce if version < versions::PRODUCE_DECODED_MIN => {
            let request = produce_legacy::decode_request(&mut body, version)?;
            tracing::warn!("produce v{version} is not supported; answering UNSUPPORTED_VERSION");
            if request.acks == 0 {
                let failed_partitions = request.topics.iter().map(|t| t.partitions.len()).sum();
                return Err(DispatchError::AcksZeroFailed { failed_partitions });
            }
            ready(produce_legacy::respond(version, correlation_id, &request))
        }
        ApiKey::Produce => {
            let request = codec::decode_body(&mut body, api, version)?;
            match handlers::produce::handle(ctx, version, request) {
                Produced::NoResponse {
                    failed_partitions: 0,
                } => Dispatched::NoResponse,
                Produced::NoResponse { failed_partitions } => {
                    return Err(DispatchError::AcksZeroFailed { failed_partitions });
                }
                Produced::Respond(response) => pending(async move {
                    let response = response.await;
                    codec::encode_response(api, version, correlation_id, &response)
                }),
            }
        }
        ApiKey::Fetch => deferred!(
            ctx,
            api,
            version,
            correlation_id,
            body,
            handlers::fetch::handle
        ),
        ApiKey::ListOffsets => {
            deferred!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::list_offsets::handle
            )
        }
        ApiKey::OffsetForLeaderEpoch => deferred!(
            ctx,
            api,
            version,
            correlation_id,
            body,
            handlers::offset_for_leader_epoch::handle
        ),
        // Admin APIs: each runs in request order, so later requests see its changes.
        ApiKey::CreateTopics => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::create_topics::handle
            )
        }
        ApiKey::DeleteTopics => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::delete_topics::handle
            )
        }
        ApiKey::CreatePartitions => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::create_partitions::handle
            )
        }
        ApiKey::DescribeConfigs => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::describe_configs::handle
            )
        }
        ApiKey::AlterConfigs => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::alter_configs::handle
            )
        }
        ApiKey::IncrementalAlterConfigs => inline!(
            ctx,
            api,
            version,
            correlation_id,
            body,
            handlers::incremental_alter_configs::handle
        ),
        ApiKey::DeleteRecords => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::delete_records::handle
            )
        }
        ApiKey::DescribeCluster => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::describe_cluster::handle
            )
        }
        ApiKey::DescribeLogDirs => {
            inline!(
                ctx,
                api,
                version,
                correlation_id,
                body,
                handlers::describe_log_dirs::handle
            )
        }
        // Every other key is absent from the versions table, so `is_served` already refused it.
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    Ok(dispatched)
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
