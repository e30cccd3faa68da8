//! DescribeClientQuotas (key 48, v0-1): the quota entities matching the request's components
//! (EXACT name, DEFAULT, or any name of the type; `strict` asks for exactly those types) with
//! their values; needs DescribeConfigs on the cluster.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeClientQuotasRequest,
) -> messages::DescribeClientQuotasResponse {
    let response = messages::DescribeClientQuotasResponse::default();
    if !ctx.allowed_on_cluster(Operation::DescribeConfigs) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    for component in &request.components {
        let valid = match component.match_type {
            MATCH_EXACT => component._match.is_some(),
            MATCH_DEFAULT | MATCH_ANY => true,
            _ => false,
        };
        if !valid {
            return response
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_static_str("invalid match type")));
        }
    }
    let entries = ctx
        .broker
        .client_quotas()
        .into_iter()
        .filter(|(entity, _)| {
            let covered = request.components.iter().all(|component| {
                entity.iter().any(|(kind, name)| {
                    kind.as_str() == component.entity_type.as_str()
                        && match component.match_type {
                            MATCH_EXACT => name.as_deref() == component._match.as_deref(),
                            MATCH_DEFAULT => name.is_none(),
                            _ => true,
                        }
                })
            });
            covered && (!request.strict || entity.len() == request.components.len())
        })
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(kind))
                                .with_entity_name(name.map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key))
                                .with_value(value)
                        })
                        .collect(),
                )
        })
        .collect();
    response
        .with_error_code(error_code::NONE)
        .with_entries(Some(entries))
}
