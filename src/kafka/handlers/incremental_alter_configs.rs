//! IncrementalAlterConfigs (v0–1): SET, DELETE, APPEND and SUBTRACT on topic config overrides
//! and on dynamic broker configs, applied by the broker; log levels are not served.

use kafka_protocol::messages;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::broker::AlterOp;
use crate::kafka::Context;

/// Kafka's `AlterConfigOp.OpType` ids.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::IncrementalAlterConfigsRequest,
) -> messages::IncrementalAlterConfigsResponse {
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
    messages::IncrementalAlterConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(responses)
}

async fn alter(
    ctx: &Context,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ApiError> {
    admin::check_alterations(resource.configs.iter().map(|c| {
        (
            c.name.as_str(),
            c.config_operation != OP_DELETE && c.value.is_none(),
        )
    }))?;
    let ops = ops(&resource.configs)?;
    let name = resource.resource_name.as_str();
    let node_id = ctx.broker.node_id();
    match resource.resource_type {
        admin::RESOURCE_TOPIC => ctx
            .broker
            .alter_topic_configs(name, &ops, true, validate_only)
            .await
            .map_err(|err| ApiError::broker(&err)),
        admin::RESOURCE_BROKER => {
            let node = admin::broker_node(name, node_id)?;
            ctx.broker
                .alter_broker_configs(node, &ops, true, validate_only)
                .await
                .map_err(|err| ApiError::broker(&err))
        }
        admin::RESOURCE_BROKER_LOGGER => {
            if name.is_empty() {
                return Err(ApiError::invalid_request("broker id must not be empty"));
            }
            admin::broker_scope(name, node_id)?;
            Err(admin::unsupported_resource(admin::RESOURCE_BROKER_LOGGER))
        }
        other => Err(admin::unsupported_resource(other)),
    }
}

/// The broker operations of a resource's configs. APPEND and SUBTRACT values are
/// comma-separated lists in Kafka, so each item becomes its own operation.
fn ops(configs: &[AlterableConfig]) -> Result<Vec<AlterOp>, ApiError> {
    let mut ops = Vec::with_capacity(configs.len());
    for config in configs {
        let key = config.name.to_string();
        let value = config.value.as_deref().unwrap_or_default();
        match config.config_operation {
            OP_SET => ops.push(AlterOp::Set(key, value.to_owned())),
            OP_DELETE => ops.push(AlterOp::Delete(key)),
            OP_APPEND | OP_SUBTRACT => {
                for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    ops.push(if config.config_operation == OP_APPEND {
                        AlterOp::Append(key.clone(), item.to_owned())
                    } else {
                        AlterOp::Subtract(key.clone(), item.to_owned())
                    });
                }
            }
            other => {
                return Err(ApiError::invalid_request(format!(
                    "unknown operation type {other} for config {key}"
                )));
            }
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::ResponseError;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn config(name: &'static str, op: i8, value: Option<&'static str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(op)
            .with_value(value.map(StrBytes::from_static_str))
    }

    #[test]
    fn operations_map_to_broker_ops() {
        let got = ops(&[
            config("retention.ms", OP_SET, Some("1000")),
            config("segment.ms", OP_DELETE, None),
            config("cleanup.policy", OP_APPEND, Some("delete, compact")),
            config("cleanup.policy", OP_SUBTRACT, Some("compact")),
        ]);
        let expected = vec![
            AlterOp::Set("retention.ms".into(), "1000".into()),
            AlterOp::Delete("segment.ms".into()),
            AlterOp::Append("cleanup.policy".into(), "delete".into()),
            AlterOp::Append("cleanup.policy".into(), "compact".into()),
            AlterOp::Subtract("cleanup.policy".into(), "compact".into()),
        ];
        assert_eq!(got, Ok(expected));
    }

    #[test]
    fn unknown_operations_are_invalid_requests() {
        let got = ops(&[config("retention.ms", 4, Some("1"))]).map_err(|e| e.code);
        assert_eq!(got, Err(ResponseError::InvalidRequest.code()));
    }
}
