//! The producer context: delivery reports with per-record latency, and librdkafka's
//! statistics windows for the leader connection.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;

use crate::client::{ClientLog, Cluster};

/// The producer context: counts deliveries and records enqueue→delivery latency per record.
#[derive(Debug)]
pub(crate) struct DeliveryTracker {
    log: ClientLog,
    origin: Instant,
    pub(crate) delivered_count: AtomicU64,
    pub(crate) failed_count: AtomicU64,
    pub(crate) first_error: Mutex<Option<String>>,
    pub(crate) deliveries: Mutex<Vec<Delivery>>,
    pub(crate) last_delivery_ns: AtomicU64,
    /// Librdkafka's own per-interval latency windows for the leader broker connection.
    pub(crate) client_windows: Mutex<Vec<ClientWindow>>,
}

/// One statistics interval of librdkafka's view of the leader connection, in microseconds:
/// `queue` = produce() call to the batch being ready to send (includes linger),
/// `rtt` = request written to response read (the broker's share plus both sides' scheduling).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientWindow {
    pub(crate) queue_p50_us: i64,
    pub(crate) queue_p99_us: i64,
    pub(crate) rtt_p50_us: i64,
    pub(crate) rtt_p99_us: i64,
    pub(crate) rtt_max_us: i64,
    pub(crate) request_count: i64,
}

/// One successful delivery report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub(crate) enqueued_ns: u64,
    pub(crate) latency_us: u32,
    pub(crate) partition: i32,
}

impl DeliveryTracker {
    pub(crate) fn nanos_since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl ClientContext for DeliveryTracker {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        for broker in statistics.brokers.values() {
            if broker.nodeid < 0 {
                continue;
            }
            let (Some(queue), Some(rtt)) = (&broker.int_latency, &broker.rtt) else {
                continue;
            };
            if rtt.cnt == 0 {
                continue;
            }
            self.client_windows
                .lock()
                .expect("never poisoned")
                .push(ClientWindow {
                    queue_p50_us: queue.p50,
                    queue_p99_us: queue.p99,
                    rtt_p50_us: rtt.p50,
                    rtt_p99_us: rtt.p99,
                    rtt_max_us: rtt.max,
                    request_count: rtt.cnt,
                });
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for DeliveryTracker {
    /// Enqueue time in nanoseconds since `origin`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, enqueued_ns: usize) {
        let now_ns = self.nanos_since_origin();
        match result {
            Ok(message) => {
                let enqueued_ns = enqueued_ns as u64;
                let latency_ns = now_ns.saturating_sub(enqueued_ns);
                let delivery = Delivery {
                    enqueued_ns,
                    latency_us: u32::try_from(latency_ns / 1_000).unwrap_or(u32::MAX),
                    partition: message.partition(),
                };
                self.deliveries
                    .lock()
                    .expect("delivery lock is never poisoned")
                    .push(delivery);
                self.delivered_count.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let mut first_error = self.first_error.lock().expect("never poisoned");
                if first_error.is_none() {
                    *first_error = Some(format!("partition {}: {error}", message.partition()));
                }
                self.failed_count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
    }
}

pub(crate) fn new_tracker(
    cluster: &Cluster,
    label: &'static str,
    capacity: u64,
) -> DeliveryTracker {
    DeliveryTracker {
        log: cluster.client_log(label),
        origin: Instant::now(),
        delivered_count: AtomicU64::new(0),
        failed_count: AtomicU64::new(0),
        first_error: Mutex::new(None),
        deliveries: Mutex::new(Vec::with_capacity(usize::try_from(capacity).unwrap_or(0))),
        last_delivery_ns: AtomicU64::new(0),
        client_windows: Mutex::new(Vec::new()),
    }
}
