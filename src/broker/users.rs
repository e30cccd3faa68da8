//! Users and their SCRAM credentials: looked up by SASL exchanges (`auth::sasl::Credentials`),
//! listed and changed by Describe/AlterUserScramCredentials, and the bootstrap users created at
//! start. In cluster mode they are the controller's replicated state (a change is a proposed
//! command, answered once applied here too); a standalone broker keeps them in its data dir
//! (`storage::save_users`), replaced durably before a change is answered.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::Broker;
use super::error::{Error, Result, load_state_file};
use crate::auth::sasl::{Credentials, ScramCredential, ScramHash, Secret};
use crate::metadata::{Command, Rejection, ScramCredentialMeta};
use crate::{limits, storage};

/// Credentials by user, then by mechanism code (the controller state's shape).
type UserTable = BTreeMap<String, BTreeMap<i8, ScramCredentialMeta>>;

/// A standalone broker's users, as its data dir holds them.
#[derive(Debug)]
pub(super) struct LocalUsers {
    table: Mutex<UserTable>,
}

impl LocalUsers {
    pub(super) fn open(data_dir: &Path) -> Result<LocalUsers> {
        let table = load_state_file(
            data_dir,
            storage::load_users,
            "scram-credentials.json",
            |bytes| serde_json::from_slice(bytes).map_err(|error| leak_reason(&error)),
        )?
        .unwrap_or_default();
        Ok(LocalUsers {
            table: Mutex::new(table),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UserTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A JSON error as a static reason (the corrupt-state error carries `&'static str`).
fn leak_reason(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "the user file could not be read",
        serde_json::error::Category::Syntax => "the user file is not JSON",
        serde_json::error::Category::Data => "the user file does not hold users",
        serde_json::error::Category::Eof => "the user file is cut short",
    }
}

/// One user as DescribeUserScramCredentials shows it: mechanisms and iterations, no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub(crate) name: String,
    pub(crate) credentials: Vec<(ScramHash, u32)>,
}

/// One change of AlterUserScramCredentials.
#[derive(Debug, Clone)]
pub(crate) enum CredentialChange {
    Upsert {
        user: String,
        hash: ScramHash,
        credential: ScramCredential,
    },
    Delete {
        user: String,
        hash: ScramHash,
    },
}

impl CredentialChange {
    fn user(&self) -> &str {
        match self {
            CredentialChange::Upsert { user, .. } | CredentialChange::Delete { user, .. } => user,
        }
    }
}

fn to_meta(credential: &ScramCredential) -> ScramCredentialMeta {
    ScramCredentialMeta {
        salt: credential.salt.clone(),
        iterations: credential.iterations,
        stored_key: credential.stored_key.0.clone(),
        server_key: credential.server_key.0.clone(),
    }
}

fn from_meta(meta: &ScramCredentialMeta) -> ScramCredential {
    ScramCredential {
        salt: meta.salt.clone(),
        iterations: meta.iterations,
        stored_key: Secret(meta.stored_key.clone()),
        server_key: Secret(meta.server_key.clone()),
    }
}

/// The command a change proposes.
fn command_of(change: &CredentialChange) -> Command {
    match change {
        CredentialChange::Upsert {
            user,
            hash,
            credential,
        } => Command::SetScramCredential {
            user: user.clone(),
            mechanism: hash.code(),
            credential: to_meta(credential),
        },
        CredentialChange::Delete { user, hash } => Command::DeleteScramCredential {
            user: user.clone(),
            mechanism: hash.code(),
        },
    }
}

impl Broker {
    /// Reads the user table: the controller's in cluster mode, the local one otherwise.
    fn with_users<T>(&self, read: impl FnOnce(&UserTable) -> T) -> T {
        match self.cluster_state() {
            Some(state) => read(&state.users),
            None => read(&self.users.lock()),
        }
    }

    /// The users among `names` that have credentials (every user when `names` is `None`).
    pub(crate) fn describe_users(&self, names: Option<&[String]>) -> Vec<UserInfo> {
        self.with_users(|table| {
            let info =
                |(name, credentials): (&String, &BTreeMap<i8, ScramCredentialMeta>)| UserInfo {
                    name: name.clone(),
                    credentials: credentials
                        .iter()
                        .filter_map(|(code, c)| Some((ScramHash::from_code(*code)?, c.iterations)))
                        .collect(),
                };
            match names {
                None => table.iter().map(info).collect(),
                Some(names) => names
                    .iter()
                    .filter_map(|name| table.get_key_value(name).map(info))
                    .collect(),
            }
        })
    }

    /// Applies one credential change, durably (cluster: committed and applied on this broker).
    pub(crate) async fn change_credential(&self, change: CredentialChange) -> Result<()> {
        let user = change.user().to_owned();
        let is_new_user = !self.with_users(|table| table.contains_key(&user));
        if is_new_user && self.with_users(|table| table.len()) >= limits::SCRAM_USERS_MAX {
            return Err(Error::UnacceptableCredential {
                reason: format!("no more than {} users", limits::SCRAM_USERS_MAX),
            });
        }
        let command = command_of(&change);
        match self.cluster.get() {
            Some(link) => {
                let answer = link
                    .node
                    .propose(&command)
                    .await
                    .map_err(|error| Error::Cluster {
                        reason: error.to_string(),
                    })?;
                match answer {
                    Ok(_) => {}
                    Err(Rejection::UnknownScramCredential { user, .. }) => {
                        return Err(Error::UnknownScramCredential { user });
                    }
                    Err(other) => {
                        return Err(Error::Cluster {
                            reason: other.to_string(),
                        });
                    }
                }
                let wanted = command;
                self.await_local(link, move |state| applied(&state.users, &wanted))
                    .await
            }
            None => self.change_local(&change),
        }
    }

    fn change_local(&self, change: &CredentialChange) -> Result<()> {
        let mut table = self.users.lock();
        let mut next = table.clone();
        match change {
            CredentialChange::Upsert {
                user,
                hash,
                credential,
            } => {
                next.entry(user.clone())
                    .or_default()
                    .insert(hash.code(), to_meta(credential));
            }
            CredentialChange::Delete { user, hash } => {
                let removed = next
                    .get_mut(user)
                    .and_then(|credentials| credentials.remove(&hash.code()));
                if removed.is_none() {
                    return Err(Error::UnknownScramCredential { user: user.clone() });
                }
                if next.get(user).is_some_and(BTreeMap::is_empty) {
                    next.remove(user);
                }
            }
        }
        let bytes = serde_json::to_vec(&next).map_err(|error| Error::UnacceptableCredential {
            reason: error.to_string(),
        })?;
        storage::save_users(&self.settings.data_dir, &bytes)
            .map_err(|source| Error::Catalog { source })?;
        *table = next;
        Ok(())
    }

    /// Creates `name` with SCRAM-SHA-256 and SCRAM-SHA-512 credentials of `password` unless it
    /// already has a credential; returns whether it was created.
    pub(crate) async fn create_bootstrap_user(
        &self,
        name: &str,
        password: &Secret<Vec<u8>>,
        iterations: u32,
    ) -> Result<bool> {
        // A state not replayed yet would show an existing user absent (and its password
        // replaced): wait until it caught up with what was committed before this start.
        if let Some(link) = self.cluster.get()
            && !link.node.caught_up()
        {
            return Err(Error::Cluster {
                reason: "the metadata state has not caught up yet".to_owned(),
            });
        }
        if self.with_users(|table| table.contains_key(name)) {
            return Ok(false);
        }
        for hash in ScramHash::ALL {
            let credential =
                ScramCredential::generate(hash, &password.0, iterations).map_err(|error| {
                    Error::UnacceptableCredential {
                        reason: format!("no random salt: {error}"),
                    }
                })?;
            self.change_credential(CredentialChange::Upsert {
                user: name.to_owned(),
                hash,
                credential,
            })
            .await?;
        }
        Ok(true)
    }
}

/// Whether the state already shows `command` applied.
fn applied(table: &UserTable, command: &Command) -> bool {
    match command {
        Command::SetScramCredential {
            user,
            mechanism,
            credential,
        } => table
            .get(user)
            .and_then(|c| c.get(mechanism))
            .is_some_and(|c| c == credential),
        Command::DeleteScramCredential { user, mechanism } => table
            .get(user)
            .is_none_or(|credentials| !credentials.contains_key(mechanism)),
        _ => true,
    }
}

impl Credentials for Broker {
    fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        self.with_users(|table| table.get(user)?.get(&hash.code()).map(from_meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_through_the_replicated_shape() {
        let credential = ScramCredential::derive(ScramHash::Sha512, b"pw", b"salt", 4096);
        assert_eq!(from_meta(&to_meta(&credential)), credential);
    }
}
