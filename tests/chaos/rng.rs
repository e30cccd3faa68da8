//! A small seeded generator (SplitMix64) for the fault schedule and the workload's choices, so a
//! printed seed replays the same schedule.

use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for `stream` (e.g. one per producer), derived from this seed.
    pub(crate) fn fork(&self, stream: u64) -> Rng {
        let mut mixed = Rng::new(self.state ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
        Rng::new(mixed.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = n as u64;
        usize::try_from(self.next_u64() % n).expect("below n fits usize")
    }

    /// Uniform duration in `[low, high]`.
    pub(crate) fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        let span = u64::try_from((high - low).as_millis()).unwrap_or(u64::MAX);
        low + Duration::from_millis(self.next_u64() % (span + 1))
    }

    /// Picks an index with probability proportional to its weight.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        assert!(total > 0, "weights sum to zero");
        let mut pick = u32::try_from(self.next_u64() % u64::from(total)).expect("below total");
        for (i, &weight) in weights.iter().enumerate() {
            if pick < weight {
                return i;
            }
            pick -= weight;
        }
        unreachable!("pick < total")
    }

    /// A random subset of `0..n` of size `k`, sorted.
    pub(crate) fn subset(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        let mut chosen: Vec<usize> = all.into_iter().take(k).collect();
        chosen.sort_unstable();
        chosen
    }
}
