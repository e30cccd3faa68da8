//! EndTxn (key 26), v0-v5: commit or abort. v5 is transactions v2 (KIP-890): the epoch is bumped
//! at every EndTxn and the response carries the producer id and epoch to go on with.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

/// The first EndTxn version of transactions v2.
const TRANSACTIONS_V2_VERSION: i16 = 5;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::EndTxnRequest,
) -> messages::EndTxnResponse {
    if !ctx.allowed_on_transactional_id(Operation::Write, request.transactional_id.as_str()) {
        return messages::EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let transaction_version = if version >= TRANSACTIONS_V2_VERSION {
        2
    } else {
        0
    };
    let result = ctx
        .broker
        .end_transaction(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            transaction_version,
        )
        .await;
    let response = messages::EndTxnResponse::default();
    match result {
        Ok((producer_id, producer_epoch)) => {
            let response = response.with_error_code(error_code::NONE);
            if version >= TRANSACTIONS_V2_VERSION {
                response
                    .with_producer_id(messages::ProducerId(producer_id))
                    .with_producer_epoch(producer_epoch)
            } else {
                response
            }
        }
        Err(err) => {
            tracing::debug!(error = %err, "EndTxn refused");
            let response = response.with_error_code(error_code::code(&err));
            if version >= TRANSACTIONS_V2_VERSION {
                response
                    .with_producer_id(messages::ProducerId(-1))
                    .with_producer_epoch(-1)
            } else {
                response
            }
        }
    }
}
