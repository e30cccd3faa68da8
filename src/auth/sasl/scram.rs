//! The server side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka speaks it: no channel
//! binding, an optional authorization id equal to the user, extensions refused except none.
//! Two steps: client-first -> server-first, client-final -> server-final.
#![deny(clippy::indexing_slicing)]

use super::credential::{b64, constant_time_eq, digest, hmac, unb64};
use super::{Credentials, Failure, ScramCredential, ScramHash, Step};

/// Longest client message accepted (a user name and nonce fit easily).
const MESSAGE_BYTES_MAX: usize = 4096;

/// Where a SCRAM exchange is.
#[derive(Debug)]
pub(crate) struct ScramServer {
    hash: ScramHash,
    server_nonce: String,
    state: State,
}

#[derive(Debug)]
enum State {
    First,
    Final {
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Over,
}

impl ScramServer {
    pub(crate) fn new(hash: ScramHash, server_nonce: String) -> ScramServer {
        ScramServer {
            hash,
            server_nonce,
            state: State::First,
        }
    }

    /// Takes the client's next message.
    pub(crate) fn step(
        &mut self,
        token: &[u8],
        credentials: &dyn Credentials,
    ) -> Result<Step, Failure> {
        if token.len() > MESSAGE_BYTES_MAX {
            self.state = State::Over;
            return Err(Failure::Malformed("message too long"));
        }
        let text = std::str::from_utf8(token).map_err(|_| Failure::Malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Over) {
            State::First => self.client_first(text, credentials),
            State::Final {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let expected = Expected {
                    gs2_header: &gs2_header,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                    nonce: &nonce,
                };
                self.client_final(text, user, &credential, &expected)
            }
            State::Over => Err(Failure::Finished),
        }
    }

