//! The key/value format of the internal offsets topic: Kafka's own record schemas, so tools that
//! read `__consumer_offsets` (Burrow, the console consumer's offsets formatter) understand it.
//! Keys are `OffsetCommitKey` (version 1) and `GroupMetadataKey` (version 2), values
//! `OffsetCommitValue` v3 (v1 with an explicit expiry) and `GroupMetadataValue` v3, each behind
//! its i16 version, as Kafka 4.1 writes them; every version Kafka wrote is read, and so is
//! Tidelog's earlier format (`record_legacy.rs`). A null value is a tombstone.
//! Decoding stored bytes never panics.
#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic::Group;
use super::member::{Member, Protocol};
use super::record_legacy;

/// Kafka's key versions, which name the record type.
const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_KEY_VERSION_V0: i16 = 0;
const GROUP_KEY_VERSION: i16 = 2;
/// The value versions Kafka 4.1 writes.
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
const GROUP_VALUE_VERSION: i16 = 3;
/// The first flexible (compact, tagged-field) version of both value schemas.
const FLEXIBLE_VALUE_VERSION: i16 = 4;

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

/// Which format a stored record was written in; its value is read in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Kafka,
    /// Tidelog's format before it wrote Kafka's (keys start with byte 1 or 2).
    Legacy,
}

impl Key {
    /// Kafka's key encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Key::Offset {
                group,
                topic,
                partition,
            } => {
                out.extend_from_slice(&OFFSET_KEY_VERSION.to_be_bytes());
                put_string(&mut out, Some(group));
                put_string(&mut out, Some(topic));
                out.extend_from_slice(&partition.to_be_bytes());
            }
            Key::Group { group } => {
                out.extend_from_slice(&GROUP_KEY_VERSION.to_be_bytes());
                put_string(&mut out, Some(group));
            }
        }
        out
    }

    /// A key in Kafka's format (an i16 version, so its first byte is 0) or the legacy one;
    /// `None` for anything else (other Kafka record types, damage).
    pub(crate) fn decode(bytes: &[u8]) -> Option<(Key, Format)> {
        if bytes
            .first()
            .is_some_and(|b| record_legacy::is_legacy_key(*b))
        {
            return record_legacy::decode_key(bytes).map(|key| (key, Format::Legacy));
        }
        let mut r = Reader::new(bytes);
        let key = match r.i16()? {
            OFFSET_KEY_VERSION_V0 | OFFSET_KEY_VERSION => Key::Offset {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            },
            GROUP_KEY_VERSION => Key::Group { group: r.string()? },
            _ => return None,
        };
        Some((key, Format::Kafka))
    }
}

/// `OffsetCommitValue`: v3, or v1 when the commit carries its own expiry (the only version
/// with an `expireTimestamp`), as Kafka chooses.
pub(crate) fn encode_offset(value: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::new();
    let metadata = Some(value.metadata.as_deref().unwrap_or_default());
    if value.expire_timestamp_ms >= 0 {
        out.extend_from_slice(&OFFSET_VALUE_VERSION_WITH_EXPIRY.to_be_bytes());
        out.extend_from_slice(&value.offset.to_be_bytes());
        put_string(&mut out, metadata);
        out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
        out.extend_from_slice(&value.expire_timestamp_ms.to_be_bytes());
    } else {
        out.extend_from_slice(&OFFSET_VALUE_VERSION.to_be_bytes());
        out.extend_from_slice(&value.offset.to_be_bytes());
        out.extend_from_slice(&value.leader_epoch.to_be_bytes());
        put_string(&mut out, metadata);
        out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    }
    out
}

pub(crate) fn decode_offset(bytes: &[u8], format: Format) -> Option<CommittedOffset> {
    if format == Format::Legacy {
        return record_legacy::decode_offset(bytes);
    }
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=FLEXIBLE_VALUE_VERSION).contains(&version) {
        return None;
    }
    r.is_flexible = version >= FLEXIBLE_VALUE_VERSION;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = if version == 1 { r.i64()? } else { -1 };
    r.tagged_fields()?;
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata: Some(metadata),
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

