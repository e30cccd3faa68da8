//! Client quotas (Kafka's `ClientQuotaManager` and `ClientRequestQuotaManager`): byte-rate and
//! request-time bounds per user and client id, their defaults, and the meters that turn traffic
//! over a bound into a throttle time. The configs
//! are the controller's replicated state in cluster mode and `client-quotas.json` on a single
//! node; meters are this broker's alone (as in Kafka, each broker throttles what it serves).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::Broker;
use super::error::{Error, Result, load_state_file};
use crate::metadata::{Command, QuotaEntity, QuotaTable, quota_pairs};
use crate::{limits, storage};

/// The quota keys Tidelog enforces.
pub(crate) const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub(crate) const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// The share of one request-handling thread, in percent, a client's requests may keep busy.
pub(crate) const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Entity types.
pub(crate) const USER: &str = "user";
pub(crate) const CLIENT_ID: &str = "client-id";

/// Kafka's `quota.window.size.seconds` and `quota.window.num`.
const WINDOW_MS: i64 = 1_000;
const WINDOWS: i64 = 11;

/// What a request is metered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Metered {
    /// Bytes produced (`producer_byte_rate`).
    Produce,
    /// Bytes fetched (`consumer_byte_rate`).
    Fetch,
    /// Time spent handling requests, in percent-seconds of one thread (`request_percentage`).
    Request,
}

