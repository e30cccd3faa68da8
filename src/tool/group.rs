//! `tidelog group list|describe|reset-offsets|delete`: groups through their coordinators, with
//! each partition's lag (latest offset minus committed offset).

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::args::{Format, GroupCommand};
use super::output::{Table, print, print_json, show};
use crate::kafka::client::{self, Client, CommittedOffset, GroupDescription, OffsetSpec};

pub(crate) fn run(
    client: &mut Client,
    format: Format,
    command: &GroupCommand,
) -> anyhow::Result<()> {
    match command {
        GroupCommand::List => list(client, format),
        GroupCommand::Describe { group } => describe(client, format, group),
        GroupCommand::ResetOffsets {
            group,
            topic,
            partition,
            to,
            dry_run,
        } => reset_offsets(client, format, group, topic, *partition, to, *dry_run),
        GroupCommand::Delete { groups } => {
            for group in groups {
                client::delete_group(client, group)?;
            }
            match format {
                Format::Table => print(&format!("deleted {}\n", groups.join(", "))),
                Format::Json => print_json(&serde_json::json!({ "deleted": groups })),
            }
        }
    }
}

fn list(client: &mut Client, format: Format) -> anyhow::Result<()> {
    let groups = client::list_groups(client)?;
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"]);
    for g in &groups {
        table.row(vec![
            g.group.clone(),
            g.state.clone(),
            g.protocol_type.clone(),
            g.coordinator.to_string(),
        ]);
    }
    show(format, &[table], &groups)
}

/// One partition of a group's view: committed offset, latest offset, lag and owner.
#[derive(Debug, Serialize)]
struct PartitionLag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    latest: i64,
    lag: Option<i64>,
    member: Option<String>,
}

#[derive(Serialize)]
struct Described<'a> {
    #[serde(flatten)]
    group: &'a GroupDescription,
    offsets: Vec<PartitionLag>,
}

fn describe(client: &mut Client, format: Format, group: &str) -> anyhow::Result<()> {
    let description = client::describe_group(client, group)?;
    let committed = client::committed_offsets(client, group)?;
    if description.state == "Dead" && committed.is_empty() {
        bail!(
            "group {group} does not exist (no members, no committed offsets); see `tidelog group list`"
        );
    }
    // (topic, partition) -> (committed, owner)
    let mut partitions: BTreeMap<(String, i32), (Option<i64>, Option<String>)> = BTreeMap::new();
    for c in &committed {
        partitions.insert((c.topic.clone(), c.partition), (Some(c.offset), None));
    }
    for member in &description.members {
        for (topic, assigned) in &member.assignment {
            for &p in assigned {
                partitions.entry((topic.clone(), p)).or_default().1 =
                    Some(member.member_id.clone());
            }
        }
    }
    let mut offsets = Vec::with_capacity(partitions.len());
    for ((topic, partition), (committed, member)) in partitions {
        let latest = client::list_offset(client, &topic, partition, OffsetSpec::Latest)?;
        offsets.push(PartitionLag {
            lag: committed.map(|c| (latest - c).max(0)),
            topic,
            partition,
            committed,
            latest,
            member,
        });
    }
    let mut summary = Table::new(&["GROUP", "STATE", "PROTOCOL", "COORDINATOR", "MEMBERS"]);
    summary.row(vec![
        description.group.clone(),
        description.state.clone(),
        format!("{}/{}", description.protocol_type, description.protocol),
        description.coordinator.to_string(),
        description.members.len().to_string(),
    ]);
    let mut members = Table::new(&["MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
    for m in &description.members {
        let assignment: Vec<String> = m
            .assignment
            .iter()
            .map(|(topic, ps)| format!("{topic}:{}", super::output::ids(ps)))
            .collect();
        members.row(vec![
            m.member_id.clone(),
            m.client_id.clone(),
            m.host.clone(),
            assignment.join(" "),
        ]);
    }
    let mut lag_table = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "LATEST", "LAG", "MEMBER"]);
    let dash = || "-".to_owned();
    for o in &offsets {
        lag_table.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            o.committed.map_or_else(dash, |c| c.to_string()),
            o.latest.to_string(),
            o.lag.map_or_else(dash, |l| l.to_string()),
            o.member.clone().unwrap_or_else(dash),
        ]);
    }
    let json = Described {
        group: &description,
        offsets,
    };
    show(format, &[summary, members, lag_table], &json)
}

/// Where `--to` moves an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
}

fn parse_reset_to(to: &str) -> anyhow::Result<ResetTo> {
    match to {
        "earliest" => Ok(ResetTo::Earliest),
        "latest" => Ok(ResetTo::Latest),
        offset => offset
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .map(ResetTo::Offset)
            .with_context(|| format!("--to takes earliest, latest or an offset, not {offset:?}")),
    }
}

#[derive(Serialize)]
struct Reset<'a> {
    group: &'a str,
    committed: bool,
    offsets: &'a [CommittedOffset],
}

fn reset_offsets(
    client: &mut Client,
    format: Format,
    group: &str,
    topic: &str,
    partition: Option<i32>,
    to: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let to = parse_reset_to(to)?;
    let description = client::describe_group(client, group)?;
    if !description.members.is_empty() {
        bail!(
            "group {group} has {} active member(s) (state {}): stop its consumers first, then \
             reset its offsets",
            description.members.len(),
            description.state
        );
    }
    let chosen = super::topic::partitions(client, topic, partition)?;
    let mut offsets = Vec::with_capacity(chosen.len());
    for p in chosen {
        let earliest = client::list_offset(client, topic, p, OffsetSpec::Earliest)?;
        let latest = client::list_offset(client, topic, p, OffsetSpec::Latest)?;
        let offset = match to {
            ResetTo::Earliest => earliest,
            ResetTo::Latest => latest,
            // As Kafka's tool does: an offset outside the log is moved to its nearest end.
            ResetTo::Offset(o) => o.clamp(earliest, latest),
        };
        offsets.push(CommittedOffset {
            topic: topic.to_owned(),
            partition: p,
            offset,
        });
    }
    if !dry_run {
        client::commit_offsets(client, group, &offsets)?;
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "NEW-OFFSET"]);
    for o in &offsets {
        table.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            o.offset.to_string(),
        ]);
    }
    let json = Reset {
        group,
        committed: !dry_run,
        offsets: &offsets,
    };
    show(format, &[table], &json)?;
    if dry_run {
        super::output::progress("dry run: nothing committed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets_parse() {
        assert_eq!(parse_reset_to("earliest").unwrap(), ResetTo::Earliest);
        assert_eq!(parse_reset_to("latest").unwrap(), ResetTo::Latest);
        assert_eq!(parse_reset_to("42").unwrap(), ResetTo::Offset(42));
        assert!(parse_reset_to("-1").is_err());
        assert!(parse_reset_to("soon").is_err());
    }
}
