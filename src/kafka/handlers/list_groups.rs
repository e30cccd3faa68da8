//! ListGroups (key 16), v0-v5: every group this coordinator knows, filtered by state (v4+)
//! and by type (v5+; every group here is "classic").

use kafka_protocol::messages;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::protocol::StrBytes;

use super::group_wire::wire;
use crate::kafka::{Context, error_code};

/// The group type of every group this broker coordinates (KIP-848 names).
const GROUP_TYPE: &str = "classic";

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
    let groups = ctx
        .broker
        .list_groups()
        .into_iter()
        .filter(|g| version < 4 || wanted(&request.states_filter, g.state.name()))
        .filter(|_| version < 5 || wanted(&request.types_filter, GROUP_TYPE))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(messages::GroupId(wire(g.group_id)))
                .with_protocol_type(wire(g.protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(g.state.name()))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str(GROUP_TYPE))
            } else {
                listed
            }
        })
        .collect();
    messages::ListGroupsResponse::default()
        .with_error_code(error_code::NONE)
        .with_groups(groups)
}
