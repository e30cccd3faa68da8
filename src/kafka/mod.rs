//! Kafka wire protocol: sans-IO frame codec, ApiVersions table, dispatch, one handler per API and
//! the broker-error -> error-code map. The only module naming `kafka_protocol`; the broker side
//! opens no sockets (`client`, the admin CLI's blocking Kafka client, does).

mod authz;
pub(crate) mod client;
mod codec;
mod context;
mod dispatch;
pub(crate) mod error_code;
#[cfg(fuzzing)]
pub(crate) mod fuzzing;
pub(crate) mod handlers;
mod request_metrics;
mod request_quota;
mod session;
#[cfg(test)]
mod version_sweep_tests;
mod versions;

pub(crate) use authz::AuthorizationPolicy;
pub(crate) use codec::{CodecError, FrameError, LENGTH_PREFIX_BYTES, decode_frame, frame_length};
pub(crate) use context::{
    Context, KafkaSettings, ListenerEndpoint, topic_id_to_uuid, uuid_to_topic_id,
};
pub(crate) use dispatch::{DispatchError, Dispatched, PendingResponse, dispatch};
pub(crate) use session::SaslPolicy;
