//! FindCoordinator (key 10), v0-v6 (v4+ batches keys): this single node coordinates every
//! consumer group and every transactional id (the leader of their internal partitions); share
//! groups are not served, so they get COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::protocol::StrBytes;

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
    let node_id = messages::BrokerId(ctx.broker.node_id());
    let endpoint = ctx.broker.advertised();
    let host = StrBytes::from_string(endpoint.host.clone());
    let port = i32::from(endpoint.port);
    let error = if request.key_type == KEY_TYPE_GROUP {
        None
    } else if request.key_type == KEY_TYPE_TRANSACTION {
        (!ctx.broker.is_coordinating_transactions())
            .then_some(ResponseError::CoordinatorNotAvailable)
    } else if (0..=KEY_TYPE_MAX).contains(&request.key_type) {
        Some(ResponseError::CoordinatorNotAvailable)
    } else {
        Some(ResponseError::InvalidRequest)
    };
    tracing::debug!(key_type = request.key_type, "find coordinator");
    let response = messages::FindCoordinatorResponse::default();
    if version >= 4 {
        // v4+ batches keys; the single-key fields must stay at their defaults.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| match error {
                None => Coordinator::default()
                    .with_key(key)
                    .with_node_id(node_id)
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(error_code::NONE),
                Some(error) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(messages::BrokerId(-1))
                    .with_error_code(error.code()),
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    match error {
        None => response
            .with_error_code(error_code::NONE)
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port),
        Some(error) => response
            .with_error_code(error.code())
            .with_node_id(messages::BrokerId(-1)),
    }
}
