//! A log's prefix sent as segment files and installed in place of another log: the same
//! batches at the same offsets, appends going on after it, a reopen; a damaged or incomplete
//! transfer refused with the receiving log untouched; an install cut short by a crash finished
//! at the next open.

use std::path::Path;

use super::compaction_tests::{append_keyed, compact, eager, read_records, settings};
use super::{Log, PrefixManifest};

/// A compacted log of several segments, compacted once.
fn compacted_log(dir: &Path) -> Log {
    let mut log = Log::open(dir, settings(eager()), 0).unwrap();
    for version in 0..6 {
        for key in ["a", "b", "c"] {
            let value = format!("{key}{version}");
            append_keyed(&mut log, &[(key, Some(&value))], 100 + version, 0);
        }
    }
    assert!(compact(&mut log, 1_000), "a pass was installed");
    log
}

/// Another log with records of its own, which a transfer replaces.
fn other_log(dir: &Path) -> Log {
    let mut log = Log::open(dir, settings(eager()), 0).unwrap();
    for n in 0..4 {
        append_keyed(&mut log, &[("z", Some(&format!("old{n}")))], 50, 0);
    }
    log
}

/// Sends `from`'s prefix below `next_offset` to `to`'s staging area in `chunk` byte chunks;
/// returns the manifest.
fn send(from: &Log, to: &Log, next_offset: i64, transfer: u64, chunk: usize) -> PrefixManifest {
    let outgoing = from.outgoing_prefix(next_offset).unwrap();
    let incoming = to.incoming_prefix();
    for (index, piece) in outgoing.pieces().iter().enumerate() {
        let mut position = 0;
        while position < piece.len {
            let bytes = outgoing.read(index, position, chunk).unwrap();
            incoming
                .write(transfer, piece.base_offset, position, &bytes)
                .unwrap();
            position += bytes.len() as u64;
        }
    }
    PrefixManifest {
        transfer,
        log_start_offset: outgoing.log_start_offset,
        next_offset,
        pieces: outgoing.pieces(),
    }
}

fn records_below(log: &Log, end: i64) -> Vec<super::compaction_tests::Entry> {
    read_records(log)
        .into_iter()
        .filter(|(offset, _, _)| *offset < end)
        .collect()
}

#[test]
fn an_installed_prefix_holds_the_senders_batches_and_the_log_goes_on_after_it() {
    let root = tempfile::tempdir().unwrap();
    let sender = compacted_log(&root.path().join("sender"));
    let mut receiver = other_log(&root.path().join("receiver"));
    let next_offset = sender.active_base_offset();
    assert!(next_offset > 0);
    let manifest = send(&sender, &receiver, next_offset, 7, 50);
    assert!(manifest.pieces.len() > 1, "several segments: {manifest:?}");
    receiver.incoming_prefix().seal(&manifest).unwrap();
    assert!(
        !receiver.install_prefix(next_offset + 1).unwrap(),
        "no match"
    );
    assert!(receiver.install_prefix(next_offset).unwrap());

    assert_eq!(receiver.log_start_offset(), sender.log_start_offset());
    assert_eq!(receiver.log_end_offset(), next_offset);
    let expected = records_below(&sender, next_offset);
    assert!(!expected.is_empty());
    assert_eq!(read_records(&receiver), expected);
    append_keyed(&mut receiver, &[("a", Some("after"))], 300, 0);
    assert_eq!(receiver.log_end_offset(), next_offset + 1);
    receiver.close().unwrap();

    let reopened = Log::open(&root.path().join("receiver"), settings(eager()), 0).unwrap();
    let mut with_append = expected.clone();
    with_append.push((next_offset, Some(b"a".to_vec()), Some(b"after".to_vec())));
    assert_eq!(read_records(&reopened), with_append);
}

#[test]
fn a_damaged_or_incomplete_transfer_is_refused_and_the_log_is_untouched() {
    let root = tempfile::tempdir().unwrap();
    let sender = compacted_log(&root.path().join("sender"));
    let mut receiver = other_log(&root.path().join("receiver"));
    let before = read_records(&receiver);
    let next_offset = sender.active_base_offset();

    // A flipped byte in a record fails the CRC check of the seal.
    let manifest = send(&sender, &receiver, next_offset, 1, 1 << 20);
    let first = manifest.pieces[0];
    let staged = root
        .path()
        .join("receiver/snapshot-incoming")
        .join(format!("{:020}.log", first.base_offset));
    let mut bytes = std::fs::read(&staged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&staged, &bytes).unwrap();
    assert!(receiver.incoming_prefix().seal(&manifest).is_err());
    assert!(!receiver.install_prefix(next_offset).unwrap());

    // A missing piece, a chunk out of order, a manifest of another transfer.
    let mut manifest = send(&sender, &receiver, next_offset, 2, 1 << 20);
    let dropped = manifest.pieces.pop().unwrap();
    assert!(receiver.incoming_prefix().seal(&manifest).is_err());
    assert!(
        receiver
            .incoming_prefix()
            .write(2, dropped.base_offset, 10_000, b"late")
            .is_err()
    );
    let manifest = send(&sender, &receiver, next_offset, 3, 1 << 20);
    let other = PrefixManifest {
        transfer: 4,
        ..manifest
    };
    assert!(receiver.incoming_prefix().seal(&other).is_err());
    assert!(!receiver.install_prefix(next_offset).unwrap());
    assert_eq!(read_records(&receiver), before);
}

#[test]
fn an_install_cut_short_by_a_crash_finishes_at_the_next_open() {
    let root = tempfile::tempdir().unwrap();
    let sender = compacted_log(&root.path().join("sender"));
    let dir = root.path().join("receiver");
    let receiver = other_log(&dir);
    let next_offset = sender.active_base_offset();
    let manifest = send(&sender, &receiver, next_offset, 9, 100);
    receiver.incoming_prefix().seal(&manifest).unwrap();
    // The install's first step (the marker), then a crash: half of the staged segments moved.
    std::fs::rename(
        dir.join("snapshot-incoming/manifest"),
        dir.join("snapshot-install"),
    )
    .unwrap();
    let moved = manifest.pieces[0].base_offset;
    for suffix in ["index", "timeindex", "log"] {
        std::fs::rename(
            dir.join(format!("snapshot-incoming/{moved:020}.{suffix}")),
            dir.join(format!("{moved:020}.{suffix}")),
        )
        .unwrap();
    }
    drop(receiver);

    let reopened = Log::open(&dir, settings(eager()), 0).unwrap();
    assert!(!dir.join("snapshot-install").exists());
    assert!(!dir.join("snapshot-incoming").exists());
    assert_eq!(reopened.log_end_offset(), next_offset);
    assert_eq!(read_records(&reopened), records_below(&sender, next_offset));
}
