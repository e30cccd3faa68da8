//! FindCoordinator (key 10), v0-v6 (v4+ batches keys): the leader of the internal partition a
//! group or transactional id hashes to (this node out of cluster mode); share groups are not
//! served, so they get COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::CoordinatorAt;
use crate::kafka::Context;
use crate::kafka::error_code;

/// Coordinator key types (FindCoordinatorRequest.json): group, transaction, share group.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_MAX: i8 = 2;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::FindCoordinatorRequest,
) -> messages::FindCoordinatorResponse {
    tracing::debug!(key_type = request.key_type, "find coordinator");
    let response = messages::FindCoordinatorResponse::default();
    if version >= 4 {
        // v4+ batches keys; the single-key fields must stay at their defaults.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = locate(ctx, request.key_type, key.as_str());
                let coordinator = Coordinator::default().with_key(key);
                match found {
                    Ok((node_id, host, port)) => coordinator
                        .with_node_id(messages::BrokerId(node_id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(i32::from(port))
                        .with_error_code(error_code::NONE),
                    Err(error) => coordinator
                        .with_node_id(messages::BrokerId(-1))
                        .with_error_code(error.code()),
                }
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    match locate(ctx, request.key_type, request.key.as_str()) {
        Ok((node_id, host, port)) => response
            .with_error_code(error_code::NONE)
            .with_node_id(messages::BrokerId(node_id))
            .with_host(StrBytes::from_string(host))
            .with_port(i32::from(port)),
        Err(error) => response
            .with_error_code(error.code())
            .with_node_id(messages::BrokerId(-1)),
    }
}

/// The coordinator of one key: (node id, host, port), or why there is none.
fn locate(ctx: &Context, key_type: i8, key: &str) -> Result<(i32, String, u16), ResponseError> {
    // ACLs: Describe on the group or the transactional id.
    match key_type {
        KEY_TYPE_GROUP if !ctx.allowed_on_group(Operation::Describe, key) => {
            return Err(ResponseError::GroupAuthorizationFailed);
        }
        KEY_TYPE_TRANSACTION if !ctx.allowed_on_transactional_id(Operation::Describe, key) => {
            return Err(ResponseError::TransactionalIdAuthorizationFailed);
        }
        _ => {}
    }
    let at = match key_type {
        KEY_TYPE_GROUP => ctx.broker.group_coordinator(key),
        KEY_TYPE_TRANSACTION if ctx.broker.is_coordinating_transactions() => {
            ctx.broker.txn_coordinator(key)
        }
        KEY_TYPE_TRANSACTION => return Err(ResponseError::CoordinatorNotAvailable),
        other if (0..=KEY_TYPE_MAX).contains(&other) => {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        _ => return Err(ResponseError::InvalidRequest),
    };
    match at {
        // A coordinator still loading is the coordinator: it answers the group's requests with
        // COORDINATOR_LOAD_IN_PROGRESS until it is done.
        CoordinatorAt::Here | CoordinatorAt::Loading => {
            let (host, port) = ctx.advertised();
            Ok((ctx.broker.node_id(), host, port))
        }
        CoordinatorAt::Broker { id, host, port } if ctx.listener.is_default => Ok((id, host, port)),
        // Another listener: that broker's endpoint of the connection's listener.
        CoordinatorAt::Broker { id, .. } => ctx
            .endpoints_of(&std::collections::BTreeSet::from([id]))
            .into_iter()
            .next()
            .map(|b| (b.id, b.host, b.port))
            .ok_or(ResponseError::CoordinatorNotAvailable),
        CoordinatorAt::Unavailable => Err(ResponseError::CoordinatorNotAvailable),
    }
}
