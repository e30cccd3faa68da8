//! JoinGroup (key 11), v0-v9: joins a classic group, waiting for the rebalance's join phase.
//! v4+ unknown members first get a member id (MEMBER_ID_REQUIRED); v5+ static membership.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use super::group_wire::{code, optional_text, text, wire};
use crate::auth::acl::Operation;
use crate::broker::{self, JoinRequest, Protocol};
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::JoinGroupRequest,
) -> messages::JoinGroupResponse {
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let group_id = text(&request.group_id);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout_ms = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let member_id = text(&request.member_id);
    if let Some(reason) = &request.reason {
        tracing::debug!(group = %group_id, member = %member_id, reason = %reason.as_str(), "join group");
    }
    let join = JoinRequest {
        member_id: member_id.clone(),
        instance_id: optional_text(request.group_instance_id.as_ref()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: text(&p.name),
                metadata: p.metadata,
            })
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        require_known_member_id: version >= 4,
        new_member_id: String::new(),
    };
    let result = ctx.broker.join_group(&group_id, join).await;
    let response = messages::JoinGroupResponse::default().with_error_code(code(&result));
    match result {
        Ok(joined) => {
            let members = joined
                .members
                .into_iter()
                .map(|m| {
                    messages::join_group_response::JoinGroupResponseMember::default()
                        .with_member_id(wire(m.member_id))
                        .with_group_instance_id(if version >= 5 {
                            m.instance_id.map(wire)
                        } else {
                            None
                        })
                        .with_metadata(m.metadata)
                })
                .collect();
            let response = response
                .with_generation_id(joined.generation)
                .with_protocol_name(joined.protocol_name.map(wire))
                .with_leader(wire(joined.leader))
                .with_member_id(wire(joined.member_id))
                .with_members(members);
            let response = if version >= 7 {
                response.with_protocol_type(joined.protocol_type.map(wire))
            } else {
                response
            };
            if version >= 9 {
                response.with_skip_assignment(joined.skip_assignment)
            } else {
                response
            }
        }
        Err(broker::Error::MemberIdRequired { member_id, .. }) => response
            .with_generation_id(-1)
            .with_member_id(wire(member_id)),
        Err(_) => response
            .with_generation_id(-1)
            .with_member_id(wire(member_id)),
    }
}
