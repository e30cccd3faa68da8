//! SASL authentication of a new connection (SaslHandshake v1, then SaslAuthenticate v2 tokens)
//! with PLAIN or SCRAM-SHA-256/512; the mechanisms themselves are `auth::sasl`'s.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::connection::Connection;
use super::error::ClientError;
use crate::auth::sasl::{Mechanism, ScramClient, plain_token};

const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 2;

/// Who the client authenticates as.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SaslSettings {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub(crate) mechanism: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Runs the whole exchange on `connection`; fails naming the broker's answer.
pub(crate) fn authenticate(
    connection: &mut Connection,
    sasl: &SaslSettings,
) -> Result<(), ClientError> {
    let mechanism = Mechanism::parse(&sasl.mechanism).ok_or_else(|| {
        ClientError::Invalid(format!(
            "SASL mechanism {} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
            sasl.mechanism
        ))
    })?;
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism.name()));
    let response = connection.call(&handshake, SASL_HANDSHAKE_VERSION)?;
    let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
    ClientError::check_with(
        response.error_code,
        format!("SASL {mechanism} handshake"),
        Some(&format!("the listener offers {}", offered.join(", "))),
    )?;
    match mechanism.scram_hash() {
        None => {
            send(connection, plain_token(&sasl.username, &sasl.password))?;
            Ok(())
        }
        Some(hash) => {
            let mut nonce = [0u8; 24];
            getrandom::fill(&mut nonce)
                .map_err(|e| ClientError::Invalid(format!("no randomness for the nonce: {e}")))?;
            let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
            let mut scram = ScramClient::new(hash, &sasl.username, &sasl.password, nonce);
            let server_first = send(connection, scram.client_first().into_bytes())?;
            let client_final = scram.client_final(&server_first).map_err(|e| failed(&e))?;
            let server_final = send(connection, client_final.into_bytes())?;
            scram.verify(&server_final).map_err(|e| failed(&e))
        }
    }
}

fn failed(error: &crate::auth::sasl::Failure) -> ClientError {
    ClientError::protocol(format!("SASL authentication: {error}"))
}

/// One SaslAuthenticate round trip: our token out, the server's back.
fn send(connection: &mut Connection, token: Vec<u8>) -> Result<Bytes, ClientError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let response = connection.call(&request, SASL_AUTHENTICATE_VERSION)?;
    ClientError::check_with(
        response.error_code,
        "SASL authentication",
        response.error_message.as_deref(),
    )?;
    Ok(response.auth_bytes)
}
