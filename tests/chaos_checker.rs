//! Tests of the consistency checker itself: synthetic histories with each anomaly must be
//! reported (and a clean one must not), so a run that prints "no anomalies" means something.

#[path = "chaos/checker/mod.rs"]
mod checker;

use checker::{Check, Drain, History, Outcome, Read, ReplicaLog, Tp, Write};

fn tp(partition: i32) -> Tp {
    Tp::new("t", partition)
}

fn value(producer: &str, seq: u64) -> Vec<u8> {
    format!("{producer}-s{seq} xxxx").into_bytes()
}

fn write(partition: i32, producer: &str, seq: u64, outcome: Outcome) -> Write {
    Write {
        value: value(producer, seq),
        tp: tp(partition),
        producer: producer.to_owned(),
        seq,
        outcome,
    }
}

fn acked(offset: i64) -> Outcome {
    Outcome::Acked { offset }
}

fn unknown() -> Outcome {
    Outcome::Unknown {
        error: "timed out".to_owned(),
    }
}

fn read(reader: &str, partition: i32, offset: i64, producer: &str, seq: u64) -> Read {
    Read {
        reader: reader.to_owned(),
        tp: tp(partition),
        offset,
        value: value(producer, seq),
    }
}

fn drain(records: &[(i64, Vec<u8>)], high_watermark: i64) -> Drain {
    Drain {
        high_watermark,
        records: records.to_vec(),
        complete: true,
        error: None,
    }
}

/// A clean history: p0 wrote s0..s3 to partition 0 at offsets 0..3, all acknowledged and read;
/// s4 had an unknown outcome and is absent.
fn clean() -> History {
    let mut history = History::default();
    for seq in 0..4 {
        history.writes.push(write(0, "p0", seq, acked(seq as i64)));
        history.reads.push(read("c0", 0, seq as i64, "p0", seq));
    }
    history.writes.push(write(0, "p0", 4, unknown()));
    let records: Vec<(i64, Vec<u8>)> = (0..4).map(|s| (s as i64, value("p0", s))).collect();
    history.drains.insert(tp(0), drain(&records, 4));
    history
}

/// Asserts `history` is reported with findings of exactly `expected` (and nothing else).
#[track_caller]
fn check_reports(history: &History, expected: &[Check]) -> checker::Report {
    let report = checker::check(history);
    for check in Check::ALL {
        let count = report.count(check);
        if expected.contains(&check) {
            assert!(count > 0, "{check:?} not reported:\n{}", report.table());
        } else {
            assert_eq!(
                count,
                0,
                "{check:?} reported unexpectedly:\n{}",
                report.table()
            );
        }
    }
    assert_eq!(report.is_clean(), expected.is_empty());
    report
}

#[test]
fn clean_history_reports_nothing() {
    let report = check_reports(&clean(), &[]);
    assert_eq!(report.stats.acknowledged, 4);
    assert_eq!(report.stats.unknown, 1);
    assert!(
        report.table().contains("verdict: no anomalies"),
        "{}",
        report.table()
    );
}

#[test]
fn acknowledged_write_missing_from_final_log_is_lost() {
    let mut history = clean();
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.records.retain(|(offset, _)| *offset != 2);
    // The consumer's read of offset 2 names a record the log no longer has at 2: nothing else.
    history.reads.retain(|read| read.offset != 2);
    let report = check_reports(&history, &[Check::LostAcknowledged]);
    assert!(report.table().contains("p0-s2"), "{}", report.table());
}

#[test]
fn value_at_two_offsets_is_a_duplicate() {
    let mut history = clean();
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.records.push((4, value("p0", 1)));
    drain.high_watermark = 5;
    check_reports(&history, &[Check::Duplicate]);
}

