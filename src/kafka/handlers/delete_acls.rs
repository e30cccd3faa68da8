//! DeleteAcls (key 31, v1-3): deletes the ACLs each filter selects and answers them per filter;
//! needs Alter on the cluster.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::protocol::StrBytes;

use super::acl_wire::{self, Filter, WireFilter};
use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DeleteAclsRequest,
) -> messages::DeleteAclsResponse {
    let failed = |error: ResponseError, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !ctx.allowed_on_cluster(Operation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| failed(ResponseError::ClusterAuthorizationFailed, String::new()))
            .collect();
        return messages::DeleteAclsResponse::default().with_filter_results(results);
    }
    // Each filter parsed; `None` for one that selects nothing Tidelog stores.
    let parsed: Vec<Result<Option<_>, String>> = request
        .filters
        .iter()
        .map(|f| {
            let wire = WireFilter {
                resource_type: f.resource_type_filter,
                resource_name: f.resource_name_filter.as_deref(),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.as_deref(),
                host: f.host_filter.as_deref(),
                operation: f.operation,
                permission: f.permission_type,
            };
            acl_wire::filter(&wire).map(|filter| match filter {
                Filter::Matching(filter) => Some(filter),
                Filter::Nothing => None,
            })
        })
        .collect();
    let filters: Vec<_> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().and_then(Option::as_ref).cloned())
        .collect();
    let deleted = ctx.broker.delete_acls(&filters).await;
    let mut deleted_per_filter = match &deleted {
        Ok(per_filter) => per_filter.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = parsed
        .into_iter()
        .map(|parsed| match (parsed, &deleted) {
            (Err(reason), _) => failed(ResponseError::InvalidRequest, reason),
            (Ok(None), _) => DeleteAclsFilterResult::default().with_error_code(error_code::NONE),
            (Ok(Some(_)), Err(err)) => failed(error_code::for_broker_error(err), err.to_string()),
            (Ok(Some(_)), Ok(_)) => {
                let matching = deleted_per_filter
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|binding| {
                        tracing::info!(principal = %ctx.principal(), ?binding, "ACL deleted");
                        DeleteAclsMatchingAcl::default()
                            .with_error_code(error_code::NONE)
                            .with_resource_type(binding.resource_type.code())
                            .with_resource_name(StrBytes::from_string(binding.resource_name))
                            .with_pattern_type(binding.pattern_type.code())
                            .with_principal(StrBytes::from_string(binding.principal))
                            .with_host(StrBytes::from_string(binding.host))
                            .with_operation(binding.operation.code())
                            .with_permission_type(binding.permission.code())
                    })
                    .collect();
                DeleteAclsFilterResult::default()
                    .with_error_code(error_code::NONE)
                    .with_matching_acls(matching)
            }
        })
        .collect();
    messages::DeleteAclsResponse::default().with_filter_results(results)
}
