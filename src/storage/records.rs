//! Record-level view of a v2 batch for compaction and key checks: decompression (gzip, snappy,
//! LZ4 frame, zstd) with a size cap, record framing, and re-encoding a subset of records.
//! Pure functions over bytes; malformed input is an error value, never a panic.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::ops::Range;

use super::batch::{BATCH_HEADER_LEN, BatchHeader, Compression, LOG_OVERHEAD};
use super::{Error, Result};

/// The xerial "blocked" snappy stream header Java clients write (and read back).
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Byte ranges of the header fields rewritten when a batch is re-encoded.
const BATCH_LENGTH_AT: Range<usize> = 8..12;
const CRC_AT: Range<usize> = 17..21;
const MAX_TIMESTAMP_AT: Range<usize> = 35..43;
const RECORD_COUNT_AT: Range<usize> = 57..61;
const CRC_COVERS_FROM: usize = 21;
const ATTRIBUTES_AT: Range<usize> = 21..23;
const CODEC_MASK: i16 = 0x07;

/// The attribute bits of a codec; `Unknown` keeps its raw id.
fn codec_bits(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
        Compression::Unknown(raw) => i16::from(raw) & CODEC_MASK,
    }
}

/// One record inside a decoded batch; ranges index [`DecodedBatch::body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    pub(crate) offset_delta: i32,
    pub(crate) timestamp_delta: i64,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// The whole record, its length prefix included, as stored.
    raw: Range<usize>,
}

/// A batch's header with its records decompressed and framed. An uncompressed body is
/// borrowed from the batch, not copied (produce decodes every batch on its hot path).
#[derive(Debug)]
pub(crate) struct DecodedBatch<'a> {
    pub(crate) header: BatchHeader,
    body: Cow<'a, [u8]>,
    pub(crate) records: Vec<RecordEntry>,
}

impl DecodedBatch<'_> {
    pub(crate) fn key(&self, record: &RecordEntry) -> Option<&[u8]> {
        record.key.clone().and_then(|range| self.body.get(range))
    }

    #[allow(dead_code)] // reason: used by tests and kept for symmetry with `key`
    pub(crate) fn value(&self, record: &RecordEntry) -> Option<&[u8]> {
        record.value.clone().and_then(|range| self.body.get(range))
    }

    pub(crate) fn is_tombstone(record: &RecordEntry) -> bool {
        record.value.is_none()
    }

    pub(crate) fn offset(&self, record: &RecordEntry) -> i64 {
        self.header.base_offset + i64::from(record.offset_delta)
    }
}

fn malformed(header: &BatchHeader, reason: &'static str) -> Error {
    Error::MalformedRecords {
        base_offset: header.base_offset,
        reason,
    }
}

/// Decodes every record of `batch` (a whole stored batch). Decompressed bodies larger than
/// `uncompressed_bytes_max` are refused before they are fully allocated.
pub(crate) fn decode(batch: &[u8], uncompressed_bytes_max: usize) -> Result<DecodedBatch<'_>> {
    let header = BatchHeader::parse(batch)?;
    let stored =
        batch
            .get(BATCH_HEADER_LEN..header.total_len())
            .ok_or(Error::BatchLengthMismatch {
                len: batch.len(),
                header_len: header.total_len(),
            })?;
    let body = decompress(&header, stored, uncompressed_bytes_max)?;
    let record_count = usize::try_from(header.record_count)
        .map_err(|_| malformed(&header, "negative record count"))?;
    // Each record takes at least 7 bytes, which bounds the allocation by the body size.
    if record_count > body.len() / 7 + 1 {
        return Err(malformed(
            &header,
            "record count exceeds what the body can hold",
        ));
    }
    let mut records = Vec::with_capacity(record_count);
    let mut cursor = Cursor {
        bytes: &body,
        at: 0,
    };
    for _ in 0..record_count {
        let record = cursor
            .record()
            .ok_or_else(|| malformed(&header, "record framing is invalid"))?;
        if record.offset_delta < 0 || record.offset_delta > header.last_offset_delta {
            return Err(malformed(&header, "record offset delta outside the batch"));
        }
        records.push(record);
    }
    if cursor.at != body.len() {
        return Err(malformed(&header, "bytes follow the last record"));
    }
    Ok(DecodedBatch {
        header,
        body,
        records,
    })
}

