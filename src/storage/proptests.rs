//! Model-based property test of [`Log`]: random appends, rolls, truncations, clean reopens,
//! crashes with torn or corrupted tails, retention and delete_records, checked after every step
//! against a plain `Vec` of batches.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{BatchHeader, Log, LogSettings, test_batches};

const SEGMENT_MS_MAX: u64 = 1_000;

#[derive(Clone, Debug)]
enum Op {
    Append {
        record_count: i32,
        payload_len: usize,
        timestamp_delta_ms: i64,
    },
    Roll,
    TruncateSuffix(u16),
    Reopen,
    Crash(u16),
    CorruptAndCrash(u16),
    EnforceRetention(u16),
    DeleteRecordsBefore(u16),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (1..5i32, 0..120usize, -50..200i64).prop_map(
            |(record_count, payload_len, timestamp_delta_ms)| Op::Append {
                record_count,
                payload_len,
                timestamp_delta_ms,
            }
        ),
        1 => Just(Op::Roll),
        1 => any::<u16>().prop_map(Op::TruncateSuffix),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::Crash),
        1 => any::<u16>().prop_map(Op::CorruptAndCrash),
        1 => any::<u16>().prop_map(Op::EnforceRetention),
        1 => any::<u16>().prop_map(Op::DeleteRecordsBefore),
    ]
}

fn settings_strategy() -> impl Strategy<Value = LogSettings> {
    (
        proptest::option::of(100..3_000u64),
        proptest::option::of(500..3_000u64),
    )
        .prop_map(|(retention_ms, retention_bytes)| LogSettings {
            segment_bytes_max: 700,
            segment_ms_max: Some(SEGMENT_MS_MAX),
            index_interval_bytes: 64,
            index_file_bytes: 64,
            retention_ms,
            retention_bytes,
            compaction: None,
        })
}

#[derive(Clone, Debug)]
struct ModelBatch {
    bytes: Vec<u8>,
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
}

/// What the log must look like: every batch still stored in order, and the offset range.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start_offset: i64,
    log_end_offset: i64,
}

impl Model {
    /// Drops every batch from `batch_idx` on; the end becomes that batch's base offset.
    fn cut_at(&mut self, batch_idx: usize) {
        if let Some(first_removed) = self.batches.get(batch_idx) {
            self.log_end_offset = first_removed.base_offset;
            self.batches.truncate(batch_idx);
        }
    }

    /// After a crash left the end below the start, the log restarts empty at the start.
    fn restart_if_end_below_start(&mut self) {
        if self.log_end_offset < self.log_start_offset {
            self.batches.clear();
            self.log_end_offset = self.log_start_offset;
        }
    }

    fn batch_idx_containing(&self, offset: i64) -> Option<usize> {
        self.batches
            .iter()
            .position(|batch| batch.last_offset >= offset)
    }
}

struct Harness {
    dir: PathBuf,
    settings: LogSettings,
    log: Option<Log>,
    model: Model,
    now_ms: i64,
}

