//! ACLs (KIP-140): CreateAcls, DescribeAcls and DeleteAcls v3, with Kafka's resource types,
//! pattern types, operations and permissions as their upper-case names (`TOPIC`, `PREFIXED`,
//! `READ`, `ALLOW`).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::error::ClientError;
use super::session::{Client, Target};

const ACLS_VERSION: i16 = 3;
/// The "any" code of every filter field.
const ANY: i8 = 1;

/// (name, code) of each enum; `ANY` (1) is a filter's wildcard.
pub(crate) const RESOURCE_TYPES: &[(&str, i8)] = &[
    ("TOPIC", 2),
    ("GROUP", 3),
    ("CLUSTER", 4),
    ("TRANSACTIONAL_ID", 5),
    ("DELEGATION_TOKEN", 6),
    ("USER", 7),
];
pub(crate) const PATTERN_TYPES: &[(&str, i8)] = &[("MATCH", 2), ("LITERAL", 3), ("PREFIXED", 4)];
pub(crate) const OPERATIONS: &[(&str, i8)] = &[
    ("ALL", 2),
    ("READ", 3),
    ("WRITE", 4),
    ("CREATE", 5),
    ("DELETE", 6),
    ("ALTER", 7),
    ("DESCRIBE", 8),
    ("CLUSTER_ACTION", 9),
    ("DESCRIBE_CONFIGS", 10),
    ("ALTER_CONFIGS", 11),
    ("IDEMPOTENT_WRITE", 12),
    ("CREATE_TOKENS", 13),
    ("DESCRIBE_TOKENS", 14),
];
pub(crate) const PERMISSIONS: &[(&str, i8)] = &[("DENY", 2), ("ALLOW", 3)];

/// The code of `name` (case and `-`/`_` insensitive) in `table`.
pub(crate) fn code_of(table: &[(&str, i8)], name: &str) -> Option<i8> {
    let wanted = name.to_ascii_uppercase().replace('-', "_");
    table.iter().find(|(n, _)| *n == wanted).map(|(_, c)| *c)
}

fn name_of(table: &[(&'static str, i8)], code: i8) -> &'static str {
    table
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("UNKNOWN", |(n, _)| n)
}

/// One ACL: `principal` from `host` is `permission`ed `operation` on the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AclBinding {
    pub(crate) resource_type: &'static str,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: &'static str,
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: &'static str,
    pub(crate) permission: &'static str,
}

/// Which ACLs to list or delete; `None` matches anything (codes as in the tables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AclFilter {
    pub(crate) resource_type: Option<i8>,
    pub(crate) resource_name: Option<String>,
    pub(crate) pattern_type: Option<i8>,
    pub(crate) principal: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) operation: Option<i8>,
    pub(crate) permission: Option<i8>,
}

/// Sets the seven filter fields DescribeAclsRequest and DeleteAclsFilter share.
macro_rules! with_filter {
    ($builder:expr, $filter:expr) => {
        $builder
            .with_resource_type_filter($filter.resource_type.unwrap_or(ANY))
            .with_resource_name_filter($filter.resource_name.as_deref().map(text))
            .with_pattern_type_filter($filter.pattern_type.unwrap_or(ANY))
            .with_principal_filter($filter.principal.as_deref().map(text))
            .with_host_filter($filter.host.as_deref().map(text))
            .with_operation($filter.operation.unwrap_or(ANY))
            .with_permission_type($filter.permission.unwrap_or(ANY))
    };
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn binding(
    codes: (i8, i8, i8, i8),
    resource_name: &StrBytes,
    principal: &StrBytes,
    host: &StrBytes,
) -> AclBinding {
    let (resource_type, pattern_type, operation, permission) = codes;
    AclBinding {
        resource_type: name_of(RESOURCE_TYPES, resource_type),
        resource_name: resource_name.to_string(),
        pattern_type: name_of(PATTERN_TYPES, pattern_type),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: name_of(OPERATIONS, operation),
        permission: name_of(PERMISSIONS, permission),
    }
}

/// An ACL to create, its enums as codes (see the tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewAcl {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: i8,
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

/// Creates `acls`.
pub(crate) fn create_acls(client: &mut Client, acls: &[NewAcl]) -> Result<(), ClientError> {
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type)
                .with_resource_name(text(&a.resource_name))
                .with_resource_pattern_type(a.pattern_type)
                .with_principal(text(&a.principal))
                .with_host(text(&a.host))
                .with_operation(a.operation)
                .with_permission_type(a.permission)
        })
        .collect();
    let request = CreateAclsRequest::default().with_creations(creations);
    let response = client.retry("CreateAcls", |client| {
        client.call(Target::Any, &request, ACLS_VERSION)
    })?;
    for (result, acl) in response.results.iter().zip(acls) {
        ClientError::check_with(
            result.error_code,
            format!("the ACL of {} on {}", acl.principal, acl.resource_name),
            result.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// The ACLs matching `filter`.
pub(crate) fn describe_acls(
    client: &mut Client,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClientError> {
    let request = with_filter!(DescribeAclsRequest::default(), filter);
    let response = client.retry("DescribeAcls", |client| {
        let response = client.call(Target::Any, &request, ACLS_VERSION)?;
        ClientError::check_with(
            response.error_code,
            "DescribeAcls",
            response.error_message.as_deref(),
        )?;
        Ok(response)
    })?;
    let mut acls: Vec<AclBinding> = response
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(move |a| {
                binding(
                    (
                        r.resource_type,
                        r.pattern_type,
                        a.operation,
                        a.permission_type,
                    ),
                    &r.resource_name,
                    &a.principal,
                    &a.host,
                )
            })
        })
        .collect();
    acls.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    Ok(acls)
}

/// Deletes the ACLs matching `filter`; returns them.
pub(crate) fn delete_acls(
    client: &mut Client,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClientError> {
    let request = DeleteAclsRequest::default()
        .with_filters(vec![with_filter!(DeleteAclsFilter::default(), filter)]);
    let response = client.retry("DeleteAcls", |client| {
        client.call(Target::Any, &request, ACLS_VERSION)
    })?;
    let mut deleted = Vec::new();
    for result in &response.filter_results {
        ClientError::check_with(
            result.error_code,
            "DeleteAcls",
            result.error_message.as_deref(),
        )?;
        for m in &result.matching_acls {
            ClientError::check_with(m.error_code, "deleting an ACL", m.error_message.as_deref())?;
            deleted.push(binding(
                (
                    m.resource_type,
                    m.pattern_type,
                    m.operation,
                    m.permission_type,
                ),
                &m.resource_name,
                &m.principal,
                &m.host,
            ));
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kafka_codes() {
        assert_eq!(code_of(OPERATIONS, "describe-configs"), Some(10));
        assert_eq!(code_of(RESOURCE_TYPES, "transactional_id"), Some(5));
        assert_eq!(code_of(PERMISSIONS, "allow"), Some(3));
        assert_eq!(code_of(OPERATIONS, "fly"), None);
        assert_eq!(name_of(PATTERN_TYPES, 4), "PREFIXED");
        assert_eq!(name_of(PATTERN_TYPES, 9), "UNKNOWN");
    }
}
