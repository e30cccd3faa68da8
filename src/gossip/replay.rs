//! The replay guard of authenticated gossip: per sender session, a sliding window over datagram
//! counters (as IPsec and WireGuard do), so each authenticated datagram is accepted once.
//! Pure and bounded; only datagrams whose tag verified reach it.

use std::collections::{HashMap, VecDeque};

/// Counters this far below the highest one seen in a session are refused (too old to tell).
const WINDOW_BITS: u64 = 64;

#[derive(Debug)]
pub(super) struct ReplayGuard {
    sessions: HashMap<u64, Window>,
    /// Session ids in the order they were first seen, for eviction at `capacity`.
    arrival: VecDeque<u64>,
    capacity: usize,
}

#[derive(Debug)]
struct Window {
    highest: u64,
    /// Bit `i` set: counter `highest - i` was accepted.
    seen: u64,
}

impl ReplayGuard {
    pub(super) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "replay guard capacity {capacity}");
        Self {
            sessions: HashMap::new(),
            arrival: VecDeque::new(),
            capacity,
        }
    }

    /// Records `counter` of `session`; false if it was seen before or is too old to tell.
    pub(super) fn accept(&mut self, session: u64, counter: u64) -> bool {
        let Some(window) = self.sessions.get_mut(&session) else {
            if self.sessions.len() == self.capacity
                && let Some(oldest) = self.arrival.pop_front()
            {
                self.sessions.remove(&oldest);
            }
            self.sessions.insert(
                session,
                Window {
                    highest: counter,
                    seen: 1,
                },
            );
            self.arrival.push_back(session);
            return true;
        };
        if counter > window.highest {
            let shift = counter - window.highest;
            window.seen = if shift >= WINDOW_BITS {
                1
            } else {
                (window.seen << shift) | 1
            };
            window.highest = counter;
            return true;
        }
        let back = window.highest - counter;
        if back >= WINDOW_BITS || window.seen & (1 << back) != 0 {
            return false;
        }
        window.seen |= 1 << back;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_accepted_once_even_out_of_order() {
        let mut guard = ReplayGuard::new(4);
        for counter in [0, 2, 1, 5, 3, 4, 100, 40, 99] {
            assert!(guard.accept(7, counter), "{counter}");
        }
        for counter in [0, 2, 1, 5, 3, 4, 100, 40, 99] {
            assert!(!guard.accept(7, counter), "replayed {counter}");
        }
        assert!(!guard.accept(7, 36), "older than the window");
        assert!(guard.accept(7, 37));
        assert!(guard.accept(8, 0), "sessions are independent");
    }

    #[test]
    fn a_jump_past_the_window_forgets_older_counters() {
        let mut guard = ReplayGuard::new(1);
        assert!(guard.accept(1, 10));
        assert!(guard.accept(1, 74));
        assert!(
            !guard.accept(1, 10),
            "64 below the highest: too old to tell"
        );
        assert!(guard.accept(1, 11), "63 below the highest and never seen");
        assert!(!guard.accept(1, 74));
    }

    #[test]
    fn sessions_beyond_capacity_evict_the_oldest() {
        let mut guard = ReplayGuard::new(2);
        assert!(guard.accept(1, 0));
        assert!(guard.accept(2, 0));
        assert!(guard.accept(3, 0));
        assert_eq!(guard.sessions.len(), 2);
        assert!(
            guard.accept(1, 0),
            "session 1 was evicted, so it is new again"
        );
        assert!(!guard.accept(3, 0));
    }
}