#[test]
fn producer_records_out_of_send_order_are_reordered() {
    let mut history = History::default();
    // p0 sent s0 then s1, both with unknown outcome; the log holds s1 before s0.
    history.writes.push(write(0, "p0", 0, unknown()));
    history.writes.push(write(0, "p0", 1, unknown()));
    history
        .drains
        .insert(tp(0), drain(&[(0, value("p0", 1)), (1, value("p0", 0))], 2));
    check_reports(&history, &[Check::Reordered]);
}

#[test]
fn interleaved_producers_in_order_are_not_reordered() {
    let mut history = History::default();
    for (offset, (producer, seq)) in [("p0", 0), ("p1", 0), ("p0", 1), ("p1", 1)]
        .iter()
        .enumerate()
    {
        history
            .writes
            .push(write(0, producer, *seq, acked(offset as i64)));
    }
    let records: Vec<(i64, Vec<u8>)> = [("p0", 0), ("p1", 0), ("p0", 1), ("p1", 1)]
        .iter()
        .enumerate()
        .map(|(offset, (producer, seq))| (offset as i64, value(producer, *seq)))
        .collect();
    history.drains.insert(tp(0), drain(&records, 4));
    check_reports(&history, &[]);
}

#[test]
fn offset_read_with_two_values_is_inconsistent() {
    let mut history = clean();
    // A consumer read s4 (unknown outcome) at offset 3, where the final log has s3: the offset
    // named two records, and s4 vanished.
    history.reads.push(read("c1", 0, 3, "p0", 4));
    let report = check_reports(&history, &[Check::InconsistentOffset, Check::VanishedRead]);
    let table = report.table();
    assert!(table.contains("t/0@3"), "{table}");
}

#[test]
fn acknowledged_offset_that_differs_from_the_log_is_inconsistent() {
    let mut history = clean();
    // s3 was acknowledged at offset 7, but sits at 3.
    history.writes[3].outcome = acked(7);
    check_reports(&history, &[Check::InconsistentOffset]);
}

#[test]
fn acknowledgement_without_an_offset_names_none() {
    // librdkafka's implicit ack reports RD_KAFKA_OFFSET_INVALID (-1001) as the offset.
    let mut history = clean();
    history.writes[3].outcome = acked(-1001);
    let report = check_reports(&history, &[]);
    assert_eq!(report.stats.acknowledged, 4);
    // Still lost if it is not in the final log.
    history.drains.insert(
        tp(0),
        drain(
            &(0..3)
                .map(|s| (s as i64, value("p0", s)))
                .collect::<Vec<_>>(),
            3,
        ),
    );
    history.reads.pop();
    check_reports(&history, &[Check::LostAcknowledged]);
}

#[test]
fn unacknowledged_read_that_vanished_is_reported() {
    let mut history = clean();
    history.reads.push(read("c0", 0, 4, "p0", 4));
    check_reports(&history, &[Check::VanishedRead]);
}

#[test]
fn failed_write_that_was_read_is_reported() {
    let mut history = clean();
    history.writes[4].outcome = Outcome::Failed {
        error: "never queued".to_owned(),
    };
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.records.push((4, value("p0", 4)));
    drain.high_watermark = 5;
    check_reports(&history, &[Check::FailedWriteVisible]);
}

#[test]
fn record_nobody_wrote_is_a_phantom() {
    let mut history = clean();
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.records.push((4, b"garbage".to_vec()));
    drain.high_watermark = 5;
    check_reports(&history, &[Check::Phantom]);
}

#[test]
fn record_written_to_another_partition_is_a_phantom_there() {
    let mut history = clean();
    history.writes.push(write(1, "p1", 0, unknown()));
    history.drains.insert(tp(1), drain(&[], 0));
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.records.push((4, value("p1", 0)));
    drain.high_watermark = 5;
    check_reports(&history, &[Check::Phantom]);
}

#[test]
fn partition_not_read_to_its_high_watermark_is_undrained() {
    let mut history = clean();
    let drain = history.drains.get_mut(&tp(0)).expect("drain");
    drain.complete = false;
    drain.error = Some("deadline passed".to_owned());
    // Lost writes cannot be judged on an incomplete drain: only Undrained is reported.
    drain.records.truncate(2);
    check_reports(&history, &[Check::Undrained]);
}

