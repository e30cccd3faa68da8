//! The standalone broker's user file, `<data_dir>/scram-credentials.json`: opaque bytes (the
//! broker's JSON of SCRAM credentials), replaced atomically and fsynced. In cluster mode users
//! live in the controller's state instead and this file is not written.

use std::path::Path;

use super::{Error, Result, io_error, write_atomically};
use crate::limits;

const FILE_NAME: &str = "scram-credentials.json";

/// The file's bytes, `None` if there is none yet.
pub(crate) fn load_users(data_dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = data_dir.join(FILE_NAME);
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.len() > limits::USERS_FILE_BYTES_MAX => Err(Error::CorruptState {
            path,
            reason: "the user file is larger than the limit",
        }),
        Ok(_) => std::fs::read(&path)
            .map(Some)
            .map_err(io_error("read user file", &path)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error("stat user file", &path)(error)),
    }
}

/// Replaces the file with `contents`, durably.
pub(crate) fn save_users(data_dir: &Path, contents: &[u8]) -> Result<()> {
    write_atomically(data_dir, FILE_NAME, contents)
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
    }
}
