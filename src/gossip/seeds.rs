//! Seeds given by name (`broker-0.tidelog:7946`): resolved again every gossip round, and each
//! resolved address that is not a live node yet gets a SYN. Chitchat itself resolves names only
//! once a minute, too slowly for brokers whose DNS names appear as their pods start.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chitchat::ChitchatHandle;
use tokio::sync::watch;
use tokio::time::{self, MissedTickBehavior};
use tracing::{debug, info, warn};

/// The longest one resolution may take (at least one gossip interval).
const RESOLVE_TIMEOUT_MIN: Duration = Duration::from_secs(2);

/// Resolves `names` every `interval` until `stop` changes or closes.
pub(super) async fn run(
    names: Vec<String>,
    own_addrs: [SocketAddr; 2],
    interval: Duration,
    chitchat: Arc<ChitchatHandle>,
    mut stop: watch::Receiver<()>,
) {
    let mut resolved: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    let mut tick = time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        for name in &names {
            let addrs = resolve(name, interval.max(RESOLVE_TIMEOUT_MIN)).await;
            let previous = resolved.insert(name.clone(), addrs.clone());
            log_change(name, previous.as_deref(), &addrs);
        }
        let live: HashSet<SocketAddr> = chitchat
            .with_chitchat(|c| c.live_nodes().map(|id| id.gossip_advertise_addr).collect())
            .await;
        let targets: HashSet<SocketAddr> = resolved
            .values()
            .flatten()
            .filter(|addr| !own_addrs.contains(addr) && !live.contains(addr))
            .copied()
            .collect();
        for addr in targets {
            if chitchat.gossip(addr).is_err() {
                return; // Chitchat stopped.
            }
        }
    }
}

/// The addresses `name` resolves to now; none if resolution fails or times out.
async fn resolve(name: &str, timeout: Duration) -> Vec<SocketAddr> {
    match time::timeout(timeout, tokio::net::lookup_host(name)).await {
        Ok(Ok(addrs)) => {
            let mut addrs: Vec<SocketAddr> = addrs.collect();
            addrs.sort();
            addrs.dedup();
            addrs
        }
        Ok(Err(error)) => {
            debug!(seed = name, %error, "gossip seed does not resolve");
            Vec::new()
        }
        Err(_) => {
            debug!(seed = name, "gossip seed resolution timed out");
            Vec::new()
        }
    }
}

/// Logs when a seed starts or stops resolving, or resolves elsewhere: not every round.
fn log_change(name: &str, previous: Option<&[SocketAddr]>, now: &[SocketAddr]) {
    if previous == Some(now) {
        return;
    }
    match (previous, now.is_empty()) {
        (None | Some([]), true) => warn!(seed = name, "gossip seed does not resolve (yet)"),
        (_, true) => warn!(seed = name, "gossip seed no longer resolves"),
        (_, false) => info!(seed = name, addrs = ?now, "gossip seed resolved"),
    }
}
