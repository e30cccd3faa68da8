//! The authentication run: full SASL authentications (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN), each
//! on a fresh connection to a SASL_PLAINTEXT listener, one after another and then from several
//! connections at once, each one timed.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use crate::latency::{Latency, latency_summary};
use crate::scram::{ScramClient, ScramHash, plain_token};
use crate::wire::Conn;

/// Bounds the connect, and each write and read, of one authentication.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// A SASL mechanism the run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Scram(ScramHash),
    Plain,
}

impl Mechanism {
    pub(crate) const ALL: [Mechanism; 3] = [
        Mechanism::Scram(ScramHash::Sha256),
        Mechanism::Scram(ScramHash::Sha512),
        Mechanism::Plain,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
            Mechanism::Scram(ScramHash::Sha512) => "SCRAM-SHA-512",
            Mechanism::Plain => "PLAIN",
        }
    }
}

/// One round of authentications of one mechanism.
#[derive(Debug)]
pub(crate) struct AuthReport {
    pub(crate) mechanism: Mechanism,
    pub(crate) connection_count: u32,
    pub(crate) auth_count: u64,
    /// From the first connect to the last close.
    pub(crate) elapsed: Duration,
    /// Each authentication, connect to close.
    pub(crate) latency: Latency,
    /// The SCRAM iteration count the broker asked for (None for PLAIN).
    pub(crate) iterations: Option<u32>,
}

/// The user authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) password: String,
}

/// `auth_count` authentications with `mechanism` at `addr`, spread over `connection_count`
/// threads, each authenticating on a fresh connection one after another.
pub(crate) fn run_auths(
    addr: &str,
    user: &User,
    mechanism: Mechanism,
    auth_count: u64,
    connection_count: u32,
    deadline: Instant,
) -> Result<AuthReport> {
    ensure!(connection_count >= 1, "at least one connection");
    let started = Instant::now();
    let results: Vec<Result<(Vec<u32>, Option<u32>)>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..connection_count)
            .map(|worker| {
                let share = auth_count / u64::from(connection_count)
                    + u64::from(u64::from(worker) < auth_count % u64::from(connection_count));
                scope.spawn(move || authenticate_many(addr, user, mechanism, share, deadline))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an authentication thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies_us = Vec::new();
    let mut iterations = None;
    for result in results {
        let (worker_latencies, worker_iterations) = result?;
        latencies_us.extend(worker_latencies);
        iterations = iterations.or(worker_iterations);
    }
    Ok(AuthReport {
        mechanism,
        connection_count,
        auth_count,
        elapsed,
        latency: latency_summary(&mut latencies_us),
        iterations,
    })
}

/// `count` authentications one after another; each one's microseconds, and the iteration count.
fn authenticate_many(
    addr: &str,
    user: &User,
    mechanism: Mechanism,
    count: u64,
    deadline: Instant,
) -> Result<(Vec<u32>, Option<u32>)> {
    let mut scram = match mechanism {
        Mechanism::Scram(hash) => Some(ScramClient::new(hash, &user.name, &user.password)),
        Mechanism::Plain => None,
    };
    let plain = plain_token(&user.name, &user.password);
    let mut latencies_us = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut iterations = None;
    for auth_idx in 0..count {
        ensure!(
            Instant::now() < deadline,
            "overall timeout after {auth_idx} of {count} {} authentications",
            mechanism.name()
        );
        let started = Instant::now();
        let asked = authenticate_once(addr, mechanism, scram.as_mut(), &plain)
            .with_context(|| format!("{} authentication {auth_idx} at {addr}", mechanism.name()))?;
        let micros = started.elapsed().as_micros();
        latencies_us.push(u32::try_from(micros).unwrap_or(u32::MAX));
        iterations = iterations.or(asked);
    }
    Ok((latencies_us, iterations))
}

/// Connect, SaslHandshake, SaslAuthenticate until done (the server's signature checked), close;
/// the SCRAM iteration count the server asked for.
fn authenticate_once(
    addr: &str,
    mechanism: Mechanism,
    scram: Option<&mut ScramClient>,
    plain: &[u8],
) -> Result<Option<u32>> {
    let mut conn = Conn::connect(addr, AUTH_TIMEOUT)?;
    conn.sasl_handshake(mechanism.name())?;
    match scram {
        Some(client) => Ok(Some(
            client.authenticate(|token| conn.sasl_authenticate(token))?,
        )),
        None => {
            conn.sasl_authenticate(plain)?;
            Ok(None)
        }
    }
}
