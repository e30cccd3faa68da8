//! Scenario tests of [`Log`]: append and read, rolls, recovery, retention, truncation, timestamp
//! lookups and flushing, each on its own temp directory.

use std::path::Path;

use super::fault::{Fault, Op};
use super::log::TEST_TOPIC_ID;
use super::{Error, Fs, Log, LogSettings, test_batches};

fn small_settings() -> LogSettings {
    LogSettings {
        segment_bytes_max: 1_000,
        segment_ms_max: None,
        index_interval_bytes: 100,
        index_file_bytes: 1_024,
        retention_ms: None,
        retention_bytes: None,
        compaction: None,
    }
}

/// Appends a batch and returns its stored bytes (with the assigned offset and epoch).
fn append(log: &mut Log, record_count: i32, timestamp_ms: i64, payload_len: usize) -> Vec<u8> {
    let mut batch = test_batches::build(record_count, timestamp_ms, payload_len);
    log.append(&mut batch, 3, timestamp_ms).expect("append");
    batch
}

fn read_all(log: &Log) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let chunk = log
            .read(offset, log.log_end_offset(), usize::MAX, true)
            .expect("read");
        assert!(!chunk.is_empty(), "read at {offset} returned nothing");
        let mut position = 0;
        while position < chunk.len() {
            let header = super::BatchHeader::parse(&chunk[position..]).expect("header");
            offset = header.last_offset() + 1;
            position += header.total_len();
        }
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

#[test]
fn append_assigns_contiguous_offsets_and_epoch() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut first = test_batches::build(3, 10, 5);
    let appended = log.append(&mut first, 7, 10).expect("append");
    assert_eq!((appended.base_offset, appended.last_offset), (0, 2));
    let mut second = test_batches::build(2, 11, 5);
    let appended = log.append(&mut second, 7, 11).expect("append");
    assert_eq!((appended.base_offset, appended.last_offset), (3, 4));
    assert_eq!(appended.max_timestamp, 11);
    assert_eq!(log.log_end_offset(), 5);
    let header = super::BatchHeader::parse(&second).expect("header");
    assert_eq!((header.base_offset, header.partition_leader_epoch), (3, 7));
    assert_eq!(read_all(&log), [first, second].concat());
}

#[test]
fn read_inside_a_batch_returns_the_whole_containing_batch() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let first = append(&mut log, 5, 1, 10);
    let second = append(&mut log, 5, 1, 10);
    let end = log.log_end_offset();
    assert_eq!(
        log.read(3, end, usize::MAX, true).expect("read"),
        [first, second.clone()].concat()
    );
    assert_eq!(log.read(7, end, usize::MAX, true).expect("read"), second);
    assert!(
        log.read(10, end, usize::MAX, true)
            .expect("read")
            .is_empty()
    );
}

#[test]
fn read_respects_max_bytes_min_one_and_end_offset() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let first = append(&mut log, 1, 1, 50);
    let second = append(&mut log, 1, 1, 50);
    let end = log.log_end_offset();
    assert_eq!(log.read(0, end, first.len(), false).expect("read"), first);
    assert_eq!(
        log.read(0, end, first.len() + 10, false).expect("read"),
        first
    );
    assert!(log.read(0, end, 10, false).expect("read").is_empty());
    assert_eq!(log.read(0, end, 10, true).expect("read"), first);
    assert_eq!(log.read(0, 1, usize::MAX, true).expect("read"), first);
    assert!(log.read(1, 1, usize::MAX, true).expect("read").is_empty());
    assert_eq!(log.read(1, 2, usize::MAX, true).expect("read"), second);
}

