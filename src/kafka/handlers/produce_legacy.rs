//! Produce v0-v2, which kafka-protocol 0.18 cannot decode: parsed and answered by hand, every
//! partition with UNSUPPORTED_VERSION. Advertised only so librdkafka keeps compressing (v0 min).
#![deny(clippy::indexing_slicing)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::kafka::codec::{self, CodecError};

/// Bytes a topic entry occupies at least: name length (i16) + partition count (i32).
const TOPIC_BYTES_MIN: usize = 2 + 4;
/// Bytes a partition entry occupies at least: index (i32) + record set length (i32).
const PARTITION_BYTES_MIN: usize = 4 + 4;

/// The parts of a v0-v2 produce request needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyProduceRequest {
    pub(crate) acks: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) topics: Vec<LegacyTopic>,
}

/// One topic of a legacy request; the name is echoed back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyTopic {
    pub(crate) name: Bytes,
    pub(crate) partitions: Vec<i32>,
}

/// Decodes a Produce v0-v2 body: acks, timeout, [topic name, [partition, message set]].
/// Message sets are skipped, never copied. Counts are checked against the remaining bytes.
pub(crate) fn decode_request(
    body: &mut Bytes,
    version: i16,
) -> Result<LegacyProduceRequest, CodecError> {
    let malformed = |reason: &str| CodecError::Body {
        api: ApiKey::Produce,
        version,
        reason: reason.to_owned(),
    };
    if body.remaining() < 2 + 4 + 4 {
        return Err(malformed("truncated before the topic array"));
    }
    let acks = body.get_i16();
    let timeout_ms = body.get_i32();
    let topic_count =
        read_count(body, TOPIC_BYTES_MIN).ok_or_else(|| malformed("bad topic count"))?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = read_string(body).ok_or_else(|| malformed("bad topic name"))?;
        if body.remaining() < 4 {
            return Err(malformed("truncated before a partition array"));
        }
        let partition_count = read_count(body, PARTITION_BYTES_MIN)
            .ok_or_else(|| malformed("bad partition count"))?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            if body.remaining() < PARTITION_BYTES_MIN {
                return Err(malformed("truncated partition entry"));
            }
            partitions.push(body.get_i32());
            let set_bytes = body.get_i32();
            // -1 is a null message set; any other negative length is malformed.
            if set_bytes >= 0 {
                let set_bytes = usize::try_from(set_bytes).map_err(|_| malformed("bad length"))?;
                if body.remaining() < set_bytes {
                    return Err(malformed("message set longer than the request"));
                }
                body.advance(set_bytes);
            } else if set_bytes != -1 {
                return Err(malformed("negative message set length"));
            }
        }
        topics.push(LegacyTopic { name, partitions });
    }
    Ok(LegacyProduceRequest {
        acks,
        timeout_ms,
        topics,
    })
}

/// Reads an i32 element count, rejecting negatives and counts whose minimal encoding could not
/// fit in the remaining bytes (so a forged count never sizes an allocation).
pub(super) fn read_count(body: &mut Bytes, element_bytes_min: usize) -> Option<usize> {
    if body.remaining() < 4 {
        return None;
    }
    let count = usize::try_from(body.get_i32()).ok()?;
    (count.checked_mul(element_bytes_min)? <= body.remaining()).then_some(count)
}

/// Reads a non-null i16-length string as raw bytes.
pub(super) fn read_string(body: &mut Bytes) -> Option<Bytes> {
    if body.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(body.get_i16()).ok()?;
    (body.remaining() >= len).then(|| body.split_to(len))
}

/// The size of the v0-v2 response body for `request`.
fn response_body_bytes(version: i16, request: &LegacyProduceRequest) -> usize {
    let partition_bytes = 4 + 2 + 8 + if version >= 2 { 8 } else { 0 };
    let topics: usize = request
        .topics
        .iter()
        .map(|t| 2 + t.name.len() + 4 + t.partitions.len() * partition_bytes)
        .sum();
    4 + topics + if version >= 1 { 4 } else { 0 }
}

