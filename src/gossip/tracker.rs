//! Builds the `Membership` view from what chitchat holds each round: decodes each node state
//! once per version (a lying peer is logged once and left out), remembers who was seen live and
//! since when a node is dead, and keeps only the newest generation of each broker. Pure: no
//! chitchat types, the caller supplies the observations and the clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::membership::{DeadMember, Member, Membership};
use super::{Error, codec};
use crate::limits;

/// A gossip identity: what chitchat calls a `ChitchatId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct NodeKey {
    pub(super) node_id: Arc<str>,
    pub(super) generation: u64,
    pub(super) gossip_addr: SocketAddr,
}

#[derive(Debug)]
struct Tracked {
    /// Chitchat's max version of the node state when `member` was decoded.
    max_version: u64,
    /// `None`: not decodable (yet).
    member: Option<Member>,
    is_live: bool,
    seen_live: bool,
    dead_since: Option<Instant>,
}

#[derive(Debug, Default)]
pub(super) struct Tracker {
    nodes: HashMap<NodeKey, Tracked>,
    observed: HashSet<NodeKey>,
    over_capacity_warned: bool,
}

impl Tracker {
    /// Records one node state of this round; `key_values` is read only when `max_version`
    /// changed since the last round.
    pub(super) fn observe<'a>(
        &mut self,
        key: &NodeKey,
        is_live: bool,
        max_version: u64,
        key_values: impl Iterator<Item = (&'a str, &'a str)>,
        now: Instant,
    ) {
        if !self.nodes.contains_key(key) && self.nodes.len() >= limits::GOSSIP_MEMBERS_MAX {
            if !self.over_capacity_warned {
                warn!(
                    members_max = limits::GOSSIP_MEMBERS_MAX,
                    "more gossip node states than the membership view holds; ignoring the rest"
                );
                self.over_capacity_warned = true;
            }
            return;
        }
        self.observed.insert(key.clone());
        let tracked = self.nodes.entry(key.clone()).or_insert(Tracked {
            max_version: u64::MAX,
            member: None,
            is_live,
            seen_live: false,
            dead_since: None,
        });
        if tracked.max_version != max_version {
            tracked.max_version = max_version;
            tracked.member = decode_member(key, key_values);
        }
        tracked.is_live = is_live;
        if is_live {
            tracked.seen_live = true;
            tracked.dead_since = None;
        } else if tracked.seen_live && tracked.dead_since.is_none() {
            tracked.dead_since = Some(now);
        }
    }

    /// Forgets nodes not observed this round (gossip forgot them) and returns the view.
    pub(super) fn finish_round(&mut self) -> Membership {
        let observed = std::mem::take(&mut self.observed);
        self.nodes.retain(|key, _| observed.contains(key));
        if self.nodes.len() < limits::GOSSIP_MEMBERS_MAX {
            self.over_capacity_warned = false;
        }
        // The newest generation of each (node id, incarnation); ties go to the live entry.
        let mut newest: BTreeMap<(i32, &str), &Tracked> = BTreeMap::new();
        for tracked in self.nodes.values() {
            let Some(member) = &tracked.member else {
                continue;
            };
            let slot = newest
                .entry((member.node_id, member.info.incarnation.as_str()))
                .or_insert(tracked);
            if rank(tracked) > rank(slot) {
                *slot = tracked;
            }
        }
        let mut view = Membership::default();
        for tracked in newest.into_values() {
            let member = tracked
                .member
                .clone()
                .expect("only decoded members are ranked");
            if tracked.is_live {
                view.live.push(member);
            } else if let Some(dead_since) = tracked.dead_since {
                view.dead.push(DeadMember { member, dead_since });
            }
        }
        view
    }
}

fn rank(tracked: &Tracked) -> (u64, bool, Option<SocketAddr>) {
    let member = tracked.member.as_ref();
    (
        member.map_or(0, |m| m.generation),
        tracked.is_live,
        member.map(|m| m.gossip_addr),
    )
}

