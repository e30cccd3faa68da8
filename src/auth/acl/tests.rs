//! Table-driven tests of the authorizer and the binding filters: every operation against
//! every kind of ACL (implications included), literal, wildcard and prefixed patterns, DENY
//! winning, hosts, `User:*`, super users and `allow_everyone_if_no_acl_found`.

use std::net::IpAddr;

use super::authorize::Decision;
use super::filter::PatternFilter;
use super::*;

const ALICE: &str = "User:alice";
const HOST: &str = "10.0.0.1";

fn host() -> IpAddr {
    HOST.parse().expect("test ip")
}

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: host.to_owned(),
        operation,
        permission,
    }
}

fn allow_topic(name: &str, pattern: PatternType, operation: Operation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        pattern,
        ALICE,
        "*",
        operation,
        Permission::Allow,
    )
}

fn decide(bindings: &[AclBinding], operation: Operation, topic: &str) -> bool {
    Authorizer {
        bindings,
        super_users: &[],
        allow_everyone_if_no_acl_found: false,
    }
    .authorize(ALICE, host(), operation, ResourceType::Topic, topic)
    .is_allowed()
}

#[test]
fn every_allowed_operation_allows_itself_all_and_its_implications_only() {
    for granted in Operation::ALL {
        let bindings = [allow_topic("t", PatternType::Literal, granted)];
        for wanted in Operation::ALL.into_iter().filter(|o| *o != Operation::All) {
            let expected = granted == Operation::All
                || granted == wanted
                || (wanted == Operation::Describe
                    && matches!(
                        granted,
                        Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                    ))
                || (wanted == Operation::DescribeConfigs && granted == Operation::AlterConfigs);
            assert_eq!(
                decide(&bindings, wanted, "t"),
                expected,
                "{granted:?} granted, {wanted:?} wanted"
            );
        }
    }
}

#[test]
fn patterns_match_literal_wildcard_and_prefixed_names() {
    let cases = [
        ("orders", PatternType::Literal, "orders", true),
        ("orders", PatternType::Literal, "orders-eu", false),
        ("*", PatternType::Literal, "anything", true),
        ("ord", PatternType::Prefixed, "orders", true),
        ("ord", PatternType::Prefixed, "or", false),
        ("*", PatternType::Prefixed, "anything", false),
        ("", PatternType::Prefixed, "anything", true),
    ];
    for (acl_name, pattern, topic, expected) in cases {
        let bindings = [allow_topic(acl_name, pattern, Operation::Read)];
        assert_eq!(
            decide(&bindings, Operation::Read, topic),
            expected,
            "{pattern:?} {acl_name:?} vs {topic:?}"
        );
    }
}

#[test]
fn a_deny_wins_over_any_allow_and_is_not_implied() {
    let deny = |operation| {
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Prefixed,
            ALICE,
            "*",
            operation,
            Permission::Deny,
        )
    };
    let allow_all = allow_topic("t", PatternType::Literal, Operation::All);
    assert!(!decide(
        &[allow_all.clone(), deny(Operation::Read)],
        Operation::Read,
        "t"
    ));
    assert!(!decide(
        &[allow_all.clone(), deny(Operation::All)],
        Operation::Describe,
        "t"
    ));
    // Denying Read does not deny Describe (Kafka implies only allows).
    assert!(decide(
        &[allow_all, deny(Operation::Read)],
        Operation::Describe,
        "t"
    ));
}

#[test]
fn principals_hosts_and_other_resource_types_must_match() {
    let for_principal = |principal: &str, host: &str| {
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            principal,
            host,
            Operation::Read,
            Permission::Allow,
        )
    };
    assert!(decide(
        &[for_principal("User:*", "*")],
        Operation::Read,
        "t"
    ));
    assert!(decide(&[for_principal(ALICE, HOST)], Operation::Read, "t"));
    assert!(!decide(
        &[for_principal(ALICE, "10.0.0.2")],
        Operation::Read,
        "t"
    ));
    assert!(!decide(
        &[for_principal("User:bob", "*")],
        Operation::Read,
        "t"
    ));
    let group = acl(
        ResourceType::Group,
        "t",
        PatternType::Literal,
        ALICE,
        "*",
        Operation::Read,
        Permission::Allow,
    );
    assert!(!decide(&[group], Operation::Read, "t"));
}

