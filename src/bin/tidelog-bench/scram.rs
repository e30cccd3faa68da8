//! The client side of a SCRAM-SHA-256/512 exchange (RFC 5802) for the authentication run: the
//! two client messages and the check of the server's signature, with no I/O of its own.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bound on SCRAM iterations: a server asking for more is refused.
const ITERATIONS_MAX: u32 = 16384;
/// Random bytes of the client nonce.
const NONCE_BYTES: usize = 24;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => keyed::<Hmac<Sha256>>(key, message),
            Self::Sha512 => keyed::<Hmac<Sha512>>(key, message),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// PBKDF2-HMAC of the password: RFC 5802's SaltedPassword.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Self::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

fn keyed<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// One user's SCRAM client. The salted password of the last salt and iteration count the server
/// sent is kept: a user's credential does not change during a run, so the client runs PBKDF2
/// once and the rate measured is the broker's (which stores keys, not passwords, and runs none).
#[derive(Debug)]
pub(crate) struct ScramClient {
    hash: ScramHash,
    user: String,
    password: String,
    /// (salt, iterations, salted password).
    salted: Option<(Vec<u8>, u32, Vec<u8>)>,
}

impl ScramClient {
    pub(crate) fn new(hash: ScramHash, user: &str, password: &str) -> ScramClient {
        ScramClient {
            hash,
            // RFC 5802's saslname: `=` and `,` escaped.
            user: user.replace('=', "=3D").replace(',', "=2C"),
            password: password.to_owned(),
            salted: None,
        }
    }

    /// Runs one exchange: `send` carries a client message to the server and returns its answer.
    /// Returns the iteration count the server asked for.
    pub(crate) fn authenticate(
        &mut self,
        send: impl FnMut(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<u32> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).context("random client nonce")?;
        self.authenticate_with_nonce(&URL_SAFE_NO_PAD.encode(nonce), send)
    }

    fn authenticate_with_nonce(
        &mut self,
        nonce: &str,
        mut send: impl FnMut(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<u32> {
        let client_first_bare = format!("n={},r={nonce}", self.user);
        let server_first = send(format!("n,,{client_first_bare}").as_bytes())?;
        let server_first = String::from_utf8(server_first).context("server-first not UTF-8")?;
        let first = ServerFirst::parse(&server_first)?;
        ensure!(
            first.nonce.len() > nonce.len() && first.nonce.starts_with(nonce),
            "the server's nonce does not extend the client's"
        );
        let salted = self.salted(&first.salt, first.iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.digest(&client_key);
        let without_proof = format!("c=biws,r={}", first.nonce);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(key, sig)| key ^ sig)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        let expected = self.hash.hmac(&server_key, auth_message.as_bytes());
        let client_final = format!("{without_proof},p={}", STANDARD.encode(proof));
        let server_final = send(client_final.as_bytes())?;
        let server_final = String::from_utf8(server_final).context("server-final not UTF-8")?;
        if let Some(error) = server_final.strip_prefix("e=") {
            bail!("the server refused the proof: {error}");
        }
        let verifier = server_final
            .strip_prefix("v=")
            .and_then(|v| v.split(',').next())
            .context("server-final without a signature")?;
        let verifier = STANDARD.decode(verifier).context("server signature")?;
        ensure!(
            verifier == expected,
            "the server's signature does not match the credential"
        );
        Ok(first.iterations)
    }

    fn salted(&mut self, salt: &[u8], iterations: u32) -> Vec<u8> {
        match &self.salted {
            Some((known_salt, known_iterations, salted))
                if known_salt == salt && *known_iterations == iterations =>
            {
                salted.clone()
            }
            _ => {
                let salted = self
                    .hash
                    .salted_password(self.password.as_bytes(), salt, iterations);
                self.salted = Some((salt.to_vec(), iterations, salted.clone()));
                salted
            }
        }
    }
}

/// The server-first message: `r=nonce,s=salt,i=iterations`.
#[derive(Debug)]
struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

impl ServerFirst {
    fn parse(message: &str) -> Result<ServerFirst> {
        if let Some(error) = message.strip_prefix("e=") {
            bail!("the server refused the exchange: {error}");
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in message.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value.to_owned()),
                Some(("s", value)) => salt = Some(STANDARD.decode(value).context("salt")?),
                Some(("i", value)) => iterations = Some(value.parse::<u32>().context("i=")?),
                Some(("m", _)) => bail!("mandatory extensions are not supported"),
                _ => {}
            }
        }
        let iterations = iterations.context("server-first without i=")?;
        ensure!(
            (1..=ITERATIONS_MAX).contains(&iterations),
            "server-first asks for {iterations} iterations"
        );
        Ok(ServerFirst {
            nonce: nonce.context("server-first without r=")?,
            salt: salt.context("server-first without s=")?,
            iterations,
        })
    }
}

/// The one PLAIN token: `NUL user NUL password`.
pub(crate) fn plain_token(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                         s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    /// Plays RFC 7677's SCRAM-SHA-256 example (user `user`, password `pencil`) with
    /// `server_final` as the server's last message; returns the client's messages and result.
    fn rfc_7677_exchange(server_final: &str) -> (Vec<String>, Result<u32>) {
        let mut client = ScramClient::new(ScramHash::Sha256, "user", "pencil");
        let mut sent = Vec::new();
        let result = client.authenticate_with_nonce("rOprNGfwEbeRWgbNEkqO", |message| {
            sent.push(String::from_utf8(message.to_vec()).expect("ASCII"));
            Ok(match sent.len() {
                1 => RFC_7677_SERVER_FIRST.as_bytes().to_vec(),
                _ => server_final.as_bytes().to_vec(),
            })
        });
        (sent, result)
    }

    #[test]
    fn authenticate_sends_rfc_7677_s_messages_and_checks_the_server_signature() {
        let (sent, result) = rfc_7677_exchange("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(
            sent,
            ["n,,n=user,r=rOprNGfwEbeRWgbNEkqO", RFC_7677_CLIENT_FINAL]
        );
        assert_eq!(result.expect("the RFC's exchange succeeds"), 4096);
        let (_, result) = rfc_7677_exchange("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(result.is_err(), "a wrong server signature is refused");
        let (_, result) = rfc_7677_exchange("e=invalid-proof");
        assert!(result.is_err(), "a server error is refused");
    }

    #[test]
    fn user_names_are_escaped_and_plain_tokens_separated() {
        let client = ScramClient::new(ScramHash::Sha512, "a=b,c", "x");
        assert_eq!(client.user, "a=3Db=2Cc");
        assert_eq!(plain_token("u", "p"), b"\0u\0p");
    }
}
