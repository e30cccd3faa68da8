//! CreateAcls (key 30, v1-3): adds ACLs (one result per creation, in order; an invalid one
//! gets INVALID_REQUEST and the others are still created); needs Alter on the cluster.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::protocol::StrBytes;

use super::acl_wire;
use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::CreateAclsRequest,
) -> messages::CreateAclsResponse {
    let failed = |error: ResponseError, message: String| {
        AclCreationResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !ctx.allowed_on_cluster(Operation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| failed(ResponseError::ClusterAuthorizationFailed, String::new()))
            .collect();
        return messages::CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<_> = request.creations.iter().map(acl_wire::binding).collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        ctx.broker.create_acls(&valid).await
    };
    let results = checked
        .into_iter()
        .map(|checked| match (checked, &stored) {
            (Err(reason), _) => failed(ResponseError::InvalidRequest, reason),
            (Ok(binding), Ok(())) => {
                tracing::info!(principal = %ctx.principal(), ?binding, "ACL created");
                AclCreationResult::default().with_error_code(error_code::NONE)
            }
            (Ok(_), Err(err)) => failed(error_code::for_broker_error(err), err.to_string()),
        })
        .collect();
    messages::CreateAclsResponse::default().with_results(results)
}
