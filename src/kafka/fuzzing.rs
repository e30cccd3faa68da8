//! Fuzzing entry (built only with `--cfg fuzzing`, by `fuzz/`): arbitrary request frames
//! dispatched to a broker of its own, as a client connection would send them.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::versions::{PRODUCE_DECODED_MIN, SERVED};
use super::{Context, Dispatched, KafkaSettings, dispatch};
use crate::broker::fuzzing::{ScratchBroker, seal_crcs};

/// How long one request may take before the fuzzer moves on (a fetch or a join may wait).
const REQUEST_TIME_MAX: Duration = Duration::from_millis(50);
/// Requests one broker serves before a fresh one replaces it, so topics do not pile up.
const REQUESTS_PER_BROKER: u32 = 2_000;

/// Dispatches fuzz inputs to an in-process broker in a temporary directory.
///
/// An input whose first byte has its top bit set is a whole frame (header and body). Any
/// other input names a served API (second byte) and version (third byte), gets a valid
/// request header for them, and the rest is the body: the fuzzer reaches the body decoders
/// and the handlers without first having to guess a header. A Produce body that decodes has
/// its batches' CRCs sealed. The broker has topics `t` and `c` (compacted), two partitions each.
pub struct RequestTarget {
    serving: Option<Serving>,
    brokers: u64,
}

struct Serving {
    runtime: tokio::runtime::Runtime,
    ctx: Context,
    scratch: ScratchBroker,
    requests: u32,
}

impl std::fmt::Debug for RequestTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTarget")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl Default for RequestTarget {
    fn default() -> Self {
        RequestTarget::new()
    }
}

impl RequestTarget {
    pub fn new() -> RequestTarget {
        RequestTarget {
            serving: None,
            brokers: 0,
        }
    }

    /// Sends one input to the broker and waits (briefly) for its answer.
    pub fn request(&mut self, data: &[u8]) {
        let Some(frame) = frame_of(data) else {
            return;
        };
        let serving = self.serving();
        serving.requests += 1;
        let ctx = serving.ctx.clone();
        let closes = serving.runtime.block_on(async move {
            let answered = async {
                match Box::pin(dispatch(&ctx, frame)).await {
                    Ok(Dispatched::Respond(response)) => {
                        let _answer = response.await;
                        false
                    }
                    Ok(Dispatched::RespondThenClose(response)) => {
                        let _answer = response.await;
                        true
                    }
                    Ok(Dispatched::NoResponse) => false,
                    Err(_) => true,
                }
            };
            tokio::time::timeout(REQUEST_TIME_MAX, answered)
                .await
                .unwrap_or(true)
        });
        if closes {
            // A new connection: a fresh session (the broker and its topics stay).
            serving.ctx = connection(&serving.scratch);
        }
        if serving.requests >= REQUESTS_PER_BROKER {
            self.retire();
        }
    }

    fn serving(&mut self) -> &mut Serving {
        let brokers = &mut self.brokers;
        self.serving.get_or_insert_with(|| {
            *brokers += 1;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the fuzzed broker");
            let scratch = runtime.block_on(ScratchBroker::open(*brokers));
            let ctx = connection(&scratch);
            Serving {
                runtime,
                ctx,
                scratch,
                requests: 0,
            }
        })
    }

    /// Shuts the broker down and removes its directory, then stops its tasks with the runtime.
    fn retire(&mut self) {
        if let Some(serving) = self.serving.take() {
            let Serving {
                runtime,
                ctx,
                scratch,
                ..
            } = serving;
            drop(ctx);
            runtime.block_on(async { drop(scratch) });
            drop(runtime);
        }
    }
}

impl Drop for RequestTarget {
    fn drop(&mut self) {
        self.retire();
    }
}

/// A new client connection's context on `scratch`'s broker (a fresh session).
fn connection(scratch: &ScratchBroker) -> Context {
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    Context::new(
        Arc::clone(&scratch.broker),
        Arc::new(KafkaSettings::default()),
        peer,
    )
}

/// The frame an input stands for (see [`RequestTarget`]).
fn frame_of(data: &[u8]) -> Option<Bytes> {
    let (&first, rest) = data.split_first()?;
    if first & 0x80 != 0 {
        return Some(Bytes::copy_from_slice(rest));
    }
    let [api_pick, version_pick, body @ ..] = rest else {
        return None;
    };
    let served = SERVED.get(usize::from(*api_pick) % SERVED.len())?;
    let span = u8::try_from(served.max - served.min + 1).unwrap_or(u8::MAX);
    let version = served.min + i16::from(*version_pick % span.max(1));
    let header = RequestHeader::default()
        .with_request_api_key(served.api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, served.api.request_header_version(version))
        .ok()?;
    match produce_with_sealed_crcs(served.api, version, body) {
        Some(sealed) => frame.extend_from_slice(&sealed),
        None => frame.extend_from_slice(body),
    }
    Some(frame.freeze())
}

/// A Produce body that decodes, re-encoded with the CRCs of its batches sealed, so the fuzzer
/// reaches appends, producer state and transactions behind the CRC check.
fn produce_with_sealed_crcs(api: ApiKey, version: i16, body: &[u8]) -> Option<BytesMut> {
    if api != ApiKey::Produce || version < PRODUCE_DECODED_MIN {
        return None;
    }
    let mut request = ProduceRequest::decode(&mut Bytes::copy_from_slice(body), version).ok()?;
    for partition in request
        .topic_data
        .iter_mut()
        .flat_map(|topic| topic.partition_data.iter_mut())
    {
        if let Some(records) = &partition.records {
            let mut sealed = records.to_vec();
            seal_crcs(&mut sealed);
            partition.records = Some(Bytes::from(sealed));
        }
    }
    let mut sealed = BytesMut::new();
    request.encode(&mut sealed, version).ok()?;
    Some(sealed)
}
