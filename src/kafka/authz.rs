//! Authorization of requests (and, beside it, metering a client's quota) (when `authorization.enabled`): the connection's principal and
//! host against the broker's ACLs, with one log line per decision (denials at info, the rest at
//! debug). Handlers ask per resource, as Kafka's `KafkaApis` does, and answer a denial with
//! the matching *_AUTHORIZATION_FAILED code.

use crate::auth::acl::{Authorizer, CLUSTER_NAME, Operation, ResourceType};

use super::Context;

/// Who is never checked and what an uncovered resource means.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthorizationPolicy {
    pub(crate) super_users: Vec<String>,
    pub(crate) allow_everyone_if_no_acl_found: bool,
}

impl Context {
    /// May this connection's principal do `operation` to the resource? Always with
    /// authorization off.
    pub(crate) fn allowed(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some((principal, decision)) = self.with_authorizer(|authorizer, principal| {
            authorizer.authorize(principal, self.peer.ip(), operation, resource_type, name)
        }) else {
            return true;
        };
        if decision.is_allowed() {
            tracing::debug!(
                %principal,
                host = %self.peer.ip(),
                ?operation,
                resource_type = resource_type.name(),
                resource = name,
                ?decision,
                "authorized"
            );
        } else {
            tracing::info!(
                %principal,
                host = %self.peer.ip(),
                ?operation,
                resource_type = resource_type.name(),
                resource = name,
                ?decision,
                "authorization denied"
            );
        }
        decision.is_allowed()
    }

    /// May the principal do `operation` to some topic (Kafka's `authorizeByResourceType`)?
    pub(crate) fn allowed_on_any_topic(&self, operation: Operation) -> bool {
        let Some((principal, allowed)) = self.with_authorizer(|authorizer, principal| {
            authorizer.authorize_any(principal, self.peer.ip(), operation, ResourceType::Topic)
        }) else {
            return true;
        };
        tracing::debug!(%principal, ?operation, allowed, "authorized on some topic");
        allowed
    }

    /// Runs `decide` with the authorizer and this connection's principal; `None` with
    /// authorization off.
    fn with_authorizer<T>(
        &self,
        decide: impl FnOnce(&Authorizer<'_>, &str) -> T,
    ) -> Option<(String, T)> {
        let policy = self.settings.authorization.as_ref()?;
        let principal = self.principal().to_string();
        let bindings = self.broker.acl_bindings();
        let authorizer = Authorizer {
            bindings: &bindings,
            super_users: &policy.super_users,
            allow_everyone_if_no_acl_found: policy.allow_everyone_if_no_acl_found,
        };
        let outcome = decide(&authorizer, &principal);
        Some((principal, outcome))
    }

    /// [`Context::allowed`] on the cluster resource.
    pub(crate) fn allowed_on_cluster(&self, operation: Operation) -> bool {
        self.allowed(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// [`Context::allowed`] on a topic.
    pub(crate) fn allowed_on_topic(&self, operation: Operation, topic: &str) -> bool {
        self.allowed(operation, ResourceType::Topic, topic)
    }

    /// [`Context::allowed`] on a group.
    pub(crate) fn allowed_on_group(&self, operation: Operation, group: &str) -> bool {
        self.allowed(operation, ResourceType::Group, group)
    }

    /// [`Context::allowed`] on a transactional id.
    pub(crate) fn allowed_on_transactional_id(&self, operation: Operation, id: &str) -> bool {
        self.allowed(operation, ResourceType::TransactionalId, id)
    }

    /// Meters `amount` against this client's quota (by principal name and client id); returns
    /// the throttle time in ms.
    pub(crate) fn meter_quota(&self, metered: crate::broker::Metered, amount: usize) -> u64 {
        self.meter_quota_f64(metered, amount as f64)
    }

    /// [`Context::meter_quota`] of an amount that is not a count (request time).
    pub(crate) fn meter_quota_f64(&self, metered: crate::broker::Metered, amount: f64) -> u64 {
        if !self.broker.has_quota(metered) {
            // The common case: no quota of this kind, so nothing to name or meter.
            return 0;
        }
        let principal = self.principal().to_string();
        let user = principal.strip_prefix("User:").unwrap_or(&principal);
        self.broker.meter_quota(
            user,
            &self.client_id,
            metered,
            amount,
            crate::broker::now_ms(),
        )
    }

    /// Whether authorization is on (some answers differ: Metadata leaves topics out).
    pub(crate) fn authorizes(&self) -> bool {
        self.settings.authorization.is_some()
    }
}
