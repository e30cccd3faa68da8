//! Tidelog's first offsets-topic format, read on start so data written before the switch to
//! Kafka's schemas is kept (it is never written any more): big-endian; strings and bytes are an
//! i32 length, -1 = null, then the bytes; keys start with a kind byte (1 offset, 2 group) and
//! values with a version byte 0. Decoding stored bytes never panics.
#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic::Group;
use super::member::{Member, Protocol};
use super::record::{CommittedOffset, Key, Reader};

const KIND_OFFSET: u8 = 1;
const KIND_GROUP: u8 = 2;
const VALUE_VERSION: u8 = 0;

/// Whether a key starting with `first_byte` is in this format (Kafka's keys start with 0, the
/// high byte of their i16 version).
pub(super) fn is_legacy_key(first_byte: u8) -> bool {
    first_byte == KIND_OFFSET || first_byte == KIND_GROUP
}

pub(super) fn decode_key(bytes: &[u8]) -> Option<Key> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        KIND_OFFSET => Some(Key::Offset {
            group: string(&mut r)?,
            topic: string(&mut r)?,
            partition: r.i32()?,
        }),
        KIND_GROUP => Some(Key::Group {
            group: string(&mut r)?,
        }),
        _ => None,
    }
}

pub(super) fn decode_offset(bytes: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader::new(bytes);
    (r.u8()? == VALUE_VERSION).then_some(())?;
    Some(CommittedOffset {
        offset: r.i64()?,
        leader_epoch: r.i32()?,
        commit_timestamp_ms: r.i64()?,
        expire_timestamp_ms: r.i64()?,
        metadata: nullable_string(&mut r)?,
    })
}

pub(super) fn decode_group(group_id: &str, bytes: &[u8], now_ms: i64) -> Option<Group> {
    let mut r = Reader::new(bytes);
    (r.u8()? == VALUE_VERSION).then_some(())?;
    let mut group = Group::new(group_id, now_ms);
    group.protocol_type = nullable_string(&mut r)?;
    group.generation = r.i32()?;
    group.protocol_name = nullable_string(&mut r)?;
    group.leader = nullable_string(&mut r)?;
    let count = r.u32()?;
    let mut members = BTreeMap::new();
    for _ in 0..count {
        let member_id = string(&mut r)?;
        let instance_id = nullable_string(&mut r)?;
        let client_id = string(&mut r)?;
        let client_host = string(&mut r)?;
        let rebalance_timeout_ms = r.i32()?;
        let session_timeout_ms = r.i32()?;
        let metadata = Bytes::from(nullable(&mut r)?.unwrap_or_default());
        let assignment = Bytes::from(nullable(&mut r)?.unwrap_or_default());
        let protocols = group
            .protocol_name
            .clone()
            .map(|name| vec![Protocol { name, metadata }])
            .unwrap_or_default();
        members.insert(
            member_id.clone(),
            Member {
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                protocols,
                assignment,
                awaiting_join: false,
                awaiting_sync: false,
                last_heartbeat_ms: now_ms,
            },
        );
    }
    group.members = members;
    Some(Group::restored(group, now_ms))
}

/// `Some(None)` for a null, `None` if the bytes end early.
fn nullable(r: &mut Reader<'_>) -> Option<Option<Vec<u8>>> {
    let len = r.i32()?;
    if len < 0 {
        return Some(None);
    }
    Some(Some(r.take(usize::try_from(len).ok()?)?.to_vec()))
}

fn nullable_string(r: &mut Reader<'_>) -> Option<Option<String>> {
    Some(nullable(r)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn string(r: &mut Reader<'_>) -> Option<String> {
    nullable_string(r)?
}

/// Encoders of the legacy format, for tests that check old data is still read.
#[cfg(test)]
pub(super) mod encode {
    use super::{KIND_GROUP, KIND_OFFSET, VALUE_VERSION};
    use crate::broker::group::record::CommittedOffset;

    fn put(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).expect("test data is small");
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }

    pub(in crate::broker::group) fn offset_key(
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Vec<u8> {
        let mut out = vec![KIND_OFFSET];
        put(&mut out, Some(group.as_bytes()));
        put(&mut out, Some(topic.as_bytes()));
        out.extend_from_slice(&partition.to_be_bytes());
        out
    }

    pub(in crate::broker::group) fn group_key(group: &str) -> Vec<u8> {
        let mut out = vec![KIND_GROUP];
        put(&mut out, Some(group.as_bytes()));
        out
    }

    pub(in crate::broker::group) fn offset_value(value: &CommittedOffset) -> Vec<u8> {
        let mut out = vec![VALUE_VERSION];
        out.extend_from_slice(&value.offset.to_be_bytes());
        out.extend_from_slice(&value.leader_epoch.to_be_bytes());
        out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
        out.extend_from_slice(&value.expire_timestamp_ms.to_be_bytes());
        put(&mut out, value.metadata.as_deref().map(str::as_bytes));
        out
    }

    /// An empty group of `generation` with protocol type "consumer".
    pub(in crate::broker::group) fn empty_group_value(generation: i32) -> Vec<u8> {
        let mut out = vec![VALUE_VERSION];
        put(&mut out, Some(b"consumer"));
        out.extend_from_slice(&generation.to_be_bytes());
        put(&mut out, None);
        put(&mut out, None);
        out.extend_from_slice(&0u32.to_be_bytes());
        out
    }
}
