//! InitProducerId (key 22), v0-v5: a fresh producer id for an idempotent producer (no
//! transactional id); a transactional id goes to the transaction coordinator.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::InitProducerIdRequest,
) -> messages::InitProducerIdResponse {
    let response = messages::InitProducerIdResponse::default()
        .with_producer_id(messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let result = match request.transactional_id {
        None => ctx.broker.init_idempotent_producer(),
        Some(transactional_id) => {
            tracing::debug!(transactional_id = %transactional_id.0, "transactions are not served");
            return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
        }
    };
    match result {
        Ok((producer_id, producer_epoch)) => response
            .with_error_code(error_code::NONE)
            .with_producer_id(messages::ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        Err(err) => {
            tracing::warn!(error = %err, "InitProducerId failed");
            response.with_error_code(error_code::code(&err))
        }
    }
}