    fn client_first(&mut self, text: &str, credentials: &dyn Credentials) -> Result<Step, Failure> {
        let (cbind, rest) = text
            .split_once(',')
            .ok_or(Failure::Malformed("no GS2 header"))?;
        match cbind {
            "n" | "y" => {}
            _ if cbind.starts_with("p=") => {
                return Err(Failure::Refused("channel binding is not supported"));
            }
            _ => return Err(Failure::Malformed("bad channel binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(Failure::Malformed("no GS2 header"))?;
        let gs2_header = format!("{cbind},{authzid},");
        let mut attributes = bare.split(',');
        let user = match attributes.next() {
            Some(user) if user.starts_with("m=") => {
                return Err(Failure::Refused("mandatory extensions are not supported"));
            }
            Some(user) => decode_saslname(
                user.strip_prefix("n=")
                    .ok_or(Failure::Malformed("no user name"))?,
            )?,
            None => return Err(Failure::Malformed("no user name")),
        };
        let client_nonce = attributes
            .next()
            .and_then(|n| n.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(Failure::Malformed("no client nonce"))?;
        // Kafka's extensions (`tokenauth=true` for delegation tokens) are not served.
        if attributes.next().is_some() {
            return Err(Failure::Refused("SCRAM extensions are not supported"));
        }
        if !authzid.is_empty() {
            let authzid = decode_saslname(
                authzid
                    .strip_prefix("a=")
                    .ok_or(Failure::Malformed("bad authorization id"))?,
            )?;
            if authzid != user {
                return Err(Failure::Refused(
                    "the authorization id differs from the user name",
                ));
            }
        }
        let credential = credentials
            .scram(&user, self.hash)
            .ok_or(Failure::BadCredentials)?;
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64(&credential.salt),
            credential.iterations
        );
        self.state = State::Final {
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(Step::Continue(server_first.into_bytes()))
    }

    fn client_final(
        &mut self,
        text: &str,
        user: String,
        credential: &ScramCredential,
        expected: &Expected<'_>,
    ) -> Result<Step, Failure> {
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(Failure::Malformed("no client proof"))?;
        let mut attributes = without_proof.split(',');
        let channel_binding = attributes
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .ok_or(Failure::Malformed("no channel binding"))?;
        if unb64(channel_binding).as_deref() != Some(expected.gs2_header.as_bytes()) {
            return Err(Failure::Malformed(
                "channel binding does not match the GS2 header",
            ));
        }
        let nonce = attributes
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or(Failure::Malformed("no nonce"))?;
        // Kafka checks only that the nonce ends with the server-first nonce: librdkafka (2.0 at
        // least) sends its client nonce once more in front, and signs what it sent.
        if !nonce.ends_with(expected.nonce) {
            return Err(Failure::Malformed("nonce does not match"));
        }
        if attributes.next().is_some() {
            return Err(Failure::Refused("SCRAM extensions are not supported"));
        }
        let proof = unb64(proof).ok_or(Failure::Malformed("client proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            expected.client_first_bare, expected.server_first
        );
        let client_signature = hmac(self.hash, &credential.stored_key.0, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(Failure::BadCredentials);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&digest(self.hash, &client_key), &credential.stored_key.0) {
            return Err(Failure::BadCredentials);
        }
        let server_signature = hmac(self.hash, &credential.server_key.0, auth_message.as_bytes());
        Ok(Step::Done {
            user,
            response: format!("v={}", b64(&server_signature)).into_bytes(),
        })
    }
}

/// What the final message must repeat of the first two.
struct Expected<'a> {
    gs2_header: &'a str,
    client_first_bare: &'a str,
    server_first: &'a str,
    nonce: &'a str,
}

/// RFC 5802 `saslname`: `=2C` is a comma, `=3D` an equals sign, any other `=` is an error.
fn decode_saslname(text: &str) -> Result<String, Failure> {
    if text.is_empty() {
        return Err(Failure::Malformed("empty user name"));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        if let Some(after) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = after;
        } else {
            return Err(Failure::Malformed("bad escape in user name"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Users(BTreeMap<(String, ScramHash), ScramCredential>);

    impl Credentials for Users {
        fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
            self.0.get(&(user.to_owned(), hash)).cloned()
        }
    }

    fn users(hash: ScramHash, salt: &[u8], iterations: u32) -> Users {
        let credential = ScramCredential::derive(hash, b"pencil", salt, iterations);
        Users(BTreeMap::from([(("user".to_owned(), hash), credential)]))
    }

    /// RFC 7677 section 3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn the_rfc_7677_sha_256_exchange_gives_the_rfc_server_messages() {
        let salt = unb64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let users = users(ScramHash::Sha256, &salt, 4096);
        let mut server =
            ScramServer::new(ScramHash::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
        let first = server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users)
            .unwrap();
        assert_eq!(
            first,
            Step::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        let last = server
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &users,
            )
            .unwrap();
        assert_eq!(
            last,
            Step::Done {
                user: "user".into(),
                response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            }
        );
        assert_eq!(server.step(b"again", &users), Err(Failure::Finished));
    }

    #[test]
    fn a_wrong_proof_is_refused_as_bad_credentials() {
        let salt = unb64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let users = users(ScramHash::Sha256, &salt, 4096);
        let mut server =
            ScramServer::new(ScramHash::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
        server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users)
            .unwrap();
        let wrong = server.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            &users,
        );
        assert_eq!(wrong, Err(Failure::BadCredentials));
    }

    #[test]
    fn an_unknown_user_and_a_wrong_hash_are_bad_credentials() {
        let users = users(ScramHash::Sha256, b"salt", 4096);
        let mut server = ScramServer::new(ScramHash::Sha256, "s".into());
        assert_eq!(
            server.step(b"n,,n=nobody,r=abc", &users),
            Err(Failure::BadCredentials)
        );
        let mut server = ScramServer::new(ScramHash::Sha512, "s".into());
        assert_eq!(
            server.step(b"n,,n=user,r=abc", &users),
            Err(Failure::BadCredentials)
        );
    }

    /// A client of our own computing the proof the RFC way, for SHA-512 (no published vector).
    #[test]
    fn a_sha_512_client_that_knows_the_password_is_authenticated() {
        let users = users(ScramHash::Sha512, b"NaCl", 4096);
        let mut server = ScramServer::new(ScramHash::Sha512, "srv".into());
        let Step::Continue(first) = server.step(b"n,a=user,n=user,r=cli", &users).unwrap() else {
            panic!("expected a challenge");
        };
        let first = String::from_utf8(first).unwrap();
        assert_eq!(first, format!("r=clisrv,s={},i=4096", b64(b"NaCl")));
        let salted =
            super::super::credential::salted_password(ScramHash::Sha512, b"pencil", b"NaCl", 4096);
        let client_key = hmac(ScramHash::Sha512, &salted, b"Client Key");
        let stored = digest(ScramHash::Sha512, &client_key);
        let without_proof = format!("c={},r=clisrv", b64(b"n,a=user,"));
        let auth = format!("n=user,r=cli,{first},{without_proof}");
        let signature = hmac(ScramHash::Sha512, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let last = server
            .step(
                format!("{without_proof},p={}", b64(&proof)).as_bytes(),
                &users,
            )
            .unwrap();
        let server_key = hmac(ScramHash::Sha512, &salted, b"Server Key");
        let expected = format!(
            "v={}",
            b64(&hmac(ScramHash::Sha512, &server_key, auth.as_bytes()))
        );
        assert_eq!(
            last,
            Step::Done {
                user: "user".into(),
                response: expected.into_bytes()
            }
        );
    }

    /// librdkafka repeats its client nonce in front of the combined nonce and signs that; Kafka
    /// accepts it (the nonce must only end with the server-first nonce).
    #[test]
    fn librdkafkas_repeated_client_nonce_is_accepted_as_kafka_accepts_it() {
        let users = users(ScramHash::Sha256, b"NaCl", 4096);
        let mut server = ScramServer::new(ScramHash::Sha256, "srv".into());
        let Step::Continue(first) = server.step(b"n,,n=user,r=cli", &users).unwrap() else {
            panic!("expected a challenge");
        };
        let first = String::from_utf8(first).unwrap();
        let salted =
            super::super::credential::salted_password(ScramHash::Sha256, b"pencil", b"NaCl", 4096);
        let client_key = hmac(ScramHash::Sha256, &salted, b"Client Key");
        let stored = digest(ScramHash::Sha256, &client_key);
        let without_proof = "c=biws,r=cliclisrv";
        let auth = format!("n=user,r=cli,{first},{without_proof}");
        let signature = hmac(ScramHash::Sha256, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let last = server.step(
            format!("{without_proof},p={}", b64(&proof)).as_bytes(),
            &users,
        );
        assert!(matches!(last, Ok(Step::Done { .. })), "{last:?}");
    }

    #[test]
    fn hostile_first_messages_are_refused_without_panicking() {
        let users = users(ScramHash::Sha256, b"salt", 4096);
        for token in [
            &b""[..],
            b"n",
            b"n,",
            b"x,,n=user,r=a",
            b"p=tls-unique,,n=user,r=a",
            b"n,,n=,r=a",
            b"n,,n=us=er,r=a",
            b"n,,n=user",
            b"n,,n=user,r=",
            b"n,,m=ext,n=user,r=a",
            b"n,,n=user,r=a,tokenauth=true",
            b"n,a=other,n=user,r=a",
            b"\xff\xfe",
            &[b'a'; MESSAGE_BYTES_MAX + 1],
        ] {
            let mut server = ScramServer::new(ScramHash::Sha256, "s".into());
            assert!(server.step(token, &users).is_err(), "{token:?}");
        }
    }

    #[test]
    fn hostile_final_messages_are_refused_without_panicking() {
        let users = users(ScramHash::Sha256, b"salt", 4096);
        for token in [
            &b""[..],
            b"p=",
            b"c=biws,p=AAAA",
            b"c=bad,r=as,p=AAAA",
            b"c=biws,r=other,p=AAAA",
            b"c=biws,r=as,p=!!!",
            b"c=biws,r=as,x=1,p=AAAA",
            b"c=biws,r=as,p=AAAA",
        ] {
            let mut server = ScramServer::new(ScramHash::Sha256, "s".into());
            server.step(b"n,,n=user,r=a", &users).unwrap();
            assert!(server.step(token, &users).is_err(), "{token:?}");
        }
    }

    #[test]
    fn sasl_names_unescape_commas_and_equals_signs() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_saslname("a=2").is_err());
    }
}
