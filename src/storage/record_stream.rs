//! Record-by-record reading of a v2 batch: the body is decompressed through a fixed-size buffer
//! and framed one record at a time, so checking a batch allocates nothing per record and holds
//! at most `limits::RECORD_STREAM_BUFFER_BYTES` of it (raw snappy, which cannot stream, is
//! decompressed whole). Decompressed output is capped. Pure; bad input is an error value.
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read};
use std::ops::Range;

use super::batch::{BATCH_HEADER_LEN, BatchHeader, Compression};
use super::{Error, Result};
use crate::limits;

/// The xerial "blocked" snappy stream header Java clients write (and read back).
pub(super) const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// One record of a batch. Ranges are positions in the batch's decompressed body (index
/// [`super::records::DecodedBatch`]'s body when the body was materialized).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    pub(crate) offset_delta: i32,
    pub(crate) timestamp_delta: i64,
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Option<Range<usize>>,
    /// The whole record, its length prefix included, as stored.
    pub(super) raw: Range<usize>,
}

impl RecordEntry {
    pub(crate) fn has_key(&self) -> bool {
        self.key.is_some()
    }
}

/// The record bytes of a batch, ready to be read.
pub(super) enum Body<'a> {
    /// Uncompressed: the stored bytes themselves.
    Stored(&'a [u8]),
    /// Raw snappy, decompressed whole (it has no streaming form); within the cap.
    Owned(Vec<u8>),
    /// A decompressing reader; the caller caps what it reads.
    Decoder(Box<dyn Read + 'a>),
}

/// The stored (possibly compressed) record bytes after the header of `batch`.
pub(super) fn stored<'a>(header: &BatchHeader, batch: &'a [u8]) -> Result<&'a [u8]> {
    batch
        .get(BATCH_HEADER_LEN..header.total_len())
        .ok_or(Error::BatchLengthMismatch {
            len: batch.len(),
            header_len: header.total_len(),
        })
}

/// Opens the records of a batch for reading with the decoder its codec needs.
pub(super) fn open<'a>(
    header: &BatchHeader,
    stored: &'a [u8],
    bytes_max: usize,
) -> Result<Body<'a>> {
    let codec = header.compression();
    let failed = |source: io::Error| Error::Decompression {
        base_offset: header.base_offset,
        codec,
        source,
    };
    let decoder: Box<dyn Read + 'a> = match codec {
        Compression::None => return Ok(Body::Stored(stored)),
        Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(stored)),
        Compression::Snappy => match stored.strip_prefix(XERIAL_MAGIC.as_slice()) {
            Some(blocks) => Box::new(Xerial::new(blocks, bytes_max)),
            None => return raw_snappy(header, stored, bytes_max).map(Body::Owned),
        },
        Compression::Lz4 => Box::new(lz4::Decoder::new(stored).map_err(failed)?),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(stored).map_err(failed)?)
        }
        Compression::Unknown(_) => {
            return Err(failed(io::Error::new(
                io::ErrorKind::Unsupported,
                "unknown compression codec",
            )));
        }
    };
    Ok(Body::Decoder(decoder))
}

fn raw_snappy(header: &BatchHeader, stored: &[u8], bytes_max: usize) -> Result<Vec<u8>> {
    let failed = |e: snap::Error| Error::Decompression {
        base_offset: header.base_offset,
        codec: Compression::Snappy,
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    };
    if snap::raw::decompress_len(stored).map_err(failed)? > bytes_max {
        return Err(too_large(header, bytes_max));
    }
    snap::raw::Decoder::new()
        .decompress_vec(stored)
        .map_err(failed)
}

pub(super) fn too_large(header: &BatchHeader, bytes_max: usize) -> Error {
    Error::DecompressedTooLarge {
        base_offset: header.base_offset,
        codec: header.compression(),
        bytes_max,
    }
}

/// Marks the io error a decoder returns once its output would pass the cap.
#[derive(Debug)]
pub(super) struct OverCap;

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed records exceed the size limit")
    }
}

impl std::error::Error for OverCap {}

pub(super) fn over_cap() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, OverCap)
}

fn is_over_cap(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<OverCap>())
}

/// Maps a failed read of a batch body to the storage error it stands for.
pub(super) fn read_error(header: &BatchHeader, bytes_max: usize, err: io::Error) -> Error {
    if is_over_cap(&err) {
        return too_large(header, bytes_max);
    }
    Error::Decompression {
        base_offset: header.base_offset,
        codec: header.compression(),
        source: err,
    }
}

