//! Counts and times every dispatched request (`telemetry::metrics`): by API name and version,
//! failures (requests that close the connection, SASL failures included) apart; a pending response is timed until it
//! is ready. Observes only; the response is passed through unchanged.

use std::time::Instant;

use kafka_protocol::messages::ApiKey;

use super::codec::RequestPrefix;
use super::dispatch::{DispatchError, Dispatched};
use crate::telemetry::metrics;

/// The labels of a request: its API's name (`Produce`) and version, `unknown` for a key we
/// do not know and `unsupported` for a version we do not serve, so a client sending random
/// headers cannot grow the number of series.
fn labels(prefix: Option<&RequestPrefix>) -> (String, String) {
    let Some(prefix) = prefix else {
        return ("unknown".to_owned(), "unsupported".to_owned());
    };
    let Ok(api) = ApiKey::try_from(prefix.api_key) else {
        return ("unknown".to_owned(), "unsupported".to_owned());
    };
    let version = if super::versions::is_served(api, prefix.api_version) {
        prefix.api_version.to_string()
    } else {
        "unsupported".to_owned()
    };
    (format!("{api:?}"), version)
}

/// Records the request `prefix` describes (None: not even its header could be read) and
/// hands `result` back, its pending response wrapped to be timed.
pub(super) fn observe(
    prefix: Option<RequestPrefix>,
    started: Instant,
    result: Result<Dispatched, DispatchError>,
) -> Result<Dispatched, DispatchError> {
    if !metrics::is_exported() {
        return result;
    }
    let (api, version) = labels(prefix.as_ref());
    match result {
        Ok(Dispatched::Respond(pending)) => Ok(Dispatched::Respond(Box::pin(async move {
            let response = pending.await;
            metrics::request(api, version, started.elapsed(), response.is_err());
            response
        }))),
        // A failed or out-of-order SASL exchange: answered, then the connection is closed.
        Ok(Dispatched::RespondThenClose(pending)) => {
            Ok(Dispatched::RespondThenClose(Box::pin(async move {
                let response = pending.await;
                metrics::request(api, version, started.elapsed(), true);
                response
            })))
        }
        Ok(Dispatched::NoResponse) => {
            metrics::request(api, version, started.elapsed(), false);
            Ok(Dispatched::NoResponse)
        }
        Err(error) => {
            metrics::request(api, version, started.elapsed(), true);
            Err(error)
        }
    }
}