#[test]
fn super_users_and_no_acl_found_allow() {
    let others = [allow_topic("other", PatternType::Literal, Operation::Read)];
    let authorizer = |super_users: &[String], allow_everyone| {
        Authorizer {
            bindings: &others,
            super_users,
            allow_everyone_if_no_acl_found: allow_everyone,
        }
        .authorize(ALICE, host(), Operation::Write, ResourceType::Topic, "t")
    };
    assert_eq!(authorizer(&[], false), Decision::NoMatchingAllow);
    assert_eq!(authorizer(&[], true), Decision::NoAclFound);
    assert_eq!(authorizer(&[ALICE.to_owned()], false), Decision::SuperUser);
    // An ACL covering the resource (even for someone else) turns the no-ACL rule off.
    let bob_only = [acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        "User:bob",
        "*",
        Operation::Write,
        Permission::Allow,
    )];
    let decision = Authorizer {
        bindings: &bob_only,
        super_users: &[],
        allow_everyone_if_no_acl_found: true,
    }
    .authorize(ALICE, host(), Operation::Write, ResourceType::Topic, "t");
    assert_eq!(decision, Decision::NoMatchingAllow);
}

#[test]
fn filters_select_by_every_field_and_match_resolves_patterns() {
    let bindings = [
        allow_topic("orders", PatternType::Literal, Operation::Read),
        allow_topic("ord", PatternType::Prefixed, Operation::Write),
        allow_topic("*", PatternType::Literal, Operation::Describe),
        acl(
            ResourceType::Group,
            "orders",
            PatternType::Literal,
            "User:bob",
            "*",
            Operation::Read,
            Permission::Deny,
        ),
    ];
    let any = BindingFilter {
        resource_type: None,
        resource_name: None,
        pattern: PatternFilter::Any,
        principal: None,
        host: None,
        operation: None,
        permission: None,
    };
    let count = |filter: &BindingFilter| bindings.iter().filter(|b| filter.matches(b)).count();
    assert_eq!(count(&any), 4);
    let named = |pattern| BindingFilter {
        resource_type: Some(ResourceType::Topic),
        resource_name: Some("orders".to_owned()),
        pattern,
        ..any.clone()
    };
    assert_eq!(count(&named(PatternFilter::Any)), 1);
    assert_eq!(count(&named(PatternFilter::Match)), 3);
    assert_eq!(
        count(&named(PatternFilter::Exactly(PatternType::Prefixed))),
        0
    );
    assert_eq!(
        count(&named(PatternFilter::Exactly(PatternType::Literal))),
        1
    );
    let by_principal = BindingFilter {
        principal: Some("User:bob".to_owned()),
        permission: Some(Permission::Deny),
        ..any.clone()
    };
    assert_eq!(count(&by_principal), 1);
    assert_eq!(
        count(&BindingFilter {
            operation: Some(Operation::Write),
            ..any
        }),
        1
    );
}

#[test]
fn wire_codes_round_trip() {
    for operation in Operation::ALL {
        assert_eq!(Operation::from_code(operation.code()), Some(operation));
    }
    assert_eq!(Operation::from_code(0), None);
    assert_eq!(Operation::from_code(1), None, "ANY is a filter value only");
    for code in 2..=5 {
        assert_eq!(
            ResourceType::from_code(code).map(ResourceType::code),
            Some(code)
        );
    }
    assert_eq!(PatternFilter::from_code(2), Some(PatternFilter::Match));
    assert_eq!(
        PatternType::from_code(2),
        None,
        "MATCH is a filter value only"
    );
}

#[test]
fn some_topic_is_allowed_unless_denied_on_every_name() {
    let any = |bindings: &[AclBinding], allow_everyone| {
        Authorizer {
            bindings,
            super_users: &[],
            allow_everyone_if_no_acl_found: allow_everyone,
        }
        .authorize_any(ALICE, host(), Operation::Write, ResourceType::Topic)
    };
    let write_orders = allow_topic("orders", PatternType::Prefixed, Operation::Write);
    assert!(any(std::slice::from_ref(&write_orders), false));
    assert!(!any(&[], false));
    assert!(any(&[], true));
    assert!(!any(
        &[allow_topic("t", PatternType::Literal, Operation::Read)],
        false
    ));
    let deny_all = acl(
        ResourceType::Topic,
        "*",
        PatternType::Literal,
        "User:*",
        "*",
        Operation::Write,
        Permission::Deny,
    );
    assert!(!any(&[write_orders.clone(), deny_all], false));
    // A deny of one name leaves the others.
    let deny_one = acl(
        ResourceType::Topic,
        "orders-eu",
        PatternType::Literal,
        ALICE,
        "*",
        Operation::Write,
        Permission::Deny,
    );
    assert!(any(&[write_orders, deny_one], false));
}