impl Harness {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("log is open between ops")
    }

    fn reopen(&mut self) {
        self.log = Some(Log::open(&self.dir, self.settings.clone(), self.now_ms).expect("open"));
    }

    fn apply(&mut self, op: Op) {
        self.now_ms += 37;
        match op {
            Op::Append {
                record_count,
                payload_len,
                timestamp_delta_ms,
            } => self.append(record_count, payload_len, timestamp_delta_ms),
            Op::Roll => {
                self.now_ms += SEGMENT_MS_MAX as i64 + 1;
                let now_ms = self.now_ms;
                let is_empty = self.log().segments().last().expect("active").size_bytes() == 0;
                let rolled = self.log().roll_if_due(now_ms).expect("roll");
                assert_eq!(rolled, !is_empty, "an old non-empty active segment rolls");
            }
            Op::TruncateSuffix(selector) => {
                let span = self.model.log_end_offset - self.model.log_start_offset + 1;
                let offset = self.model.log_start_offset + i64::from(selector) % span;
                self.log().truncate_suffix(offset).expect("truncate");
                let cut_idx = self
                    .model
                    .batches
                    .iter()
                    .position(|b| b.base_offset >= offset);
                if let Some(cut_idx) = cut_idx {
                    self.model.cut_at(cut_idx);
                }
            }
            Op::Reopen => {
                self.log.take().expect("open").close().expect("close");
                self.reopen();
            }
            Op::Crash(selector) => self.crash(selector, false),
            Op::CorruptAndCrash(selector) => self.crash(selector, true),
            Op::EnforceRetention(advance) => {
                self.now_ms += i64::from(advance);
                let now_ms = self.now_ms;
                let end_before = self.log().log_end_offset();
                self.log().enforce_retention(now_ms).expect("retention");
                let log = self.log.as_ref().expect("open");
                let log_start_offset = log.log_start_offset();
                assert_eq!(log.log_end_offset(), end_before, "the active segment stays");
                assert!(log_start_offset >= self.model.log_start_offset);
                let is_boundary = log_start_offset == self.model.log_end_offset
                    || self
                        .model
                        .batches
                        .iter()
                        .any(|b| b.base_offset == log_start_offset)
                    || log_start_offset == self.model.log_start_offset;
                assert!(is_boundary, "log start {log_start_offset} after retention");
                self.model.log_start_offset = log_start_offset;
            }
            Op::DeleteRecordsBefore(selector) => {
                let span = self.model.log_end_offset - self.model.log_start_offset + 1;
                let offset = self.model.log_start_offset + i64::from(selector) % span;
                self.log()
                    .delete_records_before(offset)
                    .expect("delete records");
                self.model.log_start_offset = offset;
            }
        }
    }

    fn append(&mut self, record_count: i32, payload_len: usize, timestamp_delta_ms: i64) {
        let timestamp_ms = self.now_ms + timestamp_delta_ms;
        let mut bytes = test_batches::build(record_count, timestamp_ms, payload_len);
        let now_ms = self.now_ms;
        let appended = self.log().append(&mut bytes, 5, now_ms).expect("append");
        assert_eq!(
            appended.base_offset, self.model.log_end_offset,
            "offsets contiguous"
        );
        assert_eq!(
            appended.last_offset,
            appended.base_offset + i64::from(record_count) - 1
        );
        self.model.batches.push(ModelBatch {
            bytes,
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            max_timestamp: timestamp_ms,
        });
        self.model.log_end_offset = appended.last_offset + 1;
    }

    /// Drops the log without closing it, then cuts the active segment at a random length or
    /// flips one CRC-covered byte in it, and reopens.
    fn crash(&mut self, selector: u16, is_corruption: bool) {
        drop(self.log.take());
        let (path, active_base_offset) = active_segment(&self.dir);
        let mut bytes = std::fs::read(&path).expect("read active segment");
        let first_idx = self
            .model
            .batches
            .iter()
            .position(|b| b.base_offset >= active_base_offset)
            .unwrap_or(self.model.batches.len());
        let position = usize::from(selector) % (bytes.len() + 1);
        // Index of the batch holding byte `position` (or the first one not wholly before it).
        let mut batch_start = 0;
        let mut hit = None;
        for (batch_idx, batch) in self.model.batches.iter().enumerate().skip(first_idx) {
            let batch_end = batch_start + batch.bytes.len();
            if position < batch_end {
                hit = Some((batch_idx, position - batch_start));
                break;
            }
            batch_start = batch_end;
        }
        if is_corruption {
            // Bytes 12..16 (the leader epoch) are outside the CRC by design: leave them.
            if let Some((batch_idx, within)) = hit
                && !(12..16).contains(&within)
            {
                bytes[position] ^= 0x5a;
                std::fs::write(&path, &bytes).expect("write corrupted segment");
                self.model.cut_at(batch_idx);
            }
        } else {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_len(position as u64).expect("cut");
            if let Some((batch_idx, _)) = hit {
                self.model.cut_at(batch_idx);
            }
        }
        self.model.restart_if_end_below_start();
        self.reopen();
    }

    fn check(&self) {
        let log = self.log.as_ref().expect("open");
        let model = &self.model;
        assert_eq!(log.log_end_offset(), model.log_end_offset, "log end offset");
        assert_eq!(
            log.log_start_offset(),
            model.log_start_offset,
            "log start offset"
        );
        let end = model.log_end_offset;
        assert!(log.read(end, end, 1, true).expect("read at end").is_empty());
        assert!(
            log.read(end + 1, end, 1, true).is_err(),
            "past the end is out of range"
        );
        if model.log_start_offset > 0 {
            assert!(log.read(model.log_start_offset - 1, end, 1, true).is_err());
        }
        for offset in model.log_start_offset..end {
            let batch_idx = model
                .batch_idx_containing(offset)
                .expect("a batch holds it");
            let single = log.read(offset, end, 1, true).expect("read one");
            assert_eq!(
                single, model.batches[batch_idx].bytes,
                "batch containing {offset}"
            );
            let many = log.read(offset, end, usize::MAX, false).expect("read many");
            check_whole_batches(&many, &model.batches[batch_idx..]);
        }
        self.check_timestamps(log);
    }

    fn check_timestamps(&self, log: &Log) {
        let model = &self.model;
        let visible = || {
            model
                .batches
                .iter()
                .filter(|b| b.last_offset >= model.log_start_offset)
        };
        for target_ms in [
            i64::MIN,
            0,
            self.now_ms - 500,
            self.now_ms - 100,
            self.now_ms,
        ] {
            let expected = visible().find(|b| b.max_timestamp >= target_ms);
            let found = log
                .find_timestamp(target_ms, model.log_end_offset)
                .expect("find timestamp");
            assert_eq!(
                found.map(|hit| hit.base_offset),
                expected.map(|b| b.base_offset),
                "find_timestamp({target_ms})"
            );
        }
        if model.log_start_offset == 0 {
            let best = model
                .batches
                .iter()
                .fold(None::<&ModelBatch>, |best, b| match best {
                    Some(best) if best.max_timestamp >= b.max_timestamp => Some(best),
                    _ => Some(b),
                });
            let found = log
                .max_timestamp(model.log_end_offset)
                .expect("max timestamp");
            assert_eq!(
                found.map(|hit| (hit.base_offset, hit.max_timestamp)),
                best.map(|b| (b.base_offset, b.max_timestamp))
            );
        }
    }
}

