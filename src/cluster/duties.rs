//! The controller leader's duties: turn what gossip shows into commands. Registers the brokers
//! gossip finds (and their changed endpoints), fences a registered broker absent from gossip for
//! the broker session timeout, unfences it when it is back with the same data dir, adds
//! registered brokers to the controller group as learners and promotes learners until the
//! group has `controller_voters` voters. Pure planning here; `node.rs` runs the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::settings::InternalTopic;
use crate::gossip::{Member, Membership};
use crate::metadata::{BrokerRegistration, Endpoint, State};
use crate::storage;

/// The name of the Kafka listener clients are given (the security issue adds others).
pub(crate) const KAFKA_LISTENER: &str = "PLAINTEXT";

/// One step the leader takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Duty {
    Register(BrokerRegistration),
    Fence(i32),
    Unfence(i32),
    AddLearner {
        id: i32,
        rpc_addr: String,
    },
    /// A member of the controller group is registered at another cluster address now.
    SetAddress {
        id: i32,
        rpc_addr: String,
    },
    SetVoters(BTreeSet<u64>),
    /// A member of the controller group that is no longer registered (unregistered after it
    /// stopped) leaves the group.
    RemoveMember(u64),
    /// An internal topic the cluster does not have yet.
    CreateInternalTopic(InternalTopic),
}

/// What the leader sees when it plans.
pub(crate) struct Seen<'a> {
    pub(crate) leader: i32,
    pub(crate) state: &'a State,
    pub(crate) view: &'a Membership,
    pub(crate) voters: &'a BTreeSet<u64>,
    pub(crate) learners: &'a BTreeSet<u64>,
    /// The cluster RPC address the controller group has for each member.
    pub(crate) addresses: &'a BTreeMap<u64, String>,
    /// How long each registered broker has been missing from the live members, as this leader
    /// has watched (absent: live now).
    pub(crate) absent_for: &'a BTreeMap<i32, Duration>,
    pub(crate) session_timeout: Duration,
    pub(crate) controller_voters: usize,
    /// Internal topics are created once this many brokers are registered and unfenced.
    pub(crate) bootstrap_expect: usize,
    pub(crate) internal_topics: &'a [InternalTopic],
}

/// The registration a live gossip member asks for, if its gossip is usable.
pub(crate) fn registration_of(member: &Member) -> Option<BrokerRegistration> {
    let incarnation = storage::decode_uuid(&member.info.incarnation)?;
    let kafka = member
        .info
        .listeners
        .get(KAFKA_LISTENER)
        .or_else(|| member.info.listeners.values().next())?;
    Some(BrokerRegistration {
        id: member.node_id,
        incarnation,
        kafka: Endpoint {
            host: kafka.endpoint.host.clone(),
            port: kafka.endpoint.port,
        },
        cluster: Endpoint {
            host: member.info.cluster_rpc.host.clone(),
            port: member.info.cluster_rpc.port,
        },
        listeners: member
            .info
            .listeners
            .iter()
            .filter(|(name, _)| name.as_str() != KAFKA_LISTENER)
            .map(|(name, listener)| {
                let endpoint = Endpoint {
                    host: listener.endpoint.host.clone(),
                    port: listener.endpoint.port,
                };
                (name.clone(), endpoint)
            })
            .collect(),
        rack: member.info.rack.clone(),
        fenced: false,
    })
}

