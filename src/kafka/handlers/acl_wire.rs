//! What DescribeAcls, CreateAcls and DeleteAcls share: a wire filter as a `BindingFilter`
//! (or why it selects nothing or is invalid) and a wire creation as an `AclBinding`.

use kafka_protocol::messages::create_acls_request::AclCreation;

use crate::auth::acl::{
    AclBinding, BindingFilter, CLUSTER_NAME, Operation, PatternFilter, PatternType, Permission,
    ResourceType,
};

/// The codes "any" takes in a filter.
const ANY: i8 = 1;
/// Resource types Kafka has and Tidelog stores no ACL of (DelegationToken, User).
const UNSTORED_RESOURCE_TYPES: [i8; 2] = [6, 7];
/// Operations Kafka has and Tidelog stores no ACL of (CreateTokens, DescribeTokens).
const UNSTORED_OPERATIONS: [i8; 2] = [13, 14];

/// A filter as the wire gives it.
pub(super) struct WireFilter<'a> {
    pub(super) resource_type: i8,
    pub(super) resource_name: Option<&'a str>,
    pub(super) pattern_type: i8,
    pub(super) principal: Option<&'a str>,
    pub(super) host: Option<&'a str>,
    pub(super) operation: i8,
    pub(super) permission: i8,
}

/// What a wire filter is.
pub(super) enum Filter {
    Matching(BindingFilter),
    /// Valid, but about ACLs Tidelog never stores.
    Nothing,
}

pub(super) fn filter(wire: &WireFilter<'_>) -> Result<Filter, String> {
    let resource_type = match wire.resource_type {
        ANY => None,
        code if UNSTORED_RESOURCE_TYPES.contains(&code) => return Ok(Filter::Nothing),
        code => Some(
            ResourceType::from_code(code).ok_or_else(|| format!("unknown resource type {code}"))?,
        ),
    };
    let pattern = PatternFilter::from_code(wire.pattern_type)
        .ok_or_else(|| format!("unknown pattern type filter {}", wire.pattern_type))?;
    let operation = match wire.operation {
        ANY => None,
        code if UNSTORED_OPERATIONS.contains(&code) => return Ok(Filter::Nothing),
        code => {
            Some(Operation::from_code(code).ok_or_else(|| format!("unknown operation {code}"))?)
        }
    };
    let permission = match wire.permission {
        ANY => None,
        code => Some(
            Permission::from_code(code).ok_or_else(|| format!("unknown permission type {code}"))?,
        ),
    };
    Ok(Filter::Matching(BindingFilter {
        resource_type,
        resource_name: wire.resource_name.map(str::to_owned),
        pattern,
        principal: wire.principal.map(str::to_owned),
        host: wire.host.map(str::to_owned),
        operation,
        permission,
    }))
}

/// A creation as a binding, checked as Kafka's `AclControlManager` checks a new ACL.
pub(super) fn binding(creation: &AclCreation) -> Result<AclBinding, String> {
    let resource_type = ResourceType::from_code(creation.resource_type)
        .ok_or_else(|| format!("invalid resource type {}", creation.resource_type))?;
    let pattern_type = PatternType::from_code(creation.resource_pattern_type)
        .ok_or_else(|| format!("invalid pattern type {}", creation.resource_pattern_type))?;
    let operation = Operation::from_code(creation.operation)
        .ok_or_else(|| format!("invalid operation {}", creation.operation))?;
    let permission = Permission::from_code(creation.permission_type)
        .ok_or_else(|| format!("invalid permission type {}", creation.permission_type))?;
    let name = creation.resource_name.as_str();
    if name.is_empty() {
        return Err("the resource name must not be empty".to_owned());
    }
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
    }
    let principal = creation.principal.as_str();
    if !principal
        .split_once(':')
        .is_some_and(|(kind, who)| !kind.is_empty() && !who.is_empty())
    {
        return Err(format!(
            "invalid principal {principal:?}: expected Type:name"
        ));
    }
    if creation.host.is_empty() {
        return Err("the host must be an address or *".to_owned());
    }
    Ok(AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: creation.host.to_string(),
        operation,
        permission,
    })
}
