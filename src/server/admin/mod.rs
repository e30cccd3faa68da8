//! The admin HTTP listener: `GET /health`, `/ready` and `/metrics` for probes and Prometheus,
//! one request per connection, bounded in connections, request size and time. It answers from
//! the callbacks app gives it and knows nothing of the broker.

mod http;
mod listener;

pub(crate) use listener::{AdminHandlers, serve_admin};