/// The xerial blocked snappy stream: u32-length-prefixed raw snappy blocks, decoded one at a
/// time into a reused buffer.
struct Xerial<'a> {
    rest: &'a [u8],
    block: Vec<u8>,
    at: usize,
    produced: usize,
    bytes_max: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> Xerial<'a> {
    fn new(blocks: &'a [u8], bytes_max: usize) -> Xerial<'a> {
        Xerial {
            rest: blocks,
            block: Vec::new(),
            at: 0,
            produced: 0,
            bytes_max,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Decodes the next block; false at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let eof = |what| io::Error::new(io::ErrorKind::UnexpectedEof, what);
        let invalid = |e: snap::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let (len, after) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| eof("short block length"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        let block = after.get(..len).ok_or_else(|| eof("short snappy block"))?;
        let block_bytes = snap::raw::decompress_len(block).map_err(invalid)?;
        if block_bytes > self.bytes_max.saturating_sub(self.produced) {
            return Err(over_cap());
        }
        self.block.resize(block_bytes, 0);
        let written = self
            .decoder
            .decompress(block, &mut self.block)
            .map_err(invalid)?;
        self.block.truncate(written);
        self.produced += written;
        self.at = 0;
        self.rest = after.get(len..).unwrap_or_default();
        Ok(true)
    }
}

impl Read for Xerial<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let ready = self.block.get(self.at..).unwrap_or_default();
        let n = ready.len().min(out.len());
        if let (Some(target), Some(source)) = (out.get_mut(..n), ready.get(..n)) {
            target.copy_from_slice(source);
        }
        self.at += n;
        Ok(n)
    }
}

/// Why reading records stopped.
enum Fault {
    /// Bytes that are not a record (bad varint or length, truncated record).
    Framing,
    /// The decoder failed (corrupt compressed data).
    Io(io::Error),
    /// The decompressed body passed the cap.
    TooLarge,
}

/// Where record bytes come from: a slice, or a decoder through a fixed buffer. Parsing is
/// generic over it, so each kind gets its own tight loop.
trait Source {
    /// Bytes handed out so far: the position in the decompressed body.
    fn position(&self) -> usize;
    fn byte(&mut self) -> std::result::Result<u8, Fault>;
    /// Skips `len` bytes, which must all exist.
    fn skip(&mut self, len: usize) -> std::result::Result<(), Fault>;
    /// Whether every byte of the body was read (reading a stream to its end also lets the
    /// decoder check its trailer: gzip CRC, zstd checksum).
    fn is_at_end(&mut self) -> std::result::Result<bool, Fault>;
}

struct Slice<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Source for Slice<'_> {
    fn position(&self) -> usize {
        self.at
    }

    #[inline]
    fn byte(&mut self) -> std::result::Result<u8, Fault> {
        let byte = *self.bytes.get(self.at).ok_or(Fault::Framing)?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, len: usize) -> std::result::Result<(), Fault> {
        self.at = self
            .at
            .checked_add(len)
            .filter(|&stop| stop <= self.bytes.len())
            .ok_or(Fault::Framing)?;
        Ok(())
    }

    fn is_at_end(&mut self) -> std::result::Result<bool, Fault> {
        Ok(self.at == self.bytes.len())
    }
}

struct Stream<'a> {
    reader: Box<dyn Read + 'a>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    position: usize,
    /// Bytes the decoder produced so far.
    produced: usize,
    bytes_max: usize,
}

impl Stream<'_> {
    /// Refills the buffer; false at the end of the body.
    fn fill(&mut self) -> std::result::Result<bool, Fault> {
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.produced = self.produced.saturating_add(n);
                    if self.produced > self.bytes_max {
                        return Err(Fault::TooLarge);
                    }
                    self.start = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_over_cap(&err) => return Err(Fault::TooLarge),
                Err(err) => return Err(Fault::Io(err)),
            }
        }
    }
}

impl Source for Stream<'_> {
    fn position(&self) -> usize {
        self.position
    }

    #[inline]
    fn byte(&mut self) -> std::result::Result<u8, Fault> {
        if self.start >= self.end && !self.fill()? {
            return Err(Fault::Framing);
        }
        let byte = *self.buf.get(self.start).ok_or(Fault::Framing)?;
        self.start += 1;
        self.position += 1;
        Ok(byte)
    }

    fn skip(&mut self, mut len: usize) -> std::result::Result<(), Fault> {
        while len > 0 {
            if self.start >= self.end && !self.fill()? {
                return Err(Fault::Framing);
            }
            let step = len.min(self.end - self.start);
            self.start += step;
            self.position += step;
            len -= step;
        }
        Ok(())
    }

    fn is_at_end(&mut self) -> std::result::Result<bool, Fault> {
        Ok(self.start >= self.end && !self.fill()?)
    }
}

fn varlong(source: &mut impl Source, bytes_max: usize) -> std::result::Result<i64, Fault> {
    let mut raw: u64 = 0;
    for i in 0..bytes_max {
        let byte = source.byte()?;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(Fault::Framing)
}

fn varint(source: &mut impl Source) -> std::result::Result<i32, Fault> {
    i32::try_from(varlong(source, 5)?).map_err(|_| Fault::Framing)
}

/// A varint length then that many bytes, all before `end`; -1 is null.
fn nullable(
    source: &mut impl Source,
    end: usize,
) -> std::result::Result<Option<Range<usize>>, Fault> {
    let len = varint(source)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| Fault::Framing)?;
    let start = source.position();
    let stop = start
        .checked_add(len)
        .filter(|&stop| stop <= end)
        .ok_or(Fault::Framing)?;
    source.skip(len)?;
    Ok(Some(start..stop))
}