/// `GroupMetadataValue` v3: generation, protocol, leader, the time of the last state change
/// and every member with the metadata of the selected protocol and its assignment.
pub(crate) fn encode_group(group: &Group) -> Vec<u8> {
    let mut out = GROUP_VALUE_VERSION.to_be_bytes().to_vec();
    put_string(
        &mut out,
        Some(group.protocol_type.as_deref().unwrap_or_default()),
    );
    out.extend_from_slice(&group.generation.to_be_bytes());
    put_string(&mut out, group.protocol_name.as_deref());
    put_string(&mut out, group.leader.as_deref());
    out.extend_from_slice(&group.state_since_ms.to_be_bytes());
    let count = i32::try_from(group.members.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    let protocol = group.protocol_name.as_deref().unwrap_or_default();
    for member in group.members.values() {
        put_string(&mut out, Some(&member.member_id));
        put_string(&mut out, member.instance_id.as_deref());
        put_string(&mut out, Some(&member.client_id));
        put_string(&mut out, Some(&member.client_host));
        out.extend_from_slice(&member.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&member.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &member.metadata(protocol));
        put_bytes(&mut out, &member.assignment);
    }
    out
}

/// A group rebuilt from its stored value: Stable with its members if it had any.
pub(crate) fn decode_group(
    group_id: &str,
    bytes: &[u8],
    format: Format,
    now_ms: i64,
) -> Option<Group> {
    if format == Format::Legacy {
        return record_legacy::decode_group(group_id, bytes, now_ms);
    }
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=FLEXIBLE_VALUE_VERSION).contains(&version) {
        return None;
    }
    r.is_flexible = version >= FLEXIBLE_VALUE_VERSION;
    let mut group = Group::new(group_id, now_ms);
    group.protocol_type = Some(r.string()?).filter(|t| !t.is_empty());
    group.generation = r.i32()?;
    group.protocol_name = r.nullable_string()?;
    group.leader = r.nullable_string()?;
    if version >= 2 {
        let _current_state_timestamp_ms = r.i64()?;
    }
    let count = r.array_len()?;
    let mut members = BTreeMap::new();
    for _ in 0..count {
        let member = decode_member(&mut r, version, group.protocol_name.as_deref(), now_ms)?;
        members.insert(member.member_id.clone(), member);
    }
    r.tagged_fields()?;
    group.members = members;
    Some(Group::restored(group, now_ms))
}

fn decode_member(
    r: &mut Reader<'_>,
    version: i16,
    protocol: Option<&str>,
    now_ms: i64,
) -> Option<Member> {
    let member_id = r.string()?;
    let instance_id = if version >= 3 {
        r.nullable_string()?
    } else {
        None
    };
    let client_id = r.string()?;
    let client_host = r.string()?;
    let rebalance_timeout_ms = if version >= 1 { Some(r.i32()?) } else { None };
    let session_timeout_ms = r.i32()?;
    let metadata = Bytes::from(r.bytes()?);
    let assignment = Bytes::from(r.bytes()?);
    r.tagged_fields()?;
    let protocols = protocol
        .map(|name| {
            vec![Protocol {
                name: name.to_owned(),
                metadata,
            }]
        })
        .unwrap_or_default();
    Some(Member {
        member_id,
        instance_id,
        client_id,
        client_host,
        // Version 0 had no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
        session_timeout_ms,
        protocols,
        assignment,
        awaiting_join: false,
        awaiting_sync: false,
        last_heartbeat_ms: now_ms,
    })
}

/// A Kafka (non-flexible) string: i16 length, -1 = null.
fn put_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        Some(text) => {
            // Group ids, topics, member and client ids are far below 32 KiB on the wire.
            let len = i16::try_from(text.len()).unwrap_or(i16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(
                text.as_bytes()
                    .get(..len.unsigned_abs().into())
                    .unwrap_or_default(),
            );
        }
    }
}

/// Kafka bytes: i32 length.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A bounds-checked reader of Kafka's primitive types: every read is `None` past the end.
/// Flexible versions use compact (varint) lengths and tagged fields.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    is_flexible: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            is_flexible: false,
        }
    }

    pub(super) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(..len)?;
        self.bytes = self.bytes.get(len..)?;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(super) fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub(super) fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A length: i16 (strings) or i32 (bytes, arrays); compact ones are varint length + 1.
    /// `None` for damage, `Some(None)` for null.
    fn len(&mut self, is_short: bool) -> Option<Option<usize>> {
        let len = if self.is_flexible {
            i64::try_from(self.uvarint()?).ok()? - 1
        } else if is_short {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        if len < 0 {
            return Some(None);
        }
        usize::try_from(len).ok().map(Some)
    }

    fn nullable_string(&mut self) -> Option<Option<String>> {
        match self.len(true)? {
            None => Some(None),
            Some(len) => Some(Some(String::from_utf8_lossy(self.take(len)?).into_owned())),
        }
    }

    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.len(false)?.unwrap_or(0);
        Some(self.take(len)?.to_vec())
    }

    /// An array's element count, checked against the bytes left (each element takes one at
    /// least) so a damaged count cannot make the caller loop for long.
    fn array_len(&mut self) -> Option<usize> {
        let len = self.len(false)?.unwrap_or(0);
        (len <= self.bytes.len()).then_some(len)
    }

    /// Skips the tagged fields of a flexible version (none in the non-flexible ones).
    fn tagged_fields(&mut self) -> Option<()> {
        if !self.is_flexible {
            return Some(());
        }
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            self.take(size)?;
        }
        Some(())
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
