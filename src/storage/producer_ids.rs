//! The durable producer-id counter in `<data_dir>/producer-id-block`: hands out blocks of ids
//! and persists the end of each block before any id of it is used, so ids are never reused after
//! a restart or a crash. The controller will hand out blocks instead once there is a cluster.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Error, Result, io_error, write_atomically};
use crate::limits;

const FILE_NAME: &str = "producer-id-block";

/// The next unallocated producer id, persisted.
#[derive(Debug)]
pub(crate) struct ProducerIdStore {
    data_dir: PathBuf,
    next_block_start: i64,
}

impl ProducerIdStore {
    /// Opens the counter in `data_dir` (0 when the file does not exist yet).
    pub(crate) fn open(data_dir: &Path) -> Result<ProducerIdStore> {
        let path = data_dir.join(FILE_NAME);
        let next_block_start = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() > limits::PRODUCER_ID_FILE_BYTES_MAX => {
                return Err(corrupt(&path, "the file is larger than one number"));
            }
            Ok(_) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(io_error("read producer id block", &path))?;
                text.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|start| *start >= 0)
                    .ok_or_else(|| corrupt(&path, "not a non-negative number"))?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(io_error("stat producer id block", &path)(error)),
        };
        Ok(ProducerIdStore {
            data_dir: data_dir.to_path_buf(),
            next_block_start,
        })
    }

    /// Reserves the next `block_size` ids: persisted (fsynced) before they are returned.
    pub(crate) fn reserve_block(&mut self, block_size: i64) -> Result<Range<i64>> {
        let start = self.next_block_start;
        let end = start
            .checked_add(block_size.max(1))
            .ok_or_else(|| corrupt(&self.data_dir.join(FILE_NAME), "producer ids exhausted"))?;
        write_atomically(&self.data_dir, FILE_NAME, format!("{end}\n").as_bytes())?;
        self.next_block_start = end;
        Ok(start..end)
    }
}

fn corrupt(path: &Path, reason: &'static str) -> Error {
    Error::CorruptState {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_continue_after_a_reopen_and_never_overlap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = ProducerIdStore::open(dir.path()).expect("open");
        assert_eq!(store.reserve_block(1000).expect("block"), 0..1000);
        assert_eq!(store.reserve_block(1000).expect("block"), 1000..2000);
        drop(store);
        let mut store = ProducerIdStore::open(dir.path()).expect("reopen");
        assert_eq!(store.reserve_block(10).expect("block"), 2000..2010);
    }

    #[test]
    fn a_corrupt_counter_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        for content in ["-5\n", "x\n", &"9".repeat(40)] {
            std::fs::write(dir.path().join(FILE_NAME), content).expect("write");
            assert!(ProducerIdStore::open(dir.path()).is_err(), "{content:?}");
        }
        std::fs::write(dir.path().join(FILE_NAME), format!("{}\n", i64::MAX - 1)).expect("write");
        let mut store = ProducerIdStore::open(dir.path()).expect("open");
        assert!(store.reserve_block(1000).is_err());
    }
}
