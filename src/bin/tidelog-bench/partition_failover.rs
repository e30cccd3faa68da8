//! The partition failover figure: on a freshly formed cluster, an idempotent acks=all producer
//! sends one record every `PACE` to one partition (replication factor 3) whose leader is not
//! the controller leader; that leader is killed (kill -9), and the figure is the time from the
//! kill to the first acknowledgement of a record sent after it (raft election, the new
//! leader's first commit, the client finding it). Every record sent is acknowledged once in the end, or the
//! round fails.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::cli::Args;
use crate::client::create_topic;
use crate::three::ThreeBrokers;

/// One record this often.
const PACE: Duration = Duration::from_millis(10);
/// Records acknowledged before the kill.
const WARM_UP: Duration = Duration::from_secs(2);
/// How long acknowledgements may stop after the kill before the round fails.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// One kill -9 of a partition leader under an acks=all stream.
#[derive(Debug)]
pub(crate) struct PartitionFailover {
    pub(crate) killed: i32,
    /// From the kill to the first acknowledgement of a record sent after it.
    pub(crate) elapsed: Duration,
    /// Records sent, all acknowledged.
    pub(crate) records: u64,
}

/// Runs one round on `brokers` (stopped at the end).
pub(crate) fn kill_partition_leader(
    args: &Args,
    mut brokers: ThreeBrokers,
    round: u32,
    deadline: Instant,
) -> Result<PartitionFailover> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime for the producer")?;
    let cluster = brokers.clients(args.client_debug.clone());
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = format!("tidelog-bench-leader-kill{round}-{unique}");
    let controller = brokers.controller_id();
    let leaders = create_topic(&runtime, &cluster, &topic, 3, deadline)?;
    let Some((partition, leader)) = leaders
        .iter()
        .enumerate()
        .find(|(_, leader)| **leader != controller)
        .map(|(p, l)| (p as i32, *l))
    else {
        bail!("every partition is led by the controller leader {controller}: {leaders:?}");
    };
    let Some(at) = brokers.members.iter().position(|m| m.node_id == leader) else {
        bail!("partition {partition}'s leader {leader} is not a member");
    };
    let producer: FutureProducer = cluster
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "120000")
        .create()
        .context("creating the producer")?;
    let outcome = runtime.block_on(async {
        let mut pending = FuturesUnordered::new();
        let started = Instant::now();
        let mut killed_at: Option<Instant> = None;
        let mut first_after: Option<Instant> = None;
        let mut sent = 0u64;
        let mut acked = 0u64;
        let mut ticker = tokio::time::interval(PACE);
        while first_after.is_none() {
            tokio::select! {
                _ = ticker.tick() => {
                    if killed_at.is_some_and(|k| k.elapsed() > FAILOVER_TIMEOUT) {
                        bail!("no acknowledgement within {FAILOVER_TIMEOUT:?} of the kill");
                    }
                    let payload = format!("record-{sent}");
                    let record = FutureRecord::<(), _>::to(&topic).partition(partition).payload(&payload);
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            let at = Instant::now();
                            pending.push(delivery.map(move |report| (at, report)));
                            sent += 1;
                        }
                        Err((error, _)) => bail!("enqueueing a record: {error}"),
                    }
                    if killed_at.is_none() && started.elapsed() >= WARM_UP {
                        brokers.members[at].process.kill9()?;
                        brokers.members[at].is_alive = false;
                        killed_at = Some(Instant::now());
                    }
                }
                Some((sent_at, delivery)) = pending.next() => {
                    match delivery {
                        Ok(Ok(_)) => acked += 1,
                        Ok(Err((error, _))) => bail!("a record was not acknowledged: {error}"),
                        Err(_) => bail!("a delivery report was lost"),
                    }
                    if killed_at.is_some_and(|k| sent_at > k) {
                        first_after = Some(Instant::now());
                    }
                }
            }
        }
        while let Some((_, delivery)) = pending.next().await {
            match delivery {
                Ok(Ok(_)) => acked += 1,
                Ok(Err((error, _))) => bail!("a record was not acknowledged: {error}"),
                Err(_) => bail!("a delivery report was lost"),
            }
        }
        let (Some(killed_at), Some(first_after)) = (killed_at, first_after) else {
            bail!("the stream ended before the kill");
        };
        Ok((first_after - killed_at, sent, acked))
    });
    let (elapsed, sent, acked) = match outcome {
        Ok(figures) => figures,
        Err(error) => bail!("{error:#}{}", brokers.log_tails()),
    };
    if acked != sent {
        bail!("{sent} records sent, {acked} acknowledged");
    }
    brokers.stop();
    Ok(PartitionFailover {
        killed: leader,
        elapsed,
        records: sent,
    })
}
