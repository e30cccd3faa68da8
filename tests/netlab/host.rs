//! Host commands for the lab: runs `ip` and `iptables-restore` with a deadline and captured
//! output, and says why this machine cannot host a lab (not root, a tool missing).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// How long one `ip` or `iptables-restore` invocation may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `program args...` (with `input` on stdin if given) and returns its stdout; an error names
/// the command, its exit status and its stderr.
pub(crate) fn run(program: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn `{shown}`"))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().context("stdin is piped")?;
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("write the input of `{shown}`"))?;
    }
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let waiter = std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = match done_rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(output) => output.with_context(|| format!("wait for `{shown}`"))?,
        Err(_) => {
            // The waiter has not reaped the child yet, so the pid is still this child's.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = waiter.join();
            bail!("`{shown}` did not finish within {COMMAND_DEADLINE:?}");
        }
    };
    let _ = waiter.join();
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ip args...`.
pub(crate) fn ip(args: &[&str]) -> anyhow::Result<String> {
    run("ip", args, None)
}

/// Why this machine cannot host a lab, or None when it can: the lab needs root (to create network
/// namespaces), iproute2's `ip` and iptables' `iptables-restore`.
pub(crate) fn unavailable_reason() -> Option<String> {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => {
            return Some(format!(
                "network namespaces need root; running as uid {uid}"
            ));
        }
        None => return Some("cannot read the effective uid from /proc/self/status".to_owned()),
    }
    for (program, package, args) in [
        ("ip", "iproute2", &["-V"][..]),
        ("iptables-restore", "iptables", &["--version"][..]),
    ] {
        if run(program, args, None).is_err() {
            return Some(format!(
                "`{program}` is missing or does not run; install the Debian package `{package}`"
            ));
        }
    }
    None
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    // Uid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}
