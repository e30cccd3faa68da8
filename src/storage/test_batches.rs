//! Test-only builder of valid magic v2 record batches (uncompressed, correct CRC), for storage
//! tests and other layers' tests. Not compiled outside `cfg(test)`.

/// A v2 batch with `record_count` uncompressed records (null key, `payload_len`-byte value,
/// no headers), base offset 0, every timestamp `timestamp_ms`, no producer id, correct CRC.
/// A `record_count` of 0 gives a header-only batch with last_offset_delta 0.
pub(crate) fn build(record_count: i32, timestamp_ms: i64, payload_len: usize) -> Vec<u8> {
    let mut records = Vec::new();
    for offset_delta in 0..record_count.max(0) {
        let value: Vec<u8> = (0..payload_len)
            .map(|i| (i as u8).wrapping_add(offset_delta as u8))
            .collect();
        let mut body = vec![0u8]; // record attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i64::from(offset_delta));
        put_varint(&mut body, -1); // null key
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(&value);
        put_varint(&mut body, 0); // header count
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut batch = Vec::with_capacity(61 + records.len());
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_length = (61 - 12 + records.len()) as i32;
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes
    batch.extend_from_slice(&(record_count - 1).max(0).to_be_bytes()); // last offset delta
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(&records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Zigzag varint as used inside v2 records.
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