/// The steps to take now, in order. Membership changes come one at a time (raft's rule).
pub(crate) fn plan(seen: &Seen<'_>) -> Vec<Duty> {
    let Some(cluster_id) = seen.state.cluster_id.as_deref() else {
        return Vec::new();
    };
    let mut duties = Vec::new();
    let ours = |m: &&Member| {
        m.info
            .cluster_id
            .as_deref()
            .is_none_or(|id| id == cluster_id)
    };
    for member in seen.view.live.iter().filter(ours) {
        if seen.view.live_claims(member.node_id).count() > 1 {
            continue;
        }
        let Some(wanted) = registration_of(member) else {
            continue;
        };
        match seen.state.brokers.get(&member.node_id) {
            None => duties.push(Duty::Register(wanted)),
            Some(known) if known.incarnation != wanted.incarnation => {
                // Another data dir under a known id: only once the old one is fenced.
                if known.fenced {
                    duties.push(Duty::Register(wanted));
                }
            }
            Some(known)
                if known.kafka != wanted.kafka
                    || known.listeners != wanted.listeners
                    || known.cluster != wanted.cluster
                    || known.rack != wanted.rack =>
            {
                duties.push(Duty::Register(wanted));
            }
            Some(known) if known.fenced => duties.push(Duty::Unfence(known.id)),
            Some(_) => {}
        }
    }
    // A leader that sees at most a minority of the unfenced brokers is more likely cut off
    // itself than facing a majority failure: it fences no one (half is enough: with two
    // brokers, the other one going away is fenced).
    let unfenced: Vec<i32> = seen
        .state
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.id)
        .collect();
    let present = unfenced
        .iter()
        .filter(|id| !seen.absent_for.contains_key(id))
        .count();
    let sees_majority = present * 2 >= unfenced.len();
    for broker in seen.state.brokers.values() {
        let absent = seen.absent_for.get(&broker.id).copied();
        if sees_majority
            && !broker.fenced
            && broker.id != seen.leader
            && absent.is_some_and(|absent| absent >= seen.session_timeout)
        {
            duties.push(Duty::Fence(broker.id));
        }
    }
    if let Some(change) = membership_change(seen) {
        duties.push(change);
    }
    let serving = seen.state.brokers.values().filter(|b| !b.fenced).count();
    if serving >= seen.bootstrap_expect.max(1) {
        for topic in seen.internal_topics {
            if !seen.state.topics.contains_key(&topic.name) {
                duties.push(Duty::CreateInternalTopic(topic.clone()));
            }
        }
    }
    duties
}

