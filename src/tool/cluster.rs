//! `tidelog cluster status|partitions|reassign|drain|unregister`: the cluster's brokers and
//! partition placement, and moving replicas (KIP-455) with progress until done.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::args::{ClusterCommand, Format};
use super::output::{Table, ids, print, print_json, progress, show};
use crate::kafka::client::{self, Client, ClusterMetadata, OngoingReassignment, Reassignment};

/// How often a wait for reassignments polls.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often the wait reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Largest reassignment plan file read.
const PLAN_BYTES_MAX: u64 = 16 * 1024 * 1024;

pub(crate) fn run(
    client: &mut Client,
    format: Format,
    command: &ClusterCommand,
) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(client, format),
        ClusterCommand::Partitions {
            topic,
            under_replicated,
        } => partitions(client, format, topic.as_deref(), *under_replicated),
        ClusterCommand::Reassign {
            moves,
            plan,
            cancel,
            no_wait,
            wait_timeout_ms,
        } => {
            let mut wanted = moves
                .iter()
                .map(|m| parse_move(m))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(plan) = plan {
                wanted.extend(read_plan(plan)?);
            }
            for c in cancel {
                let (topic, partition) = parse_topic_partition(c)?;
                wanted.push(Reassignment {
                    topic,
                    partition,
                    replicas: None,
                });
            }
            if wanted.is_empty() {
                bail!("nothing to reassign: give --move, --plan or --cancel");
            }
            let wait = (!no_wait).then(|| Duration::from_millis(*wait_timeout_ms));
            reassign(client, format, &wanted, wait, "reassign")
        }
        ClusterCommand::Drain {
            broker,
            no_wait,
            wait_timeout_ms,
        } => {
            let wait = (!no_wait).then(|| Duration::from_millis(*wait_timeout_ms));
            drain(client, format, *broker, wait)
        }
        ClusterCommand::ElectLeaders {
            topic,
            partition,
            unclean,
        } => elect(client, format, topic.as_deref(), *partition, *unclean),
        ClusterCommand::Unregister { broker } => {
            client::unregister_broker(client, *broker)?;
            match format {
                Format::Table => print(&format!("unregistered broker {broker}\n")),
                Format::Json => print_json(&serde_json::json!({ "unregistered": broker })),
            }
        }
    }
}

/// Kafka's ELECTION_NOT_NEEDED: the preferred replica already leads.
const ELECTION_NOT_NEEDED: i16 = 84;

#[derive(Serialize)]
struct Elected {
    topic: String,
    partition: i32,
    result: String,
}

