//! Sans-IO HTTP/1.x for the admin listener: parses a request head (httparse) into a route and
//! writes a complete response (always `Connection: close`). No sockets here.

use crate::limits;

/// What a request head asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    /// `HEAD` asks for the headers only.
    pub(super) is_head: bool,
    pub(super) target: Target,
}

/// The admin endpoints, and what is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Health,
    Ready,
    Metrics,
    /// A path that is no endpoint (404).
    NotFound,
    /// A method other than GET or HEAD (405).
    MethodNotAllowed,
}

/// Why a request head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Error {
    #[error(
        "request head larger than {} bytes",
        limits::ADMIN_REQUEST_HEAD_BYTES_MAX
    )]
    TooLarge,
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
}

/// Parses the head buffered so far: `Ok(None)` while it is incomplete (read more), the request
/// once complete. A head longer than the limit is `TooLarge` even when still incomplete.
pub(super) fn parse(buffered: &[u8]) -> Result<Option<Request>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; limits::ADMIN_REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let status = request.parse(buffered).map_err(|error| match error {
        httparse::Error::TooManyHeaders => Error::TooLarge,
        other => Error::Malformed(other),
    })?;
    if status.is_partial() {
        return if buffered.len() >= limits::ADMIN_REQUEST_HEAD_BYTES_MAX {
            Err(Error::TooLarge)
        } else {
            Ok(None)
        };
    }
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    // A query string does not change what is served (`/metrics?x=y` is `/metrics`).
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let target = match (method, path) {
        ("GET" | "HEAD", "/health") => Target::Health,
        ("GET" | "HEAD", "/ready") => Target::Ready,
        ("GET" | "HEAD", "/metrics") => Target::Metrics,
        ("GET" | "HEAD", _) => Target::NotFound,
        _ => Target::MethodNotAllowed,
    };
    Ok(Some(Request {
        is_head: method == "HEAD",
        target,
    }))
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: String,
}

/// Content type of plain answers.
pub(super) const TEXT: &str = "text/plain; charset=utf-8";
/// Content type of Prometheus' text exposition format.
pub(super) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    pub(super) fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }

    /// The response's bytes; `head_only` leaves the body out (a HEAD request).
    pub(super) fn encode(&self, head_only: bool) -> Vec<u8> {
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(head: &str, expected: Option<(bool, Target)>) {
        let parsed = parse(head.as_bytes()).expect("a valid head");
        assert_eq!(parsed.map(|r| (r.is_head, r.target)), expected, "{head:?}");
    }

    #[test]
    fn parse_routes_each_endpoint() {
        check(
            "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            Some((false, Target::Health)),
        );
        check("GET /ready HTTP/1.0\r\n\r\n", Some((false, Target::Ready)));
        check(
            "HEAD /metrics HTTP/1.1\r\n\r\n",
            Some((true, Target::Metrics)),
        );
        check(
            "GET /metrics?name=x HTTP/1.1\r\n\r\n",
            Some((false, Target::Metrics)),
        );
        check("GET / HTTP/1.1\r\n\r\n", Some((false, Target::NotFound)));
        check(
            "GET /healthz HTTP/1.1\r\n\r\n",
            Some((false, Target::NotFound)),
        );
        check(
            "POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            Some((false, Target::MethodNotAllowed)),
        );
    }

    #[test]
    fn parse_incomplete_head_asks_for_more() {
        check("GET /health HTTP/1.1\r\nHost: x\r\n", None);
        check("GE", None);
    }

    #[test]
    fn parse_garbage_is_malformed_not_a_panic() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET\x00 / HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/9.9\r\n\r\n",
        ] {
            assert!(
                matches!(parse(garbage), Err(Error::Malformed(_))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn parse_oversized_head_is_too_large() {
        let long = format!(
            "GET /health HTTP/1.1\r\nX-Pad: {}\r\n",
            "a".repeat(limits::ADMIN_REQUEST_HEAD_BYTES_MAX)
        );
        assert_eq!(parse(long.as_bytes()), Err(Error::TooLarge));
        let many: String = (0..=limits::ADMIN_REQUEST_HEADERS_MAX)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let head = format!("GET /health HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(head.as_bytes()), Err(Error::TooLarge));
    }

    #[test]
    fn encode_sets_length_and_closes() {
        let response = Response::text(503, "no controller leader");
        let text = String::from_utf8(response.encode(false)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 20\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno controller leader"), "{text}");
        let head = String::from_utf8(response.encode(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
