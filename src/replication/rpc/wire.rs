//! Frames of the cluster RPC: every frame is `length: u32` (of what follows) then
//! - a request: `correlation: u64, group: u64, method: u8, payload`;
//! - a response: `correlation: u64, status: u8` (0 ok, 1 failed) then the payload, or the
//!   failure as UTF-8 text.
//!
//! All integers big-endian. A frame longer than `CLUSTER_FRAME_BYTES_MAX` closes the
//! connection; a frame's announced length reserves at most `FRAME_RESERVE_BYTES_MAX` before
//! its bytes arrive.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::limits::{CLUSTER_FRAME_BYTES_MAX, RAFT_LOG_READ_BYTES_MAX};

/// Which raft group a call is for (0 is the controller).
pub(crate) type GroupId = u64;
/// Which operation of the group a call asks for.
pub(crate) type Method = u8;

const REQUEST_HEADER: usize = 8 + 8 + 1;
/// The most a frame's announced length reserves before its bytes arrive.
const FRAME_RESERVE_BYTES_MAX: usize = 2 * RAFT_LOG_READ_BYTES_MAX;
const RESPONSE_HEADER: usize = 8 + 1;
const STATUS_OK: u8 = 0;
const STATUS_FAILED: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) correlation: u64,
    pub(super) group: GroupId,
    pub(super) method: Method,
    pub(super) payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) correlation: u64,
    pub(super) result: Result<Bytes, String>,
}

/// The frame of a request whose payload is `parts` back to back: a header part, then the parts
/// themselves, uncopied (the writer writes them in order).
pub(super) fn request_frame(
    correlation: u64,
    group: GroupId,
    method: Method,
    parts: Vec<Bytes>,
) -> Vec<Bytes> {
    let payload_len: usize = parts.iter().map(Bytes::len).sum();
    let mut header = BytesMut::with_capacity(4 + REQUEST_HEADER);
    header.put_u32((REQUEST_HEADER + payload_len) as u32);
    header.put_u64(correlation);
    header.put_u64(group);
    header.put_u8(method);
    let mut frame = Vec::with_capacity(parts.len() + 1);
    frame.push(header.freeze());
    frame.extend(parts.into_iter().filter(|part| !part.is_empty()));
    frame
}

impl Request {
    fn decode(mut body: Bytes) -> std::io::Result<Request> {
        if body.len() < REQUEST_HEADER {
            return Err(invalid("request frame shorter than its header"));
        }
        Ok(Request {
            correlation: body.get_u64(),
            group: body.get_u64(),
            method: body.get_u8(),
            payload: body,
        })
    }
}

impl Response {
    pub(super) fn encode(&self) -> Bytes {
        let (status, payload) = match &self.result {
            Ok(payload) => (STATUS_OK, payload.clone()),
            Err(message) => (STATUS_FAILED, Bytes::copy_from_slice(message.as_bytes())),
        };
        let mut frame = BytesMut::with_capacity(4 + RESPONSE_HEADER + payload.len());
        frame.put_u32((RESPONSE_HEADER + payload.len()) as u32);
        frame.put_u64(self.correlation);
        frame.put_u8(status);
        frame.put_slice(&payload);
        frame.freeze()
    }

    fn decode(mut body: Bytes) -> std::io::Result<Response> {
        if body.len() < RESPONSE_HEADER {
            return Err(invalid("response frame shorter than its header"));
        }
        let correlation = body.get_u64();
        let result = match body.get_u8() {
            STATUS_OK => Ok(body),
            STATUS_FAILED => Err(String::from_utf8_lossy(&body).into_owned()),
            other => return Err(invalid(&format!("unknown response status {other}"))),
        };
        Ok(Response {
            correlation,
            result,
        })
    }
}

/// Reads one frame body; `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Bytes>> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > CLUSTER_FRAME_BYTES_MAX {
        return Err(invalid(&format!(
            "frame of {length} bytes exceeds {CLUSTER_FRAME_BYTES_MAX}"
        )));
    }
    // Frames up to a full raft read are read into one allocation (no regrowth copies); a
    // longer one grows as its bytes arrive.
    let mut body = Vec::with_capacity(length.min(FRAME_RESERVE_BYTES_MAX));
    let read = reader.take(length as u64).read_to_end(&mut body).await?;
    if read != length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(Bytes::from(body)))
}

pub(super) async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Request>> {
    read_frame(reader).await?.map(Request::decode).transpose()
}

pub(super) async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Response>> {
    read_frame(reader).await?.map(Response::decode).transpose()
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}