#[test]
fn read_outside_log_range_is_offset_out_of_range() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    append(&mut log, 2, 1, 1);
    assert!(matches!(
        log.read(3, 2, 100, true),
        Err(Error::OffsetOutOfRange {
            offset: 3,
            log_end_offset: 2,
            ..
        })
    ));
    assert!(matches!(
        log.read(-1, 2, 100, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn append_past_segment_size_rolls_and_seals_old_indexes() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut stored = Vec::new();
    for timestamp_ms in 0..20 {
        stored.extend(append(&mut log, 2, timestamp_ms, 100));
    }
    assert!(log.segment_count() > 2, "segments: {}", log.segment_count());
    assert_eq!(
        log.flushed_offset(),
        log.segments().last().expect("active").base_offset()
    );
    let names = test_batches::file_names(dir.path());
    assert!(
        names.contains(&"00000000000000000000.log".to_owned()),
        "{names:?}"
    );
    let sealed_index = dir.path().join("00000000000000000000.index");
    let sealed_len = std::fs::metadata(sealed_index).expect("index").len();
    assert!(
        sealed_len < 1_024 && sealed_len.is_multiple_of(8),
        "sealed index is {sealed_len} bytes"
    );
    assert_eq!(read_all(&log), stored);
}

#[test]
fn batch_larger_than_segment_is_rejected() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut batch = test_batches::build(1, 0, 2_000);
    assert!(matches!(
        log.append(&mut batch, 0, 0),
        Err(Error::BatchTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn clean_close_then_open_keeps_everything_and_continues_offsets() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut stored = Vec::new();
    for timestamp_ms in 0..12 {
        stored.extend(append(&mut log, 3, timestamp_ms, 60));
    }
    let end = log.log_end_offset();
    log.close().expect("close");
    assert!(dir.path().join("clean-shutdown").exists());
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("reopen");
    assert!(
        !dir.path().join("clean-shutdown").exists(),
        "marker is consumed at open"
    );
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log), stored);
    let appended = log
        .append(&mut test_batches::build(1, 99, 1), 0, 99)
        .expect("append");
    assert_eq!(appended.base_offset, end);
}

#[test]
fn crash_with_torn_tail_keeps_longest_valid_prefix() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let first = append(&mut log, 2, 1, 30);
    let second = append(&mut log, 2, 1, 30);
    drop(log);
    let path = dir.path().join("00000000000000000000.log");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len((first.len() + second.len() - 1) as u64)
        .expect("cut");
    let log = Log::open(dir.path(), small_settings(), 0).expect("recover");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log), first);
    assert_eq!(
        std::fs::metadata(&path).expect("stat").len(),
        first.len() as u64
    );
}

#[test]
fn crash_with_flipped_byte_truncates_at_bad_batch() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let first = append(&mut log, 2, 1, 30);
    append(&mut log, 2, 1, 30);
    append(&mut log, 2, 1, 30);
    drop(log);
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[first.len() + 70] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let log = Log::open(dir.path(), small_settings(), 0).expect("recover");
    assert_eq!(read_all(&log), first);
}

#[test]
fn missing_or_garbage_index_is_rebuilt() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut stored = Vec::new();
    for timestamp_ms in 0..12 {
        stored.extend(append(&mut log, 1, timestamp_ms, 150));
    }
    assert!(log.segment_count() >= 2);
    log.close().expect("close");
    std::fs::remove_file(dir.path().join("00000000000000000000.index")).expect("remove");
    std::fs::write(dir.path().join("00000000000000000000.timeindex"), [7u8; 13]).expect("junk");
    let log = Log::open(dir.path(), small_settings(), 0).expect("reopen");
    assert_eq!(read_all(&log), stored);
    for offset in 0..log.log_end_offset() {
        let chunk = log
            .read(offset, log.log_end_offset(), 1, true)
            .expect("read");
        let header = super::BatchHeader::parse(&chunk).expect("header");
        assert!(header.base_offset <= offset && offset <= header.last_offset());
    }
}

#[test]
fn truncate_suffix_drops_batches_from_offset_and_segments_after() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut batches = Vec::new();
    for timestamp_ms in 0..10 {
        batches.push(append(&mut log, 2, timestamp_ms, 150));
    }
    log.truncate_suffix(7).expect("truncate"); // offset 7 is inside batch 3 (6..=7): kept
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(read_all(&log), batches[..4].concat());
    let appended = log
        .append(&mut test_batches::build(1, 50, 1), 0, 50)
        .expect("append");
    assert_eq!(appended.base_offset, 8);
    let hit = log
        .max_timestamp(log.log_end_offset())
        .expect("max")
        .expect("some");
    assert_eq!((hit.base_offset, hit.max_timestamp), (8, 50));
}

