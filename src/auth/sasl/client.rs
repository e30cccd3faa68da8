//! The client side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 5802), for the admin CLI: the
//! messages a client sends and the check of the server's signature, so a client knows it talked
//! to a server that holds its credential. No channel binding, no extensions, as Kafka clients.
#![deny(clippy::indexing_slicing)]

use super::credential::{
    ITERATIONS_MAX, b64, constant_time_eq, digest, hmac, salted_password, unb64,
};
use super::{Failure, ScramHash, Secret};

/// Longest server message accepted.
const MESSAGE_BYTES_MAX: usize = 4096;

/// The one PLAIN token: `NUL user NUL password` (no authorization id).
pub(crate) fn plain_token(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

/// A client's SCRAM exchange: `client_first`, then `client_final` of the server's first
/// message, then `verify` of its final message.
#[derive(Debug)]
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Secret<Vec<u8>>,
    nonce: String,
    client_first_bare: String,
    /// The server signature expected, once the final message is sent.
    expected: Option<Secret<Vec<u8>>>,
}

/// RFC 5802's saslname: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn text(message: &[u8]) -> Result<&str, Failure> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(Failure::Malformed("server message too long"));
    }
    std::str::from_utf8(message).map_err(|_| Failure::Malformed("server message not UTF-8"))
}

impl ScramClient {
    /// `nonce` is the client's random nonce (printable, no comma).
    pub(crate) fn new(hash: ScramHash, user: &str, password: &str, nonce: String) -> ScramClient {
        let client_first_bare = format!("n={},r={nonce}", saslname(user));
        ScramClient {
            hash,
            password: Secret(password.as_bytes().to_vec()),
            nonce,
            client_first_bare,
            expected: None,
        }
    }

    /// The first message.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The final message, proving the password, for the server's first message.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<String, Failure> {
        let server_first = text(server_first)?;
        if let Some(error) = server_first.strip_prefix("e=") {
            return Err(refused(error));
        }
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = unb64(value),
                Some(("i", value)) => iterations = value.parse::<u32>().ok(),
                Some(("m", _)) => {
                    return Err(Failure::Refused("mandatory extensions are not supported"));
                }
                _ => {}
            }
        }
        let nonce = nonce
            .filter(|n| n.starts_with(&self.nonce) && n.len() > self.nonce.len())
            .ok_or(Failure::Malformed(
                "the server's nonce does not extend the client's",
            ))?;
        let salt = salt.ok_or(Failure::Malformed("no salt"))?;
        let iterations = iterations
            .filter(|i| (1..=ITERATIONS_MAX).contains(i))
            .ok_or(Failure::Malformed("iterations missing or out of range"))?;
        let salted = salted_password(self.hash, &self.password.0, &salt, iterations);
        let client_key = hmac(self.hash, &salted, b"Client Key");
        let stored_key = digest(self.hash, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(self.hash, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(self.hash, &salted, b"Server Key");
        self.expected = Some(Secret(hmac(
            self.hash,
            &server_key,
            auth_message.as_bytes(),
        )));
        Ok(format!("{without_proof},p={}", b64(&proof)))
    }

    /// Checks the server's final message: its signature proves it knows the credential.
    pub(crate) fn verify(&mut self, server_final: &[u8]) -> Result<(), Failure> {
        let server_final = text(server_final)?;
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(refused(error));
        }
        let expected = self.expected.take().ok_or(Failure::Finished)?;
        let signature = server_final
            .strip_prefix("v=")
            .and_then(|v| unb64(v.split(',').next().unwrap_or_default()))
            .ok_or(Failure::Malformed("no server signature"))?;
        if constant_time_eq(&signature, &expected.0) {
            Ok(())
        } else {
            Err(Failure::Refused(
                "the server's signature does not match: not the server of this credential",
            ))
        }
    }
}

/// A server's `e=` error as a failure (the known RFC 5802 values; others in general).
fn refused(error: &str) -> Failure {
    match error {
        "invalid-proof" | "unknown-user" => Failure::BadCredentials,
        _ => Failure::Refused("the server ended the exchange with an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::{Credentials, ScramCredential, ScramServer, Step};

    struct One(ScramCredential);

    impl Credentials for One {
        fn scram(&self, user: &str, _hash: ScramHash) -> Option<ScramCredential> {
            (user == "ali=ce,").then(|| self.0.clone())
        }
    }

    fn exchange(hash: ScramHash, password: &str) -> Result<(), Failure> {
        let users = One(ScramCredential::derive(hash, b"pencil", b"salt", 4096));
        let mut server = ScramServer::new(hash, "server-nonce".to_owned());
        let mut client = ScramClient::new(hash, "ali=ce,", password, "client-nonce".to_owned());
        let Step::Continue(server_first) = server.step(client.client_first().as_bytes(), &users)?
        else {
            panic!("SCRAM takes two steps");
        };
        let client_final = client.client_final(&server_first)?;
        match server.step(client_final.as_bytes(), &users)? {
            Step::Done { user, response } => {
                assert_eq!(user, "ali=ce,");
                client.verify(&response)
            }
            Step::Continue(_) => panic!("SCRAM ends after two steps"),
        }
    }

    #[test]
    fn a_client_with_the_password_authenticates_against_the_server() {
        assert_eq!(exchange(ScramHash::Sha256, "pencil"), Ok(()));
        assert_eq!(exchange(ScramHash::Sha512, "pencil"), Ok(()));
        assert_eq!(
            exchange(ScramHash::Sha256, "crayon"),
            Err(Failure::BadCredentials)
        );
    }

    #[test]
    fn a_server_that_does_not_know_the_credential_is_caught() {
        let mut client = ScramClient::new(ScramHash::Sha256, "u", "p", "abc".to_owned());
        assert!(
            client.client_final(b"r=xyz,s=c2FsdA==,i=4096").is_err(),
            "nonce not extended"
        );
        assert!(
            client
                .client_final(b"r=abcd,s=c2FsdA==,i=999999999")
                .is_err(),
            "iterations"
        );
        assert_eq!(
            client.client_final(b"e=unknown-user"),
            Err(Failure::BadCredentials)
        );
        client
            .client_final(b"r=abcd,s=c2FsdA==,i=4096")
            .expect("well formed");
        assert!(
            client.verify(b"v=c2lnbmF0dXJl").is_err(),
            "a wrong signature"
        );
        assert_eq!(client.verify(b"v=c2lnbmF0dXJl"), Err(Failure::Finished));
        assert_eq!(plain_token("u", "p"), b"\0u\0p");
    }
}
