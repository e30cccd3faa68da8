//! The server side of SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against
//! the user's SCRAM credentials (the broker stores no passwords). One step.
#![deny(clippy::indexing_slicing)]

use super::{Credentials, Failure, ScramHash, Step};

/// Longest PLAIN token accepted (RFC 4616 allows 255 bytes per field).
const TOKEN_BYTES_MAX: usize = 3 * 256;

/// A PLAIN exchange; done after its one step.
#[derive(Debug, Default)]
pub(crate) struct PlainServer {
    over: bool,
}

impl PlainServer {
    pub(crate) fn step(
        &mut self,
        token: &[u8],
        credentials: &dyn Credentials,
    ) -> Result<Step, Failure> {
        if std::mem::replace(&mut self.over, true) {
            return Err(Failure::Finished);
        }
        if token.len() > TOKEN_BYTES_MAX {
            return Err(Failure::Malformed("token too long"));
        }
        let text = std::str::from_utf8(token).map_err(|_| Failure::Malformed("not UTF-8"))?;
        let mut fields = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(Failure::Malformed("expected authzid NUL user NUL password"));
        };
        if user.is_empty() || password.is_empty() {
            return Err(Failure::Malformed("empty user name or password"));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(Failure::Refused(
                "the authorization id differs from the user name",
            ));
        }
        // Any SCRAM credential of the user proves the password (both derive from it).
        let known = ScramHash::ALL.into_iter().find_map(|hash| {
            credentials
                .scram(user, hash)
                .map(|credential| credential.matches_password(hash, password.as_bytes()))
        });
        match known {
            Some(true) => Ok(Step::Done {
                user: user.to_owned(),
                response: Vec::new(),
            }),
            _ => Err(Failure::BadCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::ScramCredential;

    struct One(ScramHash, ScramCredential);

    impl Credentials for One {
        fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
            (user == "alice" && hash == self.0).then(|| self.1.clone())
        }
    }

    fn alice(hash: ScramHash) -> One {
        One(
            hash,
            ScramCredential::derive(hash, b"secret", b"salt", 4096),
        )
    }

    #[test]
    fn the_right_password_authenticates_against_either_scram_credential() {
        for hash in ScramHash::ALL {
            let mut plain = PlainServer::default();
            assert_eq!(
                plain.step(b"\0alice\0secret", &alice(hash)),
                Ok(Step::Done {
                    user: "alice".into(),
                    response: Vec::new()
                })
            );
            assert_eq!(
                plain.step(b"\0alice\0secret", &alice(hash)),
                Err(Failure::Finished)
            );
        }
    }

    #[test]
    fn wrong_passwords_unknown_users_and_bad_tokens_fail() {
        let users = alice(ScramHash::Sha256);
        for (token, failure) in [
            (&b"\0alice\0wrong"[..], Failure::BadCredentials),
            (b"\0bob\0secret", Failure::BadCredentials),
            (b"alice\0alice\0wrong", Failure::BadCredentials),
        ] {
            assert_eq!(PlainServer::default().step(token, &users), Err(failure));
        }
        for token in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0\0secret",
            b"\0alice\0",
            b"\0alice\0secret\0more",
            b"bob\0alice\0secret",
            b"\xff\0alice\0secret",
            &[b'a'; TOKEN_BYTES_MAX + 1],
        ] {
            let result = PlainServer::default().step(token, &users);
            assert!(
                result.is_err() && result != Err(Failure::BadCredentials),
                "{token:?}: {result:?}"
            );
        }
    }
}