#[test]
fn delete_records_before_persists_log_start_offset() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    for timestamp_ms in 0..10 {
        append(&mut log, 2, timestamp_ms, 150);
    }
    let segments_before = log.segment_count();
    log.delete_records_before(9).expect("delete records");
    assert_eq!(log.log_start_offset(), 9);
    assert!(log.segment_count() < segments_before);
    assert!(matches!(
        log.read(8, 20, 100, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let chunk = log.read(9, 20, 1, true).expect("read");
    assert_eq!(
        super::BatchHeader::parse(&chunk)
            .expect("header")
            .base_offset,
        8
    );
    drop(log);
    let log = Log::open(dir.path(), small_settings(), 0).expect("reopen");
    assert_eq!(log.log_start_offset(), 9);
}

#[test]
fn enforce_retention_deletes_old_and_oversize_segments_but_not_active() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let settings = LogSettings {
        retention_ms: Some(1_000),
        ..small_settings()
    };
    let mut log = Log::open(dir.path(), settings.clone(), 0).expect("open");
    for timestamp_ms in 0..10 {
        append(&mut log, 1, timestamp_ms * 100, 150);
    }
    let count = log.segment_count();
    assert_eq!(log.enforce_retention(1_000).expect("retention"), 0);
    let deleted = log.enforce_retention(1_000_000).expect("retention");
    assert_eq!(deleted as usize, count - 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), log.segments()[0].base_offset());
    log.set_settings(LogSettings {
        retention_bytes: Some(400),
        ..settings
    });
    for timestamp_ms in 0..10 {
        append(&mut log, 1, 2_000_000 + timestamp_ms, 150);
    }
    log.enforce_retention(2_000_000).expect("retention");
    let oldest_bytes = log.segments()[0].size_bytes();
    assert!(
        log.size_bytes() >= 400 && log.size_bytes() - oldest_bytes < 400,
        "retention keeps the log at or above retention.bytes and deletes what it can: {} bytes, oldest {oldest_bytes}",
        log.size_bytes()
    );
}

#[test]
fn find_timestamp_returns_first_batch_at_or_after_target() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    for (timestamp_ms, _) in [(100, ()), (300, ()), (200, ()), (400, ()), (500, ())]
        .into_iter()
        .cycle()
        .take(20)
    {
        append(&mut log, 1, timestamp_ms, 120);
    }
    let end = log.log_end_offset();
    let hit = log.find_timestamp(250, end).expect("find").expect("hit");
    assert_eq!((hit.base_offset, hit.max_timestamp), (1, 300));
    let hit = log.find_timestamp(450, end).expect("find").expect("hit");
    assert_eq!(hit.base_offset, 4);
    assert!(log.find_timestamp(501, end).expect("find").is_none());
    assert!(log.find_timestamp(450, 4).expect("find").is_none());
    let hit = log.max_timestamp(end).expect("max").expect("hit");
    assert_eq!((hit.base_offset, hit.max_timestamp), (4, 500));
    let hit = log.max_timestamp(4).expect("max").expect("hit");
    assert_eq!((hit.base_offset, hit.max_timestamp), (3, 400));
}

#[test]
fn sync_handle_and_stale_mark_flushed() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    assert!(log.sync_handle().is_none());
    append(&mut log, 2, 1, 1);
    let handle = log.sync_handle().expect("handle");
    assert_eq!(handle.end_offset(), 2);
    append(&mut log, 2, 1, 1);
    let newer = log.sync_handle().expect("handle");
    newer.sync().expect("sync");
    assert_eq!(log.mark_flushed(newer.end_offset()), Some(4));
    handle.sync().expect("sync");
    assert_eq!(
        log.mark_flushed(handle.end_offset()),
        Some(4),
        "a stale handle moves nothing"
    );
    assert_eq!(log.flushed_offset(), 4);
    assert!(log.sync_handle().is_none());
}

