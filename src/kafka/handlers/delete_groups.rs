//! DeleteGroups (key 42), v0-v2: deletes empty groups and their committed offsets
//! (NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND for unknown groups).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;

use super::group_wire::code;
use crate::auth::acl::Operation;
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DeleteGroupsRequest,
) -> messages::DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        if !ctx.allowed_on_group(Operation::Delete, group_id.as_str()) {
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let result = ctx.broker.delete_group(group_id.as_str()).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(code(&result)),
        );
    }
    messages::DeleteGroupsResponse::default().with_results(results)
}
