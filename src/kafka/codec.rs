//! Sans-IO Kafka framing: split length-prefixed frames off a read buffer, parse request headers,
//! decode request bodies and encode responses with the right header version. No sockets here.
#![deny(clippy::indexing_slicing)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Bytes of the big-endian length prefix in front of every frame.
pub(crate) const LENGTH_PREFIX_BYTES: usize = 4;

/// A length prefix that cannot be honoured; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("negative frame length {length}")]
    NegativeLength { length: i32 },
    #[error("frame length {length} exceeds the limit of {max_bytes} bytes")]
    TooLarge { length: u32, max_bytes: u32 },
}

/// A request or response that cannot be decoded or encoded; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("request of {frame_bytes} bytes is too short for a request header")]
    ShortHeader { frame_bytes: usize },
    #[error("malformed {api:?} v{version} request header: {reason}")]
    Header {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("malformed {api:?} v{version} request body: {reason}")]
    Body {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api:?} v{version} response of {body_bytes} bytes does not fit in a frame")]
    ResponseTooLarge {
        api: ApiKey,
        version: i16,
        body_bytes: usize,
    },
}

/// The length of the frame at the start of `buf` (without its prefix), checked against
/// `max_bytes`; `Ok(None)` until the 4-byte prefix is buffered.
pub(crate) fn frame_length(buf: &[u8], max_bytes: u32) -> Result<Option<u32>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_BYTES) else {
        return Ok(None);
    };
    let mut prefix_bytes = [0u8; LENGTH_PREFIX_BYTES];
    prefix_bytes.copy_from_slice(prefix);
    let length = i32::from_be_bytes(prefix_bytes);
    let Ok(length) = u32::try_from(length) else {
        return Err(FrameError::NegativeLength { length });
    };
    if length > max_bytes {
        return Err(FrameError::TooLarge { length, max_bytes });
    }
    Ok(Some(length))
}

/// Splits the next whole frame (without its length prefix) off `buf`.
/// Returns `Ok(None)` until the whole frame is buffered. Reserves nothing: the caller grows the
/// buffer as bytes arrive, so a length prefix alone never allocates what it claims.
pub(crate) fn decode_frame(
    buf: &mut BytesMut,
    max_bytes: u32,
) -> Result<Option<BytesMut>, FrameError> {
    let Some(length) = frame_length(buf, max_bytes)? else {
        return Ok(None);
    };
    // u32 always fits in usize on the 32/64-bit targets we build for.
    let frame_bytes = length as usize;
    if buf.len() < LENGTH_PREFIX_BYTES + frame_bytes {
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX_BYTES);
    Ok(Some(buf.split_to(frame_bytes)))
}

/// The fixed leading fields every request header version shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestPrefix {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
    pub(crate) correlation_id: i32,
}

/// Reads api key, api version and correlation id, which lead every request header version.
pub(crate) fn peek_request_prefix(frame: &[u8]) -> Result<RequestPrefix, CodecError> {
    let short = || CodecError::ShortHeader {
        frame_bytes: frame.len(),
    };
    let mut prefix = frame.get(..8).ok_or_else(short)?;
    Ok(RequestPrefix {
        api_key: prefix.get_i16(),
        api_version: prefix.get_i16(),
        correlation_id: prefix.get_i32(),
    })
}