fn decompress<'a>(
    header: &BatchHeader,
    stored: &'a [u8],
    bytes_max: usize,
) -> Result<Cow<'a, [u8]>> {
    let codec = header.compression();
    let failed = |source: io::Error| Error::Decompression {
        base_offset: header.base_offset,
        codec,
        source,
    };
    let decompressed = match codec {
        Compression::None => return Ok(Cow::Borrowed(stored)),
        Compression::Gzip => read_capped(flate2::read::GzDecoder::new(stored), bytes_max),
        Compression::Snappy => snappy_decompress(stored, bytes_max),
        Compression::Lz4 => lz4::Decoder::new(stored).and_then(|d| read_capped(d, bytes_max)),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(stored).and_then(|d| read_capped(d, bytes_max))
        }
        Compression::Unknown(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unknown compression codec",
        )),
    };
    decompressed.map(Cow::Owned).map_err(failed)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "decompressed records exceed the size limit",
    )
}

/// Reads everything, failing once more than `bytes_max` bytes come out.
fn read_capped(reader: impl Read, bytes_max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader.take(limit).read_to_end(&mut out)?;
    if out.len() > bytes_max {
        return Err(too_large());
    }
    Ok(out)
}

/// Raw snappy, or the xerial blocked stream (magic header, then u32-length-prefixed blocks).
fn snappy_decompress(stored: &[u8], bytes_max: usize) -> io::Result<Vec<u8>> {
    let invalid = |e: snap::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let Some(mut rest) = stored.strip_prefix(XERIAL_MAGIC.as_slice()) else {
        if snap::raw::decompress_len(stored).map_err(invalid)? > bytes_max {
            return Err(too_large());
        }
        return snap::raw::Decoder::new()
            .decompress_vec(stored)
            .map_err(invalid);
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short block length"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        let block = after
            .get(..len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short snappy block"))?;
        if snap::raw::decompress_len(block).map_err(invalid)? > bytes_max - out.len() {
            return Err(too_large());
        }
        out.extend(
            snap::raw::Decoder::new()
                .decompress_vec(block)
                .map_err(invalid)?,
        );
        rest = after.get(len..).unwrap_or_default();
    }
    Ok(out)
}

/// Compresses a record body with `codec`, in the framing Kafka clients write.
pub(crate) fn compress(codec: Compression, body: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(body.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body)?;
            encoder.finish()
        }
        Compression::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            for chunk in body.chunks(XERIAL_BLOCK_BYTES) {
                let block = snap::raw::Encoder::new()
                    .compress_vec(chunk)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let len = u32::try_from(block.len()).map_err(|_| too_large())?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            encoder.write_all(body)?;
            let (out, result) = encoder.finish();
            result.map(|()| out)
        }
        Compression::Zstd => zstd::stream::encode_all(body, 0),
        Compression::Unknown(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unknown compression codec",
        )),
    }
}

/// A new batch holding only the records of `decoded` that `keep` selects, byte for byte and in
/// order, recompressed with the original codec. The header keeps the base offset, last offset
/// delta, attributes, leader epoch and producer fields; record count, length, CRC and (for
/// CreateTime) max timestamp are recomputed. `original` is the stored batch `decoded` came from.
pub(crate) fn retain(
    original: &[u8],
    decoded: &DecodedBatch<'_>,
    keep: impl Fn(&RecordEntry) -> bool,
) -> Result<Vec<u8>> {
    rebuild(original, decoded, keep, decoded.header.compression())
}

/// The same records re-encoded with `codec` (a topic's `compression.type`); every other header
/// field is kept, and the CreateTime max timestamp is recomputed from the records.
pub(crate) fn recompress(
    original: &[u8],
    decoded: &DecodedBatch<'_>,
    codec: Compression,
) -> Result<Vec<u8>> {
    rebuild(original, decoded, |_| true, codec)
}

/// The largest record timestamp (base timestamp + largest delta); None for a batch without records.
pub(crate) fn max_record_timestamp(decoded: &DecodedBatch<'_>) -> Option<i64> {
    let delta = decoded.records.iter().map(|r| r.timestamp_delta).max()?;
    Some(decoded.header.base_timestamp.saturating_add(delta))
}