fn elect(
    client: &mut Client,
    format: Format,
    topic: Option<&str>,
    partition: Option<i32>,
    unclean: bool,
) -> anyhow::Result<()> {
    let wanted = match topic {
        Some(topic) => Some(vec![(
            topic.to_owned(),
            super::topic::partitions(client, topic, partition)?,
        )]),
        None => None,
    };
    let outcomes = client::elect_leaders(client, wanted.as_deref(), unclean)?;
    let mut failed = Vec::new();
    let rows: Vec<Elected> = outcomes
        .into_iter()
        .map(|(topic, partition, outcome)| {
            let result = match outcome {
                Ok(()) => "elected".to_owned(),
                Err(e) if e.code() == Some(ELECTION_NOT_NEEDED) => "already leads".to_owned(),
                Err(e) => {
                    failed.push(e.to_string());
                    e.to_string()
                }
            };
            Elected {
                topic,
                partition,
                result,
            }
        })
        .collect();
    let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
    for r in &rows {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.result.clone(),
        ]);
    }
    show(format, &[table], &rows)?;
    if !failed.is_empty() {
        bail!("{} election(s) failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

#[derive(Serialize)]
struct Status<'a> {
    cluster_id: &'a str,
    controller_id: i32,
    brokers: &'a [client::ClusterBroker],
    topics: usize,
    partitions: usize,
    under_replicated: usize,
    offline: usize,
    reassigning: usize,
}

fn status(client: &mut Client, format: Format) -> anyhow::Result<()> {
    let cluster = client::describe_cluster(client)?;
    let metadata = client::metadata(client, None)?;
    let reassigning = client::list_reassignments(client)?.len();
    let all = metadata.topics.iter().flat_map(|t| &t.partitions);
    let status = Status {
        cluster_id: &cluster.cluster_id,
        controller_id: cluster.controller_id,
        brokers: &cluster.brokers,
        topics: metadata.topics.len(),
        partitions: all.clone().count(),
        under_replicated: all.clone().filter(|p| p.under_replicated()).count(),
        offline: all.filter(|p| p.leader < 0).count(),
        reassigning,
    };
    let mut summary = Table::new(&[
        "CLUSTER-ID",
        "CONTROLLER",
        "BROKERS",
        "TOPICS",
        "PARTITIONS",
        "UNDER-REPLICATED",
        "OFFLINE",
        "REASSIGNING",
    ]);
    summary.row(vec![
        status.cluster_id.to_owned(),
        status.controller_id.to_string(),
        status.brokers.len().to_string(),
        status.topics.to_string(),
        status.partitions.to_string(),
        status.under_replicated.to_string(),
        status.offline.to_string(),
        status.reassigning.to_string(),
    ]);
    let mut brokers = Table::new(&["BROKER", "HOST", "PORT", "RACK"]);
    for b in &cluster.brokers {
        brokers.row(vec![
            b.id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    show(format, &[summary, brokers], &status)
}

#[derive(Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    under_replicated: bool,
    reassignment: Option<OngoingReassignment>,
}

fn partitions(
    client: &mut Client,
    format: Format,
    topic: Option<&str>,
    under_replicated: bool,
) -> anyhow::Result<()> {
    let names = topic.map(|t| vec![t.to_owned()]);
    let metadata = client::metadata(client, names.as_deref())?;
    let mut ongoing: BTreeMap<(String, i32), OngoingReassignment> =
        client::list_reassignments(client)?
            .into_iter()
            .map(|r| ((r.topic.clone(), r.partition), r))
            .collect();
    let rows: Vec<PartitionRow> = metadata
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| !under_replicated || p.under_replicated() || p.leader < 0)
        .map(|(t, p)| PartitionRow {
            topic: t.name.clone(),
            partition: p.partition,
            leader: p.leader,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            under_replicated: p.under_replicated(),
            reassignment: ongoing.remove(&(t.name.clone(), p.partition)),
        })
        .collect();
    let mut table = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "STATUS"]);
    for r in &rows {
        let status = match (&r.reassignment, r.leader, r.under_replicated) {
            (Some(o), _, _) => format!(
                "reassigning (adding {}, removing {})",
                ids(&o.adding),
                ids(&o.removing)
            ),
            (None, leader, _) if leader < 0 => "offline".to_owned(),
            (None, _, true) => "under-replicated".to_owned(),
            (None, _, false) => "ok".to_owned(),
        };
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.leader.to_string(),
            ids(&r.replicas),
            ids(&r.isr),
            status,
        ]);
    }
    show(format, &[table], &rows)
}

/// `TOPIC:PARTITION` (a topic name has no ':').
fn parse_topic_partition(text: &str) -> anyhow::Result<(String, i32)> {
    let (topic, partition) = text
        .rsplit_once(':')
        .with_context(|| format!("expected TOPIC:PARTITION, got {text:?}"))?;
    let partition = partition
        .parse::<i32>()
        .ok()
        .filter(|p| *p >= 0 && !topic.is_empty())
        .with_context(|| format!("expected TOPIC:PARTITION, got {text:?}"))?;
    Ok((topic.to_owned(), partition))
}

/// `TOPIC:PARTITION=ID,ID,...`
fn parse_move(text: &str) -> anyhow::Result<Reassignment> {
    let (left, replicas) = text
        .split_once('=')
        .with_context(|| format!("expected TOPIC:PARTITION=BROKER,BROKER,..., got {text:?}"))?;
    let (topic, partition) = parse_topic_partition(left)?;
    let replicas = replicas
        .split(',')
        .map(|id| id.trim().parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("broker ids in {text:?}"))?;
    Ok(Reassignment {
        topic,
        partition,
        replicas: Some(replicas),
    })
}

/// Kafka's reassignment JSON.
#[derive(Deserialize)]
struct Plan {
    partitions: Vec<PlannedPartition>,
}

#[derive(Deserialize)]
struct PlannedPartition {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
}

