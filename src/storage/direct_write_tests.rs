//! A follower's log, written by `Log::append_as_stored` (whole blocks past the page cache), holds
//! the same bytes as its leader's, across rolls, truncations and a restart; and the same again
//! where the file system refuses direct I/O.

use super::fault::{Fault, Op};
use super::log::TEST_TOPIC_ID;
use super::{Fs, Log, LogSettings, test_batches};

fn settings() -> LogSettings {
    LogSettings {
        segment_bytes_max: 64 * 1024,
        segment_ms_max: None,
        index_interval_bytes: 4096,
        index_file_bytes: 64 * 1024,
        retention_ms: None,
        retention_bytes: None,
        compaction: None,
    }
}

/// Appends batches of awkward sizes to `leader` and, as stored, to `follower`.
fn append_both(leader: &mut Log, follower: &mut Log, round: usize) {
    for (idx, payload_len) in [1, 900, 3000, 4096, 9000, 20_000, 70, 5000]
        .into_iter()
        .enumerate()
    {
        let timestamp_ms = i64::try_from(round * 100 + idx).expect("timestamp");
        let mut batch = test_batches::build(2, timestamp_ms, payload_len);
        leader
            .append(&mut batch, 4, timestamp_ms)
            .expect("leader append");
        follower
            .append_as_stored(&batch, timestamp_ms)
            .expect("follower append");
    }
}

fn replicate_and_compare(refuse_direct_io: bool) {
    let leader_dir = tempfile::TempDir::new().expect("tempdir");
    let follower_dir = tempfile::TempDir::new().expect("tempdir");
    let fs = Fs::default();
    if refuse_direct_io {
        fs.inject_always(follower_dir.path(), Op::OpenDirect, Fault::Fail);
    }
    let mut leader = Log::open_on(
        Fs::default(),
        leader_dir.path(),
        TEST_TOPIC_ID,
        settings(),
        0,
    )
    .expect("open leader");
    let mut follower = Log::open_on(
        fs.clone(),
        follower_dir.path(),
        TEST_TOPIC_ID,
        settings(),
        0,
    )
    .expect("open follower");
    append_both(&mut leader, &mut follower, 0);
    assert_eq!(
        test_batches::segment_files(follower_dir.path()),
        test_batches::segment_files(leader_dir.path())
    );
    let cut = leader.log_end_offset() - 5;
    leader.truncate_suffix(cut).expect("truncate leader");
    follower.truncate_suffix(cut).expect("truncate follower");
    append_both(&mut leader, &mut follower, 1);
    follower.flush().expect("flush");
    assert!(
        test_batches::segment_files(leader_dir.path()).len() > 2,
        "the appends span several segments"
    );
    assert_eq!(
        test_batches::segment_files(follower_dir.path()),
        test_batches::segment_files(leader_dir.path())
    );
    drop(follower); // a crash after the fsync
    let mut follower = Log::open_on(fs, follower_dir.path(), TEST_TOPIC_ID, settings(), 0)
        .expect("reopen follower");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    append_both(&mut leader, &mut follower, 2);
    assert_eq!(
        test_batches::segment_files(follower_dir.path()),
        test_batches::segment_files(leader_dir.path())
    );
}

#[test]
fn a_follower_appending_past_the_page_cache_holds_its_leaders_bytes() {
    replicate_and_compare(false);
}

#[test]
fn a_follower_on_a_file_system_without_direct_io_holds_its_leaders_bytes() {
    replicate_and_compare(true);
}
