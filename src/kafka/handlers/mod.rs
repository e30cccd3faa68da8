//! One file per Kafka API: turns a decoded request into a response by calling the broker.
//! Handlers never touch sockets, frames or headers, and never panic on any request content.
//!
//! # Conventions every handler follows
//!
//! - File `handlers/<api_snake_case>.rs`, starting with a `//!` line, exposing exactly
//!   ```ignore
//!   pub(crate) async fn handle(
//!       ctx: &Context,
//!       version: i16,
//!       request: messages::XRequest,
//!   ) -> messages::XResponse
//!   ```
//!   with `use crate::kafka::Context;` and `use kafka_protocol::messages;` (qualify types:
//!   `messages::CreateTopicsResponse`, `messages::TopicName`). `Context` (kafka/context.rs) is
//!   `{ broker: Arc<Broker>, settings: Arc<KafkaSettings>, peer: SocketAddr }`, all `pub(crate)`.
//! - `version` is the request's (already negotiated and range-checked) API version; the response is
//!   encoded at the same version by dispatch. A handler only needs it to decide version-dependent
//!   behaviour. Fields that do not exist at `version` must be left at their `Default` value:
//!   kafka-protocol refuses to encode some of them otherwise (e.g. `cluster_authorized_operations`).
//! - The handler never fails: every problem becomes a Kafka error code in the response.
//!   Broker errors map to codes ONLY through `crate::kafka::error_code::for_broker_error(&err)`,
//!   which returns a `kafka_protocol::ResponseError`; use `.code()` for the i16 field and
//!   `error_code::message(&err)` for an `error_message` field. Codes that are not broker
//!   errors (e.g. INVALID_REQUEST for a malformed field) come from `kafka_protocol::ResponseError`
//!   directly: `ResponseError::InvalidRequest.code()`. Success is `error_code::NONE` (0).
//! - Strings: build with `StrBytes::from_string(..)` / `StrBytes::from_static_str(..)`; topic names
//!   are `messages::TopicName(StrBytes)`; topic ids convert with `error_code`-free helpers in
//!   `crate::kafka::context`: `topic_id_to_uuid([u8; 16]) -> Uuid` and `uuid_to_topic_id(Uuid)`.
//! - `throttle_time_ms` is always 0. Per-item results keep the request's order.
//! - Handlers run in request order in the connection's reader, so a handler that mutates state
//!   (create/delete topics, configs) is seen by every later request on that connection. Do the
//!   broker calls directly; do not spawn tasks. Long waits belong only to produce and fetch.
//! - Logging: `tracing::debug!` for per-request detail (the `request{api, version,
//!   correlation_id, client_id}` span is already entered); `warn!` only for degraded-but-handled.
//! - Dispatch (kafka/dispatch.rs) decodes the request, calls `handle`, encodes the response;
//!   the ApiVersions table (kafka/versions.rs) lists the versions served. A new handler is
//!   registered in both, plus a `mod` line below.

pub(crate) mod add_offsets_to_txn;
pub(crate) mod add_partitions_to_txn;
pub(crate) mod api_versions;
pub(crate) mod describe_producers;
pub(crate) mod describe_transactions;
pub(crate) mod elect_leaders;
pub(crate) mod end_txn;
pub(crate) mod fetch;
pub(crate) mod find_coordinator;
pub(crate) mod init_producer_id;
pub(crate) mod list_offsets;
pub(crate) mod list_offsets_v0;
pub(crate) mod list_partition_reassignments;
pub(crate) mod list_transactions;
pub(crate) mod metadata;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod produce_legacy;
// Group coordination (classic protocol and committed offsets); `group_wire` holds what they share.
pub(crate) mod consumer_group_describe;
pub(crate) mod consumer_group_heartbeat;
pub(crate) mod delete_groups;
pub(crate) mod describe_groups;
mod group_wire;
pub(crate) mod heartbeat;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod offset_commit;
pub(crate) mod offset_delete;
pub(crate) mod offset_fetch;
pub(crate) mod sync_group;
pub(crate) mod txn_offset_commit;
pub(crate) mod unregister_broker;
// Admin handlers (written by the admin engineer); `admin` holds what they share.
mod admin;
#[cfg(test)]
mod admin_config_tests;
#[cfg(test)]
mod admin_tests;
pub(crate) mod alter_configs;
pub(crate) mod alter_partition_reassignments;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_log_dirs;
pub(crate) mod incremental_alter_configs;
// Users, SASL, ACLs and quotas.
mod acl_wire;
pub(crate) mod alter_client_quotas;
pub(crate) mod alter_user_scram_credentials;
pub(crate) mod create_acls;
pub(crate) mod delete_acls;
pub(crate) mod describe_acls;
pub(crate) mod describe_client_quotas;
pub(crate) mod describe_user_scram_credentials;
#[cfg(test)]
mod partition_isolation_tests;
/// SaslHandshake and SaslAuthenticate share the connection's session and may close it after
/// answering, so they do not follow the `handle` convention.
pub(crate) mod sasl;

use kafka_protocol::ResponseError;

/// The KIP-320 leader-epoch check of Fetch and ListOffsets: a requested epoch of -1 skips it,
/// a newer one is unknown here, an older one is fenced.
pub(crate) fn leader_epoch_error(requested: i32, ours: i32) -> Option<ResponseError> {
    if requested < 0 || requested == ours {
        None
    } else if requested > ours {
        Some(ResponseError::UnknownLeaderEpoch)
    } else {
        Some(ResponseError::FencedLeaderEpoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_check_follows_kip_320() {
        assert_eq!(leader_epoch_error(-1, 5), None);
        assert_eq!(leader_epoch_error(5, 5), None);
        assert_eq!(
            leader_epoch_error(6, 5),
            Some(ResponseError::UnknownLeaderEpoch)
        );
        assert_eq!(
            leader_epoch_error(4, 5),
            Some(ResponseError::FencedLeaderEpoch)
        );
    }
}
