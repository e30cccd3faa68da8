//! Sweep of the SASL and SCRAM user APIs: a handshake and a PLAIN authentication on a SASL
//! listener's context, and users created, described and deleted over the wire.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey};

use super::{NONE, Sweep, exactly, text};
use crate::auth::sasl::Mechanism;
use crate::kafka::SaslPolicy;

fn policy() -> SaslPolicy {
    SaslPolicy {
        mechanisms: Mechanism::ALL.to_vec(),
        max_reauth: Some(Duration::from_secs(60)),
        failed_delay: Duration::ZERO,
        authentication_timeout: Duration::from_secs(10),
    }
}

/// Runs `calls` on a fresh connection of a SASL listener, then returns to the plain one.
async fn on_sasl_listener<T>(sweep: &mut Sweep, calls: impl AsyncFnOnce(&mut Sweep) -> T) -> T {
    let sasl = sweep.ctx.clone().with_sasl(Some(policy()));
    let plain = std::mem::replace(&mut sweep.ctx, sasl);
    let result = calls(sweep).await;
    sweep.ctx = plain;
    result
}

async fn create_user(sweep: &mut Sweep, name: &str, password: &[u8]) {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, b"sweep-salt", 4096, &mut salted);
    let request = messages::AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        messages::alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(text(name))
            .with_mechanism(1)
            .with_iterations(4096)
            .with_salt(Bytes::from_static(b"sweep-salt"))
            .with_salted_password(Bytes::copy_from_slice(&salted)),
    ]);
    let response: messages::AlterUserScramCredentialsResponse = sweep
        .call(ApiKey::AlterUserScramCredentials, 0, &request)
        .await;
    let [result] = exactly(&response.results, "create user");
    assert_eq!(result.error_code, NONE, "create user {name}");
}

pub(super) async fn sasl_handshake(sweep: &mut Sweep, version: i16) {
    let at = format!("SaslHandshake v{version}");
    let response: messages::SaslHandshakeResponse = on_sasl_listener(sweep, async |sweep| {
        let request = messages::SaslHandshakeRequest::default().with_mechanism(text("PLAIN"));
        sweep.call(ApiKey::SaslHandshake, version, &request).await
    })
    .await;
    assert_eq!(response.error_code, NONE, "{at}");
    let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], "{at}");
    // Without SASL on the listener, a handshake is out of place.
    let request = messages::SaslHandshakeRequest::default().with_mechanism(text("PLAIN"));
    let response: messages::SaslHandshakeResponse =
        sweep.call(ApiKey::SaslHandshake, version, &request).await;
    assert_eq!(
        response.error_code,
        ResponseError::IllegalSaslState.code(),
        "{at}"
    );
}

pub(super) async fn sasl_authenticate(sweep: &mut Sweep, version: i16) {
    let at = format!("SaslAuthenticate v{version}");
    let user = format!("sweep-auth-v{version}");
    create_user(sweep, &user, b"pw").await;
    let response: messages::SaslAuthenticateResponse = on_sasl_listener(sweep, async |sweep| {
        let handshake = messages::SaslHandshakeRequest::default().with_mechanism(text("PLAIN"));
        let shaken: messages::SaslHandshakeResponse =
            sweep.call(ApiKey::SaslHandshake, 1, &handshake).await;
        assert_eq!(shaken.error_code, NONE);
        let token = format!("\0{user}\0pw");
        let request = messages::SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(token.into_bytes()));
        sweep
            .call(ApiKey::SaslAuthenticate, version, &request)
            .await
    })
    .await;
    assert_eq!(
        response.error_code, NONE,
        "{at}: {:?}",
        response.error_message
    );
    if version >= 1 {
        assert_eq!(response.session_lifetime_ms, 60_000, "{at}");
    }
}

