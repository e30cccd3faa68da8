//! AddOffsetsToTxn (key 25), v0-v4: the group's offsets partition joins the transaction, so
//! TxnOffsetCommit may write to it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::AddOffsetsToTxnRequest,
) -> messages::AddOffsetsToTxnResponse {
    // ACLs: Write on the transactional id, Read on the group.
    if !ctx.allowed_on_transactional_id(Operation::Write, request.transactional_id.as_str()) {
        return messages::AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let result = ctx
        .broker
        .add_offsets_to_txn(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id,
        )
        .await;
    let code = match result {
        Ok(()) => error_code::NONE,
        Err(err) => {
            tracing::debug!(error = %err, "AddOffsetsToTxn refused");
            error_code::code(&err)
        }
    };
    messages::AddOffsetsToTxnResponse::default().with_error_code(code)
}