fn rebuild(
    original: &[u8],
    decoded: &DecodedBatch<'_>,
    keep: impl Fn(&RecordEntry) -> bool,
    codec: Compression,
) -> Result<Vec<u8>> {
    let header = &decoded.header;
    let mut body = Vec::new();
    let mut record_count: i32 = 0;
    let mut max_timestamp_delta: Option<i64> = None;
    for record in decoded.records.iter().filter(|record| keep(record)) {
        let raw = decoded
            .body
            .get(record.raw.clone())
            .ok_or_else(|| malformed(header, "record range outside the body"))?;
        body.extend_from_slice(raw);
        record_count += 1;
        max_timestamp_delta = max_timestamp_delta.max(Some(record.timestamp_delta));
    }
    let compressed = compress(codec, &body).map_err(|source| Error::Decompression {
        base_offset: header.base_offset,
        codec,
        source,
    })?;
    let mut batch = original
        .get(..BATCH_HEADER_LEN)
        .ok_or(Error::BatchTooShort {
            len: original.len(),
            needed: BATCH_HEADER_LEN,
        })?
        .to_vec();
    batch.extend_from_slice(&compressed);
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD)
        .map_err(|_| malformed(header, "re-encoded batch is too large"))?;
    put(&mut batch, BATCH_LENGTH_AT, &batch_length.to_be_bytes());
    put(&mut batch, RECORD_COUNT_AT, &record_count.to_be_bytes());
    let attributes = (header.attributes & !CODEC_MASK) | codec_bits(codec);
    put(&mut batch, ATTRIBUTES_AT, &attributes.to_be_bytes());
    if header.attributes & TIMESTAMP_TYPE_BIT == 0
        && let Some(delta) = max_timestamp_delta
    {
        let max_timestamp = header.base_timestamp.saturating_add(delta);
        put(&mut batch, MAX_TIMESTAMP_AT, &max_timestamp.to_be_bytes());
    }
    seal_crc(&mut batch);
    BatchHeader::parse(&batch)?;
    Ok(batch)
}

/// A header-only batch (no records, like Kafka's retained empty batches) covering offsets
/// `base_offset..=last_offset`, so a run of emptied batches keeps offsets contiguous.
pub(crate) fn empty(
    base_offset: i64,
    last_offset_delta: i32,
    max_timestamp: i64,
    partition_leader_epoch: i32,
    is_log_append_time: bool,
) -> Vec<u8> {
    let attributes: i16 = if is_log_append_time {
        TIMESTAMP_TYPE_BIT
    } else {
        0
    };
    let mut batch = Vec::with_capacity(BATCH_HEADER_LEN);
    batch.extend_from_slice(&base_offset.to_be_bytes());
    batch.extend_from_slice(&((BATCH_HEADER_LEN - LOG_OVERHEAD) as i32).to_be_bytes());
    batch.extend_from_slice(&partition_leader_epoch.to_be_bytes());
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, sealed below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&last_offset_delta.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&0i32.to_be_bytes()); // record count
    seal_crc(&mut batch);
    batch
}

fn seal_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(batch.get(CRC_COVERS_FROM..).unwrap_or_default());
    put(batch, CRC_AT, &crc.to_be_bytes());
}

fn put(batch: &mut [u8], at: Range<usize>, value: &[u8]) {
    if let Some(target) = batch.get_mut(at) {
        target.copy_from_slice(value);
    }
}

/// Reads v2 records: zigzag varints and length-prefixed fields.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn varlong(&mut self, bytes_max: usize) -> Option<i64> {
        let mut raw: u64 = 0;
        for i in 0..bytes_max {
            let byte = self.byte()?;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong(5)?).ok()
    }

    /// A varint length then that many bytes; -1 is null.
    fn nullable(&mut self, end: usize) -> Option<Option<Range<usize>>> {
        let len = self.varint()?;
        if len == -1 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let start = self.at;
        let stop = start.checked_add(len).filter(|&stop| stop <= end)?;
        self.at = stop;
        Some(Some(start..stop))
    }

    fn record(&mut self) -> Option<RecordEntry> {
        let start = self.at;
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())?;
        let _attributes = self.byte()?;
        let timestamp_delta = self.varlong(10)?;
        let offset_delta = self.varint()?;
        let key = self.nullable(end)?;
        let value = self.nullable(end)?;
        let header_count = self.varint()?;
        for _ in 0..header_count.max(0) {
            // Header keys are never null; header values may be.
            self.nullable(end)??;
            self.nullable(end)?;
        }
        if header_count < 0 || self.at != end {
            return None;
        }
        Some(RecordEntry {
            offset_delta,
            timestamp_delta,
            key,
            value,
            raw: start..end,
        })
    }
}