pub(super) async fn describe_user_scram_credentials(sweep: &mut Sweep, version: i16) {
    let at = format!("DescribeUserScramCredentials v{version}");
    create_user(sweep, "sweep-described", b"pw").await;
    let request = messages::DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
        messages::describe_user_scram_credentials_request::UserName::default()
            .with_name(text("sweep-described")),
        messages::describe_user_scram_credentials_request::UserName::default()
            .with_name(text("nobody")),
    ]));
    let response: messages::DescribeUserScramCredentialsResponse = sweep
        .call(ApiKey::DescribeUserScramCredentials, version, &request)
        .await;
    assert_eq!(response.error_code, NONE, "{at}");
    let [described, nobody] = exactly(&response.results, &at);
    assert_eq!(described.error_code, NONE, "{at}");
    let [info] = exactly(&described.credential_infos, &at);
    assert_eq!((info.mechanism, info.iterations), (1, 4096), "{at}");
    assert_eq!(
        nobody.error_code,
        ResponseError::ResourceNotFound.code(),
        "{at}"
    );
}

pub(super) async fn alter_user_scram_credentials(sweep: &mut Sweep, version: i16) {
    let at = format!("AlterUserScramCredentials v{version}");
    create_user(sweep, "sweep-altered", b"pw").await;
    let request = messages::AlterUserScramCredentialsRequest::default()
        .with_deletions(vec![
            messages::alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                .with_name(text("sweep-altered"))
                .with_mechanism(1),
            messages::alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                .with_name(text("nobody"))
                .with_mechanism(2),
        ])
        .with_upsertions(vec![
            messages::alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                .with_name(text("too-few"))
                .with_mechanism(2)
                .with_iterations(100)
                .with_salt(Bytes::from_static(b"s"))
                .with_salted_password(Bytes::from(vec![0u8; 64])),
        ]);
    let response: messages::AlterUserScramCredentialsResponse = sweep
        .call(ApiKey::AlterUserScramCredentials, version, &request)
        .await;
    let codes: Vec<(&str, i16)> = response
        .results
        .iter()
        .map(|r| (r.user.as_str(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("sweep-altered", NONE),
            ("nobody", ResponseError::ResourceNotFound.code()),
            ("too-few", ResponseError::UnacceptableCredential.code()),
        ],
        "{at}"
    );
}

fn creation(principal: &str, operation: i8) -> messages::create_acls_request::AclCreation {
    messages::create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(text("sweep-acl"))
        .with_resource_pattern_type(4)
        .with_principal(text(principal))
        .with_host(text("*"))
        .with_operation(operation)
        .with_permission_type(3)
}

pub(super) async fn create_acls(sweep: &mut Sweep, version: i16) {
    let at = format!("CreateAcls v{version}");
    let principal = format!("User:create-v{version}");
    let request = messages::CreateAclsRequest::default().with_creations(vec![
        creation(&principal, 3),
        // ANY is a filter value, never an ACL's operation.
        creation(&principal, 1),
    ]);
    let response: messages::CreateAclsResponse =
        sweep.call(ApiKey::CreateAcls, version, &request).await;
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [NONE, ResponseError::InvalidRequest.code()], "{at}");
}

fn filter_for(principal: &str) -> messages::DescribeAclsRequest {
    messages::DescribeAclsRequest::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(text("sweep-acl-topic")))
        .with_pattern_type_filter(2)
        .with_principal_filter(Some(text(principal)))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

pub(super) async fn describe_acls(sweep: &mut Sweep, version: i16) {
    let at = format!("DescribeAcls v{version}");
    let principal = format!("User:describe-v{version}");
    let request =
        messages::CreateAclsRequest::default().with_creations(vec![creation(&principal, 4)]);
    let _: messages::CreateAclsResponse = sweep.call(ApiKey::CreateAcls, 1, &request).await;
    // MATCH on the name `sweep-acl-topic` finds the PREFIXED `sweep-acl` ACL.
    let response: messages::DescribeAclsResponse = sweep
        .call(ApiKey::DescribeAcls, version, &filter_for(&principal))
        .await;
    assert_eq!(response.error_code, NONE, "{at}");
    let [resource] = exactly(&response.resources, &at);
    assert_eq!(
        (resource.resource_name.as_str(), resource.pattern_type),
        ("sweep-acl", 4),
        "{at}"
    );
    let [acl] = exactly(&resource.acls, &at);
    assert_eq!((acl.operation, acl.permission_type), (4, 3), "{at}");
}