impl Metered {
    fn key(self) -> &'static str {
        match self {
            Metered::Produce => PRODUCER_BYTE_RATE,
            Metered::Fetch => CONSUMER_BYTE_RATE,
            Metered::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// What one meter counts: the user and client id the matched entity names (`None` for a type
/// it does not name), and the kind.
type MeterKey = (Option<String>, Option<String>, Metered);

/// Standalone configs and every broker's meters.
#[derive(Debug)]
pub(super) struct Quotas {
    local: Mutex<QuotaTable>,
    /// One meter per metered (user part, client part, kind): the parts the matched entity names.
    meters: Mutex<HashMap<MeterKey, Meter>>,
}

impl Quotas {
    pub(super) fn open(data_dir: &Path) -> Result<Quotas> {
        let local = load_state_file(
            data_dir,
            storage::load_quotas,
            "client-quotas.json",
            |bytes| {
                quota_pairs::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
                    .map_err(|_| "the client-quota file does not hold quotas")
            },
        )?
        .unwrap_or_default();
        Ok(Quotas {
            local: Mutex::new(local),
            meters: Mutex::new(HashMap::new()),
        })
    }
}

/// A rate over the last `WINDOWS` windows of `WINDOW_MS`, as Kafka's `Rate` measures it.
#[derive(Debug, Default)]
struct Meter {
    /// (window start ms, sum) oldest first.
    windows: VecDeque<(i64, f64)>,
    last_ms: i64,
}

impl Meter {
    /// Records `amount` at `now_ms`; returns the rate per second.
    fn record(&mut self, now_ms: i64, amount: f64) -> f64 {
        let start = now_ms - now_ms.rem_euclid(WINDOW_MS);
        while self
            .windows
            .front()
            .is_some_and(|(at, _)| *at <= start - WINDOWS * WINDOW_MS)
        {
            self.windows.pop_front();
        }
        match self.windows.back_mut() {
            Some((at, sum)) if *at == start => *sum += amount,
            _ => self.windows.push_back((start, amount)),
        }
        self.last_ms = now_ms;
        let oldest = self.windows.front().map_or(start, |(at, _)| *at);
        // Kafka counts at least WINDOWS - 1 whole windows, so a first burst is not a rate spike.
        let elapsed_ms = (now_ms - oldest).max((WINDOWS - 1) * WINDOW_MS);
        let total: f64 = self.windows.iter().map(|(_, sum)| sum).sum();
        total * 1000.0 / elapsed_ms as f64
    }
}

/// The throttle of a rate over `bound` (Kafka: (rate - bound) / bound * the whole window),
/// at most the whole window.
fn throttle_ms(rate: f64, bound: f64) -> u64 {
    if rate <= bound || bound <= 0.0 {
        return 0;
    }
    let window = (WINDOWS * WINDOW_MS) as f64;
    let ms = ((rate - bound) / bound * window).round().min(window);
    // In range by the min above.
    ms as u64
}

/// The entities that may bound (user, client id), most specific first (Kafka's order).
fn candidates(user: &str, client_id: &str) -> [QuotaEntity; 8] {
    let pair = |client: Option<&str>, user: Option<&str>| {
        vec![
            (CLIENT_ID.to_owned(), client.map(str::to_owned)),
            (USER.to_owned(), user.map(str::to_owned)),
        ]
    };
    let only = |kind: &str, name: Option<&str>| vec![(kind.to_owned(), name.map(str::to_owned))];
    [
        pair(Some(client_id), Some(user)),
        pair(None, Some(user)),
        only(USER, Some(user)),
        pair(Some(client_id), None),
        pair(None, None),
        only(USER, None),
        only(CLIENT_ID, Some(client_id)),
        only(CLIENT_ID, None),
    ]
}

impl Broker {
    fn with_quotas<T>(&self, read: impl FnOnce(&QuotaTable) -> T) -> T {
        match self.cluster_state() {
            Some(state) => read(&state.quotas),
            None => read(
                &self
                    .quotas
                    .local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }

    /// Every entity with its values.
    pub(crate) fn client_quotas(&self) -> Vec<(QuotaEntity, Vec<(String, f64)>)> {
        self.with_quotas(|table| {
            table
                .iter()
                .map(|(entity, values)| {
                    let values = values
                        .iter()
                        .map(|(key, bits)| (key.clone(), f64::from_bits(*bits)))
                        .collect();
                    (entity.clone(), values)
                })
                .collect()
        })
    }

    /// Sets and removes values of `entity` (validated by the caller), durably.
    pub(crate) async fn alter_client_quota(
        &self,
        entity: QuotaEntity,
        set: Vec<(String, f64)>,
        remove: Vec<String>,
    ) -> Result<()> {
        let is_new = !self.with_quotas(|table| table.contains_key(&entity));
        if is_new && self.with_quotas(QuotaTable::len) >= limits::QUOTA_ENTITIES_MAX {
            return Err(Error::InvalidRequest {
                reason: format!("no more than {} quota entities", limits::QUOTA_ENTITIES_MAX),
            });
        }
        let set: Vec<(String, u64)> = set.into_iter().map(|(k, v)| (k, v.to_bits())).collect();
        let command = Command::AlterClientQuota {
            entity: entity.clone(),
            set: set.clone(),
            remove: remove.clone(),
        };
        match self.cluster.get() {
            Some(link) => {
                self.propose_and_await(link, &command, move |state| {
                    let values = state.quotas.get(&entity);
                    set.iter()
                        .all(|(k, v)| values.and_then(|m| m.get(k)) == Some(v))
                        && remove
                            .iter()
                            .all(|k| values.is_none_or(|m| !m.contains_key(k)))
                })
                .await
            }
            None => {
                let mut local = self
                    .quotas
                    .local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut next = local.clone();
                let values = next.entry(entity.clone()).or_default();
                values.extend(set);
                for key in &remove {
                    values.remove(key);
                }
                if values.is_empty() {
                    next.remove(&entity);
                }
                let mut bytes = Vec::new();
                quota_pairs::serialize(&next, &mut serde_json::Serializer::new(&mut bytes))
                    .map_err(|error| Error::InvalidRequest {
                        reason: error.to_string(),
                    })?;
                storage::save_quotas(&self.settings.data_dir, &bytes)
                    .map_err(|source| Error::Catalog { source })?;
                *local = next;
                Ok(())
            }
        }
    }

    /// Whether any entity has a quota of kind `metered` (a cheap check before metering).
    pub(crate) fn has_quota(&self, metered: Metered) -> bool {
        self.with_quotas(|table| {
            !table.is_empty()
                && table
                    .values()
                    .any(|values| values.contains_key(metered.key()))
        })
    }

    /// Meters `amount` of `metered` for `user` (the principal's name) and `client_id` at
    /// `now_ms`; returns how long the client is throttled (0 without a quota or under it).
    /// An `amount` of 0 only looks at the rate so far.
    pub(crate) fn meter_quota(
        &self,
        user: &str,
        client_id: &str,
        metered: Metered,
        amount: f64,
        now_ms: i64,
    ) -> u64 {
        let Some((entity, bound)) = self.with_quotas(|table| {
            if table.is_empty() {
                return None;
            }
            candidates(user, client_id).into_iter().find_map(|entity| {
                let bits = table.get(&entity)?.get(metered.key())?;
                Some((entity, f64::from_bits(*bits)))
            })
        }) else {
            return 0;
        };
        let names = |kind: &str| {
            entity
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, _)| if kind == USER { user } else { client_id }.to_owned())
        };
        let key = (names(USER), names(CLIENT_ID), metered);
        let mut meters = self
            .quotas
            .meters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if meters.len() >= limits::QUOTA_METERS_MAX && !meters.contains_key(&key) {
            meters.retain(|_, m| now_ms - m.last_ms < WINDOWS * WINDOW_MS);
        }
        if meters.len() >= limits::QUOTA_METERS_MAX && !meters.contains_key(&key) {
            // Still full of active meters: this client goes unmetered rather than unbounded.
            return 0;
        }
        let rate = meters.entry(key).or_default().record(now_ms, amount);
        match metered {
            // Kafka's request quota throttles by one window at the most.
            Metered::Request => throttle_ms(rate, bound).min(WINDOW_MS.unsigned_abs()),
            Metered::Produce | Metered::Fetch => throttle_ms(rate, bound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_burst_is_spread_over_ten_windows_and_ages_out() {
        let mut meter = Meter::default();
        assert_eq!(meter.record(0, 10_000.0), 1_000.0);
        assert_eq!(meter.record(500, 10_000.0), 2_000.0);
        // 12 s later the old windows are gone.
        assert_eq!(meter.record(12_000, 1_000.0), 100.0);
    }

    #[test]
    fn throttle_grows_with_the_excess_and_is_capped_at_the_window() {
        assert_eq!(throttle_ms(100.0, 100.0), 0);
        assert_eq!(throttle_ms(110.0, 100.0), 1_100);
        assert_eq!(throttle_ms(1_000_000.0, 1.0), 11_000);
    }

    #[test]
    fn the_most_specific_entity_is_tried_first() {
        let order = candidates("alice", "app");
        assert_eq!(
            order[0],
            vec![
                (CLIENT_ID.to_owned(), Some("app".to_owned())),
                (USER.to_owned(), Some("alice".to_owned()))
            ]
        );
        assert_eq!(order[2], vec![(USER.to_owned(), Some("alice".to_owned()))]);
        assert_eq!(order[7], vec![(CLIENT_ID.to_owned(), None)]);
    }
}
