//! The persisted topic list in `<data_dir>/topics.catalog`: a small line format rewritten
//! atomically on every change. Stores topic records; does not validate Kafka semantics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Error, Result, io_error, write_atomically};
use crate::limits;

const CATALOG_FILE: &str = "topics.catalog";
const HEADER_LINE: &str = "# tidelog topic catalog v1";

/// One topic as stored: name, id, partition count and Kafka topic config overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub(crate) name: String,
    pub(crate) topic_id: [u8; 16],
    pub(crate) partition_count: i32,
    pub(crate) configs: BTreeMap<String, String>,
}

/// The topic list of one data directory, kept sorted by name.
#[derive(Debug)]
pub(crate) struct Catalog {
    data_dir: PathBuf,
    topics: Vec<TopicRecord>,
}

impl Catalog {
    /// Opens the catalog in `data_dir` (creating the directory), empty when no file exists yet.
    pub(crate) fn open(data_dir: &Path) -> Result<Catalog> {
        std::fs::create_dir_all(data_dir).map_err(io_error("create data directory", data_dir))?;
        let path = data_dir.join(CATALOG_FILE);
        let topics = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io_error("read catalog", &path)(error)),
        };
        Ok(Catalog {
            data_dir: data_dir.to_path_buf(),
            topics,
        })
    }

    /// Topics sorted by name.
    pub(crate) fn topics(&self) -> &[TopicRecord] {
        &self.topics
    }

    /// Inserts or replaces the topic of the same name; persisted before it is visible.
    pub(crate) fn put(&mut self, topic: TopicRecord) -> Result<()> {
        check_name(&topic.name, limits::TOPIC_NAME_LEN_MAX)?;
        for key in topic.configs.keys() {
            check_name(key, usize::MAX)?;
        }
        let mut topics = self.topics.clone();
        match topics.binary_search_by(|stored| stored.name.cmp(&topic.name)) {
            Ok(idx) => {
                if let Some(stored) = topics.get_mut(idx) {
                    *stored = topic;
                }
            }
            Err(idx) => topics.insert(idx, topic),
        }
        self.persist(topics)
    }

    /// Removes the topic if present; persisted before it is visible.
    pub(crate) fn remove(&mut self, name: &str) -> Result<()> {
        let mut topics = self.topics.clone();
        topics.retain(|stored| stored.name != name);
        if topics.len() == self.topics.len() {
            return Ok(());
        }
        self.persist(topics)
    }

    /// `<data_dir>/<topic>-<partition>`.
    pub(crate) fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Removes directories no catalog topic owns (left by a crash during a delete); returns them.
    pub(crate) fn sweep_orphan_partition_dirs(&self) -> Result<Vec<PathBuf>> {
        super::partition_dirs::sweep_orphans(&self.data_dir, &self.topics)
    }

    /// Deletes whatever a deleted topic left at the directory of `topic`'s `partition`, before
    /// that partition is created anew; returns whether something was there.
    pub(crate) fn discard_leftover_partition_dir(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<bool> {
        let dir = self.partition_dir(topic, partition);
        if !dir.exists() {
            return Ok(false);
        }
        tracing::warn!(dir = %dir.display(), "removing data a deleted topic left behind");
        super::partition_dirs::delete(&dir)?;
        Ok(true)
    }

    /// Deletes the directory of `topic`'s `partition` whether or not a log is open on it.
    pub(crate) fn delete_partition_dir(&self, topic: &str, partition: i32) -> Result<()> {
        super::partition_dirs::delete(&self.partition_dir(topic, partition))
    }

    fn persist(&mut self, topics: Vec<TopicRecord>) -> Result<()> {
        write_atomically(&self.data_dir, CATALOG_FILE, render(&topics).as_bytes())?;
        self.topics = topics;
        Ok(())
    }
}

