//! A connection's SASL session (KIP-43, KIP-152, KIP-368): which requests it may send yet, the
//! mechanism its handshake chose, the exchange in progress, who it authenticated as and until
//! when. One per connection; its requests are dispatched in order, so the lock is never
//! contended and never held across an await.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::time::Instant;

use crate::auth::Principal;
use crate::auth::sasl::{self, Credentials, Exchange, Mechanism, Step};

/// The SASL settings of a SASL listener.
#[derive(Debug, Clone)]
pub(crate) struct SaslPolicy {
    pub(crate) mechanisms: Vec<Mechanism>,
    /// KIP-368 `connections.max.reauth.ms`; `None`: sessions never expire.
    pub(crate) max_reauth: Option<Duration>,
    /// How long a failed authentication waits before it is answered and the connection closed.
    pub(crate) failed_delay: Duration,
    /// A connection not authenticated within this is closed.
    pub(crate) authentication_timeout: Duration,
}

/// Why a SASL request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a SASL listener, no handshake before, or a second handshake mid-exchange
    /// (ILLEGAL_SASL_STATE; the connection is closed).
    IllegalState(&'static str),
    /// The handshake named a mechanism this listener does not offer.
    UnsupportedMechanism,
    /// Authentication failed (SASL_AUTHENTICATION_FAILED; delayed, then the connection closed).
    Failed {
        message: String,
        /// Whether the credentials were wrong (counted as an authentication failure), rather
        /// than the token malformed.
        bad_credentials: bool,
    },
}

/// What a SaslAuthenticate step answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Authenticated {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Done: send this, with this session lifetime (0 = no expiry).
    Done {
        response: Vec<u8>,
        session_lifetime_ms: i64,
    },
}

#[derive(Debug)]
pub(crate) struct Session {
    /// `None` on listeners without SASL.
    policy: Option<SaslPolicy>,
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The mechanism of the last handshake, and whether it was v0 (raw tokens follow).
    handshake: Option<(Mechanism, bool)>,
    exchange: Option<Exchange>,
    /// The user name and mechanism of the last successful authentication.
    authenticated: Option<(String, Mechanism)>,
    expires_at: Option<Instant>,
}

impl Session {
    /// The session of a connection on a listener with (`Some`) or without SASL.
    pub(crate) fn new(policy: Option<SaslPolicy>) -> Session {
        Session {
            policy,
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The SASL settings, on a SASL listener.
    pub(crate) fn policy(&self) -> Option<&SaslPolicy> {
        self.policy.as_ref()
    }

    /// Whether `api` may be served now: everything without SASL; on a SASL listener only
    /// ApiVersions and the SASL APIs until authenticated, and again once the session expired.
    pub(crate) fn admits(&self, api: ApiKey) -> bool {
        if self.policy.is_none()
            || matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            return true;
        }
        let inner = self.lock();
        inner.authenticated.is_some() && inner.expires_at.is_none_or(|at| Instant::now() < at)
    }

    /// When this connection must have authenticated by, while it has not (yet).
    pub(crate) fn authentication_deadline(&self) -> Option<Instant> {
        let policy = self.policy.as_ref()?;
        let inner = self.lock();
        inner
            .authenticated
            .is_none()
            .then(|| self.started + policy.authentication_timeout)
    }

    /// The authenticated SASL user's principal, if any.
    pub(crate) fn principal(&self) -> Option<Principal> {
        self.lock()
            .authenticated
            .as_ref()
            .map(|(user, _)| Principal::user(user))
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake, KIP-43).
    pub(crate) fn expects_raw_token(&self) -> bool {
        self.lock().handshake.is_some_and(|(_, raw)| raw)
    }

    /// SaslHandshake: chooses the mechanism of the exchange to come (also to re-authenticate).
    pub(crate) fn handshake(&self, mechanism: &str, version: i16) -> Result<Mechanism, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .ok_or(Refusal::IllegalState("this listener does not use SASL"))?;
        let mut inner = self.lock();
        if inner.handshake.is_some() || inner.exchange.is_some() {
            return Err(Refusal::IllegalState(
                "a SASL exchange is already in progress",
            ));
        }
        let mechanism = Mechanism::parse(mechanism)
            .filter(|m| policy.mechanisms.contains(m))
            .ok_or(Refusal::UnsupportedMechanism)?;
        if let Some((_, previous)) = &inner.authenticated
            && *previous != mechanism
        {
            return Err(Refusal::IllegalState(
                "re-authentication must use the mechanism of the first authentication",
            ));
        }
        inner.handshake = Some((mechanism, version == 0));
        Ok(mechanism)
    }

