//! The seam between storage and the file system for segment data files: a small trait over the
//! few operations storage performs on them. The binary uses `std::fs` through a type alias, so
//! the seam costs nothing; unit tests swap in `fault::FaultyFs` to fail, delay or tear I/O.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

#[cfg(test)]
pub(crate) mod fault;

/// Opens segment data files. Cloned into every log; cheap to clone.
pub(crate) trait FileSystem: Clone + Debug + Default + Send + Sync + 'static {
    type File: DataFile;
    /// Creates a file for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for writes that bypass the page cache (`O_DIRECT`): positions,
    /// lengths and buffers must be aligned to the device's block size. Fails with
    /// `InvalidInput` where the file system has no direct I/O.
    fn open_direct(&self, path: &Path) -> io::Result<Self::File>;
}

/// An open segment data file. Positional I/O only, so one handle serves the writer, readers
/// and the fsync of the group commit at once (a follower's active segment has a second,
/// write-only handle for its direct appends).
pub(crate) trait DataFile: Debug + Send + Sync + 'static {
    fn write_all_at(&self, bytes: &[u8], position: u64) -> io::Result<()>;
    fn read_exact_at(&self, bytes: &mut [u8], position: u64) -> io::Result<()>;
    /// fdatasync: the data written so far survives a crash once this returns Ok.
    fn fdatasync(&self) -> io::Result<()>;
    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()>;
    fn len_bytes(&self) -> io::Result<u64>;
}

/// The real file system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StdFs;

impl FileSystem for StdFs {
    type File = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn open_direct(&self, path: &Path) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
    }
}

impl DataFile for File {
    fn write_all_at(&self, bytes: &[u8], position: u64) -> io::Result<()> {
        FileExt::write_all_at(self, bytes, position)
    }

    fn read_exact_at(&self, bytes: &mut [u8], position: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, bytes, position)
    }

    fn fdatasync(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let synced = File::sync_data(self);
        crate::telemetry::metrics::fsync(started.elapsed());
        synced
    }

    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()> {
        File::set_len(self, len_bytes)
    }

    fn len_bytes(&self) -> io::Result<u64> {
        self.metadata().map(|metadata| metadata.len())
    }
}

/// The file system storage runs on: `std::fs` in the binary and integration tests.
#[cfg(not(test))]
pub(crate) type Fs = StdFs;
/// The file system storage runs on: in unit tests, one that passes through to `std::fs` until
/// a test arms a fault.
#[cfg(test)]
pub(crate) type Fs = fault::FaultyFs;

/// An open segment data file of [`Fs`].
pub(crate) type FsFile = <Fs as FileSystem>::File;
