//! Fuzzing entry (built only with `--cfg fuzzing`, by `fuzz/`): the server side of a SASL
//! exchange fed the tokens an unauthenticated client chooses.

use std::sync::OnceLock;

use super::sasl::{Credentials, Exchange, Mechanism, ScramCredential, ScramHash, Step};

/// The one user the fuzzed exchanges know, so both the known- and unknown-user paths run.
const USER: &str = "alice";
/// Few iterations: a fuzz run is about parsing, not about the cost of PBKDF2.
const ITERATIONS: u32 = 16;

struct OneUser;

impl Credentials for OneUser {
    fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        static SHA256: OnceLock<ScramCredential> = OnceLock::new();
        static SHA512: OnceLock<ScramCredential> = OnceLock::new();
        if user != USER {
            return None;
        }
        let cell = match hash {
            ScramHash::Sha256 => &SHA256,
            ScramHash::Sha512 => &SHA512,
        };
        Some(
            cell.get_or_init(|| ScramCredential::derive(hash, b"secret", b"salt", ITERATIONS))
                .clone(),
        )
    }
}

/// Runs one exchange: the first byte picks the mechanism, and the rest, split at each 0xff
/// byte, are the client's tokens (at most four), until the exchange ends or fails.
pub fn sasl_exchange(data: &[u8]) {
    let Some((&pick, tokens)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(pick) % Mechanism::ALL.len()];
    let mut exchange = Exchange::start(mechanism, "fuzz-server-nonce".to_owned());
    for token in tokens.split(|&byte| byte == 0xff).take(4) {
        match exchange.step(token, &OneUser) {
            Ok(Step::Continue(_)) => {}
            Ok(Step::Done { .. }) | Err(_) => return,
        }
    }
}
