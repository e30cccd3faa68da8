//! Fuzzing entry (built only with `--cfg fuzzing`, by `fuzz/`): a partition directory whose
//! files hold arbitrary bytes, opened (recovered), read, appended to and reopened.

use std::path::{Path, PathBuf};

use super::batch_builder::{Record, build};
use super::fs::Fs;
use super::log::Log;
use super::settings::LogSettings;

const TOPIC_ID: [u8; 16] = [7; 16];
const NOW_MS: i64 = 1_700_000_000_000;
/// The most one read asks for.
const READ_BYTES_MAX: usize = 1 << 20;

/// Writes `data` as a partition's files and opens the log on them. The first byte picks which
/// files the rest fills: the active segment alone, or split at the second byte's share into
/// the segment and its offset index, time index, or a second, newer segment. CRCs are sealed
/// first so recovery sees batches, not only garbage. A log that opens must read back whole
/// batches from start to end, take one more batch, close, and reopen with the same end.
pub fn recovered_log(data: &[u8]) {
    let [pick, share, rest @ ..] = data else {
        return;
    };
    let dir = scratch_dir();
    let _cleared = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let split = rest.len() * usize::from(*share) / 256;
    let (first, second) = rest.split_at(split);
    let mut segment = first.to_vec();
    seal_crcs(&mut segment);
    let segment_name = "00000000000000000000";
    if pick % 4 == 0 {
        // Unsealed bytes after the sealed batches: a torn or garbled tail.
        segment.extend_from_slice(second);
    }
    write(&dir, &format!("{segment_name}.log"), &segment);
    match pick % 4 {
        0 => {}
        1 => write(&dir, &format!("{segment_name}.index"), second),
        2 => write(&dir, &format!("{segment_name}.timeindex"), second),
        _ => {
            let mut newer = second.to_vec();
            seal_crcs(&mut newer);
            write(&dir, "00000000000000000100.log", &newer);
        }
    }
    let settings = LogSettings::default();
    let Ok(mut log) = Log::open_on(Fs::default(), &dir, TOPIC_ID, settings.clone(), NOW_MS) else {
        return;
    };
    read_all(&log);
    let mut batch = build(
        &[Record {
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
        }],
        NOW_MS,
    );
    let appended = log.append(&mut batch, 0, NOW_MS).is_ok();
    let end = log.log_end_offset();
    if log.close().is_err() {
        return;
    }
    let reopened = Log::open_on(Fs::default(), &dir, TOPIC_ID, settings, NOW_MS)
        .expect("a log that opened and closed cleanly reopens");
    if appended {
        assert_eq!(
            reopened.log_end_offset(),
            end,
            "the reopened log ends where it closed"
        );
    }
    read_all(&reopened);
}

/// Reads every batch from the log start to its end, as fetches would.
fn read_all(log: &Log) {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let Ok(plan) = log.plan_read(offset, end, READ_BYTES_MAX, true) else {
            return;
        };
        let Ok(bytes) = plan.read() else {
            return;
        };
        let mut next = None;
        let mut rest = &bytes[..];
        while let Ok(header) = super::BatchHeader::parse(rest) {
            next = Some(header.last_offset() + 1);
            rest = rest.get(header.total_len()..).unwrap_or_default();
        }
        match next {
            Some(next) if next > offset => offset = next,
            _ => return,
        }
    }
}

/// Seals the CRC of every whole batch in `records`, front to back, as far as their length
/// fields chain.
pub(crate) fn seal_crcs(records: &mut [u8]) {
    let mut position = 0usize;
    while let Some(length) = records.get(position + 8..position + 12) {
        let mut field = [0u8; 4];
        field.copy_from_slice(length);
        let Ok(length) = usize::try_from(i32::from_be_bytes(field)) else {
            return;
        };
        let end = position + 12 + length;
        let Some(batch) = records.get_mut(position..end) else {
            return;
        };
        if batch.len() < super::BATCH_HEADER_LEN {
            return;
        }
        super::batch::seal_crc(batch);
        position = end;
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let _written = std::fs::write(dir.join(name), bytes);
}

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tidelog-fuzz-log-{}", std::process::id()))
}