#[test]
fn written_partition_without_drain_is_undrained() {
    let mut history = clean();
    history.writes.push(write(5, "p9", 0, unknown()));
    check_reports(&history, &[Check::Undrained]);
}

// ----- replica logs: segment parsing and byte comparison -----

/// Appends a zigzag varint.
fn varint(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An uncompressed v2 batch of `values` at `base_offset`, with a correct CRC.
fn batch(base_offset: i64, leader_epoch: i32, values: &[Vec<u8>]) -> Vec<u8> {
    let mut records = Vec::new();
    for (delta, value) in values.iter().enumerate() {
        let mut record = vec![0u8]; // attributes
        varint(&mut record, 0); // timestamp delta
        varint(&mut record, delta as i64); // offset delta
        varint(&mut record, -1); // null key
        varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        varint(&mut record, 0); // no headers
        varint(&mut records, record.len() as i64);
        records.extend(record);
    }
    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // attributes
    after_crc.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes()); // last offset delta
    after_crc.extend_from_slice(&0i64.to_be_bytes()); // base timestamp
    after_crc.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    after_crc.extend_from_slice(&7i64.to_be_bytes()); // producer id
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // producer epoch
    after_crc.extend_from_slice(&0i32.to_be_bytes()); // base sequence
    after_crc.extend_from_slice(&(values.len() as i32).to_be_bytes());
    after_crc.extend(records);
    let mut out = Vec::new();
    out.extend_from_slice(&base_offset.to_be_bytes());
    let length = 4 + 1 + 4 + after_crc.len();
    out.extend_from_slice(&(length as i32).to_be_bytes());
    out.extend_from_slice(&leader_epoch.to_be_bytes());
    out.push(2); // magic
    out.extend_from_slice(&crc32c::crc32c(&after_crc).to_be_bytes());
    out.extend(after_crc);
    out
}

fn replica(broker: &str, segments: &[(&str, Vec<u8>)]) -> ReplicaLog {
    let mut log = ReplicaLog {
        broker: broker.to_owned(),
        ..ReplicaLog::default()
    };
    for (name, bytes) in segments {
        checker::parse_segment(name, bytes, &mut log);
    }
    log
}

/// The clean history's partition 0 as one segment: offsets 0-1 in one batch, 2-3 in another.
fn segment(leader_epoch: i32) -> Vec<u8> {
    let mut bytes = batch(0, leader_epoch, &[value("p0", 0), value("p0", 1)]);
    bytes.extend(batch(2, leader_epoch, &[value("p0", 2), value("p0", 3)]));
    bytes
}

#[test]
fn segment_parses_into_batches_with_records() {
    let log = replica("b1", &[("00000000000000000000.log", segment(0))]);
    assert_eq!(log.problem, None);
    assert_eq!(log.batches.len(), 2);
    assert_eq!(log.end_offset(), Some(4));
    let first = &log.batches[0];
    assert!(first.crc_ok && !first.is_control);
    assert_eq!((first.base_offset, first.last_offset), (0, 1));
    assert_eq!(
        first.records,
        Some(vec![(0, Some(value("p0", 0))), (1, Some(value("p0", 1)))])
    );
}

#[test]
fn torn_segment_tail_stops_the_parse_with_a_problem() {
    let mut bytes = segment(0);
    bytes.truncate(bytes.len() - 3);
    let log = replica("b1", &[("00000000000000000000.log", bytes)]);
    assert_eq!(log.batches.len(), 1);
    let problem = log.problem.expect("a torn tail is a problem");
    assert!(problem.contains("torn"), "{problem}");
}

#[test]
fn identical_replicas_are_not_divergent() {
    let mut history = clean();
    let logs = (1..=3)
        .map(|b| replica(&format!("broker {b}"), &[("0.log", segment(3))]))
        .collect();
    history.replicas.insert(tp(0), logs);
    let report = check_reports(&history, &[]);
    assert_eq!(report.stats.replica_logs, 3);
    assert_eq!(report.stats.replica_batches, 6);
}

