//! DescribeConfigs (v1–4): topic and broker configs with their sources, synonyms, types and
//! documentation. Read-only; every value and source comes from the broker.

use kafka_protocol::messages;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::broker::ConfigEntry;
use crate::kafka::{Context, error_code};

/// What the request asks to include with each config.
#[derive(Debug, Clone, Copy)]
struct Detail {
    version: i16,
    synonyms: bool,
    documentation: bool,
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::DescribeConfigsRequest,
) -> messages::DescribeConfigsResponse {
    let detail = Detail {
        version,
        synonyms: request.include_synonyms,
        documentation: version >= 3 && request.include_documentation,
    };
    let results = request
        .resources
        .iter()
        .map(|resource| describe(ctx, resource, detail))
        .collect();
    messages::DescribeConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_results(results)
}

fn describe(
    ctx: &Context,
    resource: &DescribeConfigsResource,
    detail: Detail,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    match entries(ctx, resource) {
        Ok(entries) => {
            let keys = resource.configuration_keys.as_deref();
            let configs = entries
                .iter()
                .filter(|entry| admin::is_requested(keys, &entry.name))
                .map(|entry| config(entry, detail))
                .collect();
            result
                .with_error_code(error_code::NONE)
                .with_error_message(None)
                .with_configs(configs)
        }
        Err(err) => result
            .with_error_code(err.code)
            .with_error_message(err.message)
            .with_configs(Vec::new()),
    }
}

/// Every config of the resource, before the key filter.
fn entries(
    ctx: &Context,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, ApiError> {
    let name = resource.resource_name.as_str();
    admin::config_access(
        ctx,
        resource.resource_type,
        name,
        Operation::DescribeConfigs,
    )?;
    match resource.resource_type {
        admin::RESOURCE_TOPIC => ctx
            .broker
            .topic_configs(name)
            .map_err(|err| ApiError::broker(&err)),
        admin::RESOURCE_BROKER => {
            let node = admin::broker_node(name, ctx.broker.node_id())?;
            Ok(ctx.broker.broker_configs(node))
        }
        admin::RESOURCE_BROKER_LOGGER => {
            // Kafka's name checks come first; then, log levels are not served by this broker.
            if name.is_empty() {
                return Err(ApiError::invalid_request("broker id must not be empty"));
            }
            admin::broker_scope(name, ctx.broker.node_id())?;
            Err(admin::unsupported_resource(admin::RESOURCE_BROKER_LOGGER))
        }
        other => Err(admin::unsupported_resource(other)),
    }
}

fn config(entry: &ConfigEntry, detail: Detail) -> DescribeConfigsResourceResult {
    let name = StrBytes::from_string(entry.name.clone());
    let value = if entry.sensitive {
        None
    } else {
        entry.value.clone().map(StrBytes::from_string)
    };
    let source = admin::source_id(entry.source);
    // Without synonyms from the broker the entry itself is the only one.
    let synonyms = match (detail.synonyms, entry.synonyms.is_empty()) {
        (false, _) => Vec::new(),
        (true, true) => vec![
            DescribeConfigsSynonym::default()
                .with_name(name.clone())
                .with_value(value.clone())
                .with_source(source),
        ],
        (true, false) => entry
            .synonyms
            .iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(s.name.clone()))
                    .with_value(s.value.clone().map(StrBytes::from_string))
                    .with_source(admin::source_id(s.source))
            })
            .collect(),
    };
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(name)
        .with_value(value)
        .with_read_only(entry.read_only)
        .with_config_source(source)
        .with_is_sensitive(entry.sensitive)
        .with_synonyms(synonyms);
    if detail.version >= 3 {
        result.config_type = admin::type_id(entry.kind);
        result.documentation = detail
            .documentation
            .then(|| StrBytes::from_static_str(entry.doc));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{ConfigKind, ConfigSource};

    fn entry(sensitive: bool) -> ConfigEntry {
        ConfigEntry {
            name: "retention.ms".to_owned(),
            value: Some("1000".to_owned()),
            source: ConfigSource::TopicOverride,
            read_only: false,
            sensitive,
            doc: "age after which segments are deleted",
            kind: ConfigKind::Long,
            synonyms: Vec::new(),
        }
    }

    #[test]
    fn v4_entries_carry_type_documentation_and_synonyms() {
        let detail = Detail {
            version: 4,
            synonyms: true,
            documentation: true,
        };
        let got = config(&entry(false), detail);
        assert_eq!(got.value.as_deref(), Some("1000"));
        assert_eq!((got.config_source, got.config_type), (1, 5));
        assert!(got.documentation.is_some_and(|d| !d.is_empty()));
        assert_eq!(got.synonyms.len(), 1);
        assert_eq!(got.synonyms[0].source, 1);
    }

    #[test]
    fn old_versions_leave_v3_fields_at_their_defaults() {
        let detail = Detail {
            version: 1,
            synonyms: false,
            documentation: false,
        };
        let got = config(&entry(false), detail);
        let default = DescribeConfigsResourceResult::default();
        assert_eq!(got.config_type, default.config_type);
        assert_eq!(got.documentation, default.documentation);
        assert!(got.synonyms.is_empty());
    }

    #[test]
    fn sensitive_values_are_hidden() {
        let detail = Detail {
            version: 4,
            synonyms: true,
            documentation: false,
        };
        let got = config(&entry(true), detail);
        assert_eq!(got.value, None);
        assert_eq!(got.synonyms[0].value, None);
        assert_eq!(got.documentation, None);
    }
}
