//! The only home of `unsafe` in the crate: memory-mapping one index file with memmap2.
//! Owns growing a file before mapping it and unmapping it before shrinking it.
#![allow(unsafe_code)] // reason: mapping a file is unsafe in memmap2; each block says why it holds

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

#[derive(Debug)]
enum Mapping {
    Writable(MmapMut),
    ReadOnly(Mmap),
}

/// One memory-mapped file. The file is never shrunk while mapped.
#[derive(Debug)]
pub(crate) struct MappedFile {
    file: File,
    mapping: Mapping,
}

impl MappedFile {
    /// Opens (creating when missing) and maps read-write, first growing the file to at least
    /// `len_bytes`. Returns the mapping and the file's length before growing.
    pub(crate) fn open_writable(path: &Path, len_bytes: u64) -> io::Result<(MappedFile, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len_before = file.metadata()?.len();
        if len_before < len_bytes {
            file.set_len(len_bytes)?;
        }
        let mapping = Mapping::Writable(map_writable(&file)?);
        Ok((MappedFile { file, mapping }, len_before))
    }

    /// Opens an existing file and maps it read-only.
    pub(crate) fn open_read_only(path: &Path) -> io::Result<MappedFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mapping = Mapping::ReadOnly(map_read_only(&file)?);
        Ok(MappedFile { file, mapping })
    }

    /// The mapped bytes (the whole file).
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.mapping {
            Mapping::Writable(map) => map,
            Mapping::ReadOnly(map) => map,
        }
    }

    /// The mapped bytes for writing; None when mapped read-only.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.mapping {
            Mapping::Writable(map) => Some(map),
            Mapping::ReadOnly(_) => None,
        }
    }

    pub(crate) fn is_writable(&self) -> bool {
        matches!(self.mapping, Mapping::Writable(_))
    }

    /// Writes dirty pages of a writable mapping back to the file (msync).
    pub(crate) fn flush(&self) -> io::Result<()> {
        match &self.mapping {
            Mapping::Writable(map) => map.flush(),
            Mapping::ReadOnly(_) => Ok(()),
        }
    }

    /// Flushes, unmaps, cuts the file to `len_bytes`, fsyncs it and maps it again read-only.
    pub(crate) fn seal(&mut self, len_bytes: u64) -> io::Result<()> {
        self.flush()?;
        // Unmap before shrinking: touching a mapped page past the end of a file raises SIGBUS.
        self.mapping = Mapping::ReadOnly(MmapMut::map_anon(0)?.make_read_only()?);
        self.file.set_len(len_bytes)?;
        self.file.sync_all()?;
        self.mapping = Mapping::ReadOnly(map_read_only(&self.file)?);
        Ok(())
    }

    /// Unmaps, grows the file to at least `len_bytes` and maps it read-write again.
    pub(crate) fn unseal(&mut self, len_bytes: u64) -> io::Result<()> {
        self.flush()?;
        if self.file.metadata()?.len() < len_bytes {
            self.file.set_len(len_bytes)?;
        }
        self.mapping = Mapping::Writable(map_writable(&self.file)?);
        Ok(())
    }
}

fn map_writable(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file lives in a partition directory that only this storage layer opens
    // (architecture invariant 3), and `seal` drops the mapping before the file is shrunk, so the
    // mapped range stays backed by the file and no other writer changes it under us.
    unsafe { MmapMut::map_mut(file) }
}

fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: as in `map_writable`: storage is the only opener of the file and never shrinks it
    // while this mapping exists.
    unsafe { Mmap::map(file) }
}
