//! `tidelog topic produce|consume`: lines of stdin as records (acks=all), records as lines or
//! JSON on stdout; progress on stderr for long runs.

use std::collections::BTreeMap;
use std::io::{BufRead, Read as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde::Serialize;

use super::args::{Format, TopicCommand};
use super::output::{print, print_json, progress};
use crate::kafka::client::{self, Client, CommittedOffset, InRecord, OffsetSpec, OutRecord};

/// Longest line `produce` takes (the broker's default max.message.bytes is about 1 MiB).
const LINE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// How often a long run reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs `produce` or `consume`.
pub(crate) fn run(
    client: &mut Client,
    format: Format,
    command: &TopicCommand,
) -> anyhow::Result<()> {
    match command {
        TopicCommand::Produce {
            topic,
            partition,
            key_separator,
            batch_size,
        } => produce(
            client,
            format,
            topic,
            *partition,
            key_separator.as_deref(),
            usize::try_from(*batch_size).unwrap_or(1),
        ),
        TopicCommand::Consume {
            topic,
            partition,
            from,
            max_messages,
            follow,
            group,
            print_key,
            key_separator,
        } => {
            let printer = Printer {
                format,
                topic,
                print_key: *print_key,
                key_separator,
            };
            let plan = ConsumePlan {
                topic,
                partition: *partition,
                from: from.as_deref(),
                max_messages: *max_messages,
                follow: *follow,
                group: group.as_deref(),
            };
            consume(client, &printer, &plan)
        }
        _ => bail!("only produce and consume are run by the records module"),
    }
}

#[derive(Serialize)]
struct Produced<'a> {
    topic: &'a str,
    records: u64,
    /// partition -> records written to it.
    partitions: BTreeMap<i32, u64>,
}

fn produce(
    client: &mut Client,
    format: Format,
    topic: &str,
    partition: Option<i32>,
    key_separator: Option<&str>,
    batch_size: usize,
) -> anyhow::Result<()> {
    let partitions = super::topic::partitions(client, topic, partition)?;
    let count = i32::try_from(partitions.len()).context("partition count")?;
    let mut stdin = std::io::stdin().lock();
    let mut pending: BTreeMap<i32, Vec<OutRecord>> = BTreeMap::new();
    let mut pending_records = 0usize;
    let mut round_robin = 0usize;
    let mut produced = Produced {
        topic,
        records: 0,
        partitions: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut reported = started;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = (&mut stdin)
            .take(LINE_BYTES_MAX + 1)
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if u64::try_from(line.len()).unwrap_or(u64::MAX) > LINE_BYTES_MAX {
            bail!("line {number} is longer than {LINE_BYTES_MAX} bytes");
        }
        let record = split_record(&line, key_separator);
        let target = match (partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => client::partition_for_key(key, count),
            (None, None) => partitions[round_robin % partitions.len()],
        };
        pending.entry(target).or_default().push(record);
        pending_records += 1;
        if pending_records >= batch_size {
            flush(client, topic, &mut pending, &mut produced)?;
            pending_records = 0;
            round_robin += 1;
            if reported.elapsed() >= PROGRESS_EVERY {
                progress(&format!("produced {} records to {topic}", produced.records));
                reported = Instant::now();
            }
        }
    }
    flush(client, topic, &mut pending, &mut produced)?;
    match format {
        Format::Table => print(&format!(
            "produced {} records to {topic} in {:.1} s\n",
            produced.records,
            started.elapsed().as_secs_f64()
        )),
        Format::Json => print_json(&produced),
    }
}

/// A line as a record: split at the first `separator` into key and value when one is given.
fn split_record(line: &[u8], separator: Option<&str>) -> OutRecord {
    let split = separator.filter(|s| !s.is_empty()).and_then(|sep| {
        let sep = sep.as_bytes();
        line.windows(sep.len())
            .position(|w| w == sep)
            .map(|at| (&line[..at], &line[at + sep.len()..]))
    });
    match split {
        Some((key, value)) => OutRecord {
            key: Some(Bytes::copy_from_slice(key)),
            value: Some(Bytes::copy_from_slice(value)),
        },
        None => OutRecord {
            key: None,
            value: Some(Bytes::copy_from_slice(line)),
        },
    }
}

fn flush(
    client: &mut Client,
    topic: &str,
    pending: &mut BTreeMap<i32, Vec<OutRecord>>,
    produced: &mut Produced<'_>,
) -> anyhow::Result<()> {
    for (partition, records) in std::mem::take(pending) {
        client::produce(client, topic, partition, &records)?;
        let n = u64::try_from(records.len()).unwrap_or(u64::MAX);
        produced.records += n;
        *produced.partitions.entry(partition).or_default() += n;
    }
    Ok(())
}

/// How `consume` prints records.
struct Printer<'a> {
    format: Format,
    topic: &'a str,
    print_key: bool,
    key_separator: &'a str,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    #[serde(flatten)]
    record: &'a InRecord,
    key: Option<String>,
    value: Option<String>,
}

