//! A network-namespace lab for multi-process tests: N namespaces on one bridge, each with its own
//! address `10.77.<subnet>.<10+i>`, reachable from the test process (root namespace, `.1`); runs
//! programs inside them and cuts links with iptables. Drop removes everything it made.
//!
//! Layout: the bridge lives in a hub namespace of its own (so the host's iptables FORWARD policy,
//! e.g. Docker's DROP, never sees lab traffic) and the host joins it through one veth, `tlr<subnet>`,
//! whose creation claims the subnet. Tests use it through `#[path]` (tests/it, tests/chaos).

mod firewall;
mod host;
mod owner;
mod process;
pub(crate) mod tidelog;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, bail};

pub(crate) use firewall::End;
pub(crate) use process::{NodeProcess, Spawn};

/// Nodes per lab; addresses are `.10` up to `.10 + NODES_MAX - 1`.
pub(crate) const NODES_MAX: usize = 200;
/// First two octets of every lab address.
const NET_PREFIX: [u8; 2] = [10, 77];
/// Host part of the first node's address.
const FIRST_NODE_HOST: u8 = 10;

/// Why this machine cannot run a lab (not root, `ip` or `iptables-restore` missing), or None.
pub(crate) fn unavailable_reason() -> Option<String> {
    host::unavailable_reason()
}

/// A set of namespaces on one bridge. Drop kills what runs inside them and deletes them.
#[derive(Debug)]
pub(crate) struct Lab {
    stem: String,
    subnet: Option<u8>,
    hub: Option<String>,
    nodes: Vec<String>,
    cuts: Mutex<firewall::Cuts>,
    dir: tempfile::TempDir,
}

impl Lab {
    /// Creates `node_count` namespaces on a fresh subnet, after deleting those of labs whose
    /// process died. Check [`unavailable_reason`] first for a clear skip message.
    pub(crate) fn create(node_count: usize) -> anyhow::Result<Lab> {
        anyhow::ensure!(
            (1..=NODES_MAX).contains(&node_count),
            "a lab has 1 to {NODES_MAX} nodes, not {node_count}"
        );
        let stale = owner::sweep_stale().context("sweep namespaces of dead labs")?;
        if !stale.is_empty() {
            eprintln!(
                "netlab: removed {} stale namespaces: {}",
                stale.len(),
                stale.join(" ")
            );
        }
        let owner = owner::Owner::current()?;
        let mut lab = Lab {
            stem: owner.lab_stem(),
            subnet: None,
            hub: None,
            nodes: Vec::new(),
            cuts: Mutex::new(firewall::Cuts::default()),
            dir: tempfile::Builder::new()
                .prefix("tidelog-lab-")
                .tempdir()
                .context("create the lab directory")?,
        };
        // On error, Drop removes whatever was made so far.
        lab.build(node_count)?;
        Ok(lab)
    }

