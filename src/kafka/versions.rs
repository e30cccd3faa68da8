//! The ApiVersions table: every API key and version range this broker advertises and serves.
//! Dispatch rejects whatever is not listed here; it must list only what really works.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::ApiVersion;

/// One advertised API and its inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Served {
    pub(crate) api: ApiKey,
    pub(crate) min: i16,
    pub(crate) max: i16,
}

const fn served(api: ApiKey, min: i16, max: i16) -> Served {
    Served { api, min, max }
}

/// Lowest Produce version kafka-protocol decodes; below it `produce_legacy` answers
/// UNSUPPORTED_VERSION. Produce v0 is still advertised: librdkafka sends uncompressed batches
/// when a broker's minimum Produce version is above 0 (KAFKA-18659, librdkafka#4956).
pub(crate) const PRODUCE_DECODED_MIN: i16 = 3;

/// Lowest ListOffsets version kafka-protocol decodes; v0 (removed in Kafka 4.0) is answered by
/// `list_offsets_v0`, for tools built on old sarama that send it regardless (Burrow 1.2).
pub(crate) const LIST_OFFSETS_DECODED_MIN: i16 = 1;
/// The feature that selects the transaction protocol (KIP-890): 2 = transactions v2, an epoch
/// bump at every EndTxn and partitions added to a transaction by the produce itself.
pub(crate) const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The `transaction.version` this broker supports and has finalized.
pub(crate) const TRANSACTION_VERSION: i16 = 2;
/// Epoch of the finalized features: they never change on this node.
pub(crate) const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// Advertised APIs, ordered by key.
pub(crate) const SERVED: &[Served] = &[
    served(ApiKey::Produce, 0, 13),
    served(ApiKey::Fetch, 4, 18),
    served(ApiKey::ListOffsets, 0, 10),
    served(ApiKey::Metadata, 0, 13),
    served(ApiKey::OffsetCommit, 2, 9),
    served(ApiKey::OffsetFetch, 1, 9),
    // Groups and transactional ids are coordinated here.
    served(ApiKey::FindCoordinator, 0, 6),
    served(ApiKey::JoinGroup, 0, 9),
    served(ApiKey::Heartbeat, 0, 4),
    served(ApiKey::LeaveGroup, 0, 5),
    served(ApiKey::SyncGroup, 0, 5),
    served(ApiKey::DescribeGroups, 0, 6),
    served(ApiKey::ListGroups, 0, 5),
    // On SASL listeners the only requests before authentication (with ApiVersions).
    served(ApiKey::SaslHandshake, 0, 1),
    served(ApiKey::ApiVersions, 0, 4),
    served(ApiKey::CreateTopics, 2, 7),
    served(ApiKey::DeleteTopics, 1, 6),
    served(ApiKey::DeleteRecords, 0, 2),
    served(ApiKey::InitProducerId, 0, 5),
    served(ApiKey::OffsetForLeaderEpoch, 2, 4),
    served(ApiKey::AddPartitionsToTxn, 0, 5),
    served(ApiKey::AddOffsetsToTxn, 0, 4),
    served(ApiKey::EndTxn, 0, 5),
    served(ApiKey::TxnOffsetCommit, 0, 5),
    served(ApiKey::DescribeAcls, 1, 3),
    served(ApiKey::CreateAcls, 1, 3),
    served(ApiKey::DeleteAcls, 1, 3),
    served(ApiKey::DescribeConfigs, 1, 4),
    served(ApiKey::AlterConfigs, 0, 2),
    served(ApiKey::DescribeLogDirs, 1, 4),
    served(ApiKey::SaslAuthenticate, 0, 2),
    served(ApiKey::CreatePartitions, 0, 3),
    served(ApiKey::DeleteGroups, 0, 2),
    served(ApiKey::ElectLeaders, 0, 2),
    served(ApiKey::IncrementalAlterConfigs, 0, 1),
    served(ApiKey::AlterPartitionReassignments, 0, 0),
    served(ApiKey::ListPartitionReassignments, 0, 0),
    served(ApiKey::OffsetDelete, 0, 0),
    served(ApiKey::DescribeClientQuotas, 0, 1),
    served(ApiKey::AlterClientQuotas, 0, 1),
    served(ApiKey::DescribeUserScramCredentials, 0, 0),
    served(ApiKey::AlterUserScramCredentials, 0, 0),
    served(ApiKey::DescribeCluster, 0, 2),
    served(ApiKey::DescribeProducers, 0, 0),
    served(ApiKey::UnregisterBroker, 0, 0),
    served(ApiKey::DescribeTransactions, 0, 0),
    served(ApiKey::ListTransactions, 0, 1),
    served(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    served(ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The advertised range of `api`, or `None` if it is not served at all.
pub(crate) fn served_range(api: ApiKey) -> Option<Served> {
    SERVED.iter().copied().find(|s| s.api == api)
}

/// Whether `version` of `api` is advertised.
pub(crate) fn is_served(api: ApiKey, version: i16) -> bool {
    served_range(api).is_some_and(|s| (s.min..=s.max).contains(&version))
}

/// The table as sent in ApiVersionsResponse.
pub(crate) fn api_versions() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.api as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_ranges_are_within_what_kafka_protocol_can_decode() {
        for s in SERVED {
            let valid = s.api.valid_versions();
            let min = match s.api {
                ApiKey::Produce => PRODUCE_DECODED_MIN,
                ApiKey::ListOffsets => LIST_OFFSETS_DECODED_MIN,
                _ => s.min,
            };
            assert!(s.min <= s.max, "{s:?}");
            assert!(valid.min <= min && s.max <= valid.max, "{s:?} vs {valid}");
        }
    }

    #[test]
    fn served_table_is_sorted_by_key_without_duplicates() {
        for pair in SERVED.windows(2) {
            if let [a, b] = pair {
                assert!((a.api as i16) < (b.api as i16), "{a:?} before {b:?}");
            }
        }
    }

    #[test]
    fn served_table_matches_the_newest_clients() {
        #[track_caller]
        fn check(api: ApiKey, min: i16, max: i16) {
            assert_eq!(served_range(api), Some(served(api, min, max)));
        }
        check(ApiKey::ApiVersions, 0, 4);
        check(ApiKey::Produce, 0, 13);
        check(ApiKey::Fetch, 4, 18);
        check(ApiKey::Metadata, 0, 13);
        // v0 as well, which Kafka 4.0 dropped: old sarama tools (Burrow 1.2) send it regardless.
        check(ApiKey::ListOffsets, 0, 10);
        check(ApiKey::OffsetForLeaderEpoch, 2, 4);
        check(ApiKey::FindCoordinator, 0, 6);
        check(ApiKey::JoinGroup, 0, 9);
        check(ApiKey::SyncGroup, 0, 5);
        check(ApiKey::Heartbeat, 0, 4);
        check(ApiKey::OffsetCommit, 2, 9);
        check(ApiKey::OffsetFetch, 1, 9);
        check(ApiKey::ConsumerGroupHeartbeat, 0, 1);
    }

    #[test]
    fn unserved_apis_and_versions_are_rejected() {
        assert!(!is_served(ApiKey::InitProducerId, 6));
        assert!(!is_served(ApiKey::EndTxn, 6));
        assert!(!is_served(ApiKey::JoinGroup, 10));
        assert!(!is_served(ApiKey::OffsetCommit, 1));
        assert!(!is_served(ApiKey::Fetch, 3));
        assert!(!is_served(ApiKey::ApiVersions, 5));
        assert!(is_served(ApiKey::Produce, 0));
        assert!(is_served(ApiKey::Metadata, 13));
    }

    #[test]
    fn api_versions_lists_every_served_api() {
        let table = api_versions();
        assert_eq!(table.len(), SERVED.len());
        let produce = table
            .iter()
            .find(|v| v.api_key == 0)
            .expect("produce advertised");
        assert_eq!((produce.min_version, produce.max_version), (0, 13));
    }
}
