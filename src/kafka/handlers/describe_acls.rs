//! DescribeAcls (key 29, v1-3): the ACLs a filter selects, grouped by resource pattern; needs
//! Describe on the cluster.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::protocol::StrBytes;

use super::acl_wire::{self, Filter, WireFilter};
use crate::auth::acl::{AclBinding, Operation};
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeAclsRequest,
) -> messages::DescribeAclsResponse {
    let response = messages::DescribeAclsResponse::default();
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wire = WireFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.as_deref(),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.as_deref(),
        host: request.host_filter.as_deref(),
        operation: request.operation,
        permission: request.permission_type,
    };
    let filter = match acl_wire::filter(&wire) {
        Ok(Filter::Matching(filter)) => filter,
        Ok(Filter::Nothing) => return response.with_error_code(error_code::NONE),
        Err(reason) => {
            return response
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(reason)));
        }
    };
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut bindings = ctx.broker.describe_acls(&filter);
    bindings.sort();
    for binding in bindings {
        let description = describe(&binding);
        match resources.last_mut() {
            Some(last)
                if last.resource_type == binding.resource_type.code()
                    && last.resource_name.as_str() == binding.resource_name
                    && last.pattern_type == binding.pattern_type.code() =>
            {
                last.acls.push(description);
            }
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(binding.resource_type.code())
                    .with_resource_name(StrBytes::from_string(binding.resource_name.clone()))
                    .with_pattern_type(binding.pattern_type.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    response
        .with_error_code(error_code::NONE)
        .with_resources(resources)
}

fn describe(binding: &AclBinding) -> AclDescription {
    AclDescription::default()
        .with_principal(StrBytes::from_string(binding.principal.clone()))
        .with_host(StrBytes::from_string(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}
