//! Request quotas (`request_percentage`, Kafka's `ClientRequestQuotaManager`): the time this
//! broker spends handling a client's requests (the time its handler futures are polled, so
//! waits for fsync, raft or a long-poll fetch do not count) is metered per user and client id;
//! a client over its share is answered late, by the throttle time, which the response also
//! states in `throttle_time_ms` (KIP-219). The throttle of a request comes from the time its
//! client's earlier requests took; its own time is metered once it is answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use kafka_protocol::messages;

use super::Context;
use crate::broker::Metered;

/// Percent-seconds of one thread per nanosecond of handling (Kafka's `nanosToPercentage`).
const PERCENT_SECONDS_PER_NANO: f64 = 100.0 / 1e9;

/// The time a request's handler futures have been polled, summed over both parts (the
/// in-order part and the deferred answer).
#[derive(Debug, Clone, Default)]
pub(crate) struct Busy(Arc<AtomicU64>);

impl Busy {
    /// `future`, adding the time each of its polls takes to this request's busy time.
    pub(crate) fn time<F: Future>(&self, future: F) -> Timed<F> {
        Timed {
            future: Box::pin(future),
            busy: self.clone(),
        }
    }

    /// Meters the busy time against the client's `request_percentage`.
    pub(crate) fn meter(&self, ctx: &Context) {
        let nanos = self.0.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)] // request times are far below 2^52 ns
        let percent_seconds = nanos as f64 * PERCENT_SECONDS_PER_NANO;
        ctx.meter_quota_f64(Metered::Request, percent_seconds);
    }
}

/// A future whose poll time counts as its request's busy time.
pub(crate) struct Timed<F> {
    future: Pin<Box<F>>,
    busy: Busy,
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        let polled = self.future.as_mut().poll(cx);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.0.fetch_add(nanos, Ordering::Relaxed);
        polled
    }
}

/// This request's throttle: how far its client is over its `request_percentage` by what its
/// earlier requests took (0 when none applies).
pub(crate) fn throttle_ms(ctx: &Context) -> u64 {
    ctx.meter_quota_f64(Metered::Request, 0.0)
}

/// A response with a `throttle_time_ms` field.
pub(crate) trait Throttled {
    fn throttle_time_ms(&mut self) -> &mut i32;
}

/// Applies the request's throttle to its response: `throttle_time_ms` says the larger of it and
/// a byte-rate throttle the handler already waited out and set; returns how much longer the
/// answer has to wait.
pub(crate) fn apply<R: Throttled>(ctx: &Context, response: &mut R) -> Duration {
    let ms = ctx.request_throttle_ms;
    if ms == 0 {
        return Duration::ZERO;
    }
    let field = response.throttle_time_ms();
    let waited = u64::try_from(*field).unwrap_or(0);
    *field = (*field).max(i32::try_from(ms).unwrap_or(i32::MAX));
    Duration::from_millis(ms.saturating_sub(waited))
}

macro_rules! throttled {
    ($($response:ident),* $(,)?) => {
        $(impl Throttled for messages::$response {
            fn throttle_time_ms(&mut self) -> &mut i32 {
                &mut self.throttle_time_ms
            }
        })*
    };
}

throttled!(
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterUserScramCredentialsResponse,
    ApiVersionsResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    CreateAclsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    EndTxnResponse,
    FetchResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
    UnregisterBrokerResponse,
);
