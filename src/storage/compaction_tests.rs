//! Scenario tests of log compaction: latest value per key, offsets kept, tombstone expiry,
//! lag and ratio gates, a pass discarded when the log moved, and crashes at each swap step.
//! Also the helpers the compaction proptest shares.

use std::collections::BTreeMap;
use std::path::Path;

use super::records_tests::{GZIP, ZSTD, keyed_batch};
use super::{CompactionSettings, Log, LogSettings, records};

pub(super) type Entry = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

pub(super) fn settings(compaction: CompactionSettings) -> LogSettings {
    LogSettings {
        segment_bytes_max: 300,
        segment_ms_max: None,
        index_interval_bytes: 64,
        index_file_bytes: 1_024,
        retention_ms: None,
        retention_bytes: None,
        compaction: Some(compaction),
    }
}

pub(super) fn eager() -> CompactionSettings {
    CompactionSettings {
        min_cleanable_dirty_ratio_ppm: 0,
        ..CompactionSettings::default()
    }
}

/// Runs one whole pass (plan, build, install); returns whether one was installed.
pub(super) fn compact(log: &mut Log, now_ms: i64) -> bool {
    let Some(plan) = log.plan_compaction(now_ms).expect("plan") else {
        return false;
    };
    let cleaned = plan.build().expect("build");
    log.install_compaction(cleaned)
        .expect("install")
        .is_installed
}

/// Every record in the log, in offset order, decoded.
pub(super) fn read_records(log: &Log) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let bytes = log.read(offset, end, 1 << 20, true).expect("read");
        assert!(!bytes.is_empty(), "read at {offset} returned nothing");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = super::BatchHeader::parse(rest).unwrap();
            let batch = &rest[..header.total_len()];
            super::verify_crc(batch).expect("served batches have valid crcs");
            let decoded = records::decode(batch, 1 << 20).expect("decode");
            for record in &decoded.records {
                out.push((
                    decoded.offset(record),
                    decoded.key(record).map(<[u8]>::to_vec),
                    decoded.value(record).map(<[u8]>::to_vec),
                ));
            }
            offset = header.last_offset() + 1;
            rest = &rest[header.total_len()..];
        }
    }
    out
}

pub(super) fn append_keyed(log: &mut Log, records: &[(&str, Option<&str>)], ts: i64, codec: i16) {
    let records: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            (
                Some(k.as_bytes().to_vec()),
                v.map(|v| v.as_bytes().to_vec()),
            )
        })
        .collect();
    let mut batch = keyed_batch(&records, ts, codec);
    log.append(&mut batch, 0, ts).expect("append");
}

fn latest_per_key(entries: &[Entry]) -> BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> {
    entries
        .iter()
        .filter_map(|(o, k, v)| Some((k.clone()?, (*o, v.clone()))))
        .collect()
}

/// Five versions of keys a..d across several segments, some batches compressed.
fn populated(dir: &Path, compaction: CompactionSettings) -> Log {
    let mut log = Log::open(dir, settings(compaction), 0).unwrap();
    for version in 0..5 {
        for key in ["a", "b", "c", "d"] {
            let value = format!("{key}{version}");
            let codec = [0, GZIP, ZSTD][version % 3];
            append_keyed(
                &mut log,
                &[(key, Some(&value))],
                100 + version as i64,
                codec,
            );
        }
    }
    append_keyed(&mut log, &[("b", None), ("c", Some("c-last"))], 200, GZIP);
    log
}

#[test]
fn compaction_keeps_latest_per_key_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = populated(dir.path(), eager());
    let before = read_records(&log);
    let end = log.log_end_offset();
    let active_base = log.segments().last().unwrap().base_offset();
    assert!(log.segments().len() > 3);
    assert!(compact(&mut log, 1_000));
    let after = read_records(&log);
    assert_eq!(log.log_end_offset(), end);
    // Records keep their offsets; in closed segments only the latest per key is left.
    for entry in &after {
        assert!(before.contains(entry), "{entry:?} was not in the log");
    }
    let closed: Vec<&Entry> = after.iter().filter(|e| e.0 < active_base).collect();
    let mut keys: Vec<&Vec<u8>> = closed.iter().filter_map(|e| e.1.as_ref()).collect();
    let key_count = keys.len();
    keys.dedup();
    assert_eq!(
        keys.len(),
        key_count,
        "duplicate keys in compacted segments"
    );
    assert_eq!(latest_per_key(&after), latest_per_key(&before));
    assert!(after.len() < before.len());
    // Every offset can still be read from, and the next offset is not reused.
    for offset in log.log_start_offset()..end {
        assert!(!log.read(offset, end, 1, true).unwrap().is_empty());
    }
    append_keyed(&mut log, &[("z", Some("new"))], 300, 0);
    assert_eq!(read_records(&log).last().unwrap().0, end);
    // Reopening keeps the compacted log.
    log.close().unwrap();
    let log = Log::open(dir.path(), settings(eager()), 0).unwrap();
    assert_eq!(read_records(&log).len(), after.len() + 1);
}