    /// SaslAuthenticate (or a raw v0 token): the client's next token.
    pub(crate) fn authenticate(
        &self,
        token: &[u8],
        credentials: &dyn Credentials,
    ) -> Result<Authenticated, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .ok_or(Refusal::IllegalState("this listener does not use SASL"))?;
        let mut inner = self.lock();
        let Some((mechanism, _)) = inner.handshake else {
            return Err(Refusal::IllegalState(
                "SaslAuthenticate before SaslHandshake",
            ));
        };
        if inner.exchange.is_none() {
            let nonce = sasl::server_nonce().map_err(|error| Refusal::Failed {
                message: format!("no server nonce: {error}"),
                bad_credentials: false,
            })?;
            inner.exchange = Some(Exchange::start(mechanism, nonce));
        }
        let step = match inner.exchange.as_mut() {
            Some(exchange) => exchange.step(token, credentials),
            None => Err(sasl::Failure::Finished),
        };
        match step {
            Ok(Step::Continue(challenge)) => Ok(Authenticated::Challenge(challenge)),
            Ok(Step::Done { user, response }) => {
                inner.exchange = None;
                inner.handshake = None;
                if let Some((previous, _)) = &inner.authenticated
                    && *previous != user
                {
                    return Err(Refusal::Failed {
                        message: "re-authentication must not change the principal".to_owned(),
                        bad_credentials: false,
                    });
                }
                inner.authenticated = Some((user, mechanism));
                inner.expires_at = policy.max_reauth.map(|lifetime| Instant::now() + lifetime);
                Ok(Authenticated::Done {
                    response,
                    session_lifetime_ms: policy.max_reauth.map_or(0, |lifetime| {
                        i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)
                    }),
                })
            }
            Err(failure) => {
                inner.exchange = None;
                inner.handshake = None;
                Err(Refusal::Failed {
                    bad_credentials: failure.is_credentials(),
                    message: format!(
                        "Authentication failed during authentication with SASL mechanism {mechanism}: {failure}"
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::{ScramCredential, ScramHash};

    struct Alice;

    impl Credentials for Alice {
        fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
            (user == "alice").then(|| ScramCredential::derive(hash, b"pw", b"salt", 4096))
        }
    }

    fn policy(max_reauth: Option<Duration>) -> SaslPolicy {
        SaslPolicy {
            mechanisms: vec![Mechanism::Plain, Mechanism::ScramSha256],
            max_reauth,
            failed_delay: Duration::ZERO,
            authentication_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn only_sasl_and_api_versions_pass_before_authentication() {
        let session = Session::new(Some(policy(None)));
        assert!(session.admits(ApiKey::ApiVersions));
        assert!(session.admits(ApiKey::SaslHandshake));
        assert!(!session.admits(ApiKey::Metadata));
        assert!(session.authentication_deadline().is_some());
        session.handshake("PLAIN", 1).unwrap();
        assert!(!session.expects_raw_token());
        let done = session.authenticate(b"\0alice\0pw", &Alice).unwrap();
        assert_eq!(
            done,
            Authenticated::Done {
                response: Vec::new(),
                session_lifetime_ms: 0
            }
        );
        assert!(session.admits(ApiKey::Metadata));
        assert_eq!(session.principal(), Some(Principal::user("alice")));
        assert_eq!(session.authentication_deadline(), None);
    }

    #[test]
    fn without_sasl_everything_passes_and_sasl_requests_are_illegal() {
        let session = Session::new(None);
        assert!(session.admits(ApiKey::Produce));
        assert!(matches!(
            session.handshake("PLAIN", 1),
            Err(Refusal::IllegalState(_))
        ));
        assert!(matches!(
            session.authenticate(b"x", &Alice),
            Err(Refusal::IllegalState(_))
        ));
    }

    #[test]
    fn handshake_refuses_mechanisms_not_offered_and_authenticate_needs_one() {
        let session = Session::new(Some(policy(None)));
        assert!(matches!(
            session.authenticate(b"\0alice\0pw", &Alice),
            Err(Refusal::IllegalState(_))
        ));
        assert_eq!(
            session.handshake("SCRAM-SHA-512", 1),
            Err(Refusal::UnsupportedMechanism)
        );
        assert_eq!(
            session.handshake("GSSAPI", 1),
            Err(Refusal::UnsupportedMechanism)
        );
        session.handshake("PLAIN", 0).unwrap();
        assert!(session.expects_raw_token());
        assert!(matches!(
            session.handshake("PLAIN", 1),
            Err(Refusal::IllegalState(_))
        ));
    }

    #[test]
    fn a_wrong_password_fails_as_bad_credentials() {
        let session = Session::new(Some(policy(None)));
        session.handshake("PLAIN", 1).unwrap();
        let failed = session.authenticate(b"\0alice\0nope", &Alice);
        assert!(matches!(
            failed,
            Err(Refusal::Failed {
                bad_credentials: true,
                ..
            })
        ));
        assert!(!session.admits(ApiKey::Metadata));
    }

    #[test]
    fn an_expired_session_must_reauthenticate_as_the_same_user_and_mechanism() {
        let session = Session::new(Some(policy(Some(Duration::ZERO))));
        session.handshake("PLAIN", 1).unwrap();
        let Authenticated::Done {
            session_lifetime_ms,
            ..
        } = session.authenticate(b"\0alice\0pw", &Alice).unwrap()
        else {
            panic!("expected done");
        };
        assert_eq!(session_lifetime_ms, 0);
        assert!(!session.admits(ApiKey::Metadata), "expired at once");
        assert!(matches!(
            session.handshake("SCRAM-SHA-256", 1),
            Err(Refusal::IllegalState(_))
        ));
        session.handshake("PLAIN", 1).unwrap();
        session.authenticate(b"\0alice\0pw", &Alice).unwrap();
    }
}
