//! Where the replicas of new partitions go: round robin over the unfenced brokers, ordered so
//! that neighbours in the order sit on different racks when racks are set (Kafka's rack-aware
//! assignment, without its follower shift).

use std::collections::BTreeMap;

use super::command::Rejection;
use super::model::State;

/// The unfenced brokers in placement order: racks interleaved (each rack's brokers by id), so
/// any `n` consecutive brokers span `min(n, racks)` racks when racks are balanced.
fn placement_order(state: &State) -> Vec<i32> {
    let mut racks: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for broker in state.unfenced_brokers() {
        racks
            .entry(broker.rack.as_deref())
            .or_default()
            .push(broker.id);
    }
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    let mut order = Vec::new();
    for depth in 0..deepest {
        for brokers in racks.values() {
            if let Some(&id) = brokers.get(depth) {
                order.push(id);
            }
        }
    }
    order
}

/// Replica lists for `count` new partitions of `replication_factor` replicas each, starting
/// at the state's placement cursor. The state is not changed.
pub(super) fn place(
    state: &State,
    count: usize,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, Rejection> {
    let order = placement_order(state);
    let factor = usize::try_from(replication_factor).unwrap_or(0);
    if factor == 0 || factor > order.len() {
        return Err(Rejection::InvalidReplicationFactor {
            reason: format!(
                "{replication_factor} requested, {} broker(s) available",
                order.len()
            ),
        });
    }
    let brokers = order.len() as u64;
    let placed = (0..count as u64)
        .map(|p| {
            let start = state.placement_cursor.wrapping_add(p) % brokers;
            (0..factor as u64)
                .map(|r| order[((start + r) % brokers) as usize])
                .collect()
        })
        .collect();
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::model::{BrokerRegistration, Endpoint};

    fn state(racks: &[(i32, Option<&str>)]) -> State {
        let mut state = State::default();
        for &(id, rack) in racks {
            let endpoint = Endpoint {
                host: "127.0.0.1".into(),
                port: 9092,
            };
            state.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    incarnation: [id as u8; 16],
                    kafka: endpoint.clone(),
                    cluster: endpoint,
                    listeners: Default::default(),
                    rack: rack.map(str::to_owned),
                    fenced: false,
                },
            );
        }
        state
    }

    #[test]
    fn placement_spreads_leaders_round_robin() {
        let state = state(&[(1, None), (2, None), (3, None)]);
        let placed = place(&state, 6, 1).unwrap();
        let leaders: Vec<i32> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn placement_puts_replicas_of_a_partition_on_different_racks() {
        let state = state(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
        ]);
        for replicas in place(&state, 8, 2).unwrap() {
            let racks: Vec<_> = replicas
                .iter()
                .map(|id| state.brokers[id].rack.clone())
                .collect();
            assert_ne!(racks[0], racks[1], "{replicas:?}");
        }
    }

    #[test]
    fn placement_skips_fenced_brokers() {
        let mut state = state(&[(1, None), (2, None), (3, None)]);
        state.brokers.get_mut(&2).unwrap().fenced = true;
        let placed = place(&state, 4, 1).unwrap();
        assert!(placed.iter().all(|r| r[0] != 2), "{placed:?}");
    }

    #[test]
    fn replication_factor_above_the_unfenced_brokers_is_refused() {
        let state = state(&[(1, None), (2, None)]);
        assert!(matches!(
            place(&state, 1, 3),
            Err(Rejection::InvalidReplicationFactor { .. })
        ));
        assert!(matches!(
            place(&state, 1, 0),
            Err(Rejection::InvalidReplicationFactor { .. })
        ));
    }

    #[test]
    fn the_cursor_moves_the_first_replica_of_the_next_topic() {
        let mut state = state(&[(1, None), (2, None), (3, None)]);
        state.placement_cursor = 1;
        assert_eq!(place(&state, 1, 1).unwrap(), vec![vec![2]]);
    }
}
