//! Reads a process's memory use from /proc for tests that bound the broker's RSS.
//! Linux only; values in bytes. Asserts nothing.

/// Resident set size now (`VmRSS`) and its peak so far (`VmHWM`), in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    pub(crate) current_bytes: u64,
    pub(crate) peak_bytes: u64,
}

pub(crate) fn rss(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("read /proc/{pid}/status: {err}"));
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or_else(|err| panic!("parse {line:?}: {err}"));
        kib * 1024
    };
    Rss {
        current_bytes: field("VmRSS:"),
        peak_bytes: field("VmHWM:"),
    }
}

pub(crate) const MIB: u64 = 1024 * 1024;
