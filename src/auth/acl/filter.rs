//! The binding filters of DescribeAcls and DeleteAcls (Kafka `AclBindingFilter`): every field
//! may be "any"; a pattern filter of MATCH selects the bindings that would apply to one name.

use super::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// Which pattern types a filter selects (Kafka `PatternType` of a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternFilter {
    Any,
    /// Bindings that apply to the filter's name: literal equal or `*`, prefixed a prefix of it.
    Match,
    Exactly(PatternType),
}

impl PatternFilter {
    /// The filter of a wire code: 1 ANY, 2 MATCH, 3 LITERAL, 4 PREFIXED.
    pub(crate) fn from_code(code: i8) -> Option<PatternFilter> {
        match code {
            1 => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            other => PatternType::from_code(other).map(PatternFilter::Exactly),
        }
    }
}

/// A filter: `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindingFilter {
    pub(crate) resource_type: Option<ResourceType>,
    pub(crate) resource_name: Option<String>,
    pub(crate) pattern: PatternFilter,
    pub(crate) principal: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) operation: Option<Operation>,
    pub(crate) permission: Option<Permission>,
}

impl BindingFilter {
    pub(crate) fn matches(&self, binding: &AclBinding) -> bool {
        let field =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        self.resource_type
            .is_none_or(|t| t == binding.resource_type)
            && self.matches_pattern(binding)
            && field(&self.principal, &binding.principal)
            && field(&self.host, &binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        let Some(name) = self.resource_name.as_deref() else {
            return match self.pattern {
                PatternFilter::Any | PatternFilter::Match => true,
                PatternFilter::Exactly(pattern) => pattern == binding.pattern_type,
            };
        };
        match self.pattern {
            PatternFilter::Any => binding.resource_name == name,
            PatternFilter::Exactly(pattern) => {
                pattern == binding.pattern_type && binding.resource_name == name
            }
            PatternFilter::Match => match binding.pattern_type {
                PatternType::Literal => {
                    binding.resource_name == name || binding.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&binding.resource_name),
            },
        }
    }
}
