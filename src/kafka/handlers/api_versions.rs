//! ApiVersions (key 18): the advertised table from `kafka/versions.rs` and (v3+) the features:
//! `transaction.version` 2 is supported and finalized, so new clients use transactions v2
//! (KIP-890). Unsupported versions are answered by dispatch with `unsupported_version()` at v0.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::Context;
use crate::kafka::error_code;
use crate::kafka::versions;

/// Every served version gets the full table; client software name/version (v3+) are accepted.
pub(crate) async fn handle(
    _ctx: &Context,
    version: i16,
    request: messages::ApiVersionsRequest,
) -> messages::ApiVersionsResponse {
    if version >= 3 {
        tracing::debug!(
            client_software_name = %request.client_software_name,
            client_software_version = %request.client_software_version,
            "api versions"
        );
    }
    let response = messages::ApiVersionsResponse::default()
        .with_error_code(error_code::NONE)
        .with_api_keys(versions::api_versions());
    if version < 3 {
        return response;
    }
    let feature = StrBytes::from_static_str(versions::TRANSACTION_VERSION_FEATURE);
    // Kafka leaves out features whose minimum is 0 below v4 (older clients reject level 0).
    let supported = if version >= 4 {
        vec![
            SupportedFeatureKey::default()
                .with_name(feature.clone())
                .with_min_version(0)
                .with_max_version(versions::TRANSACTION_VERSION),
        ]
    } else {
        Vec::new()
    };
    response
        .with_supported_features(supported)
        .with_finalized_features_epoch(versions::FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(vec![
            FinalizedFeatureKey::default()
                .with_name(feature)
                .with_max_version_level(versions::TRANSACTION_VERSION)
                .with_min_version_level(versions::TRANSACTION_VERSION),
        ])
}

/// The answer to an ApiVersions request of a version we do not serve: error 35 plus our table,
/// to be encoded at v0 so any client can read it and retry with a version we list (KIP-511).
pub(crate) fn unsupported_version() -> messages::ApiVersionsResponse {
    messages::ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(versions::api_versions())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    #[test]
    fn unsupported_version_response_decodes_at_v0() {
        let response = unsupported_version();
        let mut buf = bytes::BytesMut::new();
        response.encode(&mut buf, 0).expect("v0 encodable");
        let decoded = messages::ApiVersionsResponse::decode(&mut buf.freeze(), 0).expect("v0");
        assert_eq!(decoded.error_code, 35);
        assert_eq!(decoded.api_keys.len(), versions::SERVED.len());
    }
}
