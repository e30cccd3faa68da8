//! The `sasl` and `authorization` sections: SASL mechanisms and session bounds of the SASL
//! listeners; whether ACLs are enforced, super users and the bootstrap users created at first
//! start. Validation only; the
//! password files are read by `app` at start, never here.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;
use super::validate::invalid;
use crate::auth::sasl::Mechanism;

/// Kafka's SASL broker settings (`sasl.enabled.mechanisms`, `connections.max.reauth.ms`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SaslFile {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub enabled_mechanisms: Vec<String>,
    /// KIP-368: an authenticated session lasts at most this long, then the client must
    /// re-authenticate; 0 = sessions do not expire.
    pub connections_max_reauth_ms: u64,
    /// Kafka `connection.failed.authentication.delay.ms`: a failed authentication is answered
    /// (and the connection closed) only after this delay.
    pub failed_authentication_delay_ms: u64,
    /// A connection of a SASL listener that has not authenticated within this is closed.
    pub authentication_timeout_ms: u64,
}

impl Default for SaslFile {
    fn default() -> Self {
        SaslFile {
            enabled_mechanisms: Mechanism::ALL.iter().map(|m| m.name().to_owned()).collect(),
            connections_max_reauth_ms: 0,
            failed_authentication_delay_ms: 100,
            authentication_timeout_ms: 10_000,
        }
    }
}

/// Who may do what (the ACLs of the security issue build on this section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthorizationFile {
    /// Whether ACLs are enforced on every request (default false: no checks).
    pub enabled: bool,
    /// Kafka `allow.everyone.if.no.acl.found`: a resource no ACL covers is open to everyone.
    pub allow_everyone_if_no_acl_found: bool,
    /// Principals allowed everything, e.g. `User:admin`.
    pub super_users: Vec<String>,
    /// Users created with SCRAM-SHA-256 and SCRAM-SHA-512 credentials at start when absent.
    pub bootstrap_users: Vec<BootstrapUserFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BootstrapUserFile {
    pub name: String,
    /// A file holding the password (one trailing newline is ignored).
    pub password_file: String,
}

/// Validated `sasl` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaslSettings {
    pub(crate) mechanisms: Vec<Mechanism>,
    pub(crate) max_reauth: Option<Duration>,
    pub(crate) failed_authentication_delay: Duration,
    pub(crate) authentication_timeout: Duration,
}

/// A bootstrap user: its name and where its password is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootstrapUser {
    pub(crate) name: String,
    pub(crate) password_file: PathBuf,
}

/// Validated `authorization` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthorizationSettings {
    pub(crate) enabled: bool,
    pub(crate) allow_everyone_if_no_acl_found: bool,
    pub(crate) super_users: Vec<String>,
    pub(crate) bootstrap_users: Vec<BootstrapUser>,
}

pub(super) fn validate_sasl(sasl: &SaslFile) -> Result<SaslSettings, Error> {
    let mut mechanisms = Vec::new();
    for name in &sasl.enabled_mechanisms {
        let Some(mechanism) = Mechanism::parse(name) else {
            return invalid(
                "sasl.enabled_mechanisms",
                format!("expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got {name:?}"),
            );
        };
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return invalid(
            "sasl.enabled_mechanisms",
            "must name at least one mechanism".to_owned(),
        );
    }
    if sasl.authentication_timeout_ms == 0 {
        return invalid(
            "sasl.authentication_timeout_ms",
            "must be at least 1".to_owned(),
        );
    }
    Ok(SaslSettings {
        mechanisms,
        max_reauth: (sasl.connections_max_reauth_ms > 0)
            .then(|| Duration::from_millis(sasl.connections_max_reauth_ms)),
        failed_authentication_delay: Duration::from_millis(sasl.failed_authentication_delay_ms),
        authentication_timeout: Duration::from_millis(sasl.authentication_timeout_ms),
    })
}

pub(super) fn validate_authorization(
    authorization: &AuthorizationFile,
) -> Result<AuthorizationSettings, Error> {
    for principal in &authorization.super_users {
        let valid = principal
            .split_once(':')
            .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty());
        if !valid {
            return invalid(
                "authorization.super_users",
                format!("expected principals like User:admin, got {principal:?}"),
            );
        }
    }
    let mut bootstrap_users: Vec<BootstrapUser> = Vec::new();
    for user in &authorization.bootstrap_users {
        if user.name.is_empty() || user.password_file.is_empty() {
            return invalid(
                "authorization.bootstrap_users",
                "every user needs a name and a password_file".to_owned(),
            );
        }
        if bootstrap_users.iter().any(|u| u.name == user.name) {
            return invalid(
                "authorization.bootstrap_users",
                format!("user {:?} is listed twice", user.name),
            );
        }
        bootstrap_users.push(BootstrapUser {
            name: user.name.clone(),
            password_file: PathBuf::from(&user.password_file),
        });
    }
    Ok(AuthorizationSettings {
        enabled: authorization.enabled,
        allow_everyone_if_no_acl_found: authorization.allow_everyone_if_no_acl_found,
        super_users: authorization.super_users.clone(),
        bootstrap_users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_must_be_known_and_at_least_one() {
        let mut sasl = SaslFile::default();
        assert_eq!(validate_sasl(&sasl).unwrap().mechanisms, Mechanism::ALL);
        sasl.enabled_mechanisms = vec!["GSSAPI".into()];
        assert!(validate_sasl(&sasl).is_err());
        sasl.enabled_mechanisms = Vec::new();
        assert!(validate_sasl(&sasl).is_err());
        sasl.enabled_mechanisms = vec!["SCRAM-SHA-512".into(), "SCRAM-SHA-512".into()];
        assert_eq!(
            validate_sasl(&sasl).unwrap().mechanisms,
            [Mechanism::ScramSha512]
        );
    }

    #[test]
    fn super_users_are_principals_and_bootstrap_users_are_distinct() {
        let mut authorization = AuthorizationFile {
            enabled: true,
            allow_everyone_if_no_acl_found: false,
            super_users: vec!["User:admin".into()],
            bootstrap_users: vec![BootstrapUserFile {
                name: "admin".into(),
                password_file: "/secret".into(),
            }],
        };
        assert!(validate_authorization(&authorization).is_ok());
        authorization
            .bootstrap_users
            .push(authorization.bootstrap_users[0].clone());
        assert!(validate_authorization(&authorization).is_err());
        authorization.bootstrap_users.pop();
        authorization.super_users.push("admin".into());
        assert!(validate_authorization(&authorization).is_err());
    }
}
