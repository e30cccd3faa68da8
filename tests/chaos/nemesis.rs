//! The nemesis: a seeded schedule of faults (kill -9, SIGSTOP, SIGTERM restart, network cuts),
//! one at a time, each held for a bounded random time and then healed.

use std::fmt;
use std::time::Duration;

use anyhow::Context;

use crate::netlab::End;
use crate::rng::Rng;
use crate::system::{Mode, System};

/// Pause between two faults, and how long one is held.
const GAP: (Duration, Duration) = (Duration::from_millis(300), Duration::from_millis(1_500));
const HOLD: (Duration, Duration) = (Duration::from_millis(800), Duration::from_millis(4_000));

/// One fault; broker numbers are indexes into `System::brokers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// SIGKILL, then a restart on the same data dir when healed.
    Kill(usize),
    /// SIGSTOP, SIGCONT when healed.
    Pause(usize),
    /// SIGTERM (clean stop), started again when healed.
    Stop(usize),
    /// The broker cut from every other broker and from the clients.
    Isolate(usize),
    /// The broker cut from the clients only (cluster traffic flows).
    CutClients(usize),
    /// The link between two brokers cut.
    CutLink(usize, usize),
    /// These brokers (a minority) cut from the rest; clients reach everyone.
    Partition(Vec<usize>),
}

impl Fault {
    /// The short name used in the fault counts.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill -9",
            Fault::Pause(_) => "pause",
            Fault::Stop(_) => "stop+restart",
            Fault::Isolate(_) => "isolate",
            Fault::CutClients(_) => "cut clients",
            Fault::CutLink(..) => "cut link",
            Fault::Partition(_) => "partition",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Brokers are shown by node id (index + 1).
        match self {
            Fault::Kill(b) => write!(f, "kill -9 broker {}", b + 1),
            Fault::Pause(b) => write!(f, "pause broker {}", b + 1),
            Fault::Stop(b) => write!(f, "stop broker {}", b + 1),
            Fault::Isolate(b) => write!(f, "isolate broker {}", b + 1),
            Fault::CutClients(b) => write!(f, "cut clients from broker {}", b + 1),
            Fault::CutLink(a, b) => write!(f, "cut link broker {} - broker {}", a + 1, b + 1),
            Fault::Partition(side) => {
                let side: Vec<String> = side.iter().map(|b| (b + 1).to_string()).collect();
                write!(f, "partition brokers {{{}}} from the rest", side.join(","))
            }
        }
    }
}

/// Picks the next fault. Single nodes have no peers, so only process faults and client cuts.
pub(crate) fn next_fault(rng: &mut Rng, mode: Mode, brokers: usize) -> Fault {
    let b = rng.below(brokers);
    if mode == Mode::Single || brokers < 2 {
        return match rng.weighted(&[3, 2, 1, 2]) {
            0 => Fault::Kill(b),
            1 => Fault::Pause(b),
            2 => Fault::Stop(b),
            _ => Fault::CutClients(b),
        };
    }
    match rng.weighted(&[3, 2, 1, 2, 1, 1, 2]) {
        0 => Fault::Kill(b),
        1 => Fault::Pause(b),
        2 => Fault::Stop(b),
        3 => Fault::Isolate(b),
        4 => Fault::CutClients(b),
        5 => {
            let other = (b + 1 + rng.below(brokers - 1)) % brokers;
            Fault::CutLink(b.min(other), b.max(other))
        }
        _ => {
            let minority = 1 + rng.below((brokers - 1) / 2);
            Fault::Partition(rng.subset(brokers, minority))
        }
    }
}

pub(crate) fn gap(rng: &mut Rng) -> Duration {
    rng.duration(GAP.0, GAP.1)
}

pub(crate) fn hold(rng: &mut Rng) -> Duration {
    rng.duration(HOLD.0, HOLD.1)
}

/// Injects `fault`.
pub(crate) fn inject(system: &mut System, fault: &Fault) -> anyhow::Result<()> {
    let lab = &system.lab;
    match fault {
        Fault::Kill(b) => system.brokers[*b].kill9(),
        Fault::Pause(b) => system.brokers[*b].pause(),
        Fault::Stop(b) => system.brokers[*b].stop(),
        Fault::Isolate(b) => lab.isolate(*b),
        Fault::CutClients(b) => lab.cut(End::Node(*b), End::Host),
        Fault::CutLink(a, b) => lab.cut(End::Node(*a), End::Node(*b)),
        Fault::Partition(side) => {
            for &a in side {
                for b in (0..system.brokers.len()).filter(|b| !side.contains(b)) {
                    lab.cut(End::Node(a), End::Node(b))?;
                }
            }
            Ok(())
        }
    }
    .with_context(|| format!("inject: {fault}"))
}

/// Undoes `fault`: restarts a killed or stopped broker (waiting until it listens), resumes a
/// paused one, heals cut links.
pub(crate) fn heal(system: &mut System, fault: &Fault) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(b) | Fault::Stop(b) => system.brokers[*b].start(&system.lab),
        Fault::Pause(b) => system.brokers[*b].resume(),
        Fault::Isolate(_) | Fault::CutClients(_) | Fault::CutLink(..) | Fault::Partition(_) => {
            system.lab.heal_all()
        }
    }
    .with_context(|| format!("heal: {fault}"))
}
