//! Record values: the sequence number, the shifted filler pattern, and partition choice.

/// Bytes of a record value that carry its sequence number (little-endian u64).
pub(crate) const SEQUENCE_BYTES: usize = 8;
/// The filler after the sequence number repeats with this period, shifted by the sequence number,
/// so a record swapped with another or corrupted in its body is caught.
const PATTERN_PERIOD: usize = 251;
/// The sequence number of the one warm-up record at offset 0 of every partition: it is produced
/// and delivered before the clock starts, so connection setup is not measured.
pub(crate) const WARMUP_SEQUENCE: u64 = u64::MAX;

/// The filler pattern: `PATTERN_PERIOD` shifts of a byte ramp, long enough for `record_bytes`.
pub(crate) fn pattern(record_bytes: usize) -> Vec<u8> {
    (0..record_bytes + PATTERN_PERIOD)
        .map(|i| u8::try_from(i % PATTERN_PERIOD).expect("period fits in a byte"))
        .collect()
}

pub(crate) fn pattern_shift(sequence: u64) -> usize {
    usize::try_from(sequence % PATTERN_PERIOD as u64).expect("shift is below the period")
}

/// Writes record `sequence`: its number, then the pattern shifted by it.
pub(crate) fn fill_record(record: &mut [u8], pattern: &[u8], sequence: u64) {
    let (head, body) = record.split_at_mut(SEQUENCE_BYTES);
    head.copy_from_slice(&sequence.to_le_bytes());
    let shift = pattern_shift(sequence);
    body.copy_from_slice(&pattern[shift..shift + body.len()]);
}

/// The partition record `sequence` goes to: round robin, so partition p holds p, p+P, p+2P, ...
pub(crate) fn partition_of(sequence: u64, partitions: i32) -> i32 {
    let partitions = u64::try_from(partitions).expect("partitions is positive");
    i32::try_from(sequence % partitions).expect("partition index fits i32")
}