fn read_plan(path: &Path) -> anyhow::Result<Vec<Reassignment>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > PLAN_BYTES_MAX {
        bail!("{} is larger than {PLAN_BYTES_MAX} bytes", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_plan(&text).with_context(|| format!("{} is not a reassignment plan", path.display()))
}

fn parse_plan(text: &str) -> anyhow::Result<Vec<Reassignment>> {
    let plan: Plan = serde_json::from_str(text)?;
    Ok(plan
        .partitions
        .into_iter()
        .map(|p| Reassignment {
            topic: p.topic,
            partition: p.partition,
            replicas: Some(p.replicas),
        })
        .collect())
}

#[derive(Serialize)]
struct Outcome<'a> {
    topic: &'a str,
    partition: i32,
    replicas: Option<&'a [i32]>,
    error: Option<String>,
}

/// Submits `wanted`, waits (when `wait` is given) until none of them is in progress, prints each
/// partition's outcome; fails when any partition failed.
fn reassign(
    client: &mut Client,
    format: Format,
    wanted: &[Reassignment],
    wait: Option<Duration>,
    what: &str,
) -> anyhow::Result<()> {
    let answers = client::alter_reassignments(client, wanted)?;
    let accepted: BTreeSet<(String, i32)> = answers
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(r, _)| (r.topic.clone(), r.partition))
        .collect();
    if let Some(limit) = wait {
        wait_for(client, &accepted, limit, what)?;
    }
    let outcomes: Vec<Outcome<'_>> = answers
        .iter()
        .map(|(r, outcome)| Outcome {
            topic: &r.topic,
            partition: r.partition,
            replicas: r.replicas.as_deref(),
            error: outcome.as_ref().err().map(ToString::to_string),
        })
        .collect();
    let mut table = Table::new(&["TOPIC", "PARTITION", "TARGET", "RESULT"]);
    for o in &outcomes {
        let result = match (&o.error, wait) {
            (Some(error), _) => error.clone(),
            (None, Some(_)) => "done".to_owned(),
            (None, None) => "submitted".to_owned(),
        };
        table.row(vec![
            o.topic.to_owned(),
            o.partition.to_string(),
            o.replicas.map_or_else(|| "(cancel)".to_owned(), ids),
            result,
        ]);
    }
    show(format, &[table], &outcomes)?;
    let failed: Vec<&str> = outcomes.iter().filter_map(|o| o.error.as_deref()).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} partition(s) could not be reassigned: {}",
            failed.len(),
            outcomes.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Polls ListPartitionReassignments until none of `partitions` is in progress.
fn wait_for(
    client: &mut Client,
    partitions: &BTreeSet<(String, i32)>,
    limit: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reported = started;
    loop {
        let ongoing = client::list_reassignments(client)?;
        let left = ongoing
            .iter()
            .filter(|o| partitions.contains(&(o.topic.clone(), o.partition)))
            .count();
        if left == 0 {
            return Ok(());
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            progress(&format!(
                "{what}: {} of {} partition(s) done, {:.0} s",
                partitions.len() - left,
                partitions.len(),
                started.elapsed().as_secs_f64()
            ));
            reported = Instant::now();
        }
        if started.elapsed() >= limit {
            bail!(
                "{what}: {left} partition(s) still moving after {limit:?}; it goes on in the \
                 cluster: watch it with `tidelog cluster partitions`"
            );
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// A partition that `drain` cannot move, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Unmovable {
    topic: String,
    partition: i32,
    reason: &'static str,
}

/// Where every replica on `broker` goes: its place taken by the broker holding the fewest
/// replicas among those not already holding the partition (the first replica, the preferred
/// leader, moves to one of the others).
fn drain_plan(metadata: &ClusterMetadata, broker: i32) -> (Vec<Reassignment>, Vec<Unmovable>) {
    let mut load: BTreeMap<i32, usize> = metadata
        .brokers
        .iter()
        .filter(|b| b.id != broker)
        .map(|b| (b.id, 0))
        .collect();
    for p in metadata.topics.iter().flat_map(|t| &t.partitions) {
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
    }
    let mut moves = Vec::new();
    let mut unmovable = Vec::new();
    for topic in &metadata.topics {
        for p in topic
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&broker))
        {
            let stuck = |reason| Unmovable {
                topic: topic.name.clone(),
                partition: p.partition,
                reason,
            };
            let replacement = load
                .iter()
                .filter(|(id, _)| !p.replicas.contains(id))
                .min_by_key(|(id, n)| (**n, **id))
                .map(|(id, _)| *id);
            let Some(replacement) = replacement else {
                unmovable.push(stuck("no other broker is free to take the replica"));
                continue;
            };
            *load.entry(replacement).or_default() += 1;
            let mut replicas: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != broker)
                .collect();
            replicas.push(replacement);
            moves.push(Reassignment {
                topic: topic.name.clone(),
                partition: p.partition,
                replicas: Some(replicas),
            });
        }
    }
    (moves, unmovable)
}

