//! Forming the cluster: what a broker whose controller has no membership yet does with what
//! gossip shows. Pure decisions over a membership view; `node.rs` acts on them.
//!
//! - Some live broker gossips a cluster id: a cluster exists. A broker of that cluster (or a
//!   fresh one) waits for its leader to register it and add it to the controller group; a broker
//!   whose data dir belongs to another cluster refuses to start.
//! - Otherwise, once `bootstrap_expect` fresh brokers (no cluster id) are live, the lowest
//!   `bootstrap_expect` node ids are the first voters and the lowest of them initializes the
//!   controller. Starting more fresh brokers than that at once can form two clusters (as with
//!   Consul's `bootstrap_expect`): start exactly `bootstrap_expect`, then the rest.
//! - A live broker with this node id and another data dir that is already in the cluster makes
//!   this one (the newcomer) refuse to start.

use std::collections::BTreeMap;

use crate::gossip::Membership;

/// What a broker not yet in the controller group does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Formation {
    /// Not enough fresh brokers seen yet, or another broker initializes.
    Wait,
    /// Initialize the controller with these voters: node id to cluster RPC address.
    Initialize(BTreeMap<i32, String>),
    /// A cluster exists: wait to be registered and added by its leader.
    Join,
    /// Never join: the reason, for the log.
    Refuse(String),
}

/// Who is deciding: this broker.
#[derive(Debug, Clone)]
pub(crate) struct Me<'a> {
    pub(crate) node_id: i32,
    pub(crate) incarnation: &'a str,
    pub(crate) cluster_id: Option<&'a str>,
}

/// Decides from `view` (which includes this broker itself once gossip runs).
pub(crate) fn decide(me: &Me<'_>, view: &Membership, bootstrap_expect: usize) -> Formation {
    let others = || {
        view.live
            .iter()
            .filter(|m| !(m.node_id == me.node_id && m.info.incarnation == me.incarnation))
    };
    if let Some(claimant) =
        others().find(|m| m.node_id == me.node_id && m.info.cluster_id.is_some())
    {
        return Formation::Refuse(format!(
            "node id {} is already used by a live broker of cluster {} gossiping at {} (data dir {}); \
             give this broker another node.id or stop the other one",
            me.node_id,
            claimant.info.cluster_id.as_deref().unwrap_or_default(),
            claimant.gossip_addr,
            claimant.info.incarnation,
        ));
    }
    if let Some(mine) = me.cluster_id {
        if let Some(reason) = foreign_cluster(me, mine, view) {
            return Formation::Refuse(reason);
        }
        // Our cluster's brokers are not seen yet: our own controller log has the members.
        return Formation::Join;
    }
    if others().any(|m| m.info.cluster_id.is_some()) {
        return Formation::Join;
    }
    let mut fresh: BTreeMap<i32, String> = BTreeMap::new();
    for member in view.live.iter().filter(|m| m.info.cluster_id.is_none()) {
        if view.live_claims(member.node_id).count() > 1 {
            // Two fresh brokers claim one id: neither may be a first voter.
            return Formation::Wait;
        }
        fresh.insert(member.node_id, member.info.cluster_rpc.to_string());
    }
    if !fresh.contains_key(&me.node_id) || fresh.len() < bootstrap_expect {
        return Formation::Wait;
    }
    let voters: BTreeMap<i32, String> = fresh.into_iter().take(bootstrap_expect).collect();
    match voters.keys().next() {
        Some(&lowest) if lowest == me.node_id => Formation::Initialize(voters),
        _ => Formation::Wait,
    }
}