pub(super) async fn delete_acls(sweep: &mut Sweep, version: i16) {
    let at = format!("DeleteAcls v{version}");
    let principal = format!("User:delete-v{version}");
    let request = messages::CreateAclsRequest::default()
        .with_creations(vec![creation(&principal, 6), creation(&principal, 7)]);
    let _: messages::CreateAclsResponse = sweep.call(ApiKey::CreateAcls, 1, &request).await;
    let filter = filter_for(&principal);
    let request = messages::DeleteAclsRequest::default().with_filters(vec![
        messages::delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(filter.resource_type_filter)
            .with_resource_name_filter(filter.resource_name_filter)
            .with_pattern_type_filter(filter.pattern_type_filter)
            .with_principal_filter(filter.principal_filter)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    ]);
    let response: messages::DeleteAclsResponse =
        sweep.call(ApiKey::DeleteAcls, version, &request).await;
    let [result] = exactly(&response.filter_results, &at);
    assert_eq!(result.error_code, NONE, "{at}");
    assert_eq!(result.matching_acls.len(), 2, "{at}");
    let left: messages::DescribeAclsResponse = sweep
        .call(ApiKey::DescribeAcls, 1, &filter_for(&principal))
        .await;
    assert!(left.resources.is_empty(), "{at}");
}

fn quota_entry(
    user: Option<&str>,
    key: &str,
    value: f64,
) -> messages::alter_client_quotas_request::EntryData {
    messages::alter_client_quotas_request::EntryData::default()
        .with_entity(vec![
            messages::alter_client_quotas_request::EntityData::default()
                .with_entity_type(text("user"))
                .with_entity_name(user.map(text)),
        ])
        .with_ops(vec![
            messages::alter_client_quotas_request::OpData::default()
                .with_key(text(key))
                .with_value(value),
        ])
}

pub(super) async fn alter_client_quotas(sweep: &mut Sweep, version: i16) {
    let at = format!("AlterClientQuotas v{version}");
    let user = format!("quota-alter-v{version}");
    let request = messages::AlterClientQuotasRequest::default().with_entries(vec![
        quota_entry(Some(&user), "producer_byte_rate", 1024.0),
        quota_entry(Some(&user), "request_percentage", 50.0),
        quota_entry(Some(&user), "controller_mutation_rate", 10.0),
    ]);
    let response: messages::AlterClientQuotasResponse = sweep
        .call(ApiKey::AlterClientQuotas, version, &request)
        .await;
    let codes: Vec<i16> = response.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        [NONE, NONE, ResponseError::InvalidRequest.code()],
        "{at}"
    );
}

pub(super) async fn describe_client_quotas(sweep: &mut Sweep, version: i16) {
    let at = format!("DescribeClientQuotas v{version}");
    let user = format!("quota-describe-v{version}");
    let request = messages::AlterClientQuotasRequest::default().with_entries(vec![quota_entry(
        Some(&user),
        "consumer_byte_rate",
        2048.0,
    )]);
    let altered: messages::AlterClientQuotasResponse =
        sweep.call(ApiKey::AlterClientQuotas, 1, &request).await;
    assert_eq!(
        altered.entries[0].error_code, NONE,
        "{at}: {:?}",
        altered.entries[0].error_message
    );
    let request = messages::DescribeClientQuotasRequest::default()
        .with_components(vec![
            messages::describe_client_quotas_request::ComponentData::default()
                .with_entity_type(text("user"))
                .with_match_type(0)
                .with_match(Some(text(&user))),
        ])
        .with_strict(true);
    let response: messages::DescribeClientQuotasResponse = sweep
        .call(ApiKey::DescribeClientQuotas, version, &request)
        .await;
    assert_eq!(response.error_code, NONE, "{at}");
    let entries = response.entries.unwrap_or_default();
    let [entry] = exactly(&entries, &at);
    let [value] = exactly(&entry.values, &at);
    assert_eq!(
        (value.key.as_str(), value.value),
        ("consumer_byte_rate", 2048.0),
        "{at}"
    );
}
