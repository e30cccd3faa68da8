//! The `tidelog` binary as a lab node: builds its command line (single node, or a cluster member
//! with the issue-9 flags), starts it inside the node's namespace, waits for `listening addr=`,
//! and restarts it on the same data dir and address after a kill, a stop or a crash.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Lab, NodeProcess, Spawn};

/// Kafka port of every broker (each namespace has its own address, so ports never collide).
pub(crate) const KAFKA_PORT: u16 = 9092;
/// Port of the cluster listener (raft, broker RPC; gossip's UDP defaults to it too).
pub(crate) const CLUSTER_PORT: u16 = 9093;
/// How long a broker may take to print its listening line or to stop after SIGTERM.
pub(crate) const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

const LISTENING_MARKER: &str = "listening addr=";

/// Whether `program` replicates partitions (issue 10), which the chaos run's cluster workload
/// (replication factor 3 asked) needs: its resolved config (`check-config`) has
/// `default_replication_factor`. Cluster mode alone (issue 9, replication factor 1) is not
/// enough: a killed broker's partitions are offline until it is back.
pub(crate) fn supports_replication(program: &Path) -> anyhow::Result<bool> {
    let output = std::process::Command::new(program)
        .arg("check-config")
        .env_clear()
        .output()
        .with_context(|| format!("run {} check-config", program.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("default_replication_factor"))
}

/// Cluster flags of a broker: where its peers are and how many form the first quorum.
#[derive(Clone, Debug)]
pub(crate) struct ClusterFlags {
    pub(crate) seeds: Vec<SocketAddr>,
    pub(crate) bootstrap_expect: usize,
}

/// One broker on lab node `node`. Drop kills its process.
#[derive(Debug)]
pub(crate) struct Broker {
    node: usize,
    node_id: u32,
    spawn: Spawn,
    data_dir: PathBuf,
    log_path: PathBuf,
    listen: SocketAddr,
    process: Option<NodeProcess>,
}

impl Broker {
    /// Describes (does not start) broker `node_id` on lab node `node`: data in
    /// `<lab dir>/node<node>/data`, output in `<lab dir>/node<node>.log`, Kafka on
    /// `<node ip>:9092`, and with `cluster`, the cluster listener on `<node ip>:9093`.
    pub(crate) fn new(
        lab: &Lab,
        program: &Path,
        node: usize,
        node_id: u32,
        cluster: Option<&ClusterFlags>,
        env: &[(&str, &str)],
    ) -> Broker {
        let ip = lab.node_ip(node);
        let listen = SocketAddr::from((ip, KAFKA_PORT));
        let data_dir = lab.dir().join(format!("node{node}")).join("data");
        let mut args = vec![
            "--node-id".to_owned(),
            node_id.to_string(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
            "--listen".to_owned(),
            listen.to_string(),
        ];
        if let Some(cluster) = cluster {
            let seeds: Vec<String> = cluster.seeds.iter().map(ToString::to_string).collect();
            args.extend([
                "--cluster-listen".to_owned(),
                SocketAddr::from((ip, CLUSTER_PORT)).to_string(),
                "--gossip-listen".to_owned(),
                SocketAddr::from((ip, CLUSTER_PORT)).to_string(),
                "--seeds".to_owned(),
                seeds.join(","),
                "--bootstrap-expect".to_owned(),
                cluster.bootstrap_expect.to_string(),
            ]);
        }
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        if !env.iter().any(|(name, _)| name == "TIDELOG_LOG") {
            // NETLAB_TIDELOG_LOG raises the brokers' log filter for a run under study.
            let filter = std::env::var("NETLAB_TIDELOG_LOG").unwrap_or_else(|_| "info".to_owned());
            env.push(("TIDELOG_LOG".to_owned(), filter));
        }
        env.push(("NO_COLOR".to_owned(), "1".to_owned()));
        Broker {
            node,
            node_id,
            spawn: Spawn {
                netns: lab.netns(node).to_owned(),
                program: program.to_path_buf(),
                args,
                env,
                // The broker refuses unknown TIDELOG_* variables: inherit none.
                env_clear_prefixes: vec!["TIDELOG_".to_owned()],
                markers: vec![LISTENING_MARKER.to_owned()],
            },
            data_dir,
            log_path: lab.dir().join(format!("node{node}.log")),
            listen,
            process: None,
        }
    }

    /// Starts the process and waits for its listening line.
    pub(crate) fn start(&mut self, lab: &Lab) -> anyhow::Result<()> {
        self.launch(lab)?;
        self.wait_listening(Instant::now() + PROCESS_DEADLINE)
    }

    /// Starts the process without waiting (to start a cluster's brokers together); follow with
    /// [`Broker::wait_listening`].
    pub(crate) fn launch(&mut self, lab: &Lab) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.process.is_none(),
            "broker {} is already running",
            self.node_id
        );
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("create {}", self.data_dir.display()))?;
        self.process = Some(lab.spawn(&self.spawn, &self.log_path)?);
        Ok(())
    }

    /// Waits until the launched process prints its Kafka listening line (other `listening`
    /// lines, e.g. a cluster listener's, are skipped); past `deadline`, or if it exits first,
    /// kills it and fails.
    pub(crate) fn wait_listening(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let process = self.process.as_mut().context("broker was not launched")?;
        let mut seen = Vec::new();
        let waited = loop {
            match process.wait_for_marked(deadline) {
                Ok(line) if parse_listening_addr(&line) == Some(self.listen) => break Ok(()),
                Ok(_) if Instant::now() >= deadline => {
                    break Err(anyhow::anyhow!("no Kafka listening line in time"));
                }
                Ok(line) => seen.push(line),
                Err(error) => break Err(error),
            }
        };
        waited.map_err(|error| {
            self.process = None; // Drop kills it
            error.context(format!(
                "broker {} did not listen on {} (other listening lines: {seen:?}; log: {})",
                self.node_id,
                self.listen,
                self.log_path.display()
            ))
        })
    }

    /// SIGKILL: no flush, no goodbye.
    pub(crate) fn kill9(&mut self) -> anyhow::Result<()> {
        let process = self.process.take().context("broker is not running")?;
        process.kill9()?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        let process = self.process.take().context("broker is not running")?;
        let status = process.terminate(Instant::now() + PROCESS_DEADLINE)?;
        anyhow::ensure!(
            status.success(),
            "broker {} exited with {status} after SIGTERM (log: {})",
            self.node_id,
            self.log_path.display()
        );
        Ok(())
    }

    /// SIGSTOP.
    pub(crate) fn pause(&mut self) -> anyhow::Result<()> {
        self.process
            .as_mut()
            .context("broker is not running")?
            .pause()
    }

    /// SIGCONT.
    pub(crate) fn resume(&mut self) -> anyhow::Result<()> {
        self.process
            .as_mut()
            .context("broker is not running")?
            .resume()
    }

    /// Whether a process was started and has not been stopped or killed by us.
    pub(crate) fn is_started(&self) -> bool {
        self.process.is_some()
    }

    /// Whether the process is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.process.as_ref().is_some_and(NodeProcess::is_paused)
    }

    /// Whether the started process is still alive (false after an unexpected exit).
    pub(crate) fn is_alive(&mut self) -> bool {
        self.process.as_mut().is_some_and(NodeProcess::is_running)
    }

    /// Forgets a process that exited by itself (so it can be started again).
    pub(crate) fn reap_if_exited(&mut self) -> bool {
        if self.process.is_some() && !self.is_alive() {
            self.process = None;
            return true;
        }
        false
    }

    pub(crate) fn node(&self) -> usize {
        self.node
    }

    pub(crate) fn node_id(&self) -> u32 {
        self.node_id
    }

    /// `ip:9092`, for `bootstrap.servers`.
    pub(crate) fn kafka_addr(&self) -> SocketAddr {
        self.listen
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
}

/// The address in a `listening addr=IP:PORT` log line (ANSI colors tolerated).
pub(crate) fn parse_listening_addr(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let start = line.find(LISTENING_MARKER)? + LISTENING_MARKER.len();
    let rest = line[start..].trim_start_matches('"');
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '}')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`), in case a log is colored.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_with_fields_parses_address() {
        let line = "2025-01-01T00:00:00Z  INFO tidelog::server: listening addr=127.0.0.1:40123 listener=kafka\n";
        assert_eq!(
            parse_listening_addr(line),
            Some("127.0.0.1:40123".parse().expect("addr"))
        );
        let colored =
            "\u{1b}[2mlistening\u{1b}[0m \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:9\n";
        assert_eq!(
            parse_listening_addr(colored),
            Some("127.0.0.1:9".parse().expect("addr"))
        );
        assert_eq!(
            parse_listening_addr("listening addr=\"127.0.0.1:7\""),
            Some("127.0.0.1:7".parse().expect("addr"))
        );
        assert_eq!(parse_listening_addr("starting"), None);
    }
}