/// Reads one v2 record: a varint length, then attributes, timestamp and offset deltas, key,
/// value and headers, which must fill exactly that length.
fn record(source: &mut impl Source) -> std::result::Result<RecordEntry, Fault> {
    let start = source.position();
    let len = usize::try_from(varint(source)?).map_err(|_| Fault::Framing)?;
    let end = source.position().checked_add(len).ok_or(Fault::Framing)?;
    let _attributes = source.byte()?;
    let timestamp_delta = varlong(source, 10)?;
    let offset_delta = varint(source)?;
    let key = nullable(source, end)?;
    let value = nullable(source, end)?;
    let header_count = varint(source)?;
    if header_count < 0 {
        return Err(Fault::Framing);
    }
    for _ in 0..header_count {
        // Header keys are never null; header values may be.
        nullable(source, end)?.ok_or(Fault::Framing)?;
        nullable(source, end)?;
        if source.position() > end {
            return Err(Fault::Framing);
        }
    }
    if source.position() != end {
        return Err(Fault::Framing);
    }
    Ok(RecordEntry {
        offset_delta,
        timestamp_delta,
        key,
        value,
        raw: start..end,
    })
}

/// The two kinds of source; matched once per record, not per byte.
enum Reader<'a> {
    Slice(Slice<'a>),
    Stream(Box<Stream<'a>>),
}

/// The records of one batch, read one at a time. Yields exactly the header's record count,
/// then checks nothing follows the last record; stops at the first error.
pub(crate) struct Records<'a> {
    header: BatchHeader,
    source: Reader<'a>,
    remaining: usize,
    bytes_max: usize,
    is_done: bool,
}

impl std::fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("header", &self.header)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<'a> Records<'a> {
    /// Reads the records of `batch` (a whole stored batch), decompressing at most `bytes_max`
    /// bytes of them.
    pub(crate) fn open(batch: &'a [u8], bytes_max: usize) -> Result<Records<'a>> {
        let header = BatchHeader::parse(batch)?;
        let stored = stored(&header, batch)?;
        let reader: Box<dyn Read + 'a> = match open(&header, stored, bytes_max)? {
            Body::Stored(bytes) => return Records::over(header, bytes),
            Body::Owned(bytes) => Box::new(io::Cursor::new(bytes)),
            Body::Decoder(decoder) => decoder,
        };
        let stream = Stream {
            reader,
            buf: vec![0; limits::RECORD_STREAM_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            position: 0,
            produced: 0,
            bytes_max,
        };
        Records::new(header, Reader::Stream(Box::new(stream)), bytes_max)
    }

    /// Reads the records of an already decompressed `body`.
    pub(super) fn over(header: BatchHeader, body: &'a [u8]) -> Result<Records<'a>> {
        Records::new(
            header,
            Reader::Slice(Slice { bytes: body, at: 0 }),
            body.len(),
        )
    }

    fn new(header: BatchHeader, source: Reader<'a>, bytes_max: usize) -> Result<Records<'a>> {
        let remaining =
            usize::try_from(header.record_count).map_err(|_| Error::MalformedRecords {
                base_offset: header.base_offset,
                reason: "negative record count",
            })?;
        Ok(Records {
            header,
            source,
            remaining,
            bytes_max,
            is_done: false,
        })
    }

    fn error(&self, fault: Fault) -> Error {
        match fault {
            Fault::Framing => self.malformed("record framing is invalid"),
            Fault::Io(source) => read_error(&self.header, self.bytes_max, source),
            Fault::TooLarge => too_large(&self.header, self.bytes_max),
        }
    }

    fn malformed(&self, reason: &'static str) -> Error {
        Error::MalformedRecords {
            base_offset: self.header.base_offset,
            reason,
        }
    }

    fn step(&mut self) -> Result<Option<RecordEntry>> {
        if self.remaining == 0 {
            self.is_done = true;
            let is_at_end = match &mut self.source {
                Reader::Slice(slice) => slice.is_at_end(),
                Reader::Stream(stream) => stream.is_at_end(),
            };
            return match is_at_end {
                Ok(true) => Ok(None),
                Ok(false) => Err(self.malformed("bytes follow the last record")),
                Err(fault) => Err(self.error(fault)),
            };
        }
        self.remaining -= 1;
        let record = match &mut self.source {
            Reader::Slice(slice) => record(slice),
            Reader::Stream(stream) => record(stream.as_mut()),
        };
        let record = record.map_err(|fault| self.error(fault))?;
        if record.offset_delta < 0 || record.offset_delta > self.header.last_offset_delta {
            return Err(self.malformed("record offset delta outside the batch"));
        }
        Ok(Some(record))
    }
}

impl Iterator for Records<'_> {
    type Item = Result<RecordEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.is_done {
            return None;
        }
        let step = self.step();
        if step.is_err() {
            self.is_done = true;
        }
        step.transpose()
    }
}
