//! The broker child process: finding the binary, starting it, waiting for its listen address,
//! stopping it on SIGTERM, and its log.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

/// Time allowed for each of: broker start, topic creation, graceful broker stop.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Broker log lines printed when the benchmark fails.
pub(crate) const LOG_TAIL_LINES: usize = 40;

pub(crate) fn default_broker_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable's path")?;
    let bin = exe.with_file_name("tidelog");
    ensure!(
        bin.is_file(),
        "broker binary {} not found: build it (`cargo build --release --bin tidelog`) or pass \
         --broker-bin or --bootstrap",
        bin.display()
    );
    Ok(bin)
}

/// The broker child process, its temporary directory and its log; killed and removed on drop.
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    child: Child,
    work_dir: PathBuf,
    pub(crate) log_path: PathBuf,
    keep_data: bool,
    is_stopped: bool,
}

impl BrokerProcess {
    /// Starts `bin serve` on a fresh data dir with `env` added to its environment and waits for
    /// its `listening addr=` log line.
    pub(crate) fn start(
        bin: &Path,
        work_dir: PathBuf,
        keep_data: bool,
        env: &[(&str, String)],
    ) -> Result<(BrokerProcess, String)> {
        if work_dir.exists() {
            fs::remove_dir_all(&work_dir)
                .with_context(|| format!("removing stale {}", work_dir.display()))?;
        }
        let data_dir = work_dir.join("data");
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let child = spawn(bin, &work_dir, env, "127.0.0.1:0")?;
        let mut broker = BrokerProcess {
            child,
            log_path: work_dir.join("broker.log"),
            work_dir,
            keep_data,
            is_stopped: false,
        };
        let addr = broker.wait_listening()?;
        Ok((broker, addr))
    }

    /// Starts the stopped (or killed) broker again on its data dir, listening on `listen`, with
    /// `env`; its log goes on in the same file. Returns the address it listens on.
    pub(crate) fn restart(
        &mut self,
        bin: &Path,
        env: &[(&str, String)],
        listen: &str,
    ) -> Result<String> {
        ensure!(self.is_stopped, "restart needs a stopped broker");
        self.child = spawn(bin, &self.work_dir, env, listen)?;
        self.is_stopped = false;
        self.wait_listening()
    }