    fn build(&mut self, node_count: usize) -> anyhow::Result<()> {
        let hub = format!("{}-hub", self.stem);
        host::ip(&["netns", "add", &hub])?;
        self.hub = Some(hub.clone());
        let subnet = claim_subnet(&hub)?;
        self.subnet = Some(subnet);
        let uplink = uplink_name(subnet);
        let host_cidr = format!("{}/24", address(subnet, End::Host));
        host::ip(&["addr", "add", &host_cidr, "dev", &uplink])?;
        host::ip(&["link", "set", &uplink, "up"])?;
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "add", "br0", "type", "bridge"],
            &["link", "set", "br0", "up"],
            &["link", "set", "uplink", "master", "br0", "up"],
        ] {
            host::ip(&[&["-n", &hub][..], args].concat())?;
        }
        for i in 0..node_count {
            let netns = format!("{}-n{i}", self.stem);
            host::ip(&["netns", "add", &netns])?;
            self.nodes.push(netns.clone());
            let port = format!("p{i}");
            let cidr = format!("{}/24", address(subnet, End::Node(i)));
            host::ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &netns,
            ])?;
            host::ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            host::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            host::ip(&["-n", &netns, "addr", "add", &cidr, "dev", "eth0"])?;
            host::ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s address.
    pub(crate) fn node_ip(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.nodes.len(), "node {i} of {}", self.nodes.len());
        address(self.subnet.expect("a built lab has a subnet"), End::Node(i))
    }

    /// The host's address on the lab bridge (where clients in the test process come from).
    pub(crate) fn host_ip(&self) -> Ipv4Addr {
        address(self.subnet.expect("a built lab has a subnet"), End::Host)
    }

    /// Node `i`'s namespace name.
    pub(crate) fn netns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// A directory owned by the lab (removed on drop) for data dirs and logs.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the lab directory after drop (to look at logs and data of a failed run).
    pub(crate) fn keep_dir(&mut self) -> std::path::PathBuf {
        let replacement = tempfile::Builder::new()
            .prefix("tidelog-lab-empty-")
            .tempdir()
            .expect("create a temp dir");
        std::mem::replace(&mut self.dir, replacement).keep()
    }

    /// Starts `spec` (whose `netns` must be one of this lab's) with its output in `log_path`.
    pub(crate) fn spawn(&self, spec: &Spawn, log_path: &Path) -> anyhow::Result<NodeProcess> {
        anyhow::ensure!(
            self.nodes.contains(&spec.netns),
            "{} is not a namespace of this lab",
            spec.netns
        );
        NodeProcess::spawn(spec, log_path)
    }

    /// `program` to be run inside node `i`'s namespace (`ip netns exec <netns> program`).
    pub(crate) fn command(&self, i: usize, program: &str) -> std::process::Command {
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", self.netns(i), program]);
        command
    }

    /// Drops all traffic between `a` and `b` (both ways) until healed.
    pub(crate) fn cut(&self, a: End, b: End) -> anyhow::Result<()> {
        self.change_cuts(|cuts| cuts.cut(a, b), &[a, b])
    }

    /// Undoes [`Lab::cut`] of `a`–`b`.
    pub(crate) fn heal(&self, a: End, b: End) -> anyhow::Result<()> {
        self.change_cuts(|cuts| cuts.heal(a, b), &[a, b])
    }

    /// Cuts node `i` from every other node and from the host.
    pub(crate) fn isolate(&self, i: usize) -> anyhow::Result<()> {
        let others: Vec<End> = (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(End::Node)
            .chain([End::Host])
            .collect();
        self.change_cuts(
            |cuts| {
                for &other in &others {
                    cuts.cut(End::Node(i), other);
                }
            },
            &[&[End::Node(i)][..], &others].concat(),
        )
    }

    /// Heals every cut link.
    pub(crate) fn heal_all(&self) -> anyhow::Result<()> {
        let all: Vec<End> = (0..self.nodes.len()).map(End::Node).collect();
        self.change_cuts(|cuts| *cuts = firewall::Cuts::default(), &all)
    }

    /// Whether the link `a`–`b` is cut now.
    pub(crate) fn is_cut(&self, a: End, b: End) -> bool {
        self.cuts.lock().expect("cuts lock").is_cut(a, b)
    }

    /// Applies `change` to the cut set and rewrites the rules of the nodes among `touched`.
    fn change_cuts(
        &self,
        change: impl FnOnce(&mut firewall::Cuts),
        touched: &[End],
    ) -> anyhow::Result<()> {
        let mut cuts = self.cuts.lock().expect("cuts lock");
        change(&mut cuts);
        let subnet = self.subnet.expect("a built lab has a subnet");
        for end in touched {
            if let End::Node(i) = *end {
                let rules = cuts.rules(i, |end| address(subnet, end));
                host::run(
                    "ip",
                    &["netns", "exec", &self.nodes[i], "iptables-restore"],
                    Some(&rules),
                )
                .with_context(|| format!("set the iptables rules of node {i}"))?;
            }
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut namespaces = self.nodes.clone();
        namespaces.extend(self.hub.clone());
        for netns in &namespaces {
            if let Err(error) = owner::kill_processes_in(netns) {
                eprintln!("netlab: killing processes in {netns}: {error:#}");
            }
        }
        if let Some(subnet) = self.subnet {
            // Deletes both ends now (a namespace's devices go away only asynchronously).
            if let Err(error) = host::ip(&["link", "del", &uplink_name(subnet)]) {
                eprintln!("netlab: deleting {}: {error:#}", uplink_name(subnet));
            }
        }
        for netns in &namespaces {
            if let Err(error) = host::ip(&["netns", "del", netns]) {
                eprintln!("netlab: deleting namespace {netns}: {error:#}");
            }
        }
    }
}

fn uplink_name(subnet: u8) -> String {
    format!("tlr{subnet}")
}

fn address(subnet: u8, end: End) -> Ipv4Addr {
    let host = match end {
        End::Host => 1,
        End::Node(i) => FIRST_NODE_HOST + u8::try_from(i).expect("node index below NODES_MAX"),
    };
    Ipv4Addr::new(NET_PREFIX[0], NET_PREFIX[1], subnet, host)
}

/// Claims a /24 no interface of the host uses by creating the host's veth `tlr<subnet>` (whose
/// peer, `uplink`, goes to `hub`): the kernel refuses a second link of the same name, so two labs
/// never share a subnet.
fn claim_subnet(hub: &str) -> anyhow::Result<u8> {
    let in_use = host::ip(&["-o", "-4", "addr", "show"])?;
    for subnet in 1..=254u8 {
        let prefix = format!("{}.{}.{subnet}.", NET_PREFIX[0], NET_PREFIX[1]);
        if in_use.contains(&format!("inet {prefix}")) {
            continue;
        }
        let name = uplink_name(subnet);
        match host::ip(&[
            "link", "add", &name, "type", "veth", "peer", "name", "uplink", "netns", hub,
        ]) {
            Ok(_) => return Ok(subnet),
            Err(error) if format!("{error:#}").contains("File exists") => continue,
            Err(error) => return Err(error).context("create the host's veth into the lab"),
        }
    }
    bail!(
        "no free subnet in {}.{}.1-254.0/24",
        NET_PREFIX[0],
        NET_PREFIX[1]
    )
}