/// The next controller-group change: a registered live broker outside the group becomes a
/// learner; then learners are promoted, lowest id first, until there are enough voters.
fn membership_change(seen: &Seen<'_>) -> Option<Duty> {
    let serving = |id: i32| {
        seen.state
            .brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && seen.view.is_live(id))
    };
    let member = |id: i32| {
        let id = id as u64;
        seen.voters.contains(&id) || seen.learners.contains(&id)
    };
    // An unregistered broker (UnregisterBroker, once it stopped) leaves the group; never the
    // leader or the last voter, and never a live one (the first voters of a new cluster are
    // members before they are registered).
    let gone = seen.voters.union(seen.learners).copied().find(|&id| {
        i32::try_from(id).is_ok_and(|id| {
            id != seen.leader && !seen.state.brokers.contains_key(&id) && !seen.view.is_live(id)
        }) && (seen.voters.len() > 1 || !seen.voters.contains(&id))
    });
    if let Some(id) = gone {
        return Some(Duty::RemoveMember(id));
    }
    for broker in seen.state.brokers.values() {
        let rpc_addr = broker.cluster_rpc_addr();
        if broker.id < 0 || !serving(broker.id) {
            continue;
        }
        if !member(broker.id) {
            return Some(Duty::AddLearner {
                id: broker.id,
                rpc_addr,
            });
        }
        if seen
            .addresses
            .get(&(broker.id as u64))
            .is_some_and(|known| *known != rpc_addr)
        {
            return Some(Duty::SetAddress {
                id: broker.id,
                rpc_addr,
            });
        }
    }
    let missing = seen.controller_voters.saturating_sub(seen.voters.len());
    let promoted: Vec<u64> = seen
        .learners
        .iter()
        .copied()
        .filter(|&id| i32::try_from(id).is_ok_and(serving))
        .take(missing)
        .collect();
    if promoted.is_empty() {
        return None;
    }
    Some(Duty::SetVoters(
        seen.voters.iter().copied().chain(promoted).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::{BrokerInfo, Endpoint as GossipEndpoint};

    const SESSION: Duration = Duration::from_secs(9);

    fn incarnation(id: i32) -> String {
        storage::encode_uuid([id as u8; 16])
    }

    fn member(id: i32, incarnation: String) -> Member {
        let mut info = BrokerInfo::for_test(&incarnation);
        info.cluster_rpc = GossipEndpoint::new("127.0.0.1", 7000 + id as u16);
        info.rack = None;
        Member {
            node_id: id,
            generation: 1,
            gossip_addr: format!("127.0.0.1:{}", 8000 + id).parse().unwrap(),
            info,
        }
    }

    fn view(ids: &[i32]) -> Membership {
        Membership {
            live: ids.iter().map(|&id| member(id, incarnation(id))).collect(),
            dead: Vec::new(),
        }
    }

    fn registered(ids: &[i32]) -> State {
        let mut state = State {
            cluster_id: Some("C".into()),
            ..State::default()
        };
        for member in view(ids).live {
            let registration = registration_of(&member).unwrap();
            state.brokers.insert(registration.id, registration);
        }
        state
    }

    struct Fixture {
        state: State,
        view: Membership,
        voters: BTreeSet<u64>,
        learners: BTreeSet<u64>,
        addresses: BTreeMap<u64, String>,
        absent_for: BTreeMap<i32, Duration>,
        internal_topics: Vec<InternalTopic>,
    }

    impl Fixture {
        fn plan(&self) -> Vec<Duty> {
            plan(&Seen {
                leader: 1,
                state: &self.state,
                view: &self.view,
                voters: &self.voters,
                learners: &self.learners,
                addresses: &self.addresses,
                absent_for: &self.absent_for,
                session_timeout: SESSION,
                controller_voters: 3,
                bootstrap_expect: 1,
                internal_topics: &self.internal_topics,
            })
        }
    }

    fn fixture(registered_ids: &[i32], live: &[i32], voters: &[u64]) -> Fixture {
        Fixture {
            state: registered(registered_ids),
            view: view(live),
            voters: voters.iter().copied().collect(),
            learners: BTreeSet::new(),
            addresses: BTreeMap::new(),
            absent_for: BTreeMap::new(),
            internal_topics: Vec::new(),
        }
    }

    #[test]
    fn an_unregistered_stopped_member_leaves_the_controller_group_but_a_live_one_stays() {
        // 4 was unregistered after it stopped: it leaves; 3 is a first voter not registered
        // yet but live: it stays.
        let mut f = fixture(&[1, 2], &[1, 2, 3], &[1, 2, 3]);
        f.learners = BTreeSet::from([4]);
        let removals = |duties: Vec<Duty>| -> Vec<Duty> {
            duties
                .into_iter()
                .filter(|d| matches!(d, Duty::RemoveMember(_)))
                .collect()
        };
        assert_eq!(removals(f.plan()), vec![Duty::RemoveMember(4)]);
        f.learners.clear();
        f.view = view(&[1, 2]);
        assert_eq!(removals(f.plan()), vec![Duty::RemoveMember(3)]);
        // Never the leader (1) or the last voter.
        let alone = fixture(&[], &[], &[1]);
        assert_eq!(removals(alone.plan()), vec![]);
        let mut pair = fixture(&[], &[], &[2]);
        pair.learners = BTreeSet::from([1]);
        assert_eq!(removals(pair.plan()), vec![]);
    }

    #[test]
    fn a_broker_gossip_finds_is_registered_then_added_as_learner_then_promoted() {
        let mut f = fixture(&[1], &[1, 2], &[1]);
        let duties = f.plan();
        assert!(
            matches!(&duties[..], [Duty::Register(r)] if r.id == 2),
            "{duties:?}"
        );
        f.state = registered(&[1, 2]);
        assert_eq!(
            f.plan(),
            vec![Duty::AddLearner {
                id: 2,
                rpc_addr: "127.0.0.1:7002".into()
            }]
        );
        f.learners.insert(2);
        assert_eq!(f.plan(), vec![Duty::SetVoters([1, 2].into())]);
    }

    #[test]
    fn a_member_registered_at_a_new_address_is_reached_there() {
        let mut f = fixture(&[1, 2], &[1, 2], &[1, 2]);
        f.addresses = BTreeMap::from([(1, "127.0.0.1:7001".into()), (2, "127.0.0.1:1".into())]);
        assert_eq!(
            f.plan(),
            vec![Duty::SetAddress {
                id: 2,
                rpc_addr: "127.0.0.1:7002".into()
            }]
        );
    }

    #[test]
    fn missing_internal_topics_are_created_once_enough_brokers_serve() {
        let mut f = fixture(&[1, 2], &[1, 2], &[1, 2]);
        let offsets = InternalTopic {
            name: "__consumer_offsets".into(),
            partitions: 50,
            replication_factor: None,
            configs: BTreeMap::new(),
        };
        f.internal_topics = vec![offsets.clone()];
        assert_eq!(f.plan(), vec![Duty::CreateInternalTopic(offsets.clone())]);
        f.state.brokers.get_mut(&2).unwrap().fenced = true;
        let seen = Seen {
            leader: 1,
            state: &f.state,
            view: &f.view,
            voters: &f.voters,
            learners: &f.learners,
            addresses: &f.addresses,
            absent_for: &f.absent_for,
            session_timeout: SESSION,
            controller_voters: 3,
            bootstrap_expect: 2,
            internal_topics: &f.internal_topics,
        };
        assert!(
            !plan(&seen).contains(&Duty::CreateInternalTopic(offsets)),
            "one serving broker of the two expected: wait"
        );
    }

    #[test]
    fn learners_beyond_the_voter_count_stay_learners() {
        let mut f = fixture(&[1, 2, 3, 4], &[1, 2, 3, 4], &[1, 2, 3]);
        f.learners.insert(4);
        assert_eq!(f.plan(), Vec::new());
    }

    #[test]
    fn nothing_is_planned_before_the_cluster_has_an_id() {
        let mut f = fixture(&[], &[1, 2], &[1]);
        f.state.cluster_id = None;
        assert_eq!(f.plan(), Vec::new());
    }

    #[test]
    fn a_broker_absent_for_the_session_timeout_is_fenced_and_unfenced_when_back() {
        let mut f = fixture(&[1, 2], &[1], &[1, 2]);
        f.absent_for.insert(2, SESSION - Duration::from_millis(1));
        assert_eq!(f.plan(), Vec::new());
        f.absent_for.insert(2, SESSION);
        assert_eq!(f.plan(), vec![Duty::Fence(2)]);
        f.state.brokers.get_mut(&2).unwrap().fenced = true;
        f.absent_for.clear();
        f.view = view(&[1, 2]);
        assert_eq!(f.plan(), vec![Duty::Unfence(2)]);
    }

    #[test]
    fn a_leader_that_sees_no_majority_fences_no_one() {
        let mut f = fixture(&[1, 2, 3], &[1], &[1, 2, 3]);
        f.absent_for.insert(2, SESSION);
        f.absent_for.insert(3, SESSION);
        assert_eq!(f.plan(), Vec::new());
        f.absent_for.remove(&2);
        f.view = view(&[1, 2]);
        assert_eq!(f.plan(), vec![Duty::Fence(3)]);
    }

    #[test]
    fn the_leader_never_fences_itself() {
        let mut f = fixture(&[1, 2], &[2], &[1, 2]);
        f.absent_for.insert(1, SESSION * 2);
        assert_eq!(f.plan(), Vec::new());
    }

    #[test]
    fn a_second_data_dir_under_a_live_id_is_not_registered_until_the_first_is_fenced() {
        let mut f = fixture(&[1, 2], &[1], &[1, 2]);
        f.view.live.push(member(2, storage::encode_uuid([99; 16])));
        assert_eq!(f.plan(), Vec::new());
        f.state.brokers.get_mut(&2).unwrap().fenced = true;
        let duties = f.plan();
        assert!(
            matches!(&duties[..], [Duty::Register(r)] if r.incarnation == [99; 16]),
            "{duties:?}"
        );
    }

    #[test]
    fn a_broker_of_another_cluster_is_never_registered() {
        let mut f = fixture(&[1], &[1], &[1]);
        let mut stranger = member(5, incarnation(5));
        stranger.info.cluster_id = Some("OTHER".into());
        f.view.live.push(stranger);
        assert_eq!(f.plan(), Vec::new());
    }

    #[test]
    fn a_restart_with_new_endpoints_registers_again() {
        let mut f = fixture(&[1, 2], &[1, 2], &[1, 2]);
        f.view.live[1].info.cluster_rpc = GossipEndpoint::new("127.0.0.1", 1);
        let duties = f.plan();
        assert!(
            matches!(&duties[..], [Duty::Register(r)] if r.cluster.port == 1),
            "{duties:?}"
        );
    }
}
