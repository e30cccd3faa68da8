//! DeleteTopics (v1–6): deletes topics named by name, or (v6) by topic id, through the broker.
//! Resolves ids and rejects ambiguous or repeated entries; never touches topic data itself.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use uuid::Uuid;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::kafka::{Context, topic_id_to_uuid, uuid_to_topic_id};

/// One entry of the request, as Kafka reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Name(messages::TopicName),
    Id(Uuid),
    /// Neither or both of name and id (v6): answered with INVALID_REQUEST.
    Invalid {
        name: Option<messages::TopicName>,
        topic_id: Uuid,
        reason: &'static str,
    },
}

impl Target {
    fn from_state(state: &messages::delete_topics_request::DeleteTopicState) -> Target {
        match (&state.name, state.topic_id.is_nil()) {
            (Some(name), true) => Target::Name(name.clone()),
            (None, false) => Target::Id(state.topic_id),
            (None, true) => Target::Invalid {
                name: None,
                topic_id: state.topic_id,
                reason: "neither topic name nor id were specified",
            },
            (Some(name), false) => Target::Invalid {
                name: Some(name.clone()),
                topic_id: state.topic_id,
                reason: "you may not specify both topic name and topic id",
            },
        }
    }
}

/// The name and id to report for `target` when its deletion did not complete.
fn target_names(target: &Target) -> (Option<messages::TopicName>, Uuid) {
    match target {
        Target::Name(name) => (Some(name.clone()), Uuid::nil()),
        Target::Id(topic_id) => (None, *topic_id),
        Target::Invalid { name, topic_id, .. } => (name.clone(), *topic_id),
    }
}

/// The request's entries in order: v1–5 send names, v6 sends name-or-id states.
fn targets(request: &messages::DeleteTopicsRequest) -> Vec<Target> {
    let names = request.topic_names.iter().cloned().map(Target::Name);
    let states = request.topics.iter().map(Target::from_state);
    names.chain(states).collect()
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::DeleteTopicsRequest,
) -> messages::DeleteTopicsResponse {
    let targets = targets(&request);
    let duplicates = admin::duplicates(
        targets
            .iter()
            .filter(|t| !matches!(t, Target::Invalid { .. })),
    );
    let mut reported = BTreeSet::new();
    let mut results = Vec::with_capacity(targets.len());
    let deadline = admin::controller_deadline(ctx, request.timeout_ms);
    for target in &targets {
        if duplicates.contains(target) {
            // Kafka answers a repeated name or id once, with INVALID_REQUEST, and deletes nothing.
            if reported.insert(target) {
                results.push(repeated(version, target));
            }
            continue;
        }
        let (name, topic_id, outcome) = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, delete(ctx, target))
                .await
                .unwrap_or_else(|_| {
                    let (name, topic_id) = target_names(target);
                    let error = ApiError::new(
                        ResponseError::RequestTimedOut,
                        format!(
                            "the controller did not complete the deletion within {} ms",
                            request.timeout_ms
                        ),
                    );
                    (name, topic_id, Err(error))
                }),
            None => delete(ctx, target).await,
        };
        results.push(result(version, name, topic_id, &outcome));
    }
    messages::DeleteTopicsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(results)
}

/// Deletes one target; returns the name and id to report with the outcome.
async fn delete(
    ctx: &Context,
    target: &Target,
) -> (Option<messages::TopicName>, Uuid, Result<(), ApiError>) {
    // ACLs: Delete on the topic (by name, or the name of the id).
    let denied = |name: &str| {
        (!ctx.allowed_on_topic(Operation::Delete, name)).then(|| {
            ApiError::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_owned(),
            )
        })
    };
    match target {
        Target::Name(name) => {
            if let Some(err) = denied(name.as_str()) {
                return (Some(name.clone()), Uuid::nil(), Err(err));
            }
            match ctx.broker.delete_topic(name.as_str()).await {
                Ok(topic_id) => (Some(name.clone()), topic_id_to_uuid(topic_id), Ok(())),
                Err(err) => (Some(name.clone()), Uuid::nil(), Err(ApiError::broker(&err))),
            }
        }
        Target::Id(topic_id) => {
            let Some(info) = ctx.broker.topic_by_id(uuid_to_topic_id(*topic_id)) else {
                let err = ApiError::new(
                    ResponseError::UnknownTopicId,
                    format!("unknown topic id {topic_id}"),
                );
                return (None, *topic_id, Err(err));
            };
            if let Some(err) = denied(&info.name) {
                return (None, *topic_id, Err(err));
            }
            let name = Some(messages::TopicName(info.name.clone().into()));
            let outcome = ctx.broker.delete_topic(&info.name).await.map(drop);
            (
                name,
                *topic_id,
                outcome.map_err(|err| ApiError::broker(&err)),
            )
        }
        Target::Invalid {
            name,
            topic_id,
            reason,
        } => (
            name.clone(),
            *topic_id,
            Err(ApiError::invalid_request(*reason)),
        ),
    }
}

fn repeated(version: i16, target: &Target) -> DeletableTopicResult {
    let (name, topic_id, what) = match target {
        Target::Id(topic_id) => (None, *topic_id, "duplicate topic id"),
        Target::Name(name) => (Some(name.clone()), Uuid::nil(), "duplicate topic name"),
        Target::Invalid { name, topic_id, .. } => (name.clone(), *topic_id, "duplicate topic"),
    };
    result(
        version,
        name,
        topic_id,
        &Err(ApiError::invalid_request(what)),
    )
}

fn result(
    version: i16,
    name: Option<messages::TopicName>,
    topic_id: Uuid,
    outcome: &Result<(), ApiError>,
) -> DeletableTopicResult {
    let (error_code, error_message) = admin::code_and_message(outcome);
    let mut result = DeletableTopicResult::default()
        .with_name(name)
        .with_error_code(error_code);
    if version >= 5 {
        result.error_message = error_message;
    }
    if version >= 6 {
        result.topic_id = topic_id;
    }
    result
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn name(s: &'static str) -> messages::TopicName {
        messages::TopicName(StrBytes::from_static_str(s))
    }

    #[test]
    fn v6_states_need_exactly_one_of_name_and_id() {
        let id = Uuid::from_u128(7);
        let request = messages::DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("a"))),
            DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(id),
            DeleteTopicState::default().with_name(None),
            DeleteTopicState::default()
                .with_name(Some(name("b")))
                .with_topic_id(id),
        ]);
        let got = targets(&request);
        assert_eq!(got[0], Target::Name(name("a")));
        assert_eq!(got[1], Target::Id(id));
        assert!(matches!(got[2], Target::Invalid { name: None, .. }));
        assert!(matches!(got[3], Target::Invalid { name: Some(_), .. }));
    }

    #[test]
    fn old_versions_list_names() {
        let request =
            messages::DeleteTopicsRequest::default().with_topic_names(vec![name("a"), name("b")]);
        assert_eq!(
            targets(&request),
            [Target::Name(name("a")), Target::Name(name("b"))]
        );
    }
}
