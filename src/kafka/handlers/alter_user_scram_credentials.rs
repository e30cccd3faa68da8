//! AlterUserScramCredentials (key 51, v0): creates, replaces and deletes users' SCRAM
//! credentials (the client sends salt and salted password, never the password), checked as Kafka
//! checks them: one result per user, and a user with any bad change gets that error and none of
//! its changes.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request as alter_request;
use kafka_protocol::messages::{self, alter_user_scram_credentials_response as alter};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::auth::sasl::{ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, ScramHash};
use crate::broker::CredentialChange;
use crate::kafka::Context;
use crate::kafka::error_code;

/// Longest user name accepted (Kafka has no limit of its own; this bounds the state).
const USER_NAME_BYTES_MAX: usize = 256;
/// Longest salt accepted.
const SALT_BYTES_MAX: usize = 1024;

/// Why a change of one user is refused.
type Refused = (ResponseError, String);

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::AlterUserScramCredentialsRequest,
) -> messages::AlterUserScramCredentialsResponse {
    // Every user's changes, in request order, each already checked alone.
    let mut per_user: BTreeMap<String, Result<Vec<CredentialChange>, Refused>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let changes = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, deletion(d)))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism, upsertion(u))),
        );
    for (user, mechanism, change) in changes {
        if !per_user.contains_key(&user) {
            order.push(user.clone());
        }
        let entry = per_user.entry(user.clone()).or_insert(Ok(Vec::new()));
        let change = if seen.insert((user, mechanism)) {
            change
        } else {
            Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_owned(),
            ))
        };
        match (entry.as_mut(), change) {
            (Ok(changes), Ok(change)) => changes.push(change),
            (Ok(_), Err(refused)) => *entry = Err(refused),
            (Err(_), _) => {}
        }
    }
    let mut results = Vec::with_capacity(order.len());
    let allowed = ctx.allowed_on_cluster(Operation::Alter);
    for user in order {
        let outcome = match per_user.remove(&user) {
            _ if !allowed => Err((
                ResponseError::ClusterAuthorizationFailed,
                "Authorization failed.".to_owned(),
            )),
            Some(Ok(changes)) => apply(ctx, changes).await,
            Some(Err(refused)) => Err(refused),
            None => Ok(()),
        };
        let result = alter::AlterUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.clone()));
        results.push(match outcome {
            Ok(()) => {
                tracing::info!(%user, principal = %ctx.principal(), "SCRAM credentials altered");
                result.with_error_code(error_code::NONE)
            }
            Err((error, message)) => result
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    messages::AlterUserScramCredentialsResponse::default().with_results(results)
}

async fn apply(ctx: &Context, changes: Vec<CredentialChange>) -> Result<(), Refused> {
    for change in changes {
        ctx.broker
            .change_credential(change)
            .await
            .map_err(|err| (error_code::for_broker_error(&err), err.to_string()))?;
    }
    Ok(())
}

fn user_name(name: &StrBytes) -> Result<String, Refused> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".to_owned(),
        ));
    }
    if name.len() > USER_NAME_BYTES_MAX {
        return Err((
            ResponseError::UnacceptableCredential,
            format!("Username must not be longer than {USER_NAME_BYTES_MAX} bytes"),
        ));
    }
    Ok(name.to_string())
}

fn hash_of(mechanism: i8) -> Result<ScramHash, Refused> {
    ScramHash::from_code(mechanism).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".to_owned(),
        )
    })
}

fn deletion(
    deletion: &alter_request::ScramCredentialDeletion,
) -> Result<CredentialChange, Refused> {
    Ok(CredentialChange::Delete {
        user: user_name(&deletion.name)?,
        hash: hash_of(deletion.mechanism)?,
    })
}

fn upsertion(
    upsertion: &alter_request::ScramCredentialUpsertion,
) -> Result<CredentialChange, Refused> {
    let user = user_name(&upsertion.name)?;
    let hash = hash_of(upsertion.mechanism)?;
    let iterations = u32::try_from(upsertion.iterations).unwrap_or(0);
    if iterations < ITERATIONS_MIN {
        return Err((
            ResponseError::UnacceptableCredential,
            format!("Too few iterations: at least {ITERATIONS_MIN}"),
        ));
    }
    if iterations > ITERATIONS_MAX {
        return Err((
            ResponseError::UnacceptableCredential,
            format!("Too many iterations: at most {ITERATIONS_MAX}"),
        ));
    }
    if upsertion.salt.is_empty() || upsertion.salt.len() > SALT_BYTES_MAX {
        return Err((
            ResponseError::UnacceptableCredential,
            format!("The salt must be 1 to {SALT_BYTES_MAX} bytes"),
        ));
    }
    let expected_len = match hash {
        ScramHash::Sha256 => 32,
        ScramHash::Sha512 => 64,
    };
    if upsertion.salted_password.len() != expected_len {
        return Err((
            ResponseError::UnacceptableCredential,
            format!("The salted password of {hash:?} must be {expected_len} bytes"),
        ));
    }
    Ok(CredentialChange::Upsert {
        user,
        hash,
        credential: ScramCredential::from_salted(
            hash,
            &upsertion.salted_password,
            &upsertion.salt,
            iterations,
        ),
    })
}
