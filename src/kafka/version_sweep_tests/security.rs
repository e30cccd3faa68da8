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
