//! SyncGroup (key 14), v0-v5: the leader hands in the assignments; every member gets its own
//! once the leader's call arrives.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::protocol::StrBytes;

use super::group_wire::{code, optional_text, text, wire};
use crate::auth::acl::Operation;
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::SyncGroupRequest,
) -> messages::SyncGroupResponse {
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (text(&a.member_id), a.assignment.clone()))
        .collect();
    let result = ctx
        .broker
        .sync_group(
            &text(&request.group_id),
            &text(&request.member_id),
            optional_text(request.group_instance_id.as_ref()).as_deref(),
            request.generation_id,
            assignments,
        )
        .await;
    let response = messages::SyncGroupResponse::default().with_error_code(code(&result));
    let Ok(synced) = result else {
        return response;
    };
    // v5 checks the protocol the client believes was chosen.
    let differs = |asked: Option<&StrBytes>, chosen: &Option<String>| {
        asked.is_some_and(|asked| Some(text(asked)) != *chosen)
    };
    let mismatch = version >= 5
        && (differs(request.protocol_type.as_ref(), &synced.protocol_type)
            || differs(request.protocol_name.as_ref(), &synced.protocol_name));
    if mismatch {
        return response
            .with_error_code(kafka_protocol::ResponseError::InconsistentGroupProtocol.code());
    }
    let response = response.with_assignment(synced.assignment);
    if version >= 5 {
        response
            .with_protocol_type(synced.protocol_type.map(wire))
            .with_protocol_name(synced.protocol_name.map(wire))
    } else {
        response
    }
}
