//! Heartbeat (key 12), v0-v4: keeps a classic member's session alive and tells it when the
//! group rebalances (REBALANCE_IN_PROGRESS).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use super::group_wire::{code, optional_text, text};
use crate::auth::acl::Operation;
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::HeartbeatRequest,
) -> messages::HeartbeatResponse {
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let result = ctx.broker.heartbeat(
        &text(&request.group_id),
        &text(&request.member_id),
        optional_text(request.group_instance_id.as_ref()).as_deref(),
        request.generation_id,
    );
    messages::HeartbeatResponse::default().with_error_code(code(&result))
}
