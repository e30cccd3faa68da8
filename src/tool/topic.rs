//! `tidelog topic create|list|describe|alter-config|delete`: topic administration over the
//! client's typed calls.

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::args::{Format, TopicCommand};
use super::output::{Table, ids, print, show};
use crate::kafka::client::{
    self, Client, ConfigEntry, NewTopic, OffsetSpec, PartitionInfo, TopicInfo,
};

/// Runs the topic subcommands other than produce and consume.
pub(crate) fn run(
    client: &mut Client,
    format: Format,
    command: &TopicCommand,
) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(
            client,
            format,
            name,
            *partitions,
            *replication_factor,
            configs,
        ),
        TopicCommand::List { internal } => list(client, format, *internal),
        TopicCommand::Describe { name, all_configs } => {
            describe(client, format, name, *all_configs)
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            alter_config(client, format, name, set, delete)
        }
        TopicCommand::Delete { names } => {
            for name in names {
                client::delete_topic(client, name)?;
            }
            done(format, "deleted", names)
        }
        TopicCommand::Produce { .. } | TopicCommand::Consume { .. } => {
            bail!("produce and consume are run by the records module")
        }
    }
}

/// The partitions of `topic`, checking `only` is one of them.
pub(crate) fn partitions(
    client: &mut Client,
    topic: &str,
    only: Option<i32>,
) -> anyhow::Result<Vec<i32>> {
    let metadata = client::metadata(client, Some(&[topic.to_owned()]))?;
    let all: Vec<i32> = metadata
        .topic(topic)
        .with_context(|| format!("topic {topic} is not in the metadata"))?
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    match only {
        Some(p) if !all.contains(&p) => {
            bail!("topic {topic} has no partition {p} (it has {})", all.len())
        }
        Some(p) => Ok(vec![p]),
        None => Ok(all),
    }
}

/// `KEY=VALUE` split at the first `=`.
pub(crate) fn key_value(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => bail!("expected KEY=VALUE, got {text:?}"),
    }
}

/// Confirms an action on `names`: a line in a table, `{"<verb>": [...]}` in JSON.
fn done(format: Format, verb: &str, names: &[String]) -> anyhow::Result<()> {
    match format {
        Format::Table => print(&format!("{verb} {}\n", names.join(", "))),
        Format::Json => super::output::print_json(&serde_json::json!({ verb: names })),
    }
}

fn create(
    client: &mut Client,
    format: Format,
    name: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[String],
) -> anyhow::Result<()> {
    let configs = configs
        .iter()
        .map(|c| key_value(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    client::create_topic(
        client,
        &NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs,
        },
    )?;
    done(format, "created", &[name.to_owned()])
}

#[derive(Serialize)]
struct TopicRow<'a> {
    name: &'a str,
    id: &'a str,
    internal: bool,
    partitions: usize,
    replication_factor: usize,
    under_replicated: usize,
}

fn list(client: &mut Client, format: Format, internal: bool) -> anyhow::Result<()> {
    let metadata = client::metadata(client, None)?;
    let topics: Vec<&TopicInfo> = metadata
        .topics
        .iter()
        .filter(|t| internal || !t.internal)
        .collect();
    let rows: Vec<TopicRow<'_>> = topics
        .iter()
        .map(|t| TopicRow {
            name: &t.name,
            id: &t.id,
            internal: t.internal,
            partitions: t.partitions.len(),
            replication_factor: t.replication_factor(),
            under_replicated: t.partitions.iter().filter(|p| p.under_replicated()).count(),
        })
        .collect();
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITIONS",
        "REPLICATION",
        "UNDER-REPLICATED",
        "ID",
    ]);
    for row in &rows {
        table.row(vec![
            row.name.to_owned(),
            row.partitions.to_string(),
            row.replication_factor.to_string(),
            row.under_replicated.to_string(),
            row.id.to_owned(),
        ]);
    }
    show(format, &[table], &rows)
}

#[derive(Serialize)]
struct PartitionRow<'a> {
    #[serde(flatten)]
    info: &'a PartitionInfo,
    earliest_offset: i64,
    latest_offset: i64,
}

#[derive(Serialize)]
struct TopicDescription<'a> {
    name: &'a str,
    id: &'a str,
    internal: bool,
    partitions: Vec<PartitionRow<'a>>,
    configs: Vec<&'a ConfigEntry>,
}

fn describe(
    client: &mut Client,
    format: Format,
    name: &str,
    all_configs: bool,
) -> anyhow::Result<()> {
    let metadata = client::metadata(client, Some(&[name.to_owned()]))?;
    let topic = metadata
        .topic(name)
        .with_context(|| format!("topic {name} is not in the metadata"))?;
    let mut partitions = Vec::with_capacity(topic.partitions.len());
    for info in &topic.partitions {
        partitions.push(PartitionRow {
            info,
            earliest_offset: client::list_offset(
                client,
                name,
                info.partition,
                OffsetSpec::Earliest,
            )?,
            latest_offset: client::list_offset(client, name, info.partition, OffsetSpec::Latest)?,
        });
    }
    let configs = client::topic_configs(client, name)?;
    let shown: Vec<&ConfigEntry> = configs
        .iter()
        .filter(|c| all_configs || c.source == "TOPIC")
        .collect();
    let mut header = Table::new(&["TOPIC", "ID", "PARTITIONS", "REPLICATION"]);
    header.row(vec![
        name.to_owned(),
        topic.id.clone(),
        topic.partitions.len().to_string(),
        topic.replication_factor().to_string(),
    ]);
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "EARLIEST",
        "LATEST",
    ]);
    for p in &partitions {
        table.row(vec![
            p.info.partition.to_string(),
            p.info.leader.to_string(),
            ids(&p.info.replicas),
            ids(&p.info.isr),
            p.earliest_offset.to_string(),
            p.latest_offset.to_string(),
        ]);
    }
    let mut config_table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
    for c in &shown {
        let value = if c.sensitive {
            "(sensitive)".to_owned()
        } else {
            c.value.clone().unwrap_or_default()
        };
        config_table.row(vec![c.name.clone(), value, c.source.to_owned()]);
    }
    let description = TopicDescription {
        name,
        id: &topic.id,
        internal: topic.internal,
        partitions,
        configs: shown,
    };
    show(format, &[header, table, config_table], &description)
}

fn alter_config(
    client: &mut Client,
    format: Format,
    name: &str,
    set: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    if set.is_empty() && delete.is_empty() {
        bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
    }
    let set = set
        .iter()
        .map(|c| key_value(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    client::alter_topic_configs(client, name, &set, delete)?;
    done(format, "altered", &[name.to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            key_value("retention.ms=1000").unwrap(),
            ("retention.ms".to_owned(), "1000".to_owned())
        );
        assert_eq!(key_value("a=b=c").unwrap().1, "b=c");
        assert!(key_value("novalue").is_err());
        assert!(key_value("=x").is_err());
    }
}
