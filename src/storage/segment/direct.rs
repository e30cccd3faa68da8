//! Appends past the page cache for a raft follower's copy of its leader's batches: the whole
//! 4 KiB blocks an append completes are written with `O_DIRECT` from an aligned per-thread
//! scratch buffer, and only the last partial block goes through the page cache.
//!
//! Why: a follower never serves reads of what it stores, yet a buffered write takes a new page
//! cache page for every byte (in a VM that returns freed memory to its host, each one a host
//! page fault), on the same cores that the leader and the clients need. The file never holds
//! padding: its size is the data's end at all times, exactly as with buffered writes, so
//! recovery, truncation and readers see no difference. Linux keeps the two kinds of write
//! coherent (a direct write first writes back and drops the cached pages of its range), and an
//! fdatasync on any handle of the file makes both durable.

use std::cell::RefCell;
use std::io;

use crate::storage::fs::DataFile;

/// The alignment of every direct write's position, length and memory: the largest logical
/// block size of the devices we run on.
const BLOCK: usize = 4096;
/// The most one direct write covers; a longer append is written in several.
const SCRATCH_BYTES: usize = 256 * 1024;

thread_local! {
    /// One aligned scratch buffer per thread that appends (the blocking pool's), reused.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `batch` at `position`, the end of the file: the partial block before `position` is
/// read back through `buffered` and rewritten, unchanged, in front of the batch's whole blocks
/// through `direct`; what is left of the batch past its last whole block goes through
/// `buffered`. An append that completes no block is one buffered write.
pub(super) fn append<F: DataFile>(
    buffered: &F,
    direct: &F,
    batch: &[u8],
    position: u64,
) -> io::Result<()> {
    let head = usize::try_from(position % BLOCK as u64).unwrap_or(0);
    if head + batch.len() < BLOCK {
        return buffered.write_all_at(batch, position);
    }
    SCRATCH.with(|cell| {
        let Ok(mut vec) = cell.try_borrow_mut() else {
            return buffered.write_all_at(batch, position);
        };
        if vec.len() < SCRATCH_BYTES + BLOCK {
            vec.resize(SCRATCH_BYTES + BLOCK, 0);
        }
        let skip = vec.as_ptr().align_offset(BLOCK);
        match vec.get_mut(skip..skip + SCRATCH_BYTES) {
            Some(scratch) => append_through(scratch, buffered, direct, batch, position),
            None => buffered.write_all_at(batch, position),
        }
    })
}

/// [`append`] with an aligned `scratch` whose length is a multiple of [`BLOCK`].
fn append_through<F: DataFile>(
    scratch: &mut [u8],
    buffered: &F,
    direct: &F,
    batch: &[u8],
    position: u64,
) -> io::Result<()> {
    let mut start = position - position % BLOCK as u64;
    let mut filled = usize::try_from(position - start).unwrap_or(0);
    buffered.read_exact_at(&mut scratch[..filled], start)?;
    let mut rest = batch;
    loop {
        let take = rest.len().min(scratch.len() - filled);
        let (now, later) = rest.split_at(take);
        scratch[filled..filled + take].copy_from_slice(now);
        filled += take;
        rest = later;
        if rest.is_empty() {
            let whole = filled - filled % BLOCK;
            if whole > 0 {
                direct.write_all_at(&scratch[..whole], start)?;
            }
            return buffered.write_all_at(&scratch[whole..filled], start + whole as u64);
        }
        direct.write_all_at(&scratch[..filled], start)?;
        start += filled as u64;
        filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::{FileSystem, Fs};

    /// Appends pieces of every awkward length through the direct path and checks the file
    /// against the same bytes written plainly: its size is the data's end after each append.
    #[test]
    fn appends_of_any_length_at_any_position_leave_exactly_the_bytes_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segment.log");
        let fs = Fs::default();
        let buffered = fs.create_new(&path).expect("create");
        let direct = match fs.open_direct(&path) {
            Ok(direct) => direct,
            // No direct I/O on this file system: the buffered fallback is all there is to test.
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => return,
            Err(error) => panic!("open direct: {error}"),
        };
        let lengths = [
            1,
            100,
            BLOCK - 101,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK - 7,
            SCRATCH_BYTES,
            SCRATCH_BYTES + 5,
            2 * SCRATCH_BYTES + BLOCK + 3,
            17,
        ];
        let mut expected = Vec::new();
        for (round, len) in lengths.iter().enumerate() {
            let piece: Vec<u8> = (0..*len)
                .map(|idx| u8::try_from((idx * 7 + round * 13) % 251).expect("byte"))
                .collect();
            append(&buffered, &direct, &piece, expected.len() as u64).expect("append");
            expected.extend_from_slice(&piece);
            assert_eq!(
                buffered.len_bytes().expect("len"),
                expected.len() as u64,
                "size after append {round}"
            );
        }
        let mut read_back = vec![0; expected.len()];
        buffered.read_exact_at(&mut read_back, 0).expect("read");
        assert!(read_back == expected, "the file holds other bytes");
    }
}
