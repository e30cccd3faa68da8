//! The binary key/value format of the internal offsets topic (documented in ARCHITECTURE.md).
//! Keys make compaction correct: one key per (group, topic, partition) offset and one per group;
//! a null value is a tombstone. Decoding stored bytes never panics.
#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic::Group;
use super::member::{Member, Protocol};

const KIND_OFFSET: u8 = 1;
const KIND_GROUP: u8 = 2;
const VALUE_VERSION: u8 = 0;

/// A committed offset, as stored and served by OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
    pub(crate) commit_timestamp_ms: i64,
    /// Explicit expiry (OffsetCommit v2-v4 retention_time_ms); -1 = Kafka's retention rules.
    pub(crate) expire_timestamp_ms: i64,
}

/// What a record key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl Key {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Key::Offset {
                group,
                topic,
                partition,
            } => {
                out.push(KIND_OFFSET);
                put_str(&mut out, Some(group));
                put_str(&mut out, Some(topic));
                out.extend_from_slice(&partition.to_be_bytes());
            }
            Key::Group { group } => {
                out.push(KIND_GROUP);
                put_str(&mut out, Some(group));
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Key> {
        let mut r = Reader { bytes };
        match r.u8()? {
            KIND_OFFSET => Some(Key::Offset {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            }),
            KIND_GROUP => Some(Key::Group { group: r.string()? }),
            _ => None,
        }
    }
}

pub(crate) fn encode_offset(value: &CommittedOffset) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&value.expire_timestamp_ms.to_be_bytes());
    put_str(&mut out, value.metadata.as_deref());
    out
}

pub(crate) fn decode_offset(bytes: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader { bytes };
    (r.u8()? == VALUE_VERSION).then_some(())?;
    Some(CommittedOffset {
        offset: r.i64()?,
        leader_epoch: r.i32()?,
        commit_timestamp_ms: r.i64()?,
        expire_timestamp_ms: r.i64()?,
        metadata: r
            .nullable()?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    })
}

/// The persisted part of a group: generation, protocol, leader and members with the
/// metadata of the selected protocol and their assignment.
pub(crate) fn encode_group(group: &Group) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    put_str(&mut out, group.protocol_type.as_deref());
    out.extend_from_slice(&group.generation.to_be_bytes());
    put_str(&mut out, group.protocol_name.as_deref());
    put_str(&mut out, group.leader.as_deref());
    let count = u32::try_from(group.members.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    let protocol = group.protocol_name.as_deref().unwrap_or_default();
    for member in group.members.values() {
        put_str(&mut out, Some(&member.member_id));
        put_str(&mut out, member.instance_id.as_deref());
        put_str(&mut out, Some(&member.client_id));
        put_str(&mut out, Some(&member.client_host));
        out.extend_from_slice(&member.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&member.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, Some(&member.metadata(protocol)));
        put_bytes(&mut out, Some(&member.assignment));
    }
    out
}

pub(crate) fn decode_group(group_id: &str, bytes: &[u8], now_ms: i64) -> Option<Group> {
    let mut r = Reader { bytes };
    (r.u8()? == VALUE_VERSION).then_some(())?;
    let mut group = Group::new(group_id, now_ms);
    group.protocol_type = r.nullable_string()?;
    group.generation = r.i32()?;
    group.protocol_name = r.nullable_string()?;
    group.leader = r.nullable_string()?;
    let count = r.u32()?;
    let mut members = BTreeMap::new();
    for _ in 0..count {
        let member_id = r.string()?;
        let instance_id = r.nullable_string()?;
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = r.i32()?;
        let session_timeout_ms = r.i32()?;
        let metadata = Bytes::from(r.nullable()?.unwrap_or_default());
        let assignment = Bytes::from(r.nullable()?.unwrap_or_default());
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

fn put_str(out: &mut Vec<u8>, text: Option<&str>) {
    put_bytes(out, text.map(str::as_bytes));
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(bytes) => {
            let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// A bounds-checked reader over stored bytes: every read is `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let taken: [u8; N] = self.bytes.get(..N)?.try_into().ok()?;
        self.bytes = self.bytes.get(N..)?;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }

    /// `Some(None)` for a null, `None` if the bytes end early.
    fn nullable(&mut self) -> Option<Option<Vec<u8>>> {
        let len = self.i32()?;
        if len < 0 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let taken = self.bytes.get(..len)?.to_vec();
        self.bytes = self.bytes.get(len..)?;
        Some(Some(taken))
    }

    fn nullable_string(&mut self) -> Option<Option<String>> {
        Some(
            self.nullable()?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        )
    }

    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_and_value_round_trip() {
        let key = Key::Offset {
            group: "g".to_owned(),
            topic: "t".to_owned(),
            partition: 3,
        };
        assert_eq!(Key::decode(&key.encode()), Some(key));
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: 7,
            metadata: Some("meta".to_owned()),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: -1,
        };
        assert_eq!(decode_offset(&encode_offset(&value)), Some(value));
    }

    #[test]
    fn truncated_values_decode_to_none_without_panic() {
        let value = encode_offset(&CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: 0,
            expire_timestamp_ms: -1,
        });
        for cut in 0..value.len() {
            assert_eq!(decode_offset(value.get(..cut).unwrap_or_default()), None);
        }
        assert_eq!(Key::decode(&[9, 0, 0]), None);
    }
}
