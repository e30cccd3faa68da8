//! State the group members share: which records were seen, and the rebalance timing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::group::{GROUP_PARTITIONS, REBALANCE_TIMEOUT};
use crate::records::{SEQUENCE_BYTES, WARMUP_SEQUENCE, partition_of, pattern_shift};

/// One bit per sequence number: which records some member has received.
#[derive(Debug)]
pub(crate) struct SeenBits {
    words: Vec<AtomicU64>,
}

impl SeenBits {
    pub(crate) fn new(bit_count: u64) -> SeenBits {
        let word_count = usize::try_from(bit_count.div_ceil(64)).unwrap_or(0);
        SeenBits {
            words: (0..word_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Marks `bit`; true if it was not marked before. None if `bit` is out of range.
    fn mark(&self, bit: u64) -> Option<bool> {
        let word = self.words.get(usize::try_from(bit / 64).ok()?)?;
        let mask = 1u64 << (bit % 64);
        Some(word.fetch_or(mask, Ordering::Relaxed) & mask == 0)
    }
}

/// State the members and the coordinating thread share.
#[derive(Debug)]
pub(crate) struct GroupShared {
    pub(crate) origin: Instant,
    /// Records of the bulk part: sequences 0..bulk_count.
    pub(crate) bulk_count: u64,
    pub(crate) bulk_seen: SeenBits,
    pub(crate) bulk_unique: AtomicU64,
    pub(crate) bulk_duplicates: AtomicU64,
    /// Nanoseconds since `origin` of the first bulk record and of the last new bulk record.
    pub(crate) bulk_first_ns: AtomicU64,
    pub(crate) bulk_last_ns: AtomicU64,
    /// Stream records: sequences bulk_count.. (bit = sequence - bulk_count).
    pub(crate) stream_seen: SeenBits,
    pub(crate) stream_unique: AtomicU64,
    pub(crate) stream_duplicates: AtomicU64,
    pub(crate) warmup_count: AtomicU64,
    /// The sequence the stream producer enqueues next.
    pub(crate) stream_next: AtomicU64,
    /// Rebalance measurement: it starts at `phase_start_ns`; records with a sequence at or above
    /// `threshold`, delivered by a member assigned after the start, count.
    pub(crate) phase_start_ns: AtomicU64,
    pub(crate) threshold: AtomicU64,
    /// Per partition: when it first delivered a counting record (0 = not yet).
    pub(crate) partition_back_ns: Vec<AtomicU64>,
    /// Per member: when it last received an assignment (0 = never), and its partitions as a mask.
    pub(crate) assigned_ns: Vec<AtomicU64>,
    pub(crate) assigned_mask: Vec<AtomicU64>,
    pub(crate) rebalance_count: AtomicU64,
    pub(crate) commit_error_count: AtomicU64,
    /// Per member: asked to leave the group (close its consumer).
    pub(crate) should_leave: Vec<AtomicBool>,
    /// Per member: how long its close took, in nanoseconds.
    pub(crate) close_ns: Vec<AtomicU64>,
    pub(crate) should_stop: AtomicBool,
    pub(crate) failure: Mutex<Option<String>>,
}

impl GroupShared {
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Starts a rebalance measurement now: records enqueued from now on count.
    pub(crate) fn start_phase(&self) {
        for back_ns in &self.partition_back_ns {
            back_ns.store(0, Ordering::SeqCst);
        }
        self.phase_start_ns.store(self.now_ns(), Ordering::SeqCst);
        self.threshold
            .store(self.stream_next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub(crate) fn fail(&self, message: String) {
        let mut failure = self.failure.lock().expect("never poisoned");
        if failure.is_none() {
            *failure = Some(message);
        }
        self.should_stop.store(true, Ordering::SeqCst);
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().expect("never poisoned").clone()
    }

    /// Checks and counts one record delivered to `member`.
    pub(crate) fn receive(
        &self,
        member: usize,
        partition: i32,
        value: &[u8],
        pattern: &[u8],
    ) -> Result<()> {
        ensure!(
            value.len() == 100,
            "partition {partition}: value is {} bytes, expected 100",
            value.len()
        );
        let (head, body) = value.split_at(SEQUENCE_BYTES);
        let sequence = u64::from_le_bytes(head.try_into().context("sequence bytes")?);
        let shift = pattern_shift(sequence);
        ensure!(
            body == &pattern[shift..shift + body.len()],
            "partition {partition}: body of record {sequence} is corrupt"
        );
        if sequence == WARMUP_SEQUENCE {
            self.warmup_count.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        ensure!(
            partition_of(sequence, GROUP_PARTITIONS) == partition,
            "record {sequence} arrived from partition {partition}"
        );
        let now_ns = self.now_ns();
        if sequence < self.bulk_count {
            if self.bulk_seen.mark(sequence) == Some(true) {
                let _ = self.bulk_first_ns.compare_exchange(
                    0,
                    now_ns,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.bulk_last_ns.fetch_max(now_ns, Ordering::Relaxed);
                self.bulk_unique.fetch_add(1, Ordering::SeqCst);
            } else {
                self.bulk_duplicates.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        match self.stream_seen.mark(sequence - self.bulk_count) {
            Some(true) => {
                self.stream_unique.fetch_add(1, Ordering::SeqCst);
            }
            Some(false) => {
                self.stream_duplicates.fetch_add(1, Ordering::Relaxed);
            }
            None => bail!("record {sequence} is beyond the stream's bitmap"),
        }
        let threshold = self.threshold.load(Ordering::SeqCst);
        if sequence >= threshold {
            let phase_start_ns = self.phase_start_ns.load(Ordering::SeqCst);
            if self.assigned_ns[member].load(Ordering::SeqCst) > phase_start_ns {
                let index = usize::try_from(partition).context("partition index")?;
                let _ = self.partition_back_ns[index].compare_exchange(
                    0,
                    now_ns,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        }
        Ok(())
    }

    /// Waits (bounded) until every partition delivered a counting record; returns when each did.
    pub(crate) fn wait_partitions_back(&self, what: &str) -> Result<Vec<u64>> {
        let started = Instant::now();
        loop {
            if let Some(failure) = self.failure() {
                bail!("{failure}");
            }
            let back: Vec<u64> = self
                .partition_back_ns
                .iter()
                .map(|back_ns| back_ns.load(Ordering::SeqCst))
                .collect();
            if back.iter().all(|&back_ns| back_ns != 0) {
                return Ok(back);
            }
            ensure!(
                started.elapsed() < REBALANCE_TIMEOUT,
                "{what}: partitions not consumed again within {REBALANCE_TIMEOUT:?} \
                 (per-partition back times, ns: {back:?})"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Time from the phase start until the last partition in `mask` came back.
    pub(crate) fn back_after(&self, back: &[u64], mask: u64) -> Duration {
        let start_ns = self.phase_start_ns.load(Ordering::SeqCst);
        let last_ns = back
            .iter()
            .enumerate()
            .filter(|(index, _)| mask & (1u64 << index) != 0)
            .map(|(_, &back_ns)| back_ns)
            .max()
            .unwrap_or(start_ns);
        Duration::from_nanos(last_ns.saturating_sub(start_ns))
    }
}
