//! ListOffsets v0, which Kafka 4.0 removed and kafka-protocol 0.18 cannot decode, parsed and
//! answered by hand: tools built on old sarama send it whatever the broker advertises (Debian's
//! Burrow 1.2.1 computes consumer lag with it). Each partition answers at most one offset:
//! the high watermark for -1, the log start for -2, and for a time the v1 lookup's offset
//! (Kafka 3 answered segment base offsets by file time there).
#![deny(clippy::indexing_slicing)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::list_offsets::lookup;
use super::produce_legacy::{read_count, read_string};
use crate::auth::acl::Operation;
use crate::broker::Isolation;
use crate::kafka::Context;
use crate::kafka::codec::{self, CodecError};
use crate::kafka::error_code;

/// Bytes a topic entry occupies at least: name length (i16) + partition count (i32).
const TOPIC_BYTES_MIN: usize = 2 + 4;
/// Bytes a partition entry occupies: index, timestamp, max number of offsets.
const PARTITION_BYTES: usize = 4 + 8 + 4;
/// The version of the newer lookup whose semantics v0 gets (no leader epochs, no specials).
const LOOKUP_VERSION: i16 = 1;

/// One partition of a v0 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V0Partition {
    pub(crate) partition: i32,
    pub(crate) timestamp: i64,
    pub(crate) max_num_offsets: i32,
}

/// A v0 request; topic names are echoed back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V0Request {
    pub(crate) topics: Vec<(Bytes, Vec<V0Partition>)>,
}

/// Decodes a v0 body: replica id, [topic name, [partition, timestamp, max number of offsets]].
/// Counts are checked against the remaining bytes before anything is allocated.
pub(crate) fn decode_request(body: &mut Bytes) -> Result<V0Request, CodecError> {
    let malformed = |reason: &str| CodecError::Body {
        api: ApiKey::ListOffsets,
        version: 0,
        reason: reason.to_owned(),
    };
    if body.remaining() < 4 {
        return Err(malformed("truncated before the replica id"));
    }
    let _replica_id = body.get_i32();
    let topic_count =
        read_count(body, TOPIC_BYTES_MIN).ok_or_else(|| malformed("bad topic count"))?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = read_string(body).ok_or_else(|| malformed("bad topic name"))?;
        let count =
            read_count(body, PARTITION_BYTES).ok_or_else(|| malformed("bad partition count"))?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            // The count was checked against the remaining bytes.
            partitions.push(V0Partition {
                partition: body.get_i32(),
                timestamp: body.get_i64(),
                max_num_offsets: body.get_i32(),
            });
        }
        topics.push((name, partitions));
    }
    Ok(V0Request { topics })
}

/// One partition's answer: error code and offsets (at most one).
type Answer = (i32, i16, Option<i64>);

/// Looks every partition up and returns the whole response frame.
pub(crate) fn respond(
    ctx: &Context,
    correlation_id: i32,
    request: &V0Request,
) -> Result<Bytes, CodecError> {
    let answers: Vec<(&Bytes, Vec<Answer>)> = request
        .topics
        .iter()
        .map(|(name, partitions)| {
            let topic = String::from_utf8_lossy(name);
            let answers = partitions.iter().map(|p| answer(ctx, &topic, *p)).collect();
            (name, answers)
        })
        .collect();
    let body_bytes = 4 + answers
        .iter()
        .map(|(name, partitions)| {
            let offsets: usize = partitions
                .iter()
                .map(|(_, _, o)| usize::from(o.is_some()))
                .sum();
            2 + name.len() + 4 + partitions.len() * (4 + 2 + 4) + offsets * 8
        })
        .sum::<usize>();
    codec::encode_frame(ApiKey::ListOffsets, 0, correlation_id, body_bytes, |buf| {
        write_body(&answers, buf);
        Ok(())
    })
}