/// Why `me`, a broker of cluster `mine`, must not run here: every other broker gossip finds
/// is of another cluster (its seeds point at a cluster this data dir does not belong to).
pub(crate) fn foreign_cluster(me: &Me<'_>, mine: &str, view: &Membership) -> Option<String> {
    let mut theirs = view
        .live
        .iter()
        .filter(|m| !(m.node_id == me.node_id && m.info.incarnation == me.incarnation))
        .filter_map(|m| m.info.cluster_id.as_deref());
    let first = theirs.clone().next()?;
    if theirs.any(|id| id == mine) {
        return None;
    }
    Some(format!(
        "this data dir belongs to cluster {mine} but the brokers gossip finds are of cluster \
         {first}; point --seeds at brokers of cluster {mine} or use an empty data dir"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::{BrokerInfo, Endpoint, Member};

    fn member(id: i32, incarnation: &str, cluster: Option<&str>) -> Member {
        let mut info = BrokerInfo::for_test(incarnation);
        info.cluster_rpc = Endpoint::new("127.0.0.1", 7000 + id as u16);
        info.cluster_id = cluster.map(str::to_owned);
        Member {
            node_id: id,
            generation: 1,
            gossip_addr: format!("127.0.0.1:{}", 8000 + id).parse().unwrap(),
            info,
        }
    }

    fn view(members: Vec<Member>) -> Membership {
        let mut live = members;
        live.sort_by(|a, b| {
            (a.node_id, &a.info.incarnation).cmp(&(b.node_id, &b.info.incarnation))
        });
        Membership {
            live,
            dead: Vec::new(),
        }
    }

    fn me(id: i32) -> Me<'static> {
        Me {
            node_id: id,
            incarnation: ["a", "b", "c", "d"][id as usize % 4],
            cluster_id: None,
        }
    }

    fn fresh(ids: &[i32]) -> Vec<Member> {
        ids.iter()
            .map(|&id| member(id, me(id).incarnation, None))
            .collect()
    }

    #[test]
    fn the_lowest_of_the_first_fresh_brokers_initializes_once_enough_are_seen() {
        assert_eq!(decide(&me(1), &view(fresh(&[1, 2])), 3), Formation::Wait);
        let three = view(fresh(&[1, 2, 3]));
        let Formation::Initialize(voters) = decide(&me(1), &three, 3) else {
            panic!("node 1 initializes");
        };
        assert_eq!(voters.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(voters[&2], "127.0.0.1:7002");
        assert_eq!(decide(&me(2), &three, 3), Formation::Wait);
        assert_eq!(decide(&me(3), &three, 3), Formation::Wait);
    }

    #[test]
    fn a_single_broker_forms_its_own_cluster_with_bootstrap_expect_one() {
        let alone = view(fresh(&[5]));
        assert!(matches!(decide(&me(5), &alone, 1), Formation::Initialize(v) if v.len() == 1));
        // Not yet in its own view (gossip not started): wait.
        assert_eq!(decide(&me(5), &view(Vec::new()), 1), Formation::Wait);
    }

    #[test]
    fn a_broker_seeing_an_existing_cluster_joins_it_instead_of_forming_one() {
        let mut members = fresh(&[4]);
        members.push(member(1, "x", Some("C1")));
        assert_eq!(decide(&me(4), &view(members), 1), Formation::Join);
    }

    #[test]
    fn a_data_dir_of_another_cluster_is_refused() {
        let mut mine = me(4);
        mine.cluster_id = Some("C2");
        let members = vec![
            member(1, "x", Some("C1")),
            member(4, mine.incarnation, Some("C2")),
        ];
        let Formation::Refuse(reason) = decide(&mine, &view(members), 1) else {
            panic!("refused");
        };
        assert!(
            reason.contains("cluster C2") && reason.contains("cluster C1"),
            "{reason}"
        );
        // Among brokers of its own cluster it rejoins.
        let members = vec![
            member(1, "x", Some("C2")),
            member(4, mine.incarnation, Some("C2")),
        ];
        assert_eq!(decide(&mine, &view(members), 1), Formation::Join);
    }

    #[test]
    fn a_second_claimant_of_a_live_node_id_is_refused() {
        let members = vec![member(1, "x", Some("C1")), member(1, "newcomer", None)];
        let newcomer = Me {
            node_id: 1,
            incarnation: "newcomer",
            cluster_id: None,
        };
        let Formation::Refuse(reason) = decide(&newcomer, &view(members), 1) else {
            panic!("refused");
        };
        assert!(reason.contains("node id 1 is already used"), "{reason}");
    }

    #[test]
    fn two_fresh_claimants_of_one_id_form_nothing() {
        let mut members = fresh(&[1, 2]);
        members.push(member(1, "other", None));
        assert_eq!(decide(&me(1), &view(members), 2), Formation::Wait);
    }
}
