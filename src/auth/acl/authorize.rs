//! `Authorizer::authorize`: super users are allowed everything; otherwise a matching DENY wins,
//! then a matching ALLOW (with Kafka's implications), then, when no ACL at all covers the
//! resource, `allow_everyone_if_no_acl_found`; else denied.

use std::net::IpAddr;

use super::{AclBinding, Operation, Permission, ResourceType, WILDCARD};

/// Why a request was allowed or denied (logged with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    SuperUser,
    AllowedByAcl,
    /// No ACL covers the resource and `allow_everyone_if_no_acl_found` is on.
    NoAclFound,
    DeniedByAcl,
    /// No ALLOW of this principal, host and operation.
    NoMatchingAllow,
}

impl Decision {
    pub(crate) fn is_allowed(self) -> bool {
        matches!(
            self,
            Decision::SuperUser | Decision::AllowedByAcl | Decision::NoAclFound
        )
    }
}

/// The ACLs and settings one decision is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authorizer<'a> {
    pub(crate) bindings: &'a [AclBinding],
    pub(crate) super_users: &'a [String],
    pub(crate) allow_everyone_if_no_acl_found: bool,
}

impl Authorizer<'_> {
    /// May `principal` (`User:name`) from `host` do `operation` to the resource?
    pub(crate) fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        if self.super_users.iter().any(|s| s == principal) {
            return Decision::SuperUser;
        }
        let host = host.to_string();
        let mut covered = false;
        let mut allowed = false;
        for binding in self
            .bindings
            .iter()
            .filter(|b| b.covers(resource_type, resource_name))
        {
            covered = true;
            let applies = (binding.principal == principal || is_any_user(&binding.principal))
                && (binding.host == WILDCARD || binding.host == host);
            if !applies {
                continue;
            }
            match binding.permission {
                // A DENY of All or of exactly this operation (no implications for denials).
                Permission::Deny
                    if binding.operation == Operation::All || binding.operation == operation =>
                {
                    return Decision::DeniedByAcl;
                }
                Permission::Deny => {}
                Permission::Allow => allowed |= binding.operation.implies(operation),
            }
        }
        if allowed {
            Decision::AllowedByAcl
        } else if !covered && self.allow_everyone_if_no_acl_found {
            Decision::NoAclFound
        } else {
            Decision::NoMatchingAllow
        }
    }
}

impl Authorizer<'_> {
    /// May `principal` do `operation` to some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, KIP-679)? Yes for a super user, for an ALLOW (with
    /// implications) not cancelled by a DENY on every name (`*` literal, or an empty prefix),
    /// and, with `allow_everyone_if_no_acl_found`, when no ACL of the type exists.
    pub(crate) fn authorize_any(
        &self,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let host = host.to_string();
        let applies = |b: &&AclBinding| {
            b.resource_type == resource_type
                && (b.principal == principal || is_any_user(&b.principal))
                && (b.host == WILDCARD || b.host == host)
        };
        let denied_everywhere = self.bindings.iter().filter(applies).any(|b| {
            b.permission == Permission::Deny
                && (b.operation == Operation::All || b.operation == operation)
                && match b.pattern_type {
                    super::PatternType::Literal => b.resource_name == WILDCARD,
                    super::PatternType::Prefixed => b.resource_name.is_empty(),
                }
        });
        if denied_everywhere {
            return false;
        }
        let allowed = self
            .bindings
            .iter()
            .filter(applies)
            .any(|b| b.permission == Permission::Allow && b.operation.implies(operation));
        allowed
            || (self.allow_everyone_if_no_acl_found
                && !self
                    .bindings
                    .iter()
                    .any(|b| b.resource_type == resource_type))
    }
}

/// `User:*`: every principal of type User.
fn is_any_user(principal: &str) -> bool {
    principal == "User:*"
}
