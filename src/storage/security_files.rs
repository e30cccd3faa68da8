//! The standalone broker's security files, `<data_dir>/scram-credentials.json`,
//! `<data_dir>/acls.json` and `<data_dir>/client-quotas.json`, and its dynamic broker configs,
//! `<data_dir>/broker-configs.json`: opaque bytes (the broker's JSON),
//! replaced atomically and fsynced. In cluster mode both live in the controller's state instead
//! and these files are not written.

use std::path::Path;

use super::{Error, Result, io_error, write_atomically};
use crate::limits;

const USERS_FILE: &str = "scram-credentials.json";
const ACLS_FILE: &str = "acls.json";
const QUOTAS_FILE: &str = "client-quotas.json";
const BROKER_CONFIGS_FILE: &str = "broker-configs.json";

/// The user file's bytes, `None` if there is none yet.
pub(crate) fn load_users(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    load(data_dir, USERS_FILE)
}

/// Replaces the user file with `contents`, durably.
pub(crate) fn save_users(data_dir: &Path, contents: &[u8]) -> Result<()> {
    write_atomically(data_dir, USERS_FILE, contents)
}

/// The ACL file's bytes, `None` if there is none yet.
pub(crate) fn load_acls(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    load(data_dir, ACLS_FILE)
}

/// Replaces the ACL file with `contents`, durably.
pub(crate) fn save_acls(data_dir: &Path, contents: &[u8]) -> Result<()> {
    write_atomically(data_dir, ACLS_FILE, contents)
}

/// The client-quota file's bytes, `None` if there is none yet.
pub(crate) fn load_quotas(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    load(data_dir, QUOTAS_FILE)
}

/// Replaces the client-quota file with `contents`, durably.
pub(crate) fn save_quotas(data_dir: &Path, contents: &[u8]) -> Result<()> {
    write_atomically(data_dir, QUOTAS_FILE, contents)
}

/// The dynamic broker config file's bytes, `None` if there is none yet.
pub(crate) fn load_broker_configs(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    load(data_dir, BROKER_CONFIGS_FILE)
}

/// Replaces the dynamic broker config file with `contents`, durably.
pub(crate) fn save_broker_configs(data_dir: &Path, contents: &[u8]) -> Result<()> {
    write_atomically(data_dir, BROKER_CONFIGS_FILE, contents)
}

fn load(data_dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let path = data_dir.join(name);
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.len() > limits::USERS_FILE_BYTES_MAX => Err(Error::CorruptState {
            path,
            reason: "the file is larger than the limit",
        }),
        Ok(_) => std::fs::read(&path)
            .map(Some)
            .map_err(io_error("read security file", &path)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error("stat security file", &path)(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_bytes_load_back_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(load_users(dir.path()).expect("load"), None);
        save_users(dir.path(), b"{}").expect("save");
        assert_eq!(load_users(dir.path()).expect("load"), Some(b"{}".to_vec()));
        assert_eq!(load_acls(dir.path()).expect("load"), None);
        save_acls(dir.path(), b"[]").expect("save");
        assert_eq!(load_acls(dir.path()).expect("load"), Some(b"[]".to_vec()));
    }
}
