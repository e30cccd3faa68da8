//! AlterClientQuotas (key 49, v0-1): sets and removes `producer_byte_rate`,
//! `consumer_byte_rate` and `request_percentage` of user and client-id entities (a null name is
//! the type's default); one result per entry; needs AlterConfigs on the cluster. Other quota
//! keys (controller_mutation_rate) and ip entities are refused, since nothing would enforce them.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::alter_client_quotas_request::EntryData as Entry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::{CLIENT_ID, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER};
use crate::kafka::Context;
use crate::kafka::error_code;
use crate::metadata::QuotaEntity;

/// Longest entity name accepted.
const NAME_BYTES_MAX: usize = 256;

/// One entry's checked change: the entity, values to set, keys to remove.
type Change = (QuotaEntity, Vec<(String, f64)>, Vec<String>);

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::AlterClientQuotasRequest,
) -> messages::AlterClientQuotasResponse {
    let allowed = ctx.allowed_on_cluster(Operation::AlterConfigs);
    let mut results = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let outcome = if allowed {
            match check(entry) {
                Ok(_) if request.validate_only => Ok(()),
                Ok((entity, set, remove)) => ctx
                    .broker
                    .alter_client_quota(entity, set, remove)
                    .await
                    .map_err(|err| (error_code::for_broker_error(&err), err.to_string())),
                Err(refused) => Err(refused),
            }
        } else {
            Err((
                ResponseError::ClusterAuthorizationFailed,
                "Authorization failed.".to_owned(),
            ))
        };
        let entity = entry
            .entity
            .iter()
            .map(|e| {
                EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect();
        let result = EntryData::default().with_entity(entity);
        results.push(match outcome {
            Ok(()) => result.with_error_code(error_code::NONE),
            Err((error, message)) => result
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    messages::AlterClientQuotasResponse::default().with_entries(results)
}

fn check(entry: &Entry) -> Result<Change, (ResponseError, String)> {
    let invalid = |message: String| (ResponseError::InvalidRequest, message);
    let mut entity: QuotaEntity = Vec::with_capacity(entry.entity.len());
    for part in &entry.entity {
        let kind = part.entity_type.as_str();
        if kind != USER && kind != CLIENT_ID {
            return Err(invalid(format!(
                "quota entity type {kind:?} is not supported (user and client-id are)"
            )));
        }
        if entity.iter().any(|(k, _)| k == kind) {
            return Err(invalid(format!("entity type {kind} given twice")));
        }
        let name = part.entity_name.as_ref().map(|n| n.to_string());
        if name
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > NAME_BYTES_MAX)
        {
            return Err(invalid(format!(
                "entity names are 1 to {NAME_BYTES_MAX} bytes"
            )));
        }
        entity.push((kind.to_owned(), name));
    }
    if entity.is_empty() {
        return Err(invalid("the entity is empty".to_owned()));
    }
    entity.sort();
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for op in &entry.ops {
        let key = op.key.as_str();
        if ![PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE].contains(&key) {
            return Err(invalid(format!(
                "quota {key:?} is not supported (producer_byte_rate, consumer_byte_rate and \
                 request_percentage are)"
            )));
        }
        if op.remove {
            remove.push(key.to_owned());
        } else if op.value.is_finite() && op.value > 0.0 {
            set.push((key.to_owned(), op.value));
        } else {
            return Err(invalid(format!("{key} must be a positive number")));
        }
    }
    Ok((entity, set, remove))
}
