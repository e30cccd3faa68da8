//! LeaveGroup (key 13), v0-v5: one member (v0-v2) or a batch of members by member id or
//! group.instance.id (v3+) leave a classic group, which then rebalances.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::leave_group_response::MemberResponse;

use super::group_wire::{code, optional_text, text, wire};
use crate::auth::acl::Operation;
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::LeaveGroupRequest,
) -> messages::LeaveGroupResponse {
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let members: Vec<(String, Option<String>)> = if version < 3 {
        vec![(text(&request.member_id), None)]
    } else {
        request
            .members
            .iter()
            .map(|m| {
                if let Some(reason) = &m.reason {
                    tracing::debug!(member = %m.member_id.as_str(), reason = %reason.as_str(), "leave group");
                }
                (
                    text(&m.member_id),
                    optional_text(m.group_instance_id.as_ref()),
                )
            })
            .collect()
    };
    let response = messages::LeaveGroupResponse::default();
    let results = match ctx.broker.leave_group(&text(&request.group_id), &members) {
        Ok(results) => results,
        Err(err) => return response.with_error_code(error_code::code(&err)),
    };
    if version < 3 {
        let code = results.first().map_or(error_code::NONE, code);
        return response.with_error_code(code);
    }
    let responses = members
        .into_iter()
        .zip(&results)
        .map(|((member_id, instance_id), result)| {
            MemberResponse::default()
                .with_member_id(wire(member_id))
                .with_group_instance_id(instance_id.map(wire))
                .with_error_code(code(result))
        })
        .collect();
    response
        .with_error_code(error_code::NONE)
        .with_members(responses)
}
