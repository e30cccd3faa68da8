//! Record-level view of a v2 batch held in memory (compaction, the group store), compression in
//! the framing clients write, and re-encoding a batch (a subset of its records, or another
//! codec). Pure functions over bytes; malformed input is an error value, never a panic.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::io::{self, Read};
use std::ops::Range;

use super::batch::{BATCH_HEADER_LEN, BatchHeader, Compression, LOG_OVERHEAD, seal_crc};
use super::record_stream::{self, Body, Records, XERIAL_MAGIC};
use super::{Error, Result};
use crate::limits;

pub(crate) use super::record_stream::RecordEntry;

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Byte ranges of the header fields rewritten when a batch is re-encoded.
const BATCH_LENGTH_AT: Range<usize> = 8..12;
const MAX_TIMESTAMP_AT: Range<usize> = 35..43;
const RECORD_COUNT_AT: Range<usize> = 57..61;
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

/// Decodes every record of `batch` (a whole stored batch) into memory, for compaction and the
/// group store. Decompressed bodies larger than `uncompressed_bytes_max` are refused before they
/// are fully allocated. The produce path streams instead ([`Records`]).
pub(crate) fn decode(batch: &[u8], uncompressed_bytes_max: usize) -> Result<DecodedBatch<'_>> {
    let header = BatchHeader::parse(batch)?;
    let stored = record_stream::stored(&header, batch)?;
    let body = match record_stream::open(&header, stored, uncompressed_bytes_max)? {
        Body::Stored(bytes) => Cow::Borrowed(bytes),
        Body::Owned(bytes) => Cow::Owned(bytes),
        Body::Decoder(decoder) => Cow::Owned(
            read_capped(decoder, uncompressed_bytes_max)
                .map_err(|err| record_stream::read_error(&header, uncompressed_bytes_max, err))?,
        ),
    };
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
    for record in Records::over(header, &body)? {
        records.push(record?);
    }
    Ok(DecodedBatch {
        header,
        body,
        records,
    })
}

/// Reads everything, failing once more than `bytes_max` bytes come out.
fn read_capped(reader: impl Read, bytes_max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader.take(limit).read_to_end(&mut out)?;
    if out.len() > bytes_max {
        return Err(record_stream::over_cap());
    }
    Ok(out)
}

/// Compresses a record body with `codec`, in the framing Kafka clients write.
pub(crate) fn compress(codec: Compression, body: &[u8]) -> io::Result<Vec<u8>> {
    compress_from(codec, &mut &*body)
}

/// Compresses everything `body` yields with `codec`, streaming (the input is never held whole).
fn compress_from(codec: Compression, body: &mut dyn Read) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => {
            let mut out = Vec::new();
            body.read_to_end(&mut out)?;
            Ok(out)
        }
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            io::copy(body, &mut encoder)?;
            encoder.finish()
        }
        Compression::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            let mut chunk = vec![0; limits::SNAPPY_BLOCK_BYTES];
            let mut encoder = snap::raw::Encoder::new();
            loop {
                let filled = read_full(body, &mut chunk)?;
                let Some(chunk) = chunk.get(..filled).filter(|c| !c.is_empty()) else {
                    return Ok(out);
                };
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let len = u32::try_from(block.len()).map_err(|_| record_stream::over_cap())?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
        }
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            io::copy(body, &mut encoder)?;
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

/// Reads until `chunk` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut dyn Read, chunk: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = chunk.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// A reader that fails (with [`record_stream::over_cap`]) once more than `left` bytes came out.
struct Capped<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.left = self
            .left
            .checked_sub(n)
            .ok_or_else(record_stream::over_cap)?;
        Ok(n)
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
    let codec = header.compression();
    let compressed = compress(codec, &body).map_err(|source| Error::Decompression {
        base_offset: header.base_offset,
        codec,
        source,
    })?;
    let new_header = Rewrite {
        record_count,
        codec,
        max_timestamp_delta,
    };
    new_header.seal(original, header, &compressed)
}

/// The records of `original` re-encoded with `codec` (a topic's `compression.type`), streamed
/// from the old codec into the new one through a bounded buffer; at most `bytes_max`
/// decompressed bytes are read. Every other header field is kept, and a CreateTime max
/// timestamp becomes base timestamp + `max_timestamp_delta` when given.
pub(crate) fn recompress(
    original: &[u8],
    codec: Compression,
    bytes_max: usize,
    max_timestamp_delta: Option<i64>,
) -> Result<Vec<u8>> {
    let header = BatchHeader::parse(original)?;
    let stored = record_stream::stored(&header, original)?;
    let compressed = match record_stream::open(&header, stored, bytes_max)? {
        Body::Stored(bytes) => compress_from(codec, &mut &*bytes),
        Body::Owned(bytes) => compress_from(codec, &mut bytes.as_slice()),
        Body::Decoder(decoder) => compress_from(
            codec,
            &mut Capped {
                inner: decoder,
                left: bytes_max,
            },
        ),
    }
    .map_err(|err| record_stream::read_error(&header, bytes_max, err))?;
    let new_header = Rewrite {
        record_count: header.record_count,
        codec,
        max_timestamp_delta,
    };
    new_header.seal(original, &header, &compressed)
}

/// The header fields a re-encoded batch changes.
struct Rewrite {
    record_count: i32,
    codec: Compression,
    max_timestamp_delta: Option<i64>,
}

impl Rewrite {
    /// `original`'s header with these fields, then `compressed`, with a new length and CRC.
    fn seal(&self, original: &[u8], header: &BatchHeader, compressed: &[u8]) -> Result<Vec<u8>> {
        let mut batch = Vec::with_capacity(BATCH_HEADER_LEN + compressed.len());
        batch.extend_from_slice(
            original
                .get(..BATCH_HEADER_LEN)
                .ok_or(Error::BatchTooShort {
                    len: original.len(),
                    needed: BATCH_HEADER_LEN,
                })?,
        );
        batch.extend_from_slice(compressed);
        let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD)
            .map_err(|_| malformed(header, "re-encoded batch is too large"))?;
        put(&mut batch, BATCH_LENGTH_AT, &batch_length.to_be_bytes());
        put(
            &mut batch,
            RECORD_COUNT_AT,
            &self.record_count.to_be_bytes(),
        );
        let attributes = (header.attributes & !CODEC_MASK) | codec_bits(self.codec);
        put(&mut batch, ATTRIBUTES_AT, &attributes.to_be_bytes());
        if header.attributes & TIMESTAMP_TYPE_BIT == 0
            && let Some(delta) = self.max_timestamp_delta
        {
            let max_timestamp = header.base_timestamp.saturating_add(delta);
            put(&mut batch, MAX_TIMESTAMP_AT, &max_timestamp.to_be_bytes());
        }
        seal_crc(&mut batch);
        BatchHeader::parse(&batch)?;
        Ok(batch)
    }
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

fn put(batch: &mut [u8], at: Range<usize>, value: &[u8]) {
    if let Some(target) = batch.get_mut(at) {
        target.copy_from_slice(value);
    }
}