/// Names and config keys are single tokens: non-empty, no whitespace or control characters.
fn check_name(name: &str, len_max: usize) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > len_max {
        Some("too long")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidCatalogName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn render(topics: &[TopicRecord]) -> String {
    let mut text = format!("{HEADER_LINE}\n");
    for topic in topics {
        let topic_id: String = topic.topic_id.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(
            text,
            "topic {} {topic_id} {}",
            topic.name, topic.partition_count
        );
        for (key, value) in &topic.configs {
            let _ = writeln!(text, "config {key} {}", escape(value));
        }
    }
    text
}

fn parse(path: &Path, text: &str) -> Result<Vec<TopicRecord>> {
    let mut topics: Vec<TopicRecord> = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let corrupt = |reason| Error::CorruptCatalog {
            path: path.to_path_buf(),
            line_number: line_idx + 1,
            reason,
        };
        if line_idx == 0 {
            if line != HEADER_LINE {
                return Err(corrupt("unknown header"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("topic ") {
            let mut fields = rest.split(' ');
            let (Some(name), Some(topic_id), Some(count), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt("topic line needs name, id and partition count"));
            };
            let topic_id = parse_topic_id(topic_id).ok_or_else(|| corrupt("bad topic id"))?;
            let partition_count = count.parse().map_err(|_| corrupt("bad partition count"))?;
            if topics.last().is_some_and(|last| last.name.as_str() >= name) {
                return Err(corrupt("topics out of order"));
            }
            topics.push(TopicRecord {
                name: name.to_owned(),
                topic_id,
                partition_count,
                configs: BTreeMap::new(),
            });
        } else if let Some(rest) = line.strip_prefix("config ") {
            let (key, value) = rest
                .split_once(' ')
                .ok_or_else(|| corrupt("config line needs key and value"))?;
            let value = unescape(value).ok_or_else(|| corrupt("bad escape in config value"))?;
            let topic = topics
                .last_mut()
                .ok_or_else(|| corrupt("config line before any topic"))?;
            topic.configs.insert(key.to_owned(), value);
        } else if !line.is_empty() {
            return Err(corrupt("unknown line"));
        }
    }
    if text.is_empty() {
        return Err(Error::CorruptCatalog {
            path: path.to_path_buf(),
            line_number: 1,
            reason: "empty file",
        });
    }
    Ok(topics)
}

fn parse_topic_id(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut topic_id = [0u8; 16];
    for (byte_idx, byte) in topic_id.iter_mut().enumerate() {
        let pair = hex.get(byte_idx * 2..byte_idx * 2 + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(topic_id)
}

/// Escapes `\`, newline and carriage return so a value fits on one line.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn unescape(escaped: &str) -> Option<String> {
    let mut value = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => value.push('\\'),
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            _ => return None,
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partition_count: i32, configs: &[(&str, &str)]) -> TopicRecord {
        TopicRecord {
            name: name.to_owned(),
            topic_id: [name.len() as u8; 16],
            partition_count,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn catalog_round_trip_keeps_topics_sorted_with_configs() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut catalog = Catalog::open(dir.path()).expect("open");
        assert!(catalog.topics().is_empty());
        let orders = topic(
            "orders",
            3,
            &[("retention.ms", "1000"), ("odd", "a b\\c\nd\re ")],
        );
        catalog.put(topic("zeta", 1, &[])).expect("put");
        catalog.put(orders.clone()).expect("put");
        catalog
            .put(topic("alpha", 2, &[("cleanup.policy", "")]))
            .expect("put");
        catalog.put(topic("alpha", 5, &[])).expect("replace");
        catalog.remove("zeta").expect("remove");
        catalog.remove("missing").expect("remove missing");
        let reopened = Catalog::open(dir.path()).expect("reopen");
        assert_eq!(reopened.topics(), &[topic("alpha", 5, &[]), orders][..]);
        assert_eq!(
            reopened.partition_dir("orders", 2),
            dir.path().join("orders-2")
        );
    }

    #[test]
    fn catalog_put_with_whitespace_in_name_is_rejected() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut catalog = Catalog::open(dir.path()).expect("open");
        let result = catalog.put(topic("bad name", 1, &[]));
        assert!(matches!(result, Err(Error::InvalidCatalogName { .. })));
        let result = catalog.put(topic("ok", 1, &[("bad key", "v")]));
        assert!(matches!(result, Err(Error::InvalidCatalogName { .. })));
    }

    #[test]
    fn catalog_open_with_garbage_line_is_corrupt() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let text = format!("{HEADER_LINE}\ntopic a 00 1\n");
        std::fs::write(dir.path().join(CATALOG_FILE), text).expect("write");
        let result = Catalog::open(dir.path());
        assert!(matches!(
            result,
            Err(Error::CorruptCatalog { line_number: 2, .. })
        ));
    }
}