fn answer(ctx: &Context, topic: &str, p: V0Partition) -> Answer {
    if !ctx.allowed_on_topic(Operation::Describe, topic) {
        return (
            p.partition,
            ResponseError::TopicAuthorizationFailed.code(),
            None,
        );
    }
    let known = ctx
        .broker
        .topic(topic)
        .is_some_and(|info| info.partitions.iter().any(|o| o.partition == p.partition));
    if !known {
        return (
            p.partition,
            ResponseError::UnknownTopicOrPartition.code(),
            None,
        );
    }
    if p.max_num_offsets <= 0 {
        return (p.partition, error_code::NONE, None);
    }
    // v0 has no isolation level: it reads like v1 without one (read_uncommitted).
    let isolation = Isolation::ReadUncommitted;
    match lookup(
        ctx,
        topic,
        p.partition,
        p.timestamp,
        LOOKUP_VERSION,
        -1,
        isolation,
    ) {
        Ok(found) => (
            p.partition,
            error_code::NONE,
            found.map(|(offset, _, _)| offset),
        ),
        Err(error) => (p.partition, error.code(), None),
    }
}

fn write_body(answers: &[(&Bytes, Vec<Answer>)], buf: &mut BytesMut) {
    put_len_i32(buf, answers.len());
    for (name, partitions) in answers {
        // Names were read with an i16 length, so they fit one.
        buf.put_i16(i16::try_from(name.len()).unwrap_or(i16::MAX));
        buf.put_slice(name);
        put_len_i32(buf, partitions.len());
        for (partition, error_code, offset) in partitions {
            buf.put_i32(*partition);
            buf.put_i16(*error_code);
            put_len_i32(buf, usize::from(offset.is_some()));
            if let Some(offset) = offset {
                buf.put_i64(*offset);
            }
        }
    }
}

/// Counts came from i32 fields of the request, so they fit one.
fn put_len_i32(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (topic, [(partition, timestamp, max number of offsets)])
    type Topics<'a> = &'a [(&'a str, &'a [(i32, i64, i32)])];

    fn request(topics: Topics<'_>) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        buf.put_i32(topics.len() as i32);
        for (name, partitions) in topics {
            buf.put_i16(name.len() as i16);
            buf.put_slice(name.as_bytes());
            buf.put_i32(partitions.len() as i32);
            for (partition, timestamp, max) in *partitions {
                buf.put_i32(*partition);
                buf.put_i64(*timestamp);
                buf.put_i32(*max);
            }
        }
        buf.freeze()
    }

    #[test]
    fn v0_request_decodes_and_damage_is_an_error() {
        let whole = request(&[("t", &[(0, -1, 1), (1, -2, 5)])]);
        let decoded = decode_request(&mut whole.clone()).expect("valid");
        assert_eq!(
            decoded.topics,
            vec![(
                Bytes::from("t"),
                vec![
                    V0Partition {
                        partition: 0,
                        timestamp: -1,
                        max_num_offsets: 1
                    },
                    V0Partition {
                        partition: 1,
                        timestamp: -2,
                        max_num_offsets: 5
                    },
                ]
            )]
        );
        for cut in 0..whole.len() {
            assert!(
                decode_request(&mut whole.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let mut forged = BytesMut::new();
        forged.put_i32(-1);
        forged.put_i32(i32::MAX);
        assert!(decode_request(&mut forged.freeze()).is_err());
    }

    #[test]
    fn v0_response_has_old_style_offset_arrays() {
        let name = Bytes::from_static(b"ab");
        let answers = vec![(&name, vec![(0, 0, Some(42)), (1, 3, None)])];
        let mut buf = BytesMut::new();
        write_body(&answers, &mut buf);
        let mut body = buf.freeze();
        assert_eq!(body.get_i32(), 1);
        assert_eq!(body.get_i16(), 2);
        assert_eq!(body.copy_to_bytes(2), Bytes::from("ab"));
        assert_eq!(body.get_i32(), 2);
        assert_eq!((body.get_i32(), body.get_i16(), body.get_i32()), (0, 0, 1));
        assert_eq!(body.get_i64(), 42);
        assert_eq!((body.get_i32(), body.get_i16(), body.get_i32()), (1, 3, 0));
        assert!(body.is_empty());
    }
}
