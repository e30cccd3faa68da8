//! DescribeCluster (v0–2): the cluster id, the controller and the brokers (the registered,
//! unfenced ones in cluster mode; this broker on a single node). Answers only for the broker
//! endpoint type.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Context, error_code};

/// `endpoint_type` of brokers (Kafka's `EndpointType.BROKER`).
const ENDPOINT_BROKERS: i8 = 1;
/// `endpoint_type` of KRaft controllers, which a broker endpoint does not describe.
const ENDPOINT_CONTROLLERS: i8 = 2;

/// `cluster_authorized_operations` when the client did not ask for it (the schema default).
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Kafka's ACL operation codes for the CLUSTER resource: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
const CLUSTER_OPERATIONS: [u8; 7] = [5, 7, 8, 9, 10, 11, 12];

/// Every cluster operation, as a bit field: with no authorizer configured Kafka reports all of
/// them as allowed, and this broker has no authorizer yet.
fn cluster_operations_bits() -> i32 {
    CLUSTER_OPERATIONS
        .iter()
        .fold(0, |bits, &operation| bits | (1 << operation))
}

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeClusterRequest,
) -> messages::DescribeClusterResponse {
    let response = messages::DescribeClusterResponse::default().with_throttle_time_ms(0);
    if request.endpoint_type != ENDPOINT_BROKERS {
        // v0 requests always decode as brokers, so these are v1+ codes.
        let (error, message) = if request.endpoint_type == ENDPOINT_CONTROLLERS {
            (
                ResponseError::MismatchedEndpointType,
                "the request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_owned(),
            )
        } else {
            (
                ResponseError::UnsupportedEndpointType,
                format!("unsupported endpoint type {}", request.endpoint_type),
            )
        };
        return response
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let view = ctx.cluster_view();
    let brokers = view
        .brokers
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    let operations = if request.include_cluster_authorized_operations {
        cluster_operations_bits()
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    response
        .with_error_code(error_code::NONE)
        .with_error_message(None)
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(StrBytes::from_string(view.cluster_id))
        .with_controller_id(BrokerId(view.controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_operations_match_kafkas_bit_field() {
        // Bits 5 and 7..=12: CREATE, then ALTER through IDEMPOTENT_WRITE; never DELETE (6).
        assert_eq!(cluster_operations_bits(), 0b1_1111_1010_0000);
    }
}
