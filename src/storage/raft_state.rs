//! Small durable files of raft bookkeeping beside a partition's segments (the vote, where the
//! raft log starts): opaque numbers handed over by `replication`, written atomically (temp file,
//! fsync, rename, fsync of the directory). Storage never interprets them.

use std::path::Path;

use super::log::Log;
use super::{Error, Result, io_error, write_atomically};

/// Format tag on the first word of every file.
const FORMAT_TAG: &str = "v1";
/// Most numbers one file holds; the size cap follows from it.
const NUMBERS_MAX: usize = 8;
/// A tag, `NUMBERS_MAX` decimal u64s with separators and a newline fit in this.
const FILE_BYTES_MAX: u64 = 256;
/// Largest opaque raft state file (a snapshot's metadata: membership with addresses).
const BLOB_BYTES_MAX: u64 = 64 * 1024;

/// Which bookkeeping file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RaftStateFile {
    /// The raft vote (term, voted for, committed).
    Vote,
    /// Where the raft log starts in the partition log, and what was purged.
    LogStart,
    /// The partition group's last snapshot (its metadata and data, a few hundred bytes).
    Snapshot,
}

impl RaftStateFile {
    fn name(self) -> &'static str {
        match self {
            RaftStateFile::Vote => "raft-vote",
            RaftStateFile::LogStart => "raft-log-start",
            RaftStateFile::Snapshot => "raft-snapshot",
        }
    }
}

impl Log {
    /// Persists `numbers` (at most 8) in `file`, durably, before returning.
    pub(crate) fn write_raft_state(&self, file: RaftStateFile, numbers: &[u64]) -> Result<()> {
        write_numbers(self.dir(), file.name(), numbers)
    }

    /// Persists opaque `bytes` (at most `BLOB_BYTES_MAX`) in `file`, durably, before returning.
    pub(crate) fn write_raft_blob(&self, file: RaftStateFile, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 > BLOB_BYTES_MAX {
            return Err(Error::CorruptState {
                path: self.dir().join(file.name()),
                reason: "raft state larger than its file may be",
            });
        }
        write_atomically(self.dir(), file.name(), bytes)
    }

    /// The bytes last written to `file` with `write_raft_blob`; None when never written.
    pub(crate) fn read_raft_blob(&self, file: RaftStateFile) -> Result<Option<Vec<u8>>> {
        let path = self.dir().join(file.name());
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() > BLOB_BYTES_MAX => {
                return Err(Error::CorruptState {
                    path,
                    reason: "raft state larger than its file may be",
                });
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("stat raft state", &path)(error)),
        }
        let bytes = std::fs::read(&path).map_err(io_error("read raft state", &path))?;
        Ok(Some(bytes))
    }

    /// The numbers last written to `file`; None when it was never written.
    pub(crate) fn read_raft_state(&self, file: RaftStateFile) -> Result<Option<Vec<u64>>> {
        read_numbers(self.dir(), file.name())
    }
}

fn write_numbers(dir: &Path, name: &str, numbers: &[u64]) -> Result<()> {
    assert!(
        numbers.len() <= NUMBERS_MAX,
        "raft state files hold at most {NUMBERS_MAX} numbers"
    );
    let mut text = String::from(FORMAT_TAG);
    for number in numbers {
        text.push(' ');
        text.push_str(&number.to_string());
    }
    text.push('\n');
    write_atomically(dir, name, text.as_bytes())
}

fn read_numbers(dir: &Path, name: &str) -> Result<Option<Vec<u64>>> {
    let path = dir.join(name);
    let corrupt = |reason| Error::CorruptState {
        path: path.clone(),
        reason,
    };
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.len() > FILE_BYTES_MAX => {
            return Err(corrupt("the file is larger than its numbers can be"));
        }
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("stat raft state", &path)(error)),
    }
    let text = std::fs::read_to_string(&path).map_err(io_error("read raft state", &path))?;
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some(FORMAT_TAG) {
        return Err(corrupt("unknown format tag"));
    }
    let numbers = words
        .map(str::parse::<u64>)
        .collect::<std::result::Result<Vec<u64>, _>>()
        .map_err(|_| corrupt("not a list of non-negative numbers"))?;
    if numbers.len() > NUMBERS_MAX {
        return Err(corrupt("too many numbers"));
    }
    Ok(Some(numbers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_numbers(dir.path(), "raft-vote").expect("read"), None);
        let numbers = [u64::MAX, 0, 1, 42];
        write_numbers(dir.path(), "raft-vote", &numbers).expect("write");
        let read = read_numbers(dir.path(), "raft-vote").expect("read");
        assert_eq!(read.as_deref(), Some(&numbers[..]));
        write_numbers(dir.path(), "raft-vote", &[]).expect("write");
        let read = read_numbers(dir.path(), "raft-vote").expect("read");
        assert_eq!(read, Some(vec![]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["raft-vote"], "no temp file is left behind");
    }

    #[test]
    fn a_damaged_file_is_an_error_never_a_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raft-log-start");
        let big = format!("v1 {}", "1 ".repeat(200));
        for content in [
            "",
            "v2 1 2\n",
            "v1 -1\n",
            "v1 x\n",
            "v1 1 2 3 4 5 6 7 8 9\n",
            &big,
        ] {
            std::fs::write(&path, content).expect("write");
            assert!(
                read_numbers(dir.path(), "raft-log-start").is_err(),
                "{content:?}"
            );
        }
    }
}
