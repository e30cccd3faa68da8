//! One timer task per broker for every partition group on it, in place of openraft's tick (a
//! task per group waking five times a heartbeat interval) and of most raft heartbeats: each
//! round, one liveness message per peer broker names the groups this broker leads, and a group
//! whose leader went unheard for its election timeout starts a pre-vote election.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::{Raft, ServerState};
use tokio::time::Instant;

use super::state_machine::PartitionMachine;
use crate::replication::rpc::{GroupId, Handler, HandlerFuture, Method, Peers, Registry};
use crate::replication::types::{Term, TypeConfig};

/// The cluster RPC group of the pacemakers' liveness messages (no partition group gets it).
pub(crate) const PACEMAKER_GROUP: GroupId = u64::MAX - 1;
const LIVENESS: Method = 0;

/// How a broker's partition groups keep time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacemakerSettings {
    /// This broker's id.
    pub(crate) node_id: u64,
    /// How often a leader tells each peer broker which groups it leads.
    pub(crate) liveness_interval: Duration,
    /// How often a leader also sends raft heartbeats (they renew the followers' leader lease
    /// and let a follower that fell behind report it; commits reach followers without them).
    pub(crate) raft_heartbeat_interval: Duration,
    /// How long a follower waits for its leader before campaigning (spread over once to twice
    /// this, per group and attempt).
    pub(crate) election_timeout: Duration,
}

/// The liveness messages and election timers of every partition group of one broker.
pub(crate) struct Pacemaker {
    settings: PacemakerSettings,
    peers: Arc<Peers>,
    groups: Mutex<HashMap<GroupId, Arc<Paced>>>,
}

impl std::fmt::Debug for Pacemaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacemaker")
            .field("settings", &self.settings)
            .field("groups", &lock(&self.groups).len())
            .finish()
    }
}

/// One group as the pacemaker drives it.
pub(super) struct Paced {
    group: GroupId,
    node_id: u64,
    raft: Raft<TypeConfig, PartitionMachine>,
    timer: Mutex<Timer>,
}

/// A group's election timer: it runs from the last sign of a leader (a raft message, a
/// liveness message, or this broker's own last round as leader) or the last election it
/// started.
struct Timer {
    since: Instant,
    /// Elections started since a leader was last heard (varies the timeout of each).
    attempts: u64,
    /// The leadership transfer this replica started as leader, if any.
    transfer: Option<Transfer>,
}

/// A leadership transfer: from then on openraft refuses the leader's writes for the rest of
/// its term, so if the target never takes over (the transfer message was lost, the target
/// died), the leader must make way.
struct Transfer {
    term: Term,
    to: u64,
    since: Instant,
    /// Whether the stall was already seen (the transfer sent again once).
    stalled: bool,
}

/// What a liveness message carries: the sender and the (group, term) of each group it leads
/// with the receiver as a member.
type Liveness = (u64, Vec<(GroupId, Term)>);

impl Pacemaker {
    /// Starts the pacemaker's task and serves the peers' liveness messages through
    /// `registry`. The task ends once the pacemaker is dropped.
    pub(crate) fn start(
        settings: PacemakerSettings,
        peers: Arc<Peers>,
        registry: &Registry,
    ) -> Arc<Pacemaker> {
        let pacemaker = Arc::new(Pacemaker {
            settings,
            peers,
            groups: Mutex::new(HashMap::new()),
        });
        registry.insert(
            PACEMAKER_GROUP,
            Arc::new(LivenessHandler {
                pacemaker: Arc::downgrade(&pacemaker),
            }),
        );
        tokio::spawn(run(Arc::downgrade(&pacemaker)));
        pacemaker
    }

    pub(super) fn settings(&self) -> PacemakerSettings {
        self.settings
    }

    /// Drives `raft` from now on; its election timer starts now.
    pub(super) fn add(
        &self,
        group: GroupId,
        raft: Raft<TypeConfig, PartitionMachine>,
    ) -> Arc<Paced> {
        let paced = Arc::new(Paced {
            group,
            node_id: self.settings.node_id,
            raft,
            timer: Mutex::new(Timer {
                since: Instant::now(),
                attempts: 0,
                transfer: None,
            }),
        });
        lock(&self.groups).insert(group, Arc::clone(&paced));
        paced
    }

    pub(super) fn remove(&self, group: GroupId) {
        lock(&self.groups).remove(&group);
    }

    /// `sender` leads `groups` (at those terms): their election timers here start again,
    /// unless this replica already saw a later term.
    fn leaders_alive(&self, sender: u64, groups: &[(GroupId, Term)]) {
        let known = lock(&self.groups);
        for (group, term) in groups {
            if let Some(paced) = known.get(group)
                && paced
                    .raft
                    .server_metrics()
                    .borrow_watched()
                    .vote
                    .leader_id
                    .term
                    <= *term
                && sender != paced.node_id
            {
                paced.heard();
            }
        }
    }
}

/// Where a leader's liveness messages go: each member of the group but itself.
struct Led {
    term: Term,
    members: Vec<(u64, String)>,
}

impl Paced {
    /// A leader's message arrived: the election timer starts again.
    pub(super) fn heard(&self) {
        let mut timer = lock(&self.timer);
        timer.since = Instant::now();
        timer.attempts = 0;
    }

    /// This replica, leading at `term`, started handing the leadership to `to`.
    pub(super) fn transfer_started(&self, term: Term, to: u64) {
        lock(&self.timer).transfer = Some(Transfer {
            term,
            to,
            since: Instant::now(),
            stalled: false,
        });
    }

