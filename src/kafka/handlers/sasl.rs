//! SaslHandshake (key 17, v0-1) and SaslAuthenticate (key 36, v0-2), and the raw tokens that
//! follow a v0 handshake (KIP-43): the connection's `Session` decides, this module turns its
//! answers into Kafka responses and says when the connection must close afterwards.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::protocol::StrBytes;

use crate::kafka::Context;
use crate::kafka::error_code;
use crate::kafka::session::{Authenticated, Refusal};

/// What the connection does after writing the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    KeepOpen,
    /// Close after a delay (a failed authentication is answered late, KIP-306's
    /// `connection.failed.authentication.delay.ms`), then write the response and close.
    Close {
        delay: Duration,
    },
}

fn mechanisms(ctx: &Context) -> Vec<StrBytes> {
    ctx.session
        .policy()
        .map(|p| {
            p.mechanisms
                .iter()
                .map(|m| StrBytes::from_static_str(m.name()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn handshake(
    ctx: &Context,
    version: i16,
    request: &messages::SaslHandshakeRequest,
) -> (messages::SaslHandshakeResponse, After) {
    let response = messages::SaslHandshakeResponse::default().with_mechanisms(mechanisms(ctx));
    match ctx.session.handshake(request.mechanism.as_str(), version) {
        Ok(mechanism) => {
            tracing::debug!(%mechanism, peer = %ctx.peer, "SASL handshake");
            (response.with_error_code(error_code::NONE), After::KeepOpen)
        }
        Err(Refusal::UnsupportedMechanism) => {
            tracing::info!(
                mechanism = request.mechanism.as_str(),
                peer = %ctx.peer,
                "SASL handshake for a mechanism this listener does not offer"
            );
            (
                response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
                After::Close {
                    delay: Duration::ZERO,
                },
            )
        }
        Err(refusal) => {
            tracing::info!(peer = %ctx.peer, ?refusal, "SASL handshake refused");
            (
                response.with_error_code(ResponseError::IllegalSaslState.code()),
                After::Close {
                    delay: Duration::ZERO,
                },
            )
        }
    }
}

pub(crate) async fn authenticate(
    ctx: &Context,
    request: &messages::SaslAuthenticateRequest,
) -> (messages::SaslAuthenticateResponse, After) {
    let response = messages::SaslAuthenticateResponse::default();
    match step_off_worker(ctx, request.auth_bytes.clone()).await {
        Ok(Authenticated::Challenge(challenge)) => (
            response
                .with_error_code(error_code::NONE)
                .with_auth_bytes(Bytes::from(challenge)),
            After::KeepOpen,
        ),
        Ok(Authenticated::Done {
            response: last,
            session_lifetime_ms,
        }) => (
            response
                .with_error_code(error_code::NONE)
                .with_auth_bytes(Bytes::from(last))
                .with_session_lifetime_ms(session_lifetime_ms),
            After::KeepOpen,
        ),
        Err((code, message, after)) => (
            response
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
            after,
        ),
    }
}

/// A raw token after a v0 handshake: the answer frame (length-prefixed token, no header).
pub(crate) async fn raw_token(ctx: &Context, token: Bytes) -> (Bytes, After) {
    match step_off_worker(ctx, token).await {
        Ok(
            Authenticated::Challenge(reply)
            | Authenticated::Done {
                response: reply, ..
            },
        ) => {
            let mut frame = BytesMut::with_capacity(4 + reply.len());
            frame.put_u32(u32::try_from(reply.len()).unwrap_or(u32::MAX));
            frame.put_slice(&reply);
            (frame.freeze(), After::KeepOpen)
        }
        // v0 has no error field: Kafka closes the connection.
        Err((_, _, after)) => (Bytes::new(), after),
    }
}

/// [`step`] on the blocking pool: PLAIN derives the SCRAM keys of the password it is given
/// (PBKDF2, thousands of HMAC rounds), which must not stall the async workers' other
/// connections.
async fn step_off_worker(
    ctx: &Context,
    token: Bytes,
) -> Result<Authenticated, (i16, String, After)> {
    let owned = ctx.clone();
    match tokio::task::spawn_blocking(move || step(&owned, &token)).await {
        Ok(stepped) => stepped,
        Err(join_error) if join_error.is_panic() => {
            std::panic::resume_unwind(join_error.into_panic())
        }
        // Cancelled: only when the runtime shuts down.
        Err(_) => Err((
            ResponseError::SaslAuthenticationFailed.code(),
            "the broker is shutting down".to_owned(),
            After::Close {
                delay: Duration::ZERO,
            },
        )),
    }
}

/// One step of the exchange, with a failure as its error code, message and what follows.
fn step(ctx: &Context, token: &[u8]) -> Result<Authenticated, (i16, String, After)> {
    ctx.session
        .authenticate(token, ctx.broker.as_ref())
        .inspect(|done| {
            if let Authenticated::Done { .. } = done
                && let Some(principal) = ctx.session.principal()
            {
                tracing::info!(%principal, peer = %ctx.peer, "SASL authentication succeeded");
            }
        })
        .map_err(|refusal| match refusal {
            Refusal::Failed {
                message,
                bad_credentials,
            } => {
                crate::telemetry::metrics::authentication_failed("SASL");
                tracing::info!(
                    peer = %ctx.peer,
                    bad_credentials,
                    reason = %message,
                    "SASL authentication failed"
                );
                let delay = ctx
                    .session
                    .policy()
                    .map_or(Duration::ZERO, |p| p.failed_delay);
                (
                    ResponseError::SaslAuthenticationFailed.code(),
                    message,
                    After::Close { delay },
                )
            }
            Refusal::IllegalState(reason) => {
                tracing::info!(peer = %ctx.peer, reason, "SASL request out of order");
                (
                    ResponseError::IllegalSaslState.code(),
                    reason.to_owned(),
                    After::Close {
                        delay: Duration::ZERO,
                    },
                )
            }
            Refusal::UnsupportedMechanism => (
                ResponseError::UnsupportedSaslMechanism.code(),
                "unsupported SASL mechanism".to_owned(),
                After::Close {
                    delay: Duration::ZERO,
                },
            ),
        })
}
