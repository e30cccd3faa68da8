//! A fault-injecting [`FileSystem`] for unit tests: passes through to `std::fs` until a test
//! arms a fault for the files under a directory (fail or block fsyncs, fail or tear writes,
//! refuse direct I/O).
//! Test-only: compiled into `cargo test` builds, never into the binary.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{DataFile, FileSystem, StdFs};

/// Which file operation a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Write,
    Fsync,
    /// Opening a file for direct I/O; `Fault::Fail` (or `Tear`) answers as a file system
    /// without it does, `Fault::Block` opens once its gate does (a test counts the opens).
    OpenDirect,
}

/// What happens to a matching operation.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// Fails with an I/O error without doing anything.
    Fail,
    /// Waits until the gate opens, then does the operation.
    Block(Gate),
    /// Writes only the first `keep_bytes` bytes, then fails (a write torn by a crash).
    Tear { keep_bytes: usize },
}

#[derive(Debug)]
struct Rule {
    dir: PathBuf,
    op: Op,
    fault: Fault,
    is_once: bool,
}

#[derive(Debug, Default)]
struct Faults {
    is_armed: AtomicBool,
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    fn rules(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault for `op` on `path`, consuming it when it fires once.
    fn take(&self, path: &Path, op: Op) -> Option<Fault> {
        if !self.is_armed.load(Ordering::Acquire) {
            return None;
        }
        let mut rules = self.rules();
        let rule_idx = rules
            .iter()
            .position(|rule| rule.op == op && path.starts_with(&rule.dir))?;
        let fault = rules.get(rule_idx)?.fault.clone();
        if rules.get(rule_idx).is_some_and(|rule| rule.is_once) {
            rules.remove(rule_idx);
        }
        Some(fault)
    }
}

/// The file system of unit tests; clones share their faults.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultyFs {
    faults: Arc<Faults>,
}

impl FaultyFs {
    /// Applies `fault` to the next `op` on a file under `dir` (rules fire in the order added).
    pub(crate) fn inject_once(&self, dir: &Path, op: Op, fault: Fault) {
        self.add(dir, op, fault, true);
    }

    /// Applies `fault` to every `op` on files under `dir` from now on.
    pub(crate) fn inject_always(&self, dir: &Path, op: Op, fault: Fault) {
        self.add(dir, op, fault, false);
    }

    fn add(&self, dir: &Path, op: Op, fault: Fault, is_once: bool) {
        self.faults.rules().push(Rule {
            dir: dir.to_path_buf(),
            op,
            fault,
            is_once,
        });
        self.faults.is_armed.store(true, Ordering::Release);
    }
}

impl FileSystem for FaultyFs {
    type File = FaultyFile;

    fn create_new(&self, path: &Path) -> io::Result<FaultyFile> {
        Ok(FaultyFile {
            file: StdFs.create_new(path)?,
            path: path.to_path_buf(),
            faults: Arc::clone(&self.faults),
        })
    }

    fn open(&self, path: &Path) -> io::Result<FaultyFile> {
        Ok(FaultyFile {
            file: StdFs.open(path)?,
            path: path.to_path_buf(),
            faults: Arc::clone(&self.faults),
        })
    }

    fn open_direct(&self, path: &Path) -> io::Result<FaultyFile> {
        match self.faults.take(path, Op::OpenDirect) {
            Some(Fault::Block(gate)) => gate.pass(),
            Some(Fault::Fail | Fault::Tear { .. }) => {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            None => {}
        }
        Ok(FaultyFile {
            file: StdFs.open_direct(path)?,
            path: path.to_path_buf(),
            faults: Arc::clone(&self.faults),
        })
    }
}

/// A real file whose writes and fsyncs consult the armed faults first.
#[derive(Debug)]
pub(crate) struct FaultyFile {
    file: File,
    path: PathBuf,
    faults: Arc<Faults>,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl DataFile for FaultyFile {
    fn write_all_at(&self, bytes: &[u8], position: u64) -> io::Result<()> {
        match self.faults.take(&self.path, Op::Write) {
            None => self.file.write_all_at(bytes, position),
            Some(Fault::Fail) => Err(injected("write")),
            Some(Fault::Block(gate)) => {
                gate.pass();
                self.file.write_all_at(bytes, position)
            }
            Some(Fault::Tear { keep_bytes }) => {
                let kept = bytes.get(..keep_bytes).unwrap_or(bytes);
                self.file.write_all_at(kept, position)?;
                Err(injected("torn write"))
            }
        }
    }

    fn read_exact_at(&self, bytes: &mut [u8], position: u64) -> io::Result<()> {
        self.file.read_exact_at(bytes, position)
    }

    fn fdatasync(&self) -> io::Result<()> {
        match self.faults.take(&self.path, Op::Fsync) {
            None | Some(Fault::Tear { .. }) => self.file.sync_data(),
            Some(Fault::Fail) => Err(injected("fsync")),
            Some(Fault::Block(gate)) => {
                gate.pass();
                self.file.sync_data()
            }
        }
    }

    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()> {
        self.file.set_len(len_bytes)
    }

    fn len_bytes(&self) -> io::Result<u64> {
        self.file.len_bytes()
    }
}

#[derive(Debug, Default)]
struct GateState {
    entered_count: usize,
    is_open: bool,
}

/// Holds blocked operations until the test opens it, and tells the test when they arrive.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gate {
    shared: Arc<(Mutex<GateState>, Condvar)>,
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the blocked operation: counts itself, then waits for the gate to open.
    fn pass(&self) {
        let mut state = self.state();
        state.entered_count += 1;
        self.shared.1.notify_all();
        while !state.is_open {
            state = self
                .shared
                .1
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `count` operations reached the gate, at most `timeout`; whether they did.
    pub(crate) fn wait_entered(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        while state.entered_count < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .1
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Lets every blocked and later operation through.
    pub(crate) fn open(&self) {
        self.state().is_open = true;
        self.shared.1.notify_all();
    }
}
