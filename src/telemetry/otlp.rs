//! OTLP trace export (`telemetry.otlp_endpoint`): a `tracing-opentelemetry` layer whose spans
//! (the STYLE.md tree: connection, request, append) a batch processor sends as http/protobuf
//! to `<endpoint>/v1/traces` from its own thread, dropping spans beyond its bounded queue.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::registry::LookupSpan;

/// How long one export request may take before it is abandoned (its spans are lost).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter's tracer provider: flushed and stopped by [`Exporter::shutdown`].
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Sends the spans still queued (bounded by the export timeout) and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "OTLP exporter did not shut down cleanly");
        }
    }
}

/// The traces URL of a collector's base URL (`http://collector:4318` ->
/// `http://collector:4318/v1/traces`), as OTLP's `OTEL_EXPORTER_OTLP_ENDPOINT` does.
pub(crate) fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// Builds the export layer and its provider. Must run outside a tokio runtime (the HTTP
/// client is a blocking one, used from the batch processor's thread).
pub(super) fn layer<S>(
    endpoint: &str,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
        Exporter,
    ),
    super::Error,
>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| super::Error::Otlp {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("tidelog").build())
        .build();
    let tracer = provider.tracer("tidelog");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok((layer, Exporter { provider }))
}

/// Checks an endpoint from config: an `http://` or `https://` URL with a host.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("expected http://HOST:PORT or https://HOST:PORT, got {endpoint:?}")
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("no host in {endpoint:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
    }

    #[test]
    fn check_endpoint_wants_an_http_url_with_a_host() {
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(check_endpoint("https://collector.example/otlp").is_ok());
        for bad in ["127.0.0.1:4318", "grpc://c:4317", "http://", "http:// c"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