    /// Whether a transfer this leader started in `term` has not ended after an election
    /// timeout: the leader then stops announcing itself (no liveness messages, no raft
    /// heartbeats), so the followers' timers run out and one of them is elected, and sends
    /// the transfer once more, in case only its message was lost.
    async fn transfer_stalled(&self, term: Term, election_timeout: Duration) -> bool {
        let resend = {
            let mut timer = lock(&self.timer);
            let Some(transfer) = timer.transfer.as_mut().filter(|t| t.term == term) else {
                timer.transfer = None;
                return false;
            };
            if transfer.since.elapsed() < election_timeout {
                return false;
            }
            let first = !transfer.stalled;
            transfer.stalled = true;
            first.then_some(transfer.to)
        };
        if let Some(to) = resend {
            tracing::info!(
                group = self.group,
                term,
                to,
                "leadership transfer stalled; no longer announcing this leader, so the group elects another"
            );
            let _ = self.raft.trigger().transfer_leader(to).await;
        }
        true
    }

    /// One round: a leader answers its term and members (and sends raft heartbeats when
    /// `raft_heartbeat`), unless a transfer it started stalled; a follower whose timer ran
    /// out starts a pre-vote election (which openraft itself refuses while its leader lease
    /// holds).
    async fn beat(&self, election_timeout: Duration, raft_heartbeat: bool) -> Option<Led> {
        let (state, term, membership) = {
            let server = self.raft.server_metrics();
            let server = server.borrow_watched();
            (
                server.state,
                server.vote.leader_id.term,
                Arc::clone(&server.membership_config),
            )
        };
        if state == ServerState::Leader {
            if self.transfer_stalled(term, election_timeout).await {
                return None;
            }
            self.heard();
            if raft_heartbeat {
                let _ = self.raft.trigger().heartbeat().await;
            }
            let members = membership
                .membership()
                .nodes()
                .filter(|(id, _)| **id != self.node_id)
                .map(|(id, node)| (*id, node.rpc_addr.clone()))
                .collect();
            return Some(Led { term, members });
        }
        if state == ServerState::Learner || state == ServerState::Shutdown {
            return None;
        }
        let now = Instant::now();
        {
            let mut timer = lock(&self.timer);
            let timeout = election_timeout + self.spread(timer.attempts, election_timeout);
            if now.duration_since(timer.since) < timeout {
                return None;
            }
            timer.since = now;
            timer.attempts += 1;
        }
        tracing::info!(group = self.group, term, state = ?state, "partition leader unheard; starting an election");
        let _ = self.raft.trigger().elect(true).await;
        None
    }

    /// A part of `range` that differs between groups, replicas and attempts, so the replicas
    /// of a group whose leader died do not all campaign in the same round.
    fn spread(&self, attempts: u64, range: Duration) -> Duration {
        let mut x = self.group ^ self.node_id.rotate_left(32) ^ attempts.wrapping_mul(0x9e37);
        // splitmix64's finalizer.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let range_ms = u64::try_from(range.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(x % range_ms)
    }
}

async fn run(pacemaker: Weak<Pacemaker>) {
    let Some(settings) = pacemaker.upgrade().map(|p| p.settings) else {
        return;
    };
    let mut rounds = tokio::time::interval(settings.liveness_interval);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_raft_heartbeat = Instant::now();
    loop {
        rounds.tick().await;
        let Some(strong) = pacemaker.upgrade() else {
            return;
        };
        let groups: Vec<Arc<Paced>> = lock(&strong.groups).values().cloned().collect();
        let peers = Arc::clone(&strong.peers);
        drop(strong);
        let raft_heartbeat = last_raft_heartbeat.elapsed() >= settings.raft_heartbeat_interval;
        if raft_heartbeat {
            last_raft_heartbeat = Instant::now();
        }
        // Per peer broker: its address and the groups this broker leads with it as a member.
        let mut liveness: BTreeMap<u64, (String, Vec<(GroupId, Term)>)> = BTreeMap::new();
        for paced in groups {
            let Some(led) = paced.beat(settings.election_timeout, raft_heartbeat).await else {
                continue;
            };
            for (peer, address) in led.members {
                let entry = liveness
                    .entry(peer)
                    .or_insert_with(|| (address, Vec::new()));
                entry.1.push((paced.group, led.term));
            }
        }
        for (peer, (address, led)) in liveness {
            let message: Liveness = (settings.node_id, led);
            let Ok(payload) = postcard::to_stdvec(&message) else {
                continue;
            };
            let peers = Arc::clone(&peers);
            // Bounded by the call's timeout of one round: at most a round's calls in flight.
            tokio::spawn(async move {
                let _ = peers
                    .call(
                        peer,
                        &address,
                        (PACEMAKER_GROUP, LIVENESS),
                        Bytes::from(payload),
                        settings.liveness_interval,
                    )
                    .await;
            });
        }
    }
}

/// Serves the peers' liveness messages.
struct LivenessHandler {
    pacemaker: Weak<Pacemaker>,
}

impl Handler for LivenessHandler {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        let answer = match (method, self.pacemaker.upgrade()) {
            (LIVENESS, Some(pacemaker)) => postcard::from_bytes::<Liveness>(&payload)
                .map(|(sender, groups)| {
                    pacemaker.leaders_alive(sender, &groups);
                    Bytes::new()
                })
                .map_err(|error| format!("decode: {error}")),
            (LIVENESS, None) => Err("the pacemaker stopped".to_owned()),
            (other, _) => Err(format!("unknown pacemaker method {other}")),
        };
        Box::pin(async move { answer })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