/// Decodes the request header (its version follows from api key and version) and returns it
/// with the remaining body bytes.
pub(crate) fn decode_request_header(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(RequestHeader, Bytes), CodecError> {
    let header_version = api.request_header_version(version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|err| CodecError::Header {
            api,
            version,
            reason: format!("{err:#}"),
        })?;
    Ok((header, frame))
}

/// Decodes a request body of `api` at `version`. Trailing bytes are ignored, as Kafka does.
pub(crate) fn decode_body<M: Decodable>(
    body: &mut Bytes,
    api: ApiKey,
    version: i16,
) -> Result<M, CodecError> {
    M::decode(body, version).map_err(|err| CodecError::Body {
        api,
        version,
        reason: format!("{err:#}"),
    })
}

/// Encodes a whole response frame: length prefix, response header (v0 for ApiVersions, else as
/// `ApiKey::response_header_version` says) and body.
pub(crate) fn encode_response<M: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<Bytes, CodecError> {
    let encode_error = |err: anyhow::Error| CodecError::Encode {
        api,
        version,
        reason: format!("{err:#}"),
    };
    let body_bytes = body.compute_size(version).map_err(encode_error)?;
    encode_frame(api, version, correlation_id, body_bytes, |buf| {
        body.encode(buf, version).map_err(encode_error)
    })
}

/// Encodes a response frame whose body of `body_bytes` bytes is written by `write_body`; used for
/// bodies kafka-protocol cannot encode (Produce v0-v2).
pub(crate) fn encode_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body_bytes: usize,
    write_body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<Bytes, CodecError> {
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_error = |err: anyhow::Error| CodecError::Encode {
        api,
        version,
        reason: format!("{err:#}"),
    };
    let header_bytes = header.compute_size(header_version).map_err(encode_error)?;
    let too_large = || CodecError::ResponseTooLarge {
        api,
        version,
        body_bytes,
    };
    let frame_bytes = header_bytes.checked_add(body_bytes).ok_or_else(too_large)?;
    let length = i32::try_from(frame_bytes).map_err(|_| too_large())?;
    let mut buf = BytesMut::with_capacity(LENGTH_PREFIX_BYTES + frame_bytes);
    buf.put_i32(length);
    header
        .encode(&mut buf, header_version)
        .map_err(encode_error)?;
    write_body(&mut buf)?;
    if buf.len() != LENGTH_PREFIX_BYTES + frame_bytes {
        return Err(CodecError::Encode {
            api,
            version,
            reason: format!(
                "computed {frame_bytes} bytes but wrote {}",
                buf.len() - LENGTH_PREFIX_BYTES
            ),
        });
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn framed(payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(i32::try_from(payload.len()).expect("small"));
        buf.put_slice(payload);
        buf
    }

    #[test]
    fn decode_frame_waits_for_whole_prefix_and_body() {
        let whole = framed(b"hello");
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(whole.get(..cut).expect("in range"));
            assert_eq!(decode_frame(&mut buf, 100), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "a partial frame is left in place");
        }
        let mut buf = whole.clone();
        buf.put_slice(b"\0\0");
        let frame = decode_frame(&mut buf, 100).expect("valid").expect("whole");
        assert_eq!(&frame[..], b"hello");
        assert_eq!(&buf[..], b"\0\0", "the next frame's bytes stay buffered");
    }

    #[test]
    fn decode_frame_splits_back_to_back_frames() {
        let mut buf = framed(b"a");
        buf.extend_from_slice(&framed(b""));
        buf.extend_from_slice(&framed(b"bc"));
        let mut frames = Vec::new();
        while let Some(frame) = decode_frame(&mut buf, 10).expect("valid") {
            frames.push(frame.freeze());
        }
        assert_eq!(
            frames,
            vec![Bytes::from("a"), Bytes::new(), Bytes::from("bc")]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn decode_frame_rejects_oversize_length_before_allocating() {
        let mut buf = BytesMut::new();
        buf.put_i32(1_000_001);
        let capacity = buf.capacity();
        assert_eq!(
            decode_frame(&mut buf, 1_000_000),
            Err(FrameError::TooLarge {
                length: 1_000_001,
                max_bytes: 1_000_000
            })
        );
        assert_eq!(
            buf.capacity(),
            capacity,
            "no reservation for a rejected length"
        );
        let mut exact = BytesMut::new();
        exact.put_i32(1_000_000);
        assert_eq!(decode_frame(&mut exact, 1_000_000), Ok(None));
    }

    #[test]
    fn decode_frame_claimed_length_is_not_reserved() {
        // Issue 7: 4 bytes claiming 100 MiB made the codec reserve 100 MiB at once.
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(100 * 1024 * 1024);
        buf.put_slice(b"first bytes");
        let capacity = buf.capacity();
        assert_eq!(decode_frame(&mut buf, u32::MAX), Ok(None));
        assert_eq!(buf.capacity(), capacity, "nothing reserved for the claim");
        assert_eq!(frame_length(&buf, u32::MAX), Ok(Some(100 * 1024 * 1024)));
        assert_eq!(
            frame_length(buf.get(..3).expect("buffered"), u32::MAX),
            Ok(None)
        );
    }

    #[test]
    fn decode_frame_rejects_negative_length() {
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        assert_eq!(
            decode_frame(&mut buf, u32::MAX),
            Err(FrameError::NegativeLength { length: -1 })
        );
        let mut buf = BytesMut::new();
        buf.put_i32(i32::MIN);
        assert!(matches!(
            decode_frame(&mut buf, u32::MAX),
            Err(FrameError::NegativeLength { .. })
        ));
    }

    fn request_bytes(api: ApiKey, version: i16, client_id: Option<&'static str>) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(77)
            .with_client_id(client_id.map(StrBytes::from_static_str));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .expect("encodable");
        buf.put_slice(b"body");
        buf.freeze()
    }

    #[test]
    fn request_header_parses_at_flexible_and_non_flexible_versions() {
        for (api, version) in [
            (ApiKey::Metadata, 0),
            (ApiKey::Metadata, 9),
            (ApiKey::ApiVersions, 3),
            (ApiKey::Produce, 13),
            (ApiKey::Fetch, 4),
        ] {
            let frame = request_bytes(api, version, Some("client-1"));
            let prefix = peek_request_prefix(&frame).expect("long enough");
            assert_eq!(
                prefix,
                RequestPrefix {
                    api_key: api as i16,
                    api_version: version,
                    correlation_id: 77
                }
            );
            let (header, body) = decode_request_header(frame, api, version).expect("valid");
            assert_eq!(header.client_id.as_deref(), Some("client-1"));
            assert_eq!(&body[..], b"body", "{api:?} v{version}");
        }
    }

    #[test]
    fn request_header_null_client_id_is_accepted() {
        let frame = request_bytes(ApiKey::Metadata, 1, None);
        let (header, _) = decode_request_header(frame, ApiKey::Metadata, 1).expect("valid");
        assert_eq!(header.client_id, None);
    }

    #[test]
    fn request_header_truncated_is_an_error_not_a_panic() {
        let frame = request_bytes(ApiKey::Metadata, 9, Some("client-1"));
        for cut in 0..frame.len() - 4 {
            let short = frame.slice(..cut);
            if cut < 8 {
                assert!(matches!(
                    peek_request_prefix(&short),
                    Err(CodecError::ShortHeader { .. })
                ));
            } else {
                assert!(decode_request_header(short, ApiKey::Metadata, 9).is_err());
            }
        }
    }

    #[test]
    fn forged_array_lengths_are_errors_not_allocations() {
        // Produce v3: null transactional id, acks, timeout, then 2^31-1 topics in 0 bytes.
        let mut body = BytesMut::new();
        body.put_i16(-1);
        body.put_i16(1);
        body.put_i32(1_000);
        body.put_i32(i32::MAX);
        let result = decode_body::<kafka_protocol::messages::ProduceRequest>(
            &mut body.freeze(),
            ApiKey::Produce,
            3,
        );
        assert!(matches!(result, Err(CodecError::Body { .. })));
        // Metadata v9 (flexible): a compact array claiming 2^32-2 topics.
        let mut body = BytesMut::new();
        body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let result = decode_body::<kafka_protocol::messages::MetadataRequest>(
            &mut body.freeze(),
            ApiKey::Metadata,
            9,
        );
        assert!(matches!(result, Err(CodecError::Body { .. })));
    }

    #[test]
    fn api_versions_response_header_is_v0_even_when_flexible() {
        let body = ApiVersionsResponse::default();
        let frame = encode_response(ApiKey::ApiVersions, 3, 5, &body).expect("encodable");
        let body_bytes = body.compute_size(3).expect("sized");
        // length prefix + correlation id (no tagged-field byte) + body
        assert_eq!(frame.len(), 4 + 4 + body_bytes);
        assert_eq!(
            frame.get(..8),
            Some(&[0, 0, 0, 4 + body_bytes as u8, 0, 0, 0, 5][..])
        );
    }

    #[test]
    fn flexible_response_header_has_tagged_fields() {
        let body = MetadataResponse::default();
        for (version, header_bytes) in [(8, 4), (9, 5)] {
            let frame = encode_response(ApiKey::Metadata, version, 1, &body).expect("encodable");
            let body_bytes = body.compute_size(version).expect("sized");
            assert_eq!(frame.len(), 4 + header_bytes + body_bytes, "v{version}");
        }
    }

    #[test]
    fn encode_response_of_unsupported_version_is_an_error() {
        let body = MetadataResponse::default();
        assert!(matches!(
            encode_response(ApiKey::Metadata, 99, 1, &body),
            Err(CodecError::Encode { .. })
        ));
    }
}