#[test]
fn poisoned_log_refuses_writes_but_serves_reads() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let stored = append(&mut log, 2, 1, 1);
    append(&mut log, 2, 1, 1);
    log.mark_flush_failed();
    assert!(log.is_poisoned());
    let mut batch = test_batches::build(1, 0, 1);
    assert!(matches!(
        log.append(&mut batch, 0, 0),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    let handle = log.sync_handle().expect("unflushed data");
    assert!(matches!(handle.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(log.read(0, 4, 1, true).expect("read"), stored);
    assert!(log.close().is_err(), "a poisoned log is not marked clean");
}

#[test]
fn roll_if_due_rolls_old_non_empty_segment() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let settings = LogSettings {
        segment_ms_max: Some(1_000),
        ..small_settings()
    };
    let mut log = Log::open(dir.path(), settings, 0).expect("open");
    assert!(!log.roll_if_due(5_000).expect("empty segment never rolls"));
    append(&mut log, 1, 0, 1);
    assert!(!log.roll_if_due(1_000).expect("young"));
    assert!(log.roll_if_due(1_001).expect("old"));
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.flushed_offset(), 1);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let log_dir = dir.path().join("topic-0");
    let mut log = Log::open(&log_dir, small_settings(), 0).expect("open");
    append(&mut log, 1, 0, 1);
    log.delete().expect("delete");
    assert!(!log_dir.exists());
}

/// Regression (proptest seed): a crash that lost everything from the saved log start offset
/// on used to reopen with offsets below the start handed out again.
#[test]
fn crash_losing_data_below_log_start_restarts_empty_at_log_start() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    append(&mut log, 1, 0, 0);
    log.delete_records_before(1).expect("delete records");
    drop(log);
    let path = dir.path().join("00000000000000000000.log");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(0))
        .expect("cut");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("recover");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 1));
    let appended = log
        .append(&mut test_batches::build(1, 0, 0), 0, 0)
        .expect("append");
    assert_eq!(appended.base_offset, 1);
    log.close().expect("close");
    let log = Log::open(dir.path(), small_settings(), 0).expect("reopen");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 2));
}

/// Regression (proptest seed): a sealed segment that truncation made active again never
/// rolled by age because its age was unknown.
#[test]
fn truncate_back_into_sealed_segment_still_rolls_by_age() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let settings = LogSettings {
        segment_ms_max: Some(1_000),
        ..small_settings()
    };
    let mut log = Log::open(dir.path(), settings.clone(), 0).expect("open");
    append(&mut log, 2, 0, 0);
    assert!(log.roll_if_due(1_001).expect("roll"));
    append(&mut log, 1, 1_001, 0);
    log.close().expect("close");
    let mut log = Log::open(dir.path(), settings, 1_100).expect("reopen");
    log.truncate_suffix(1).expect("truncate");
    assert_eq!(log.segment_count(), 1);
    assert!(log.roll_if_due(3_000).expect("roll"));
}

#[test]
fn sorted_index_pointing_past_the_data_is_rebuilt() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    let mut stored = Vec::new();
    for timestamp_ms in 0..4 {
        stored.extend(append(&mut log, 1, timestamp_ms, 10));
    }
    log.close().expect("close");
    let mut entry = 9_000_000_000i64.to_be_bytes().to_vec();
    entry.extend_from_slice(&500u32.to_be_bytes());
    std::fs::write(dir.path().join("00000000000000000000.timeindex"), entry).expect("write");
    let log = Log::open(dir.path(), small_settings(), 0).expect("reopen");
    let hit = log
        .max_timestamp(log.log_end_offset())
        .expect("max")
        .expect("hit");
    assert_eq!((hit.base_offset, hit.max_timestamp), (3, 3));
    assert_eq!(read_all(&log), stored);
}