fn drain(
    client: &mut Client,
    format: Format,
    broker: i32,
    wait: Option<Duration>,
) -> anyhow::Result<()> {
    let metadata = client::metadata(client, None)?;
    if !metadata.brokers.iter().any(|b| b.id == broker) {
        bail!(
            "broker {broker} is not in the cluster (brokers: {}); see `tidelog cluster status`",
            ids(&metadata.brokers.iter().map(|b| b.id).collect::<Vec<_>>())
        );
    }
    let (moves, unmovable) = drain_plan(&metadata, broker);
    for u in &unmovable {
        progress(&format!(
            "drain: {}-{} stays: {}",
            u.topic, u.partition, u.reason
        ));
    }
    if moves.is_empty() {
        progress(&format!("drain: broker {broker} holds no movable replica"));
    } else {
        progress(&format!(
            "drain: moving {} replica(s) off broker {broker}",
            moves.len()
        ));
        reassign(client, format, &moves, wait, "drain")?;
    }
    if !unmovable.is_empty() {
        bail!(
            "{} replica(s) stay on broker {broker}; it cannot be unregistered yet",
            unmovable.len()
        );
    }
    if moves.is_empty() {
        match format {
            Format::Table => print(&format!("broker {broker} holds no replica\n"))?,
            Format::Json => print_json(&Vec::<Outcome<'_>>::new())?,
        }
    }
    if wait.is_some() {
        progress(&format!(
            "drain: broker {broker} holds no replica; stop it, then run `tidelog cluster unregister {broker}`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::client::{BrokerInfo, PartitionInfo, TopicInfo};

    fn partition(partition: i32, replicas: &[i32]) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader: replicas[0],
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            offline: Vec::new(),
        }
    }

    fn topic(name: &str, internal: bool, partitions: Vec<PartitionInfo>) -> TopicInfo {
        TopicInfo {
            name: name.to_owned(),
            id: String::new(),
            internal,
            partitions,
        }
    }

    #[test]
    fn drain_moves_each_replica_to_the_least_loaded_free_broker() {
        let metadata = ClusterMetadata {
            cluster_id: None,
            controller_id: 1,
            brokers: (1..=4)
                .map(|id| BrokerInfo {
                    id,
                    host: "h".to_owned(),
                    port: 1,
                    rack: None,
                })
                .collect(),
            topics: vec![
                topic(
                    "a",
                    false,
                    vec![
                        partition(0, &[1, 2]),
                        partition(1, &[2, 3]),
                        partition(2, &[1, 3]),
                    ],
                ),
                topic("__consumer_offsets", true, vec![partition(0, &[1, 2, 3])]),
            ],
        };
        let (moves, unmovable) = drain_plan(&metadata, 1);
        // Loads without broker 1: 2 -> 3 (with the internal topic), 3 -> 3, 4 -> 0.
        assert_eq!(
            moves,
            vec![
                Reassignment {
                    topic: "a".to_owned(),
                    partition: 0,
                    replicas: Some(vec![2, 4])
                },
                Reassignment {
                    topic: "a".to_owned(),
                    partition: 2,
                    replicas: Some(vec![3, 4])
                },
                Reassignment {
                    topic: "__consumer_offsets".to_owned(),
                    partition: 0,
                    replicas: Some(vec![2, 3, 4])
                },
            ]
        );
        assert!(unmovable.is_empty(), "{unmovable:?}");
        let (moves, unmovable) = drain_plan(&metadata, 4);
        assert!(moves.is_empty() && unmovable.is_empty());
    }

    #[test]
    fn moves_and_plans_parse() {
        assert_eq!(
            parse_move("t.x:3=2,1").unwrap(),
            Reassignment {
                topic: "t.x".to_owned(),
                partition: 3,
                replicas: Some(vec![2, 1])
            }
        );
        assert!(parse_move("t:3").is_err());
        assert!(parse_move("t:-1=1").is_err());
        assert!(parse_move("t:0=a").is_err());
        assert!(parse_topic_partition(":1").is_err());
        let plan = parse_plan(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,2],"log_dirs":["any","any"]}]}"#,
        )
        .unwrap();
        assert_eq!(plan[0].replicas, Some(vec![3, 2]));
        assert!(parse_plan("{}").is_err());
    }
}
