//! SCRAM users: DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554). The
//! password never leaves this process: the client sends a random salt and the salted password
//! (PBKDF2-HMAC of the password, RFC 5802's `Hi`, from `auth::sasl`), as Kafka's admin client
//! does.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::error::ClientError;
use super::session::{Client, Target};
use crate::auth::sasl::{Mechanism, ScramHash, salted_password};

const DESCRIBE_VERSION: i16 = 0;
const ALTER_VERSION: i16 = 0;
/// Bytes of random salt per credential.
const SALT_BYTES: usize = 32;
/// Kafka's RESOURCE_NOT_FOUND: DescribeUserScramCredentials of a user without credentials.
const RESOURCE_NOT_FOUND: i16 = 91;

/// The IANA name of a SCRAM hash's mechanism (`SCRAM-SHA-256`).
pub(crate) fn mechanism_name(hash: ScramHash) -> &'static str {
    match hash {
        ScramHash::Sha256 => Mechanism::ScramSha256.name(),
        ScramHash::Sha512 => Mechanism::ScramSha512.name(),
    }
}

/// A user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UserCredentials {
    pub(crate) user: String,
    /// (mechanism, iterations)
    pub(crate) credentials: Vec<(&'static str, i32)>,
}

/// Every user with SCRAM credentials, sorted by name.
pub(crate) fn list_users(client: &mut Client) -> Result<Vec<UserCredentials>, ClientError> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(None);
    let response = client.retry("DescribeUserScramCredentials", |client| {
        let response = client.call(Target::Any, &request, DESCRIBE_VERSION)?;
        ClientError::check_with(
            response.error_code,
            "DescribeUserScramCredentials",
            response.error_message.as_deref(),
        )?;
        Ok(response)
    })?;
    let mut users = Vec::new();
    for result in response.results {
        if result.error_code == RESOURCE_NOT_FOUND {
            continue;
        }
        ClientError::check_with(
            result.error_code,
            format!("user {}", result.user),
            result.error_message.as_deref(),
        )?;
        users.push(UserCredentials {
            user: result.user.to_string(),
            credentials: result
                .credential_infos
                .iter()
                .filter_map(|c| {
                    ScramHash::from_code(c.mechanism).map(|h| (mechanism_name(h), c.iterations))
                })
                .collect(),
        });
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(users)
}

/// Creates or replaces `user`'s `mechanism` credential for `password`.
pub(crate) fn upsert_user(
    client: &mut Client,
    user: &str,
    hash: ScramHash,
    password: &str,
    iterations: u32,
) -> Result<(), ClientError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt)
        .map_err(|e| ClientError::Invalid(format!("no randomness for the salt: {e}")))?;
    let salted = salted_password(hash, password.as_bytes(), &salt, iterations);
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(hash.code())
            .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
            .with_salt(Bytes::copy_from_slice(&salt))
            .with_salted_password(Bytes::from(salted)),
    ]);
    alter(client, user, &request)
}

/// Removes `user`'s `mechanism` credential.
pub(crate) fn delete_user(
    client: &mut Client,
    user: &str,
    hash: ScramHash,
) -> Result<(), ClientError> {
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(hash.code()),
    ]);
    alter(client, user, &request)
}

fn alter(
    client: &mut Client,
    user: &str,
    request: &AlterUserScramCredentialsRequest,
) -> Result<(), ClientError> {
    client.retry("AlterUserScramCredentials", |client| {
        let response = client.call(Target::Any, request, ALTER_VERSION)?;
        let result = response
            .results
            .iter()
            .find(|r| r.user.as_str() == user)
            .ok_or_else(|| {
                ClientError::protocol("AlterUserScramCredentials answered without the user")
            })?;
        ClientError::check_with(
            result.error_code,
            format!("user {user}"),
            result.error_message.as_deref(),
        )
    })
}
