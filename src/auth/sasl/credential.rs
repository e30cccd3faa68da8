//! SCRAM credentials (RFC 5802): salt, iterations, stored key and server key, derived from a
//! password with PBKDF2-HMAC; the broker keeps only these, never a password.
#![deny(clippy::indexing_slicing)]

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::ScramHash;

/// Kafka's bounds on SCRAM iterations.
pub(crate) const ITERATIONS_MIN: u32 = 4096;
pub(crate) const ITERATIONS_MAX: u32 = 16384;

/// A value that never shows in logs or `Debug` output (passwords, keys).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret<T>(pub(crate) T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the server stores of one user's password for one SCRAM hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScramCredential {
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
    pub(crate) stored_key: Secret<Vec<u8>>,
    pub(crate) server_key: Secret<Vec<u8>>,
}

impl ScramCredential {
    /// The credential of `password` with `salt` and `iterations` (RFC 5802 section 3).
    pub(crate) fn derive(
        hash: ScramHash,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salted = salted_password(hash, password, salt, iterations);
        ScramCredential::from_salted(hash, &salted, salt, iterations)
    }

    /// The credential from Kafka's AlterUserScramCredentials upsertion (the client sends the
    /// salted password, never the password).
    pub(crate) fn from_salted(
        hash: ScramHash,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = hmac(hash, salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: Secret(digest(hash, &client_key)),
            server_key: Secret(hmac(hash, salted_password, b"Server Key")),
        }
    }

    /// A credential for `password` with a fresh random salt.
    pub(crate) fn generate(
        hash: ScramHash,
        password: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, getrandom::Error> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)?;
        Ok(ScramCredential::derive(hash, password, &salt, iterations))
    }

    /// Whether `password` is the one this credential was derived from (PLAIN against SCRAM
    /// credentials), compared in constant time.
    pub(crate) fn matches_password(&self, hash: ScramHash, password: &[u8]) -> bool {
        let candidate = ScramCredential::derive(hash, password, &self.salt, self.iterations);
        constant_time_eq(&candidate.stored_key.0, &self.stored_key.0)
    }
}

/// PBKDF2-HMAC of `password` (RFC 5802's `Hi`).
pub(crate) fn salted_password(
    hash: ScramHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            out.to_vec()
        }
        ScramHash::Sha512 => {
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            out.to_vec()
        }
    }
}

/// HMAC(key, data).
pub(super) fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => {
            // HMAC takes keys of any length.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramHash::Sha512 => {
            let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// H(data).
pub(super) fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        ScramHash::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// Equality that takes the same time wherever the first difference is.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Standard base64 with padding.
pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64; `None` if it is not.
pub(super) fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
