//! `partition.metadata` in every partition directory: which topic incarnation (topic id) the
//! data belongs to, in Kafka's own format (`version: 0`, `topic_id: <base64url uuid>`), so a
//! directory left by a deleted topic is never taken for a new topic of the same name.

use std::path::Path;

use super::{Error, Result, io_error, write_atomically};

pub(crate) const PARTITION_METADATA_FILE: &str = "partition.metadata";
const VERSION_LINE: &str = "version: 0";
const TOPIC_ID_PREFIX: &str = "topic_id: ";
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// 16 bytes in unpadded base64: 22 characters, as Kafka's `Uuid::toString`.
const TOPIC_ID_TEXT_LEN: usize = 22;

/// The topic id recorded in `dir`, None when the directory has no metadata file yet.
pub(crate) fn read(dir: &Path) -> Result<Option<[u8; 16]>> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read partition metadata", &path)(error)),
    };
    let corrupt = |reason| Error::CorruptPartitionMetadata {
        path: path.clone(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some(VERSION_LINE) {
        return Err(corrupt("the first line is not `version: 0`"));
    }
    let topic_id = lines
        .next()
        .and_then(|line| line.strip_prefix(TOPIC_ID_PREFIX))
        .ok_or_else(|| corrupt("the second line is not `topic_id: ...`"))?;
    decode_topic_id(topic_id.trim())
        .map(Some)
        .ok_or_else(|| corrupt("the topic id is not 16 bytes of base64url"))
}

/// Records `topic_id` in `dir` atomically (temp file, fsync, rename, fsync directory).
pub(crate) fn write(dir: &Path, topic_id: [u8; 16]) -> Result<()> {
    let text = format!(
        "{VERSION_LINE}\n{TOPIC_ID_PREFIX}{}\n",
        encode_topic_id(topic_id)
    );
    write_atomically(dir, PARTITION_METADATA_FILE, text.as_bytes())
}

/// Kafka's text form of a UUID (topic id, directory id): unpadded base64url.
pub(crate) fn encode_topic_id(topic_id: [u8; 16]) -> String {
    let mut text = String::with_capacity(TOPIC_ID_TEXT_LEN);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for byte in topic_id {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 6 {
            bit_count -= 6;
            text.push(base64_char(bits >> bit_count));
        }
    }
    if bit_count > 0 {
        text.push(base64_char(bits << (6 - bit_count)));
    }
    text
}

fn base64_char(sextet: u32) -> char {
    BASE64URL
        .get((sextet & 0x3f) as usize)
        .map_or('A', |&byte| char::from(byte))
}

pub(crate) fn decode_topic_id(text: &str) -> Option<[u8; 16]> {
    if text.len() != TOPIC_ID_TEXT_LEN {
        return None;
    }
    let mut topic_id = [0u8; 16];
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut byte_idx = 0;
    for c in text.bytes() {
        let sextet = BASE64URL.iter().position(|&b| b == c)?;
        bits = (bits << 6) | u32::try_from(sextet).ok()?;
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            *topic_id.get_mut(byte_idx)? = u8::try_from((bits >> bit_count) & 0xff).ok()?;
            byte_idx += 1;
        }
    }
    // The 4 bits left over must be zero, or the text is not a canonical encoding.
    (byte_idx == 16 && bits & ((1 << bit_count) - 1) == 0).then_some(topic_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_id_text_matches_kafka_and_round_trips() {
        // Kafka: Uuid(0x1234567890abcdef, 0xfedcba0987654321).toString()
        let topic_id = [
            0x12, 0x34, 0x56, 0x78, 0x90, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x09, 0x87, 0x65,
            0x43, 0x21,
        ];
        assert_eq!(encode_topic_id(topic_id), "EjRWeJCrze_-3LoJh2VDIQ");
        assert_eq!(decode_topic_id("EjRWeJCrze_-3LoJh2VDIQ"), Some(topic_id));
        assert_eq!(
            decode_topic_id("EjRWeJCrze_-3LoJh2VDIR"),
            None,
            "non-zero pad bits"
        );
        assert_eq!(decode_topic_id("EjRWeJCrze_-3LoJh2VDI"), None, "too short");
        assert_eq!(
            decode_topic_id("EjRWeJCrze/+3LoJh2VDIQ"),
            None,
            "not base64url"
        );
    }

    #[test]
    fn partition_metadata_round_trips_in_kafka_format() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        assert_eq!(read(dir.path()).expect("read"), None);
        write(dir.path(), [9; 16]).expect("write");
        let text =
            std::fs::read_to_string(dir.path().join(PARTITION_METADATA_FILE)).expect("read file");
        assert_eq!(text, "version: 0\ntopic_id: CQkJCQkJCQkJCQkJCQkJCQ\n");
        assert_eq!(read(dir.path()).expect("read"), Some([9; 16]));
        std::fs::write(dir.path().join(PARTITION_METADATA_FILE), "version: 1\n").expect("write");
        assert!(matches!(
            read(dir.path()),
            Err(Error::CorruptPartitionMetadata { .. })
        ));
    }
}
