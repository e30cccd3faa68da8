//! ListGroups (key 16), v0-v5: every group this coordinator knows, filtered by state (v4+)
//! and by type (v5+: "classic" or "consumer").

use kafka_protocol::messages;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::protocol::StrBytes;

use super::group_wire::wire;
use crate::auth::acl::Operation;
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ListGroupsRequest,
) -> messages::ListGroupsResponse {
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| f.as_str().eq_ignore_ascii_case(value))
    };
    // ACLs: Describe on the cluster lists every group, else those the principal may Describe.
    let all_groups = ctx.allowed_on_cluster(Operation::Describe);
    let groups = ctx
        .broker
        .list_groups()
        .into_iter()
        .filter(|g| all_groups || ctx.allowed_on_group(Operation::Describe, &g.group_id))
        .filter(|g| version < 4 || wanted(&request.states_filter, g.state))
        .filter(|g| version < 5 || wanted(&request.types_filter, g.group_type))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(messages::GroupId(wire(g.group_id)))
                .with_protocol_type(wire(g.protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(g.state))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str(g.group_type))
            } else {
                listed
            }
        })
        .collect();
    messages::ListGroupsResponse::default()
        .with_error_code(error_code::NONE)
        .with_groups(groups)
}