    /// Waits for the `listening addr=` line of the running child (copying its stderr into the
    /// log); fails when it exits first or takes longer than `BROKER_START_TIMEOUT`.
    fn wait_listening(&mut self) -> Result<String> {
        let addr_rx = self.spawn_log_reader()?;
        let started = Instant::now();
        loop {
            match addr_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => return Ok(addr),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed without the line; fall through to the exit check
                    thread::sleep(Duration::from_millis(200));
                }
            }
            if let Some(status) = self.child.try_wait().context("checking the broker")? {
                self.is_stopped = true;
                bail!(
                    "broker exited with {status} before listening; log tail:\n{}",
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            if started.elapsed() > BROKER_START_TIMEOUT {
                bail!(
                    "broker printed no `listening addr=` line within {BROKER_START_TIMEOUT:?}; \
                     log tail:\n{}",
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
        }
    }

    /// Copies the broker's stderr into the log file; sends the listen address once seen.
    fn spawn_log_reader(&mut self) -> Result<mpsc::Receiver<String>> {
        let stderr = self
            .child
            .stderr
            .take()
            .context("broker stderr is not piped")?;
        // Appended to: a restarted broker's lines follow its first life's.
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let (addr_tx, addr_rx) = mpsc::channel();
        thread::Builder::new()
            .name("broker-log".into())
            .spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut line = Vec::new();
                let mut is_addr_sent = false;
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if log.write_all(&line).is_err() {
                        break;
                    }
                    if !is_addr_sent {
                        let text = strip_ansi(&String::from_utf8_lossy(&line));
                        if let Some(addr) = parse_listen_addr(&text) {
                            is_addr_sent = addr_tx.send(addr).is_ok();
                        }
                    }
                }
            })
            .context("spawning the broker log reader")?;
        Ok(addr_rx)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit; kills the broker if it outlives `timeout`.
    pub(crate) fn stop(&mut self, timeout: Duration) -> Result<Duration> {
        if self.is_stopped {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("running kill -TERM")?;
        ensure!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        loop {
            if let Some(exit) = self.child.try_wait().context("waiting for the broker")? {
                self.is_stopped = true;
                ensure!(exit.success(), "broker exited with {exit} after SIGTERM");
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                self.child.kill().context("killing the broker")?;
                self.child.wait().context("reaping the broker")?;
                self.is_stopped = true;
                bail!("broker did not stop within {timeout:?} of SIGTERM; killed it");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (kill -9) and reap: the broker gets no chance to hand anything over.
    pub(crate) fn kill9(&mut self) -> Result<()> {
        self.child.kill().context("killing the broker")?;
        self.child.wait().context("reaping the broker")?;
        self.is_stopped = true;
        Ok(())
    }

    /// The gossip address from the broker's last `cluster member started ... gossip=HOST:PORT`
    /// log line (a restart logs another), waiting for one until `timeout`.
    pub(crate) fn gossip_addr(&self, timeout: Duration) -> Result<String> {
        self.wait_for_line("`cluster member started`", timeout, parse_gossip_addr)
    }

    /// The address listener `name` bound, from its last `listening addr=... listener=NAME` log
    /// line, waiting for one until `timeout`.
    pub(crate) fn listener_addr(&self, name: &str, timeout: Duration) -> Result<String> {
        let marker = format!("listener={name} ");
        self.wait_for_line(&format!("`listening` line of {name}"), timeout, |line| {
            line.contains(&marker)
                .then(|| parse_listen_addr(line))
                .flatten()
        })
    }

    /// Waits until `timeout` for a log line that `parse` accepts, the newest first.
    pub(crate) fn wait_for_line<T>(
        &self,
        what: &str,
        timeout: Duration,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&self.log_path).unwrap_or_default();
            if let Some(found) = text.lines().rev().find_map(&parse) {
                return Ok(found);
            }
            ensure!(
                started.elapsed() < timeout,
                "broker logged no {what} within {timeout:?}; log tail:\n{}",
                self.log_tail(LOG_TAIL_LINES)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log_tail(&self, line_count: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(line_count)..].join("\n")
    }
}

/// `bin serve` on `work_dir/data`, listening on `listen`, stdout to `work_dir/broker.stdout.log`,
/// stderr piped (see `BrokerProcess::spawn_log_reader`).
fn spawn(bin: &Path, work_dir: &Path, env: &[(&str, String)], listen: &str) -> Result<Child> {
    let stdout_log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(work_dir.join("broker.stdout.log"))
        .context("opening the broker stdout log")?;
    Command::new(bin)
        .arg("serve")
        .arg("--data-dir")
        .arg(work_dir.join("data"))
        .arg("--listen")
        .arg(listen)
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout_log))
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if !self.is_stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.keep_data {
            eprintln!("kept broker data and log in {}", self.work_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Removes ANSI escape sequences (ESC '[' params final-byte) from a log line.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds HOST:PORT in a line containing `cluster member started ... gossip=HOST:PORT`.
pub(crate) fn parse_gossip_addr(line: &str) -> Option<String> {
    let line = strip_ansi(line);
    let rest = &line[line.find("cluster member started")?..];
    let addr = rest
        .split_whitespace()
        .find_map(|word| word.strip_prefix("gossip="))?
        .trim_matches('"');
    addr.contains(':').then(|| addr.to_owned())
}

/// Finds HOST:PORT in a line containing `listening addr=HOST:PORT`.
pub(crate) fn parse_listen_addr(line: &str) -> Option<String> {
    let after = &line[line.find("listening")?..];
    let value = &after[after.find("addr=")? + "addr=".len()..];
    let addr: String = value
        .trim_start_matches('"')
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',' && *c != '}')
        .collect();
    addr.contains(':').then_some(addr)
}
