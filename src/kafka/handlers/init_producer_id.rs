//! InitProducerId (key 22), v0-v5: a fresh producer id for an idempotent producer (no
//! transactional id); with a transactional id, the transaction coordinator's producer id and a
//! new epoch (v3+ may name the current id and epoch to bump it, KIP-360).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::InitProducerIdRequest,
) -> messages::InitProducerIdResponse {
    let response = messages::InitProducerIdResponse::default()
        .with_producer_id(messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let expected = (version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    // ACLs: Write on the transactional id; an idempotent producer needs IdempotentWrite on the
    // cluster or Write on some topic (KIP-679).
    let denied = match &request.transactional_id {
        Some(id) => (!ctx.allowed_on_transactional_id(Operation::Write, id.as_str()))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!ctx.allowed_on_cluster(Operation::IdempotentWrite)
            && !ctx.allowed_on_any_topic(Operation::Write))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    };
    if let Some(error) = denied {
        return response.with_error_code(error.code());
    }
    let result = match &request.transactional_id {
        None => ctx.broker.init_idempotent_producer(),
        Some(transactional_id) => {
            ctx.broker
                .init_transactional_producer(
                    transactional_id,
                    request.transaction_timeout_ms,
                    expected,
                )
                .await
        }
    };
    match result {
        Ok((producer_id, producer_epoch)) => response
            .with_error_code(error_code::NONE)
            .with_producer_id(messages::ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        Err(err) => {
            tracing::debug!(error = %err, "InitProducerId refused");
            response.with_error_code(error_code::code(&err))
        }
    }
}
