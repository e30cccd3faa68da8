//! The data directory's identity, in Kafka's `meta.properties` format: the node id the
//! directory belongs to, a directory id made once when the directory is first used (what tells a
//! broker restarting with its data from another broker claiming the same id), and the cluster
//! id once the directory joined a cluster. A broker started on another node's directory is
//! refused instead of serving that node's data under its own id.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Error, Result, io_error, partition_metadata, write_atomically};

const FILE_NAME: &str = "meta.properties";
/// Largest `meta.properties` read back (a handful of short lines).
const FILE_BYTES_MAX: u64 = 4096;

/// Who a data directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) node_id: i32,
    pub(crate) directory_id: [u8; 16],
    pub(crate) cluster_id: Option<String>,
}

impl Identity {
    /// Reads the identity of `data_dir`, or makes and stores one for `node_id` (with a random
    /// directory id from `random`) when the directory has none. A directory of another node id
    /// is refused.
    pub(crate) fn load_or_create(
        data_dir: &Path,
        node_id: i32,
        random: impl FnOnce() -> [u8; 16],
    ) -> Result<Identity> {
        let path = data_dir.join(FILE_NAME);
        let identity = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() > FILE_BYTES_MAX => {
                return Err(corrupt(&path, "the file is too large"));
            }
            Ok(_) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(io_error("read meta.properties", &path))?;
                parse(&text).map_err(|reason| corrupt(&path, reason))?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let identity = Identity {
                    node_id,
                    directory_id: random(),
                    cluster_id: None,
                };
                identity.store(data_dir)?;
                return Ok(identity);
            }
            Err(error) => return Err(io_error("stat meta.properties", &path)(error)),
        };
        if identity.node_id != node_id {
            return Err(Error::ForeignDataDir {
                path,
                stored: identity.node_id,
                configured: node_id,
            });
        }
        Ok(identity)
    }

    /// Writes the identity to `data_dir` (atomically, durably).
    pub(crate) fn store(&self, data_dir: &Path) -> Result<()> {
        let mut text = String::from("#\n#Written by Tidelog\n");
        if let Some(cluster_id) = &self.cluster_id {
            text.push_str(&format!("cluster.id={cluster_id}\n"));
        }
        text.push_str(&format!(
            "directory.id={}\nnode.id={}\nversion=1\n",
            encode_id(&self.directory_id),
            self.node_id
        ));
        write_atomically(data_dir, FILE_NAME, text.as_bytes())
    }

    /// The directory id as Kafka writes it.
    pub(crate) fn directory_id_text(&self) -> String {
        encode_id(&self.directory_id)
    }
}

fn corrupt(path: &Path, reason: &'static str) -> Error {
    Error::CorruptState {
        path: path.to_path_buf(),
        reason,
    }
}

fn parse(text: &str) -> std::result::Result<Identity, &'static str> {
    let mut properties = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or("a line is not key=value")?;
        properties.insert(key.trim(), value.trim());
    }
    if properties.get("version") != Some(&"1") {
        return Err("version is not 1");
    }
    let node_id = properties
        .get("node.id")
        .and_then(|id| id.parse::<i32>().ok())
        .filter(|id| *id >= 0)
        .ok_or("node.id is missing or invalid")?;
    let directory_id = properties
        .get("directory.id")
        .and_then(|id| decode_id(id))
        .ok_or("directory.id is missing or invalid")?;
    let cluster_id = properties
        .get("cluster.id")
        .filter(|id| !id.is_empty())
        .map(|id| (*id).to_owned());
    Ok(Identity {
        node_id,
        directory_id,
        cluster_id,
    })
}

fn encode_id(id: &[u8; 16]) -> String {
    partition_metadata::encode_topic_id(*id)
}

fn decode_id(text: &str) -> Option<[u8; 16]> {
    partition_metadata::decode_topic_id(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_ids_are_written_as_kafka_writes_uuids() {
        // Kafka's Uuid.toString of 0x0000...0001 and of all ones.
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(encode_id(&one), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(encode_id(&[0xff; 16]), "_____________________w");
        for id in [one, [0xff; 16], *b"0123456789abcdef"] {
            assert_eq!(decode_id(&encode_id(&id)), Some(id));
        }
        assert_eq!(
            decode_id("_____________________x"),
            None,
            "non-zero padding bits"
        );
        assert_eq!(decode_id("AAAA"), None);
    }

    #[test]
    fn a_new_directory_gets_an_identity_that_a_restart_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path(), 3, || [7; 16]).unwrap();
        assert_eq!(first.node_id, 3);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            text.contains("node.id=3\n") && text.contains("version=1\n"),
            "{text}"
        );
        let again = Identity::load_or_create(dir.path(), 3, || unreachable!()).unwrap();
        assert_eq!(again, first);

        let joined = Identity {
            cluster_id: Some("MkU3OEVBNTcwNTJENDM2Qk".to_owned()),
            ..first
        };
        joined.store(dir.path()).unwrap();
        let read = Identity::load_or_create(dir.path(), 3, || unreachable!()).unwrap();
        assert_eq!(read, joined);
    }

    #[test]
    fn a_data_dir_of_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path(), 1, || [1; 16]).unwrap();
        let refused = Identity::load_or_create(dir.path(), 2, || [2; 16]);
        assert!(
            matches!(
                refused,
                Err(Error::ForeignDataDir {
                    stored: 1,
                    configured: 2,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_damaged_meta_properties_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "garbage",
            "version=1\nnode.id=x\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAQ\n",
            "node.id=1\n",
        ] {
            std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
            let read = Identity::load_or_create(dir.path(), 1, || [1; 16]);
            assert!(
                matches!(read, Err(Error::CorruptState { .. })),
                "{text}: {read:?}"
            );
        }
        std::fs::write(dir.path().join(FILE_NAME), vec![b'#'; 5000]).unwrap();
        assert!(Identity::load_or_create(dir.path(), 1, || [1; 16]).is_err());
    }
}
