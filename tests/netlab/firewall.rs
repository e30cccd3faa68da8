//! Which links of a lab are cut, and the iptables rules that cut them: pure, so the rules a node
//! gets are a function of the cut set. A cut drops packets both ways (established connections
//! stall, as on a real partition); nothing is rejected.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::Ipv4Addr;

/// One end of a link: a lab node (by index) or the host (the root namespace, where clients run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum End {
    Node(usize),
    Host,
}

/// The set of cut links; a link is an unordered pair of ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cuts {
    links: BTreeSet<(End, End)>,
}

impl Cuts {
    fn key(a: End, b: End) -> (End, End) {
        assert_ne!(a, b, "a link joins two different ends");
        if a < b { (a, b) } else { (b, a) }
    }

    pub(crate) fn cut(&mut self, a: End, b: End) {
        self.links.insert(Self::key(a, b));
    }

    pub(crate) fn heal(&mut self, a: End, b: End) {
        self.links.remove(&Self::key(a, b));
    }

    pub(crate) fn is_cut(&self, a: End, b: End) -> bool {
        self.links.contains(&Self::key(a, b))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Every end `node` cannot reach.
    pub(crate) fn cut_from(&self, node: usize) -> Vec<End> {
        let me = End::Node(node);
        self.links
            .iter()
            .filter_map(|&(a, b)| {
                if a == me {
                    Some(b)
                } else if b == me {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// `iptables-restore` input for `node`'s namespace: replaces its filter table with DROP rules
    /// for every end it is cut from. `address` maps an end to its IPv4 address.
    pub(crate) fn rules(&self, node: usize, address: impl Fn(End) -> Ipv4Addr) -> String {
        let mut rules = String::from(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        );
        for end in self.cut_from(node) {
            let ip = address(end);
            let _ = writeln!(rules, "-A INPUT -s {ip}/32 -j DROP");
            let _ = writeln!(rules, "-A OUTPUT -d {ip}/32 -j DROP");
        }
        rules.push_str("COMMIT\n");
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(end: End) -> Ipv4Addr {
        match end {
            End::Host => Ipv4Addr::new(10, 77, 3, 1),
            End::Node(i) => Ipv4Addr::new(10, 77, 3, 10 + u8::try_from(i).expect("small")),
        }
    }

    #[test]
    fn cuts_are_symmetric_and_heal_restores_an_empty_rule_set() {
        let mut cuts = Cuts::default();
        let empty = cuts.rules(0, address);
        cuts.cut(End::Node(1), End::Node(0));
        cuts.cut(End::Host, End::Node(0));
        assert!(cuts.is_cut(End::Node(0), End::Node(1)));
        assert_eq!(cuts.cut_from(1), vec![End::Node(0)]);
        assert_eq!(cuts.cut_from(2), Vec::<End>::new());
        let rules = cuts.rules(0, address);
        for line in [
            "-A INPUT -s 10.77.3.11/32 -j DROP",
            "-A OUTPUT -d 10.77.3.11/32 -j DROP",
            "-A INPUT -s 10.77.3.1/32 -j DROP",
            "-A OUTPUT -d 10.77.3.1/32 -j DROP",
        ] {
            assert!(rules.contains(line), "{line} missing from\n{rules}");
        }
        assert!(rules.ends_with("COMMIT\n"));
        cuts.heal(End::Node(0), End::Node(1));
        cuts.heal(End::Node(0), End::Host);
        assert!(cuts.is_empty());
        assert_eq!(cuts.rules(0, address), empty);
    }
}
