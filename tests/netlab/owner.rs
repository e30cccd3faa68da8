//! Names of what a lab creates and the sweep of labs whose process died: every namespace is named
//! `tlab-<pid>-<start ticks>-<seq>-<role>`, so a lab is stale exactly when no live process has that
//! pid and start time. Names without the prefix are never touched.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

use super::host;

/// Prefix of every namespace a lab creates.
pub(crate) const PREFIX: &str = "tlab-";

/// The process that created a lab: pid plus start time, which together never repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pid: u32,
    start_ticks: u64,
}

impl Owner {
    /// This process.
    pub(crate) fn current() -> anyhow::Result<Owner> {
        let pid = std::process::id();
        let start_ticks = start_ticks(pid).context("read this process's start time")?;
        Ok(Owner { pid, start_ticks })
    }

    /// Whether the owning process still runs (same pid and the same start time).
    pub(crate) fn is_alive(self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }

    /// A fresh name stem `tlab-<pid>-<start>-<seq>` for one lab of this owner.
    pub(crate) fn lab_stem(self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let seq = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{PREFIX}{}-{}-{seq}", self.pid, self.start_ticks)
    }

    /// The owner encoded in a namespace name made by [`Owner::lab_stem`], None for other names.
    pub(crate) fn of_name(name: &str) -> Option<Owner> {
        let mut fields = name.strip_prefix(PREFIX)?.split('-');
        let pid = fields.next()?.parse().ok()?;
        let start_ticks = fields.next()?.parse().ok()?;
        let _seq: u32 = fields.next()?.parse().ok()?;
        let _role = fields.next()?;
        fields
            .next()
            .is_none()
            .then_some(Owner { pid, start_ticks })
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts at field 3 (state); field 22 is the 20th from there.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Names of every network namespace (`ip netns list`).
pub(crate) fn namespaces() -> anyhow::Result<Vec<String>> {
    let listing = host::ip(&["netns", "list"])?;
    Ok(listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Kills every process inside namespace `name` (by pid, as listed by `ip netns pids`).
pub(crate) fn kill_processes_in(name: &str) -> anyhow::Result<()> {
    for pid in host::ip(&["netns", "pids", name])?.split_whitespace() {
        // A process that exited meanwhile makes kill fail; that is fine.
        let _ = host::run("kill", &["-KILL", pid], None);
    }
    Ok(())
}

/// Deletes the namespaces of labs whose creating process is gone (a crashed or killed run),
/// killing what still runs inside them first. Returns the names removed.
pub(crate) fn sweep_stale() -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in namespaces()? {
        let Some(owner) = Owner::of_name(&name) else {
            continue;
        };
        if owner.is_alive() {
            continue;
        }
        kill_processes_in(&name)?;
        host::ip(&["netns", "del", &name])
            .with_context(|| format!("delete stale namespace {name}"))?;
        removed.push(name);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_round_trip_and_foreign_names_are_ignored() {
        let owner = Owner::current().expect("owner");
        let stem = owner.lab_stem();
        assert_eq!(Owner::of_name(&format!("{stem}-n0")), Some(owner));
        assert_eq!(Owner::of_name(&format!("{stem}-hub")), Some(owner));
        assert!(owner.is_alive());
        for foreign in [
            "tlab",
            "tlab-1-2-3",
            "tlab-x-2-3-n0",
            "tlab-1-2-3-n0-extra",
            "blue",
            "ns-tlab-1-2-3-n0",
        ] {
            assert_eq!(Owner::of_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_dead_owner_is_not_alive() {
        let owner = Owner::current().expect("owner");
        let other_start = Owner {
            pid: owner.pid,
            start_ticks: owner.start_ticks + 1,
        };
        assert!(!other_start.is_alive());
    }
}