/// The member a node state describes, or `None` (logged) if it does not decode.
fn decode_member<'a>(
    key: &NodeKey,
    key_values: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<Member> {
    let node_id = match key.node_id.parse::<i32>() {
        Ok(node_id) if node_id >= 0 => node_id,
        _ => {
            warn!(
                peer = %key.gossip_addr,
                node_id = %key.node_id.escape_debug(),
                "ignoring a gossip node whose id is not a broker id"
            );
            return None;
        }
    };
    match codec::decode(key_values) {
        Ok(info) => Some(Member {
            node_id,
            generation: key.generation,
            gossip_addr: key.gossip_addr,
            info,
        }),
        Err(Error::IncompleteBrokerInfo { key: missing }) => {
            debug!(peer = %key.gossip_addr, node_id, missing, "gossip node state incomplete");
            None
        }
        Err(error) => {
            warn!(
                peer = %key.gossip_addr,
                node_id,
                generation = key.generation,
                %error,
                "ignoring a gossip node publishing invalid broker info"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gossip::BrokerInfo;

    fn key(node_id: &str, generation: u64, port: u16) -> NodeKey {
        NodeKey {
            node_id: Arc::from(node_id),
            generation,
            gossip_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn kvs(incarnation: &str) -> BTreeMap<String, String> {
        codec::encode(&BrokerInfo::for_test(incarnation)).unwrap()
    }

    struct Round<'a> {
        tracker: &'a mut Tracker,
        now: Instant,
    }

    impl Round<'_> {
        fn node(
            self,
            key: &NodeKey,
            is_live: bool,
            version: u64,
            kvs: &BTreeMap<String, String>,
        ) -> Self {
            let iter = kvs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            self.tracker.observe(key, is_live, version, iter, self.now);
            self
        }

        fn finish(self) -> Membership {
            self.tracker.finish_round()
        }
    }

    fn round(tracker: &mut Tracker, now: Instant) -> Round<'_> {
        Round { tracker, now }
    }

    fn live_ids(view: &Membership) -> Vec<(i32, u64)> {
        view.live
            .iter()
            .map(|m| (m.node_id, m.generation))
            .collect()
    }

    fn dead_ids(view: &Membership) -> Vec<(i32, u64)> {
        view.dead
            .iter()
            .map(|d| (d.member.node_id, d.member.generation))
            .collect()
    }

    #[test]
    fn a_node_seen_live_then_silent_is_dead_since_the_first_silent_round() {
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        let a = key("1", 1, 1);
        let view = round(&mut tracker, t0)
            .node(&a, true, 5, &kvs("a"))
            .finish();
        assert_eq!(live_ids(&view), [(1, 1)]);
        let t1 = t0 + Duration::from_secs(3);
        let view = round(&mut tracker, t1)
            .node(&a, false, 5, &kvs("a"))
            .finish();
        assert_eq!(live_ids(&view), []);
        assert_eq!(dead_ids(&view), [(1, 1)]);
        assert_eq!(view.dead[0].dead_since, t1);
        let view = round(&mut tracker, t1 + Duration::from_secs(1))
            .node(&a, false, 5, &kvs("a"))
            .finish();
        assert_eq!(
            view.dead[0].dead_since, t1,
            "dead since the first silent round"
        );
        let view = round(&mut tracker, t1)
            .node(&a, true, 6, &kvs("a"))
            .finish();
        assert_eq!((live_ids(&view), dead_ids(&view)), (vec![(1, 1)], vec![]));
        let view = round(&mut tracker, t1).finish();
        assert_eq!(
            view,
            Membership::default(),
            "forgotten by gossip, forgotten here"
        );
    }

    #[test]
    fn a_node_never_seen_live_is_not_reported() {
        let mut tracker = Tracker::default();
        let view = round(&mut tracker, Instant::now())
            .node(&key("1", 1, 1), false, 5, &kvs("a"))
            .finish();
        assert_eq!(view, Membership::default());
    }

    #[test]
    fn a_higher_generation_replaces_the_older_one_even_before_it_is_live() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        let (old, new) = (key("2", 1, 2), key("2", 2, 2));
        let view = round(&mut tracker, now)
            .node(&old, true, 5, &kvs("a"))
            .finish();
        assert_eq!(live_ids(&view), [(2, 1)]);
        let view = round(&mut tracker, now)
            .node(&old, true, 5, &kvs("a"))
            .node(&new, false, 5, &kvs("a"))
            .finish();
        assert_eq!(
            view,
            Membership::default(),
            "the old run is not reported once a newer exists"
        );
        let view = round(&mut tracker, now)
            .node(&old, false, 5, &kvs("a"))
            .node(&new, true, 5, &kvs("a"))
            .finish();
        assert_eq!((live_ids(&view), dead_ids(&view)), (vec![(2, 2)], vec![]));
    }

    #[test]
    fn two_incarnations_claiming_one_id_are_both_reported() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        let view = round(&mut tracker, now)
            .node(&key("3", 1, 3), true, 5, &kvs("first"))
            .node(&key("3", 9, 4), true, 5, &kvs("second"))
            .node(&key("4", 1, 5), true, 5, &kvs("other"))
            .finish();
        assert_eq!(live_ids(&view), [(3, 1), (3, 9), (4, 1)]);
        assert_eq!(view.conflicting_node_ids(), [3]);
        assert_eq!(view.live_claims(3).count(), 2);
        assert!(view.is_live(4) && !view.is_live(5));
    }

    #[test]
    fn undecodable_node_states_are_left_out() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        let mut lying = kvs("liar");
        lying.insert("cluster_rpc".to_string(), "nowhere".to_string());
        let mut partial = kvs("partial");
        partial.remove("incarnation");
        let view = round(&mut tracker, now)
            .node(&key("not-a-number", 1, 1), true, 5, &kvs("a"))
            .node(&key("-4", 1, 2), true, 5, &kvs("b"))
            .node(&key("5", 1, 3), true, 5, &lying)
            .node(&key("6", 1, 4), true, 5, &partial)
            .node(&key("7", 1, 5), true, 5, &kvs("good"))
            .finish();
        assert_eq!(live_ids(&view), [(7, 1)]);
        // Complete data arriving at a higher version is picked up.
        let view = round(&mut tracker, now)
            .node(&key("6", 1, 4), true, 6, &kvs("p"))
            .finish();
        assert_eq!(live_ids(&view), [(6, 1)]);
    }

    #[test]
    fn node_states_beyond_the_members_max_are_ignored() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        let data = kvs("x");
        for id in 0..limits::GOSSIP_MEMBERS_MAX + 10 {
            let port = u16::try_from(id).unwrap();
            tracker.observe(
                &key(&id.to_string(), 1, port),
                true,
                1,
                data.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                now,
            );
        }
        assert_eq!(
            tracker.finish_round().live.len(),
            limits::GOSSIP_MEMBERS_MAX
        );
    }
}