fn text(bytes: Option<&Bytes>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

impl Printer<'_> {
    fn print(&self, records: &[InRecord]) -> anyhow::Result<()> {
        let mut out = String::new();
        for record in records {
            match self.format {
                Format::Table => {
                    if self.print_key {
                        out.push_str(&text(record.key.as_ref()).unwrap_or_default());
                        out.push_str(self.key_separator);
                    }
                    out.push_str(&text(record.value.as_ref()).unwrap_or_default());
                }
                Format::Json => {
                    let json = JsonRecord {
                        topic: self.topic,
                        record,
                        key: text(record.key.as_ref()),
                        value: text(record.value.as_ref()),
                    };
                    out.push_str(&serde_json::to_string(&json).context("encoding JSON")?);
                }
            }
            out.push('\n');
        }
        print(&out)
    }
}

/// What `consume` reads.
struct ConsumePlan<'a> {
    topic: &'a str,
    partition: Option<i32>,
    from: Option<&'a str>,
    max_messages: Option<u64>,
    follow: bool,
    group: Option<&'a str>,
}

/// Where a partition's reading starts.
fn start_offset(
    client: &mut Client,
    plan: &ConsumePlan<'_>,
    partition: i32,
    committed: &[CommittedOffset],
) -> anyhow::Result<i64> {
    let spec = match plan.from {
        Some("beginning") => OffsetSpec::Earliest,
        Some("end") => OffsetSpec::Latest,
        Some(offset) => {
            return offset
                .parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .with_context(|| {
                    format!("--from takes beginning, end or an offset, not {offset:?}")
                });
        }
        None => {
            let committed = committed
                .iter()
                .find(|c| c.topic == plan.topic && c.partition == partition);
            if let Some(c) = committed {
                return Ok(c.offset);
            }
            OffsetSpec::Earliest
        }
    };
    Ok(client::list_offset(client, plan.topic, partition, spec)?)
}

fn consume(
    client: &mut Client,
    printer: &Printer<'_>,
    plan: &ConsumePlan<'_>,
) -> anyhow::Result<()> {
    let topic = plan.topic;
    let committed = match plan.group {
        Some(group) => client::committed_offsets(client, group)?,
        None => Vec::new(),
    };
    // partition -> (position, end at start; None when following)
    let mut positions: BTreeMap<i32, (i64, Option<i64>)> = BTreeMap::new();
    for partition in super::topic::partitions(client, topic, plan.partition)? {
        let start = start_offset(client, plan, partition, &committed)?;
        let end = if plan.follow {
            None
        } else {
            Some(client::list_offset(
                client,
                topic,
                partition,
                OffsetSpec::Latest,
            )?)
        };
        positions.insert(partition, (start, end));
    }
    let total: i64 = positions
        .values()
        .filter_map(|(start, end)| end.map(|e| (e - start).max(0)))
        .sum();
    let limit = plan.max_messages.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut reported = Instant::now();
    loop {
        let active: Vec<i32> = positions
            .iter()
            .filter(|(_, (position, end))| end.is_none_or(|e| *position < e))
            .map(|(p, _)| *p)
            .collect();
        if active.is_empty() || printed >= limit {
            break;
        }
        for partition in active {
            let Some(&(position, end)) = positions.get(&partition) else {
                continue;
            };
            let fetched = client::fetch(client, topic, partition, position)?;
            let mut records = fetched.records;
            if let Some(end) = end {
                records.retain(|r| r.offset < end);
            }
            let room = usize::try_from(limit - printed).unwrap_or(usize::MAX);
            records.truncate(room);
            let next = match records.last() {
                Some(last) if records.len() == room => last.offset + 1,
                _ => fetched.next_offset,
            };
            printer.print(&records)?;
            printed += u64::try_from(records.len()).unwrap_or(u64::MAX);
            positions.insert(partition, (next, end));
            if printed >= limit {
                break;
            }
        }
        if total > 0 && reported.elapsed() >= PROGRESS_EVERY {
            progress(&format!("consumed {printed} of {total} records of {topic}"));
            reported = Instant::now();
        }
    }
    if let Some(group) = plan.group {
        let offsets: Vec<CommittedOffset> = positions
            .iter()
            .map(|(partition, (position, _))| CommittedOffset {
                topic: topic.to_owned(),
                partition: *partition,
                offset: *position,
            })
            .collect();
        client::commit_offsets(client, group, &offsets)?;
    }
    if printed < limit && plan.max_messages.is_some() && !plan.follow {
        progress(&format!(
            "reached the end of {topic} after {printed} of {limit} records"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_key_and_value_at_the_first_separator() {
        let record = split_record(b"k1:v:1", Some(":"));
        assert_eq!(record.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(record.value.as_deref(), Some(&b"v:1"[..]));
        let record = split_record(b"no-key", Some("::"));
        assert_eq!(record.key, None);
        assert_eq!(record.value.as_deref(), Some(&b"no-key"[..]));
        assert_eq!(split_record(b"a:b", None).key, None);
    }
}