/// `bytes` must be one or more whole batches equal to the first model batches, in order.
#[track_caller]
fn check_whole_batches(bytes: &[u8], model_batches: &[ModelBatch]) {
    assert!(
        !bytes.is_empty(),
        "a read below the end returns at least one batch"
    );
    let mut position = 0;
    for batch in model_batches {
        if position == bytes.len() {
            return;
        }
        let header = BatchHeader::parse(&bytes[position..]).expect("whole batch header");
        assert_eq!(
            header.base_offset, batch.base_offset,
            "offsets contiguous in a read"
        );
        let stored = &bytes[position..position + header.total_len()];
        assert_eq!(
            stored,
            &batch.bytes[..],
            "stored bytes at {}",
            batch.base_offset
        );
        position += header.total_len();
    }
    assert_eq!(position, bytes.len(), "no partial batch");
}

fn active_segment(dir: &Path) -> (PathBuf, i64) {
    let mut names = test_batches::file_names(dir);
    names.retain(|name| name.ends_with(".log"));
    let name = names.pop().expect("an active segment");
    let base_offset = name
        .trim_end_matches(".log")
        .parse()
        .expect("base offset name");
    (dir.join(name), base_offset)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model_under_random_operations(
        settings in settings_strategy(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut harness = Harness {
            dir: dir.path().join("topic-0"),
            settings,
            log: None,
            model: Model::default(),
            now_ms: 1_000_000,
        };
        harness.reopen();
        for op in ops {
            harness.apply(op);
            harness.check();
        }
    }
}