#[test]
fn replica_with_other_bytes_below_the_high_watermark_is_divergent() {
    let mut history = clean();
    // Same records, but broker 2's batches carry another leader epoch.
    history.replicas.insert(
        tp(0),
        vec![
            replica("broker 1", &[("0.log", segment(3))]),
            replica("broker 2", &[("0.log", segment(4))]),
            replica("broker 3", &[("0.log", segment(3))]),
        ],
    );
    let report = check_reports(&history, &[Check::DivergentReplica]);
    assert!(
        report.table().contains("broker 1 and broker 2 differ"),
        "{}",
        report.table()
    );
}

#[test]
fn replica_differences_above_the_high_watermark_are_ignored() {
    let mut history = clean();
    let mut longer = segment(3);
    longer.extend(batch(4, 3, &[b"uncommitted".to_vec()]));
    let mut other_tail = segment(3);
    other_tail.extend(batch(4, 4, &[b"other uncommitted".to_vec()]));
    history.replicas.insert(
        tp(0),
        vec![
            replica("broker 1", &[("0.log", longer)]),
            replica("broker 2", &[("0.log", other_tail)]),
            replica("broker 3", &[("0.log", segment(3))]),
        ],
    );
    check_reports(&history, &[]);
}

#[test]
fn lagging_minority_replica_is_not_divergent() {
    let mut history = clean();
    history.replicas.insert(
        tp(0),
        vec![
            replica("broker 1", &[("0.log", segment(3))]),
            replica(
                "broker 2",
                &[("0.log", batch(0, 3, &[value("p0", 0), value("p0", 1)]))],
            ),
            replica("broker 3", &[("0.log", segment(3))]),
        ],
    );
    check_reports(&history, &[]);
}

#[test]
fn high_watermark_held_by_a_minority_only_is_divergent() {
    let mut history = clean();
    let short = batch(0, 3, &[value("p0", 0), value("p0", 1)]);
    history.replicas.insert(
        tp(0),
        vec![
            replica("broker 1", &[("0.log", segment(3))]),
            replica("broker 2", &[("0.log", short.clone())]),
            replica("broker 3", &[("0.log", short)]),
        ],
    );
    let report = check_reports(&history, &[Check::DivergentReplica]);
    assert!(
        report.table().contains("only 1 of 3 replicas"),
        "{}",
        report.table()
    );
}

#[test]
fn single_replica_that_lost_the_tail_below_the_high_watermark_is_divergent() {
    let mut history = clean();
    let mut torn = segment(0);
    torn.truncate(torn.len() - 5);
    history
        .replicas
        .insert(tp(0), vec![replica("broker 1", &[("0.log", torn)])]);
    check_reports(&history, &[Check::DivergentReplica]);
}

#[test]
fn replica_record_that_differs_from_the_final_read_is_divergent() {
    let mut history = clean();
    let mut bytes = batch(0, 0, &[value("p0", 0), value("p0", 1)]);
    bytes.extend(batch(2, 0, &[value("p0", 3), value("p0", 2)]));
    history
        .replicas
        .insert(tp(0), vec![replica("broker 1", &[("0.log", bytes)])]);
    let report = check_reports(&history, &[Check::DivergentReplica]);
    assert!(
        report.table().contains("offset 2 stores"),
        "{}",
        report.table()
    );
}

#[test]
fn batch_with_a_bad_crc_below_the_high_watermark_is_divergent() {
    let mut history = clean();
    let mut bytes = segment(0);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    history
        .replicas
        .insert(tp(0), vec![replica("broker 1", &[("0.log", bytes)])]);
    let report = check_reports(&history, &[Check::DivergentReplica]);
    assert!(
        report.table().contains("fails its CRC"),
        "{}",
        report.table()
    );
}
