//! The one place where a `broker::Error` becomes a Kafka error code.
//! An exhaustive match with no catch-all arm: a new broker error forces a decision here.

use kafka_protocol::ResponseError;
use kafka_protocol::protocol::StrBytes;

use crate::broker;

/// The "no error" code.
pub(crate) const NONE: i16 = 0;

/// The Kafka error a broker error is reported as.
pub(crate) fn for_broker_error(err: &broker::Error) -> ResponseError {
    use broker::Error as E;
    match err {
        E::UnknownTopicOrPartition { .. } => ResponseError::UnknownTopicOrPartition,
        E::UnknownTopic { .. } => ResponseError::UnknownTopicOrPartition,
        E::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        E::Cluster { .. } => ResponseError::RequestTimedOut,
        E::NotCoordinator { .. } => ResponseError::NotCoordinator,
        E::TopicAlreadyExists { .. } => ResponseError::TopicAlreadyExists,
        E::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        E::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        E::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        E::InvalidConfig { .. } => ResponseError::InvalidConfig,
        // Kafka's `ConfigAdminManager` reports its dynamic-config refusals as invalid requests.
        E::StaticBrokerConfigs { .. } => ResponseError::InvalidRequest,
        E::PerBrokerConfigsAtDefault { .. } => ResponseError::InvalidRequest,
        E::CorruptMessage { .. } => ResponseError::CorruptMessage,
        E::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        // Kafka has no decompressed-size cap; MESSAGE_TOO_LARGE makes the Java producer split
        // the batch and retry.
        E::DecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
        E::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
        E::InvalidRecord { .. } => ResponseError::InvalidRecord,
        E::UnsupportedCompression { .. } => ResponseError::UnsupportedCompressionType,
        E::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        E::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        E::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        E::TransactionCoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
        E::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        E::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // Disk failures: the partition (or catalog) stopped accepting writes.
        E::Storage { .. } => ResponseError::KafkaStorageError,
        E::FlushFailed { .. } => ResponseError::KafkaStorageError,
        E::PartitionOffline { .. } => ResponseError::KafkaStorageError,
        E::Catalog { .. } => ResponseError::KafkaStorageError,
        // Kafka: "Cannot append to internal topic" is an InvalidTopicException.
        E::InternalTopic { .. } => ResponseError::InvalidTopicException,
        E::InvalidGroupId { .. } => ResponseError::InvalidGroupId,
        E::UnknownMemberId { .. } => ResponseError::UnknownMemberId,
        E::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        E::RebalanceInProgress { .. } => ResponseError::RebalanceInProgress,
        E::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
        E::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        E::InconsistentGroupProtocol { .. } => ResponseError::InconsistentGroupProtocol,
        E::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
        // Kafka has no dedicated code; the request itself is unacceptable.
        E::MemberMetadataTooLarge { .. } => ResponseError::InvalidRequest,
        E::GroupMaxSizeReached { .. } => ResponseError::GroupMaxSizeReached,
        E::UnsupportedAssignor { .. } => ResponseError::UnsupportedAssignor,
        E::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        E::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
        E::InvalidGroupRequest { .. } => ResponseError::InvalidRequest,
        E::GroupIdNotFound { .. } => ResponseError::GroupIdNotFound,
        E::NonEmptyGroup { .. } => ResponseError::NonEmptyGroup,
        E::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        E::CoordinatorNotAvailable { .. } => ResponseError::CoordinatorNotAvailable,
        E::CoordinatorLoadInProgress { .. } => ResponseError::CoordinatorLoadInProgress,
        // Kafka's coordinator answers a failed group or offset write as NOT_COORDINATOR when the
        // log failed and UNKNOWN_SERVER_ERROR when the record is too large.
        E::CoordinatorLogFailed { .. } => ResponseError::NotCoordinator,
        E::GroupRecordTooLarge { .. } => ResponseError::UnknownServerError,
        E::Transaction { error, .. } => for_txn_error(*error),
        E::OperationNotAttempted => ResponseError::OperationNotAttempted,
        E::ElectionNotNeeded { .. } => ResponseError::ElectionNotNeeded,
        E::PreferredLeaderNotAvailable { .. } => ResponseError::PreferredLeaderNotAvailable,
        E::EligibleLeadersNotAvailable { .. } => ResponseError::EligibleLeadersNotAvailable,
        E::InvalidReplicaAssignment { .. } => ResponseError::InvalidReplicaAssignment,
        E::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
        E::BrokerNotRegistered { .. } => ResponseError::BrokerIdNotRegistered,
        // Kafka has no code for a broker that runs or holds replicas: the request is refused.
        E::BrokerInUse { .. } => ResponseError::InvalidRequest,
        E::InvalidRequest { .. } => ResponseError::InvalidRequest,
        E::UnknownScramCredential { .. } => ResponseError::ResourceNotFound,
        E::UnacceptableCredential { .. } => ResponseError::UnacceptableCredential,
    }
}

/// The Kafka error a transaction coordinator refusal is reported as.
pub(crate) fn for_txn_error(error: broker::TxnError) -> ResponseError {
    use broker::TxnError as T;
    match error {
        T::InvalidRequest => ResponseError::InvalidRequest,
        T::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        T::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        T::ProducerFenced => ResponseError::ProducerFenced,
        T::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        T::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        T::InvalidTxnState => ResponseError::InvalidTxnState,
        T::TransactionAbortable => ResponseError::TransactionAbortable,
        T::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        T::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        T::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        T::NotCoordinator => ResponseError::NotCoordinator,
        // Kafka answers an illegal coordinator state with an unknown server error.
        T::IllegalState => ResponseError::UnknownServerError,
    }
}

/// The i16 code of a broker error.
pub(crate) fn code(err: &broker::Error) -> i16 {
    for_broker_error(err).code()
}

/// The human-readable text for an `error_message` field.
/// Kafka's own words where clients or operators match on them.
pub(crate) fn message(err: &broker::Error) -> Option<StrBytes> {
    // Kafka prints a Scala `Set` of the keys.
    let set = |keys: &[String]| format!("Set({})", keys.join(", "));
    let text = match err {
        broker::Error::StaticBrokerConfigs { keys } => {
            format!("Cannot update these configs dynamically: {}", set(keys))
        }
        broker::Error::PerBrokerConfigsAtDefault { keys } => format!(
            "Cannot update these configs at default cluster level, broker id must be specified: {}",
            set(keys)
        ),
        other => other.to_string(),
    };
    Some(StrBytes::from_string(text))
}
