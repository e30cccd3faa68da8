//! A process running inside a lab namespace (`ip netns exec`, which execs in place, so the pid we
//! hold is the program's): its output appended to a log file, lines containing watched markers
//! forwarded to the caller, and the faults a nemesis needs (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How often exit is polled while waiting for a process to stop.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Marked lines buffered for the caller; later ones are dropped (the log file keeps everything).
const MARKED_LINES_MAX: usize = 64;

/// What to start: a program, its arguments and extra environment, in namespace `netns`.
#[derive(Clone, Debug)]
pub(crate) struct Spawn {
    pub(crate) netns: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Environment variables with these prefixes are not inherited (e.g. `TIDELOG_`).
    pub(crate) env_clear_prefixes: Vec<String>,
    /// Lines containing one of these are sent to [`NodeProcess::wait_for_marked`].
    pub(crate) markers: Vec<String>,
}

/// A running (or paused) process in a lab namespace. Drop kills it.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    child: Option<Child>,
    pid: u32,
    paused: bool,
    readers: Vec<JoinHandle<()>>,
    marked: mpsc::Receiver<String>,
}

impl NodeProcess {
    /// Starts `spec`, appending its stdout and stderr to `log_path` (created if missing).
    pub(crate) fn spawn(spec: &Spawn, log_path: &Path) -> anyhow::Result<NodeProcess> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(log));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &spec.netns])
            .arg(&spec.program);
        command.args(&spec.args);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if spec
                .env_clear_prefixes
                .iter()
                .any(|p| text.starts_with(p.as_str()))
            {
                command.env_remove(&name);
            }
        }
        let mut child = command
            .envs(spec.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn {} in {}", spec.program.display(), spec.netns))?;
        let pid = child.id();
        let (marked_tx, marked) = mpsc::sync_channel(MARKED_LINES_MAX);
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let readers = vec![
            spawn_reader(
                stdout,
                Arc::clone(&log),
                spec.markers.clone(),
                marked_tx.clone(),
            )?,
            spawn_reader(stderr, log, spec.markers.clone(), marked_tx)?,
        ];
        Ok(NodeProcess {
            child: Some(child),
            pid,
            paused: false,
            readers,
            marked,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the process has not exited (a paused process is running).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The next output line containing a marker, waiting until `deadline`; fails when the process
    /// exits or the deadline passes first.
    pub(crate) fn wait_for_marked(&mut self, deadline: Instant) -> anyhow::Result<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .marked
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => return Ok(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    bail!(
                        "process {} closed its output first (exit {status:?})",
                        self.pid
                    );
                }
            }
            if !self.is_running() {
                // Lines printed just before exiting are still in the channel.
                if let Ok(line) = self.marked.try_recv() {
                    return Ok(line);
                }
                bail!("process {} exited before printing a marked line", self.pid);
            }
            if Instant::now() >= deadline {
                bail!("process {} printed no marked line in time", self.pid);
            }
        }
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub(crate) fn pause(&mut self) -> anyhow::Result<()> {
        self.signal("STOP")?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after [`NodeProcess::pause`].
    pub(crate) fn resume(&mut self) -> anyhow::Result<()> {
        self.signal("CONT")?;
        self.paused = false;
        Ok(())
    }

    /// SIGKILL and reap: no chance to flush anything.
    pub(crate) fn kill9(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("process already reaped")?;
        child.kill().context("SIGKILL")?;
        let status = child.wait().context("reap after SIGKILL")?;
        self.join_readers();
        Ok(status)
    }

    /// SIGTERM (after SIGCONT if paused) and wait until `deadline` for a clean exit; past it,
    /// SIGKILL and an error saying so.
    pub(crate) fn terminate(mut self, deadline: Instant) -> anyhow::Result<ExitStatus> {
        if self.paused {
            self.resume()?;
        }
        self.signal("TERM")?;
        let mut child = self.child.take().context("process already reaped")?;
        loop {
            if let Some(status) = child.try_wait().context("try_wait")? {
                self.join_readers();
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.join_readers();
                bail!(
                    "process {} did not exit after SIGTERM in time; killed",
                    self.pid
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        // Only while we hold the unreaped child, so the pid cannot belong to another process.
        anyhow::ensure!(self.child.is_some(), "process {} already reaped", self.pid);
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .with_context(|| format!("run kill -{name}"))?;
        anyhow::ensure!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid
        );
        Ok(())
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_readers();
    }
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<File>>,
    markers: Vec<String>,
    marked: mpsc::SyncSender<String>,
) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netlab-output".to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Ok(mut file) = log.lock() {
                    let _ = file.write_all(&line);
                }
                let text = String::from_utf8_lossy(&line);
                if markers.iter().any(|marker| text.contains(marker.as_str())) {
                    // Never block the reader: a caller that stopped listening loses lines only.
                    let _ = marked.try_send(text.trim_end().to_owned());
                }
            }
        })
        .context("spawn an output reader thread")
}