#[test]
fn tombstones_stay_until_delete_retention_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let compaction = CompactionSettings {
        delete_retention_ms: 1_000,
        ..eager()
    };
    let mut log = populated(dir.path(), compaction.clone());
    for i in 0..10 {
        append_keyed(&mut log, &[("e", Some(&format!("e{i}")))], 300, 0);
    }
    assert!(compact(&mut log, 500));
    let tombstone = |log: &Log| {
        read_records(log)
            .iter()
            .any(|e| e.1.as_deref() == Some(b"b") && e.2.is_none())
    };
    assert!(
        tombstone(&log),
        "a fresh tombstone survives its first compaction"
    );
    assert!(
        !read_records(&log)
            .iter()
            .any(|e| e.2.as_deref() == Some(b"b4"))
    );
    for i in 0..10 {
        append_keyed(&mut log, &[("f", Some(&format!("f{i}")))], 400, 0);
    }
    assert!(compact(&mut log, 1_100));
    assert!(tombstone(&log), "younger than delete.retention.ms");
    for i in 0..10 {
        append_keyed(&mut log, &[("g", Some(&format!("g{i}")))], 400, 0);
    }
    assert!(compact(&mut log, 5_000));
    assert!(!tombstone(&log), "expired tombstones are removed");
}

#[test]
fn min_lag_and_dirty_ratio_gate_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let lagged = CompactionSettings {
        min_compaction_lag_ms: 10_000,
        ..eager()
    };
    let mut log = populated(dir.path(), lagged);
    assert!(log.plan_compaction(1_000).unwrap().is_none(), "too young");
    assert!(compact(&mut log, 20_000));
    log.set_settings(settings(CompactionSettings {
        min_cleanable_dirty_ratio_ppm: 900_000,
        ..eager()
    }));
    append_keyed(&mut log, &[("a", Some(&"x".repeat(200)))], 300, 0);
    append_keyed(&mut log, &[("a", Some("y"))], 300, 0);
    assert!(
        log.plan_compaction(20_000).unwrap().is_none(),
        "dirty share too low"
    );
    log.set_settings(settings(eager()));
    assert!(log.plan_compaction(20_000).unwrap().is_some());
}

#[test]
fn compaction_is_discarded_when_the_log_moved() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = populated(dir.path(), eager());
    let before = read_records(&log);
    let cleaned = log
        .plan_compaction(1_000)
        .unwrap()
        .unwrap()
        .build()
        .unwrap();
    let first_closed_end = log.segments()[1].base_offset();
    log.delete_records_before(first_closed_end).unwrap();
    let outcome = log.install_compaction(cleaned).unwrap();
    assert!(!outcome.is_installed);
    assert!(!dir.path().join(super::cleaner::CLEANING_DIR).exists());
    let expected: Vec<Entry> = before
        .into_iter()
        .filter(|e| e.0 >= first_closed_end)
        .collect();
    assert_eq!(read_records(&log), expected);
}

/// Crash states of the swap: the cleaned files built but not installed, the old indexes gone,
/// the new log renamed in without its indexes. Each reopens to a valid log with the same
/// latest value per key.
#[test]
fn crash_during_swap_recovers_a_valid_log() {
    for crash_step in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let log = populated(dir.path(), eager());
        let before = read_records(&log);
        let end = log.log_end_offset();
        let cleaned = log
            .plan_compaction(1_000)
            .unwrap()
            .unwrap()
            .build()
            .unwrap();
        let target = cleaned.replaced.first().expect("something to clean");
        let stem = super::segment::file_stem(target.base_offset);
        let cleaning = dir.path().join(super::cleaner::CLEANING_DIR);
        if crash_step >= 1 {
            std::fs::remove_file(dir.path().join(format!("{stem}.index"))).unwrap();
            std::fs::remove_file(dir.path().join(format!("{stem}.timeindex"))).unwrap();
        }
        if crash_step >= 2 {
            let log_name = format!("{stem}.log");
            std::fs::rename(cleaning.join(&log_name), dir.path().join(&log_name)).unwrap();
        }
        drop(cleaned);
        drop(log); // crash: no close
        let log = Log::open(dir.path(), settings(eager()), 0).unwrap();
        assert!(!cleaning.exists(), "step {crash_step}");
        let after = read_records(&log);
        assert_eq!(log.log_end_offset(), end, "step {crash_step}");
        assert_eq!(latest_per_key(&after), latest_per_key(&before));
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        if crash_step < 2 {
            assert_eq!(after, before, "step {crash_step}");
        } else {
            assert!(after.len() < before.len());
        }
    }
}
