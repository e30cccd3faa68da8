//! What a client call can fail with: the network, the wire, or a Kafka error code (named as Kafka
//! names it, with what the user can do about it), and whether retrying may help.

use std::fmt;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// A failed client call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Could not reach or talk to a broker.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The broker answered something this client cannot read, or refused the request shape.
    #[error("{0}")]
    Protocol(String),
    /// The broker answered with a Kafka error code.
    #[error("{0}")]
    Kafka(KafkaError),
    /// Bad input given to the client (an unknown topic, a partition out of range, ...).
    #[error("{0}")]
    Invalid(String),
    /// The operation did not finish in time; `last` is the last retriable failure seen.
    #[error("gave up after {waited:?}: {last}")]
    Timeout { waited: Duration, last: String },
}

/// A Kafka error code returned for `context` (a topic, a partition, a group, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KafkaError {
    pub(crate) code: i16,
    pub(crate) context: String,
    /// The broker's error message, when the API carries one.
    pub(crate) message: Option<String>,
}

impl KafkaError {
    /// Kafka's name of the code, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub(crate) fn name(&self) -> String {
        error_name(self.code)
    }

    /// Whether Kafka defines the error as retriable.
    pub(crate) fn is_retriable(&self) -> bool {
        ResponseError::try_from_code(self.code).is_some_and(|e| e.is_retriable())
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (error code {})",
            self.context,
            self.name(),
            self.code
        )?;
        if let Some(message) = self.message.as_deref().filter(|m| !m.is_empty()) {
            write!(f, ": {message}")?;
        }
        if let Some(hint) = hint(self.code) {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl ClientError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> ClientError {
        ClientError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> ClientError {
        ClientError::Protocol(what.into())
    }

    /// The Kafka error `code` (not 0) about `context`.
    pub(crate) fn kafka(code: i16, context: impl fmt::Display) -> ClientError {
        ClientError::Kafka(KafkaError {
            code,
            context: context.to_string(),
            message: None,
        })
    }

    /// `Ok(())` for code 0, the Kafka error otherwise.
    pub(crate) fn check(code: i16, context: impl fmt::Display) -> Result<(), ClientError> {
        Self::check_with(code, context, None)
    }

    /// Like [`ClientError::check`], with the broker's error message.
    pub(crate) fn check_with(
        code: i16,
        context: impl fmt::Display,
        message: Option<&str>,
    ) -> Result<(), ClientError> {
        if code == 0 {
            return Ok(());
        }
        Err(ClientError::Kafka(KafkaError {
            code,
            context: context.to_string(),
            message: message.map(str::to_owned),
        }))
    }

    /// The Kafka error code, if the broker answered with one.
    pub(crate) fn code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the same call may succeed later (after new metadata or a new coordinator).
    pub(crate) fn is_retriable(&self) -> bool {
        match self {
            ClientError::Io { .. } => true,
            ClientError::Kafka(e) => e.is_retriable(),
            ClientError::Protocol(_) | ClientError::Invalid(_) | ClientError::Timeout { .. } => {
                false
            }
        }
    }
}

/// Kafka's upper-snake name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`).
pub(crate) fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_{code}"),
        Some(error) => {
            let camel = format!("{error:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// What to do about the common errors of an admin tool.
fn hint(code: i16) -> Option<&'static str> {
    let error = ResponseError::try_from_code(code)?;
    Some(match error {
        ResponseError::UnknownTopicOrPartition => {
            "check the name with `tidelog topic list` (topics are case-sensitive)"
        }
        ResponseError::TopicAlreadyExists => {
            "pick another name, or delete it first with `tidelog topic delete`"
        }
        ResponseError::InvalidReplicationFactor => {
            "the replication factor must be at most the number of brokers (`tidelog cluster status`)"
        }
        ResponseError::InvalidPartitions => "the partition count must be at least 1",
        ResponseError::InvalidTopicException => {
            "topic names use letters, digits, '.', '_' and '-', at most 249 characters"
        }
        ResponseError::InvalidConfig => {
            "check the key and value against broker.example.yaml and Kafka's topic configs"
        }
        ResponseError::NotCoordinator
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::CoordinatorLoadInProgress => {
            "the group coordinator moved or is loading; retry in a few seconds"
        }
        ResponseError::NotLeaderOrFollower | ResponseError::LeaderNotAvailable => {
            "leadership is moving; retry, or see `tidelog cluster partitions`"
        }
        ResponseError::NonEmptyGroup => {
            "the group still has members: stop its consumers first (`tidelog group describe`)"
        }
        ResponseError::GroupIdNotFound => "check the id with `tidelog group list`",
        ResponseError::UnknownMemberId | ResponseError::IllegalGeneration => {
            "the group has active members: stop its consumers before changing its offsets"
        }
        ResponseError::InvalidReplicaAssignment => {
            "replicas must be distinct registered brokers; single-replica partitions and \
             internal topics cannot be reassigned"
        }
        ResponseError::NoReassignmentInProgress => "nothing to cancel for that partition",
        ResponseError::BrokerIdNotRegistered => "check the id with `tidelog cluster status`",
        ResponseError::InvalidRequest => "the broker refused the request; see its message",
        ResponseError::UnsupportedVersion => "the broker is too old for this command",
        ResponseError::TopicAuthorizationFailed
        | ResponseError::GroupAuthorizationFailed
        | ResponseError::ClusterAuthorizationFailed => {
            "the principal lacks the ACL for this operation"
        }
        ResponseError::PolicyViolation => "the broker's policy refused the change",
        ResponseError::RequestTimedOut => "the broker did not finish in time; retry",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_9999");
    }

    #[test]
    fn a_kafka_error_names_its_code_and_what_to_do() {
        let Err(error) = ClientError::check(36, "topic demo") else {
            panic!("36 is an error");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("topic demo: TOPIC_ALREADY_EXISTS (error code 36)"),
            "{text}"
        );
        assert!(text.contains("tidelog topic delete"), "{text}");
        assert!(!error.is_retriable());
        assert!(ClientError::check(6, "p").is_err_and(|e| e.is_retriable()));
        assert!(ClientError::check(0, "p").is_ok());
    }
}
