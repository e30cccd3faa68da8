//! SASL mechanisms of the broker (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) as pure state machines:
//! a server exchange takes the client's tokens one at a time (`step`) and looks credentials up
//! through [`Credentials`]; the client side (`client.rs`) serves the admin CLI; no sockets, no
//! Kafka types, no clock.
#![deny(clippy::indexing_slicing)]

mod client;
mod credential;
mod plain;
mod scram;

use std::fmt;

pub(crate) use client::{ScramClient, plain_token};
pub(crate) use credential::{
    ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, Secret, salted_password,
};
pub(crate) use plain::PlainServer;
pub(crate) use scram::ScramServer;

/// A SASL mechanism the broker can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// Every mechanism, in the order they are listed to clients.
    pub(crate) const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The IANA name (`SCRAM-SHA-256`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of an IANA name (exact, as Kafka matches it).
    pub(crate) fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM hash of a SCRAM mechanism.
    pub(crate) fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(ScramHash::Sha512),
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash function of a SCRAM mechanism; Kafka's `ScramMechanism` (1 = SHA-256, 2 = SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    /// Both hashes, SHA-256 first.
    pub(crate) const ALL: [ScramHash; 2] = [ScramHash::Sha256, ScramHash::Sha512];

    /// Kafka's wire code (`ScramMechanism` in Describe/AlterUserScramCredentials).
    pub(crate) fn code(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    /// The hash of a Kafka wire code; `None` for 0 (UNKNOWN) and anything else.
    pub(crate) fn from_code(code: i8) -> Option<ScramHash> {
        ScramHash::ALL.into_iter().find(|h| h.code() == code)
    }
}

/// Where an exchange finds a user's SCRAM credential (the broker's replicated user store).
pub(crate) trait Credentials {
    fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential>;
}

/// What one step of an exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this challenge and wait for the client's next token.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (possibly empty) and stop.
    Done { user: String, response: Vec<u8> },
}

/// Why an exchange failed. The message goes to the client; it never says whether the user
/// exists (Kafka answers an unknown user and a wrong password alike).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    #[error("invalid SASL token: {0}")]
    Malformed(&'static str),
    #[error("authentication failed: invalid credentials")]
    BadCredentials,
    #[error("authentication failed: {0}")]
    Refused(&'static str),
    #[error("the SASL exchange is already over")]
    Finished,
}

impl Failure {
    /// Whether the failure is about credentials (counted and delayed), not the token's shape.
    pub(crate) fn is_credentials(&self) -> bool {
        matches!(self, Failure::BadCredentials)
    }
}

/// One server side of a SASL exchange of any mechanism.
#[derive(Debug)]
pub(crate) enum Exchange {
    Plain(PlainServer),
    Scram(Box<ScramServer>),
}

impl Exchange {
    /// A new exchange of `mechanism`; `nonce` is the server's random nonce for SCRAM
    /// (printable, no comma; see [`scram::server_nonce`]).
    pub(crate) fn start(mechanism: Mechanism, nonce: String) -> Exchange {
        match mechanism.scram_hash() {
            None => Exchange::Plain(PlainServer::default()),
            Some(hash) => Exchange::Scram(Box::new(ScramServer::new(hash, nonce))),
        }
    }

    /// Takes the client's next token.
    pub(crate) fn step(
        &mut self,
        token: &[u8],
        credentials: &dyn Credentials,
    ) -> Result<Step, Failure> {
        match self {
            Exchange::Plain(plain) => plain.step(token, credentials),
            Exchange::Scram(scram) => scram.step(token, credentials),
        }
    }
}

/// A fresh server nonce: 24 random bytes, base64 (printable, never a comma).
pub(crate) fn server_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(credential::b64(&bytes))
}
