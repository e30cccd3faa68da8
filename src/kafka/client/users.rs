//! SCRAM users: DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554). The
//! password never leaves this process: the client sends a random salt and the salted password
//! (PBKDF2-HMAC of the password, RFC 5802's `Hi`), as Kafka's admin client does.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use sha2::{Sha256, Sha512};

use super::error::ClientError;
use super::session::{Client, Target};

const DESCRIBE_VERSION: i16 = 0;
const ALTER_VERSION: i16 = 0;
/// Bytes of random salt per credential.
const SALT_BYTES: usize = 32;
/// Kafka's RESOURCE_NOT_FOUND: DescribeUserScramCredentials of a user without credentials.
const RESOURCE_NOT_FOUND: i16 = 91;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Kafka's wire number of the mechanism.
    fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// RFC 5802's `Hi(password, salt, iterations)`: PBKDF2 with this mechanism's HMAC, one block.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => hi::<Hmac<Sha256>>(password, salt, iterations),
            ScramMechanism::Sha512 => hi::<Hmac<Sha512>>(password, salt, iterations),
        }
    }
}

fn hi<M: Mac + hmac::digest::KeyInit + Clone>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let Ok(keyed) = <M as hmac::digest::KeyInit>::new_from_slice(password) else {
        return Vec::new();
    };
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = mac.finalize().into_bytes();
    let mut out = u.to_vec();
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes();
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

/// A user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UserCredentials {
    pub(crate) user: String,
    /// (mechanism, iterations)
    pub(crate) credentials: Vec<(ScramMechanism, i32)>,
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
                .filter_map(|c| ScramMechanism::from_code(c.mechanism).map(|m| (m, c.iterations)))
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
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> Result<(), ClientError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt)
        .map_err(|e| ClientError::Invalid(format!("no randomness for the salt: {e}")))?;
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(mechanism.code())
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
    mechanism: ScramMechanism,
) -> Result<(), ClientError> {
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(mechanism.code()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn salted_passwords_are_pbkdf2() {
        // PBKDF2-HMAC-SHA256 test vectors (RFC 7914 section 11 uses the same construction).
        assert_eq!(
            hex(&ScramMechanism::Sha256.salted_password(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&ScramMechanism::Sha256.salted_password(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            ScramMechanism::Sha512.salted_password(b"p", b"s", 2).len(),
            64
        );
        assert_eq!(ScramMechanism::from_code(2), Some(ScramMechanism::Sha512));
        assert_eq!(ScramMechanism::from_code(0), None);
    }
}
