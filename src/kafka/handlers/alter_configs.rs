//! AlterConfigs (v0–2): replaces all config overrides of a topic, or all dynamic configs of a
//! BROKER resource (a node or the cluster-wide default), through the broker, which validates.

use kafka_protocol::messages;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::broker::AlterOp;
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::AlterConfigsRequest,
) -> messages::AlterConfigsResponse {
    let duplicates = admin::duplicates(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let key = (resource.resource_type, resource.resource_name.as_str());
        let outcome = if duplicates.contains(&key) {
            Err(ApiError::invalid_request(
                "each resource must appear at most once",
            ))
        } else if let Err(denied) = admin::config_access(
            ctx,
            resource.resource_type,
            resource.resource_name.as_str(),
            Operation::AlterConfigs,
        ) {
            Err(denied)
        } else {
            alter(ctx, resource, request.validate_only).await
        };
        let (error_code, error_message) = admin::code_and_message(&outcome);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    messages::AlterConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(responses)
}

async fn alter(
    ctx: &Context,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ApiError> {
    admin::check_alterations(
        resource
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.is_none())),
    )?;
    let name = resource.resource_name.as_str();
    let ops: Vec<AlterOp> = resource
        .configs
        .iter()
        // `check_alterations` has rejected every null value.
        .filter_map(|c| {
            let value = c.value.as_ref()?;
            Some(AlterOp::Set(c.name.to_string(), value.to_string()))
        })
        .collect();
    let altered = match resource.resource_type {
        admin::RESOURCE_TOPIC => {
            ctx.broker
                .alter_topic_configs(name, &ops, false, validate_only)
                .await
        }
        admin::RESOURCE_BROKER => {
            let node = admin::broker_node(name, ctx.broker.node_id())?;
            ctx.broker
                .alter_broker_configs(node, &ops, false, validate_only)
                .await
        }
        other => return Err(admin::unsupported_resource(other)),
    };
    altered.map_err(|err| ApiError::broker(&err))
}
