//! DescribeGroups (key 15), v0-v6: state, protocol and members of each group; members carry
//! metadata and assignment only while the group is stable (as Kafka does).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::protocol::StrBytes;

use super::group_wire::wire;
use crate::auth::acl::Operation;
use crate::broker::GroupState;
use crate::kafka::{Context, error_code};

/// "Not requested" value of the authorized-operations field.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::DescribeGroupsRequest,
) -> messages::DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let described =
                DescribedGroup::default().with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            if !ctx.allowed_on_group(Operation::Describe, group_id.as_str()) {
                return described
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(err) = ctx.broker.check_coordinator(group_id.as_str()) {
                return described
                    .with_group_id(group_id)
                    .with_error_code(error_code::code(&err));
            }
            let Some(group) = ctx.broker.describe_group(group_id.as_str()) else {
                // Unknown groups: Dead with no error before v6, GROUP_ID_NOT_FOUND from v6.
                let described =
                    described.with_group_state(StrBytes::from_static_str(GroupState::Dead.name()));
                let described = if version >= 6 {
                    described
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "group {} not found",
                            group_id.as_str()
                        ))))
                } else {
                    described.with_error_code(error_code::NONE)
                };
                return described.with_group_id(group_id);
            };
            let members = group
                .members
                .into_iter()
                .map(|m| {
                    let member = DescribedGroupMember::default()
                        .with_member_id(wire(m.member_id))
                        .with_client_id(wire(m.client_id))
                        .with_client_host(wire(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if version >= 4 {
                        member.with_group_instance_id(m.instance_id.map(wire))
                    } else {
                        member
                    }
                })
                .collect();
            described
                .with_error_code(error_code::NONE)
                .with_group_id(group_id)
                .with_group_state(StrBytes::from_static_str(group.state))
                .with_protocol_type(wire(group.protocol_type))
                .with_protocol_data(wire(group.protocol))
                .with_members(members)
        })
        .collect();
    messages::DescribeGroupsResponse::default().with_groups(groups)
}