#[test]
fn torn_write_is_recovered_to_the_last_whole_batch() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let fs = Fs::default();
    let mut log =
        Log::open_on(fs.clone(), dir.path(), TEST_TOPIC_ID, small_settings(), 0).expect("open");
    let kept = append(&mut log, 2, 1, 40);
    log.flush().expect("flush");
    fs.inject_once(dir.path(), Op::Write, Fault::Tear { keep_bytes: 30 });
    let mut torn = test_batches::build(2, 2, 40);
    assert!(matches!(log.append(&mut torn, 0, 2), Err(Error::Io { .. })));
    assert!(log.is_poisoned(), "a failed write poisons the log");
    drop(log); // the crash: nothing is closed
    let segment = dir.path().join("00000000000000000000.log");
    assert_eq!(
        std::fs::metadata(&segment).expect("stat").len(),
        (kept.len() + 30) as u64,
        "the torn write left part of a batch on disk"
    );
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("recover");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log), kept);
    let appended = log
        .append(&mut test_batches::build(1, 3, 1), 0, 3)
        .expect("append after recovery");
    assert_eq!(appended.base_offset, 2);
}

#[test]
fn failed_fsync_poisons_the_log_and_is_never_retried() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let fs = Fs::default();
    let mut log =
        Log::open_on(fs.clone(), dir.path(), TEST_TOPIC_ID, small_settings(), 0).expect("open");
    append(&mut log, 1, 1, 1);
    fs.inject_once(dir.path(), Op::Fsync, Fault::Fail);
    assert!(matches!(log.flush(), Err(Error::Io { .. })));
    assert!(log.is_poisoned());
    assert!(
        matches!(log.flush(), Err(Error::Poisoned { .. })),
        "the next fsync would succeed, but a poisoned log never retries"
    );
    assert_eq!(log.flushed_offset(), 0);
    let handle = log.sync_handle().expect("unflushed data");
    assert!(matches!(handle.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(log.mark_flushed(handle.end_offset()), None);
}

/// Sizes of every `.log` file in `dir`, by name.
fn segment_sizes(dir: &Path) -> Vec<(String, u64)> {
    test_batches::file_names(dir)
        .into_iter()
        .filter(|name| name.ends_with(".log"))
        .map(|name| {
            let len = std::fs::metadata(dir.join(&name)).expect("stat").len();
            (name, len)
        })
        .collect()
}

/// Regression (issue 7, 5): cutting 1 byte off segment 0 of a 10-segment log left 1 segment:
/// recovery cut the closed segment and deleted every later one, the active one included.
#[test]
fn recovery_of_inconsistent_closed_segment_drops_every_later_segment() {
    for is_clean in [true, false] {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
        while log.segment_count() < 10 {
            append(&mut log, 1, 1, 150);
        }
        if is_clean {
            log.close().expect("close");
        } else {
            log.flush().expect("flush");
            drop(log); // killed: no clean marker
        }
        let first = dir.path().join("00000000000000000000.log");
        let len = std::fs::metadata(&first).expect("stat").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .and_then(|file| file.set_len(len - 1))
            .expect("cut one byte");
        let before = segment_sizes(dir.path());
        assert_eq!(before.len(), 10);
        let opened = Log::open(dir.path(), small_settings(), 0);
        assert!(
            matches!(opened, Err(Error::InconsistentLog { base_offset: 0, .. })),
            "a damaged closed segment fails the open (clean: {is_clean}): {opened:?}"
        );
        assert_eq!(
            segment_sizes(dir.path()),
            before,
            "nothing is cut or deleted (clean: {is_clean})"
        );
    }
}

#[test]
fn recovery_with_a_gap_between_segments_fails_instead_of_dropping_the_rest() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut log = Log::open(dir.path(), small_settings(), 0).expect("open");
    while log.segment_count() < 4 {
        append(&mut log, 1, 1, 150);
    }
    let second = log.segments()[1].base_offset();
    log.close().expect("close");
    let name = format!("{second:020}.log");
    std::fs::remove_file(dir.path().join(&name)).expect("remove the second segment");
    let before = segment_sizes(dir.path());
    let opened = Log::open(dir.path(), small_settings(), 0);
    assert!(
        matches!(opened, Err(Error::InconsistentLog { .. })),
        "{opened:?}"
    );
    assert_eq!(segment_sizes(dir.path()), before);
}
