//! The records of `__transaction_state`, in Kafka's TransactionLog schemas so Kafka tools can
//! read them: key = version 0 + TransactionLogKey (the transactional id); value = version 1
//! (flexible) TransactionLogValue; an expired id is a tombstone. Decoding bounds every length.
#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use super::metadata::{NO_PRODUCER_ID, TxnTransit};
use super::state::TxnState;

const KEY_VERSION: i16 = 0;
/// Flexible TransactionLogValue, what Kafka writes once transactions v2 is finalized.
const VALUE_VERSION: i16 = 1;
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// Why a stored record cannot be read (it is skipped with a warning).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable transaction log record: {0}")]
pub(crate) struct Unreadable(pub(crate) &'static str);

type Decoded<T> = Result<T, Unreadable>;

pub(crate) fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = KEY_VERSION.to_be_bytes().to_vec();
    let len = i16::try_from(transactional_id.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(
        transactional_id
            .as_bytes()
            .get(..len as usize)
            .unwrap_or_default(),
    );
    out
}

pub(crate) fn decode_key(bytes: &[u8]) -> Decoded<String> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if version != KEY_VERSION {
        return Err(Unreadable("key version"));
    }
    let id = reader.string_i16()?;
    reader.end()?;
    Ok(id)
}

/// The value of a transition; None (a tombstone) for Dead.
pub(crate) fn encode_value(transit: &TxnTransit) -> Option<Vec<u8>> {
    if transit.state == TxnState::Dead {
        return None;
    }
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&transit.producer_id.to_be_bytes());
    out.extend_from_slice(&transit.producer_epoch.to_be_bytes());
    out.extend_from_slice(&transit.timeout_ms.to_be_bytes());
    out.extend_from_slice(&transit.state.code().to_be_bytes());
    if transit.state == TxnState::Empty {
        put_uvarint(&mut out, 0); // null
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &transit.partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        put_uvarint(&mut out, by_topic.len() as u64 + 1);
        for (topic, partitions) in by_topic {
            put_uvarint(&mut out, topic.len() as u64 + 1);
            out.extend_from_slice(topic.as_bytes());
            put_uvarint(&mut out, partitions.len() as u64 + 1);
            for partition in partitions {
                out.extend_from_slice(&partition.to_be_bytes());
            }
            put_uvarint(&mut out, 0); // no tagged fields
        }
    }
    out.extend_from_slice(&transit.last_update_ms.to_be_bytes());
    out.extend_from_slice(&transit.start_ms.to_be_bytes());
    let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();
    if transit.prev_producer_id != NO_PRODUCER_ID {
        tagged.push((
            TAG_PREVIOUS_PRODUCER_ID,
            transit.prev_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if transit.next_producer_id != NO_PRODUCER_ID {
        tagged.push((
            TAG_NEXT_PRODUCER_ID,
            transit.next_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if transit.client_transaction_version != 0 {
        let version = transit.client_transaction_version.to_be_bytes().to_vec();
        tagged.push((TAG_CLIENT_TRANSACTION_VERSION, version));
    }
    put_uvarint(&mut out, tagged.len() as u64);
    for (tag, data) in tagged {
        put_uvarint(&mut out, u64::from(tag));
        put_uvarint(&mut out, data.len() as u64);
        out.extend_from_slice(&data);
    }
    Some(out)
}

/// Decodes a value written by Kafka (v0 or v1) or by us.
pub(crate) fn decode_value(bytes: &[u8]) -> Decoded<TxnTransit> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=VALUE_VERSION).contains(&version) {
        return Err(Unreadable("value version"));
    }
    let flexible = version >= 1;
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let state = TxnState::from_code(reader.i8()?).ok_or(Unreadable("transaction status"))?;
    let mut partitions = BTreeSet::new();
    let topic_count = reader.array_len(flexible, 2)?;
    for _ in 0..topic_count.unwrap_or(0) {
        let topic = if flexible {
            reader.compact_string()?
        } else {
            reader.string_i16()?
        };
        let count = reader.array_len(flexible, 4)?.unwrap_or(0);
        for _ in 0..count {
            partitions.insert((topic.clone(), reader.i32()?));
        }
        if flexible {
            reader.skip_tagged_fields()?;
        }
    }
    let last_update_ms = reader.i64()?;
    let start_ms = reader.i64()?;
    let mut transit = TxnTransit {
        producer_id,
        prev_producer_id: NO_PRODUCER_ID,
        next_producer_id: NO_PRODUCER_ID,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
        client_transaction_version: 0,
    };
    if flexible {
        let count = reader.uvarint()?;
        for _ in 0..count {
            let tag = reader.uvarint()?;
            let size = usize::try_from(reader.uvarint()?).map_err(|_| Unreadable("tag size"))?;
            let data = reader.take(size)?;
            let mut field = Reader::new(data);
            match u32::try_from(tag).ok() {
                Some(TAG_PREVIOUS_PRODUCER_ID) => transit.prev_producer_id = field.i64()?,
                Some(TAG_NEXT_PRODUCER_ID) => transit.next_producer_id = field.i64()?,
                Some(TAG_CLIENT_TRANSACTION_VERSION) => {
                    transit.client_transaction_version = field.i16()?;
                }
                _ => {}
            }
        }
    }
    reader.end()?;
    Ok(transit)
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, len: usize) -> Decoded<&'a [u8]> {
        let taken = self.bytes.get(..len).ok_or(Unreadable("truncated"))?;
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| Unreadable("truncated"))
    }

    fn i8(&mut self) -> Decoded<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Decoded<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Decoded<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Decoded<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn uvarint(&mut self) -> Decoded<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Unreadable("varint too long"))
    }

    fn string_i16(&mut self) -> Decoded<String> {
        let len = usize::try_from(self.i16()?).map_err(|_| Unreadable("null string"))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Unreadable("string is not UTF-8"))
    }

    fn compact_string(&mut self) -> Decoded<String> {
        let len = self
            .uvarint()?
            .checked_sub(1)
            .ok_or(Unreadable("null string"))?;
        let bytes = self.take(usize::try_from(len).map_err(|_| Unreadable("string length"))?)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Unreadable("string is not UTF-8"))
    }

    /// An array length (None = null), checked against the bytes left at `min_item_bytes` each.
    fn array_len(&mut self, flexible: bool, min_item_bytes: usize) -> Decoded<Option<usize>> {
        let len = if flexible {
            match self.uvarint()? {
                0 => return Ok(None),
                n => n - 1,
            }
        } else {
            match self.i32()? {
                -1 => return Ok(None),
                n => u64::try_from(n).map_err(|_| Unreadable("negative array length"))?,
            }
        };
        let len = usize::try_from(len).map_err(|_| Unreadable("array length"))?;
        if len > self.bytes.len() / min_item_bytes {
            return Err(Unreadable("array longer than the record"));
        }
        Ok(Some(len))
    }

    fn skip_tagged_fields(&mut self) -> Decoded<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|_| Unreadable("tag size"))?;
            self.take(size)?;
        }
        Ok(())
    }

    fn end(&self) -> Decoded<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Unreadable("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transit(state: TxnState) -> TxnTransit {
        TxnTransit {
            producer_id: 42,
            prev_producer_id: 41,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: [
                ("a".to_owned(), 0),
                ("a".to_owned(), 2),
                ("b".to_owned(), 1),
            ]
            .into(),
            start_ms: 1_000,
            last_update_ms: 2_000,
            client_transaction_version: 2,
        }
    }

    #[test]
    fn keys_and_values_round_trip() {
        assert_eq!(decode_key(&encode_key("txn-1")), Ok("txn-1".to_owned()));
        let ongoing = transit(TxnState::Ongoing);
        let bytes = encode_value(&ongoing).expect("a value");
        assert_eq!(decode_value(&bytes), Ok(ongoing));
        let mut empty = transit(TxnState::Empty);
        empty.partitions.clear();
        let bytes = encode_value(&empty).expect("a value");
        assert_eq!(decode_value(&bytes), Ok(empty));
        assert_eq!(encode_value(&transit(TxnState::Dead)), None);
    }

    #[test]
    fn a_kafka_v0_value_decodes() {
        // Version 0: int64 pid, int16 epoch, int32 timeout, int8 status, [topic, [int32]],
        // int64 last update, int64 start.
        let mut bytes = 0i16.to_be_bytes().to_vec();
        bytes.extend_from_slice(&7i64.to_be_bytes());
        bytes.extend_from_slice(&1i16.to_be_bytes());
        bytes.extend_from_slice(&5_000i32.to_be_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&1i32.to_be_bytes());
        bytes.extend_from_slice(&1i16.to_be_bytes());
        bytes.push(b't');
        bytes.extend_from_slice(&1i32.to_be_bytes());
        bytes.extend_from_slice(&4i32.to_be_bytes());
        bytes.extend_from_slice(&9i64.to_be_bytes());
        bytes.extend_from_slice(&8i64.to_be_bytes());
        let decoded = decode_value(&bytes).expect("v0 decodes");
        assert_eq!(decoded.state, TxnState::Ongoing);
        assert_eq!(decoded.partitions, [("t".to_owned(), 4)].into());
        assert_eq!((decoded.last_update_ms, decoded.start_ms), (9, 8));
    }

    #[test]
    fn garbage_is_unreadable_not_a_panic() {
        let bytes = encode_value(&transit(TxnState::PrepareCommit)).expect("a value");
        for cut in 0..bytes.len() {
            assert!(
                decode_value(bytes.get(..cut).unwrap_or_default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut huge = bytes.get(..19).unwrap_or_default().to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode_value(&huge).is_err());
        assert!(decode_key(&[0, 0, 0x7f, 0xff]).is_err());
        assert!(decode_key(&[0, 1, 0, 0]).is_err());
    }
}
