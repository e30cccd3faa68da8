//! Installs the tracing subscriber (fmt layer to stderr) and names the shared log field vocabulary.
//! The only code that installs subscribers or exporters; it never reads the environment (config
//! resolves `TIDELOG_LOG` / `telemetry.level` into the filter it is given).
//!
//! Metrics (names, recording, the Prometheus recorder) are `metrics.rs`; like `tracing`, every
//! layer may record through it. OTLP trace export (`otlp.rs`) is a second layer beside the fmt
//! layer when `telemetry.otlp_endpoint` is set; both see the spans `telemetry.level` lets through.

pub mod metrics;
mod otlp;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use otlp::{Exporter, check_endpoint};

/// Line format of the log written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable: `<time> <LEVEL> <target>: <message> key=value ...`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid log filter {filter:?}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled {
        #[source]
        source: tracing_subscriber::util::TryInitError,
    },
    #[error("cannot set up OTLP trace export to {endpoint}")]
    Otlp {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Field names shared by every module's spans and events, so logs can be searched by one name.
/// Use them as identifiers (`info!(addr = %local, "listening")`) or, where a constant is
/// clearer, with braces (`info!({ field::ADDR } = %local, "listening")`).
pub mod field {
    /// A socket address this process bound (`listening addr=127.0.0.1:9092`).
    pub const ADDR: &str = "addr";
    /// The remote socket address of a connection.
    pub const PEER: &str = "peer";
    /// Kafka API name of a request (`Produce`, `Fetch`).
    pub const API: &str = "api";
    /// Kafka API version of a request.
    pub const VERSION: &str = "version";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CLIENT_ID: &str = "client_id";
    pub const TOPIC: &str = "topic";
    pub const PARTITION: &str = "partition";
    pub const OFFSET: &str = "offset";
    pub const NODE_ID: &str = "node_id";
    /// A raft group: the metadata log's (0) or a partition's id on the cluster RPC.
    pub const GROUP: &str = "group";
    /// A raft term (a partition's leader epoch).
    pub const TERM: &str = "term";
    /// A file or directory path.
    pub const PATH: &str = "path";
    /// An error value, logged with `%` (Display) so its source chain stays readable.
    pub const ERROR: &str = "error";
}

/// The `raft{group, node_id, term}` span that raft work runs under (STYLE.md's span tree):
/// a leader's proposal until its commit, a follower storing the entries or the snapshot a
/// leader sent.
pub fn raft_span(group: u64, node_id: u64, term: u64) -> tracing::Span {
    tracing::info_span!("raft", group, node_id, term)
}

/// Checks a filter directive such as `info` or `info,tidelog::storage=debug` without installing it.
pub fn check_filter(filter: &str) -> Result<(), Error> {
    parse_filter(filter).map(drop)
}

/// Installs the global subscriber: events at or above `filter` go to stderr in `format`, with
/// ANSI colours only when stderr is a terminal. Fields render as `key=value` in text format.
/// With `otlp_endpoint`, spans also go to that OTLP collector (http/protobuf); the returned
/// exporter must be shut down at exit to send the last spans. Call it outside a tokio runtime.
pub fn init(
    filter: &str,
    format: Format,
    otlp_endpoint: Option<&str>,
) -> Result<Option<Exporter>, Error> {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        Format::Text => fmt.boxed(),
        Format::Json => fmt.json().boxed(),
    };
    let registry = tracing_subscriber::registry()
        .with(parse_filter(filter)?)
        .with(fmt);
    let Some(endpoint) = otlp_endpoint else {
        registry
            .try_init()
            .map_err(|source| Error::AlreadyInstalled { source })?;
        return Ok(None);
    };
    let (otlp, exporter) = otlp::layer(endpoint)?;
    registry
        .with(otlp)
        .try_init()
        .map_err(|source| Error::AlreadyInstalled { source })?;
    Ok(Some(exporter))
}

fn parse_filter(filter: &str) -> Result<EnvFilter, Error> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|source| Error::Filter {
            filter: filter.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_filter_accepts_levels_and_targets() {
        for filter in ["info", "debug", "warn,tidelog::storage=trace", "off"] {
            assert!(check_filter(filter).is_ok(), "{filter}");
        }
    }

    #[test]
    fn check_filter_rejects_garbage() {
        assert!(matches!(
            check_filter("info,tidelog=loud"),
            Err(Error::Filter { .. })
        ));
    }
}