/// Writes the v0-v2 response body: every partition UNSUPPORTED_VERSION, offsets -1.
fn write_response_body(version: i16, request: &LegacyProduceRequest, buf: &mut BytesMut) {
    let error_code = ResponseError::UnsupportedVersion.code();
    put_len_i32(buf, request.topics.len());
    for topic in &request.topics {
        // Names were read with an i16 length, so they fit one.
        buf.put_i16(i16::try_from(topic.name.len()).unwrap_or(i16::MAX));
        buf.put_slice(&topic.name);
        put_len_i32(buf, topic.partitions.len());
        for &partition in &topic.partitions {
            buf.put_i32(partition);
            buf.put_i16(error_code);
            buf.put_i64(-1); // base_offset
            if version >= 2 {
                buf.put_i64(-1); // log_append_time
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0); // throttle_time_ms
    }
}

/// Counts came from i32 fields of the request, so they fit one.
fn put_len_i32(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

/// The whole response frame for a legacy request.
pub(crate) fn respond(
    version: i16,
    correlation_id: i32,
    request: &LegacyProduceRequest,
) -> Result<Bytes, CodecError> {
    let body_bytes = response_body_bytes(version, request);
    codec::encode_frame(
        ApiKey::Produce,
        version,
        correlation_id,
        body_bytes,
        |buf| {
            write_response_body(version, request, buf);
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (topic, [(partition, message set)])
    type Topics<'a> = &'a [(&'a str, &'a [(i32, Option<&'a [u8]>)])];

    fn request_v0(topics: Topics<'_>) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(1); // acks
        buf.put_i32(1500); // timeout
        buf.put_i32(topics.len() as i32);
        for (name, partitions) in topics {
            buf.put_i16(name.len() as i16);
            buf.put_slice(name.as_bytes());
            buf.put_i32(partitions.len() as i32);
            for (index, set) in *partitions {
                buf.put_i32(*index);
                match set {
                    Some(set) => {
                        buf.put_i32(set.len() as i32);
                        buf.put_slice(set);
                    }
                    None => buf.put_i32(-1),
                }
            }
        }
        buf.freeze()
    }

    #[test]
    fn legacy_request_decodes_topics_and_partitions() {
        let mut body = request_v0(&[("a", &[(0, Some(b"xyz")), (3, None)]), ("bb", &[])]);
        let request = decode_request(&mut body, 0).expect("valid");
        assert_eq!(request.acks, 1);
        assert_eq!(request.timeout_ms, 1500);
        assert_eq!(
            request.topics,
            vec![
                LegacyTopic {
                    name: Bytes::from("a"),
                    partitions: vec![0, 3]
                },
                LegacyTopic {
                    name: Bytes::from("bb"),
                    partitions: vec![]
                },
            ]
        );
        assert!(body.is_empty());
    }

    #[test]
    fn legacy_request_truncated_anywhere_is_an_error() {
        let whole = request_v0(&[("topic", &[(0, Some(b"message-set")), (1, Some(b""))])]);
        for cut in 0..whole.len() {
            let mut body = whole.slice(..cut);
            assert!(decode_request(&mut body, 1).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn legacy_request_with_forged_count_does_not_allocate_it() {
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        buf.put_i32(0);
        buf.put_i32(i32::MAX);
        assert!(decode_request(&mut buf.freeze(), 2).is_err());
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        buf.put_i32(0);
        buf.put_i32(-5);
        assert!(decode_request(&mut buf.freeze(), 2).is_err());
    }

    #[test]
    fn legacy_response_has_the_v0_v1_v2_layouts() {
        let request = decode_request(&mut request_v0(&[("ab", &[(7, None)])]), 0).expect("valid");
        for (version, body_bytes) in [
            (0, 4 + 2 + 2 + 4 + 14),
            (1, 4 + 2 + 2 + 4 + 14 + 4),
            (2, 4 + 2 + 2 + 4 + 22 + 4),
        ] {
            let frame = respond(version, 42, &request).expect("encodable");
            let mut frame = frame.clone();
            assert_eq!(frame.get_i32() as usize, 4 + body_bytes, "v{version}");
            assert_eq!(frame.get_i32(), 42, "header v0: correlation id only");
            assert_eq!(frame.get_i32(), 1);
            assert_eq!(frame.get_i16(), 2);
            assert_eq!(frame.copy_to_bytes(2), Bytes::from("ab"));
            assert_eq!(frame.get_i32(), 1);
            assert_eq!(frame.get_i32(), 7);
            assert_eq!(frame.get_i16(), 35);
            assert_eq!(frame.get_i64(), -1);
            if version >= 2 {
                assert_eq!(frame.get_i64(), -1);
            }
            if version >= 1 {
                assert_eq!(frame.get_i32(), 0);
            }
            assert!(frame.is_empty());
        }
    }
}
