//! One blocking connection to one broker: frames a kafka-protocol request with a fresh
//! correlation id, reads the matching response, and knows which API versions the broker serves
//! (ApiVersions, asked once when the connection opens).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::error::ClientError;
use super::sasl::{self, SaslSettings};
use super::tls::TlsConnector;

/// Largest response frame this client reads (a fetch answer is bounded well below this).
const RESPONSE_BYTES_MAX: usize = 128 * 1024 * 1024;
/// ApiVersions v3: flexible, answered by every broker since Kafka 2.4.
const API_VERSIONS_VERSION: i16 = 3;
const CLIENT_ID: &str = "tidelog-cli";
const CLIENT_SOFTWARE_NAME: &str = "tidelog-cli";

/// A byte stream to a broker: plain TCP or TLS over it.
pub(crate) trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// An open connection; one request in flight at a time.
pub(crate) struct Connection {
    address: String,
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
    /// API key -> (min, max) version the broker serves.
    versions: HashMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `address` (HOST:PORT), over TLS when `tls` is given, asks ApiVersions and
    /// authenticates with SASL when `sasl` is given.
    pub(crate) fn open(
        address: &str,
        tls: Option<&TlsConnector>,
        sasl: Option<&SaslSettings>,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let what = || format!("connecting to {address}");
        let addrs = address
            .to_socket_addrs()
            .map_err(|e| ClientError::io(what(), e))?;
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let source = last.unwrap_or_else(|| std::io::Error::other("no address"));
            ClientError::io(format!("{} (is a broker listening there?)", what()), source)
        })?;
        let setup = |r: std::io::Result<()>| r.map_err(|e| ClientError::io(what(), e));
        setup(tcp.set_read_timeout(Some(timeout)))?;
        setup(tcp.set_write_timeout(Some(timeout)))?;
        setup(tcp.set_nodelay(true))?;
        let stream: Box<dyn Stream> = match tls {
            Some(tls) => Box::new(tls.wrap(address, tcp)?),
            None => Box::new(tcp),
        };
        let mut connection = Connection {
            address: address.to_owned(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
        };
        connection.negotiate()?;
        if let Some(sasl) = sasl {
            sasl::authenticate(&mut connection, sasl)?;
        }
        Ok(connection)
    }

    fn negotiate(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_SOFTWARE_NAME))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = self.exchange(&request, API_VERSIONS_VERSION)?;
        ClientError::check(
            response.error_code,
            format!("ApiVersions at {}", self.address),
        )?;
        self.versions = response
            .api_keys
            .iter()
            .map(|v| (v.api_key, (v.min_version, v.max_version)))
            .collect();
        Ok(())
    }

    /// Sends `request` at `version` and reads its response; fails without sending when the
    /// broker does not serve that version.
    pub(crate) fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        match self.versions.get(&R::KEY) {
            Some(&(min, max)) if (min..=max).contains(&version) => {}
            served => {
                return Err(ClientError::protocol(format!(
                    "the broker at {} does not serve API {} v{version} (it serves {}); \
                     is it a Tidelog or Kafka broker of a supported version?",
                    self.address,
                    R::KEY,
                    served.map_or("none".to_owned(), |(min, max)| format!("v{min}-v{max}"))
                )));
            }
        }
        self.exchange(request, version)
    }

    fn exchange<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode(request, version, correlation_id)?;
        let address = self.address.clone();
        let what = |doing: &str| format!("{doing} API {} at {address}", R::KEY);
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|e| ClientError::io(what("sending"), e))?;
        let mut body = self
            .read_frame()
            .map_err(|e| ClientError::io(what("reading the answer to"), e))?;
        let header = ResponseHeader::decode(
            &mut body,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|e| ClientError::protocol(format!("{}: {e}", what("decoding the header of"))))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::protocol(format!(
                "{}: correlation id {} answers request {correlation_id}",
                what("reading"),
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| ClientError::protocol(format!("{}: {e}", what("decoding"))))
    }

    fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = usize::try_from(i32::from_be_bytes(len))
            .ok()
            .filter(|&len| len <= RESPONSE_BYTES_MAX)
            .ok_or_else(|| std::io::Error::other("response frame length out of range"))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }
}

/// The length-prefixed frame of `request`: header, then body.
fn encode<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, ClientError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    let failed = |e: anyhow::Error| {
        ClientError::protocol(format!("encoding API {} v{version}: {e}", R::KEY))
    };
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(failed)?;
    request.encode(&mut frame, version).map_err(failed)?;
    let len = i32::try_from(frame.len() - 4)
        .map_err(|_| ClientError::Invalid("request larger than 2 GiB".to_owned()))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame.freeze())
}
