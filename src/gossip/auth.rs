//! Authenticated gossip datagrams: seals a chitchat envelope into header + envelope + HMAC-SHA256
//! tag and opens it again (wire format in the `gossip` module doc). Pure: the caller supplies the
//! clock; `open` checks length, magic, tag, age and replay, in that order.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ClusterKey;
use super::replay::ReplayGuard;
use crate::limits;

const MAGIC: [u8; 4] = *b"TLG1";
const HEADER_LEN: usize = 4 + 8 + 8 + 8;
const TAG_LEN: usize = 32;
/// Bytes an authenticated datagram adds around the envelope.
pub(super) const OVERHEAD_BYTES: usize = HEADER_LEN + TAG_LEN;
/// Bound into every tag, so no other use of the same key can produce a valid datagram.
const DOMAIN: &[u8] = b"tidelog-gossip-v1";

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    Length,
    Magic,
    Tag,
    Stale,
    Replayed,
}

impl Rejection {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::Length => "length out of bounds",
            Self::Magic => "not an authenticated gossip datagram",
            Self::Tag => "authentication tag does not verify (another cluster key or name?)",
            Self::Stale => "timestamp too far from this clock",
            Self::Replayed => "replayed",
        }
    }
}

/// Seals what this node sends and opens what it receives, for one socket.
pub(super) struct Authenticator {
    /// Keyed with the cluster key, already fed the domain and the cluster name.
    mac: Hmac<Sha256>,
    session: u64,
    next_counter: u64,
    replay: ReplayGuard,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("session", &self.session)
            .field("next_counter", &self.next_counter)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `session` must be unique per socket (random): receivers track counters per session.
    pub(super) fn new(key: &ClusterKey, cluster_name: &str, session: u64) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC accepts keys of any length");
        mac.update(DOMAIN);
        let name_len = u16::try_from(cluster_name.len()).expect("cluster name length is bounded");
        mac.update(&name_len.to_be_bytes());
        mac.update(cluster_name.as_bytes());
        Self {
            mac,
            session,
            next_counter: 0,
            replay: ReplayGuard::new(limits::GOSSIP_REPLAY_SESSIONS_MAX),
        }
    }

    /// Writes the datagram carrying `envelope` into `out` (cleared first).
    pub(super) fn seal(&mut self, envelope: &[u8], now_ms: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.session.to_be_bytes());
        out.extend_from_slice(&self.next_counter.to_be_bytes());
        out.extend_from_slice(&now_ms.to_be_bytes());
        out.extend_from_slice(envelope);
        self.next_counter += 1;
        let mut mac = self.mac.clone();
        mac.update(out);
        out.extend_from_slice(&mac.finalize().into_bytes());
    }

    /// The envelope bytes of an authentic, fresh, first-seen datagram.
    pub(super) fn open<'a>(
        &mut self,
        datagram: &'a [u8],
        now_ms: u64,
    ) -> Result<&'a [u8], Rejection> {
        if datagram.len() <= OVERHEAD_BYTES || datagram.len() > limits::GOSSIP_DATAGRAM_BYTES_MAX {
            return Err(Rejection::Length);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let (header, envelope) = signed.split_at(HEADER_LEN);
        if header[..4] != MAGIC {
            return Err(Rejection::Magic);
        }
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| Rejection::Tag)?;
        let field = |at: usize| {
            let bytes: [u8; 8] = header[at..at + 8].try_into().expect("header holds 8 bytes");
            u64::from_be_bytes(bytes)
        };
        let (session, counter, sent_ms) = (field(4), field(12), field(20));
        if now_ms.abs_diff(sent_ms) > limits::GOSSIP_DATAGRAM_AGE_MS_MAX {
            return Err(Rejection::Stale);
        }
        if !self.replay.accept(session, counter) {
            return Err(Rejection::Replayed);
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn key(byte: u8) -> ClusterKey {
        ClusterKey::new(vec![byte; 32]).unwrap()
    }

    fn sealed(sender: &mut Authenticator, envelope: &[u8], now_ms: u64) -> Vec<u8> {
        let mut out = Vec::new();
        sender.seal(envelope, now_ms, &mut out);
        out
    }

    #[test]
    fn sealed_datagram_opens_once_with_the_same_key_and_name() {
        let mut sender = Authenticator::new(&key(1), "prod", 42);
        let mut receiver = Authenticator::new(&key(1), "prod", 43);
        let first = sealed(&mut sender, b"envelope-1", NOW_MS);
        let second = sealed(&mut sender, b"envelope-2", NOW_MS + 5);
        assert_eq!(first.len(), b"envelope-1".len() + OVERHEAD_BYTES);
        assert_eq!(receiver.open(&second, NOW_MS), Ok(&b"envelope-2"[..]));
        assert_eq!(receiver.open(&first, NOW_MS), Ok(&b"envelope-1"[..]));
        assert_eq!(receiver.open(&first, NOW_MS), Err(Rejection::Replayed));
    }

    #[test]
    fn another_key_or_cluster_name_does_not_verify() {
        let mut sender = Authenticator::new(&key(1), "prod", 42);
        let datagram = sealed(&mut sender, b"envelope", NOW_MS);
        let mut other_key = Authenticator::new(&key(2), "prod", 1);
        let mut other_name = Authenticator::new(&key(1), "staging", 1);
        assert_eq!(other_key.open(&datagram, NOW_MS), Err(Rejection::Tag));
        assert_eq!(other_name.open(&datagram, NOW_MS), Err(Rejection::Tag));
    }

    #[test]
    fn any_flipped_bit_does_not_verify() {
        let mut sender = Authenticator::new(&key(1), "prod", 42);
        let datagram = sealed(&mut sender, b"envelope", NOW_MS);
        for at in 0..datagram.len() {
            let mut receiver = Authenticator::new(&key(1), "prod", 1);
            let mut tampered = datagram.clone();
            tampered[at] ^= 0x10;
            let rejection = receiver.open(&tampered, NOW_MS).unwrap_err();
            let expected = if at < 4 {
                Rejection::Magic
            } else {
                Rejection::Tag
            };
            assert_eq!(rejection, expected, "byte {at}");
        }
    }

    #[test]
    fn stale_or_future_datagram_is_dropped() {
        let mut sender = Authenticator::new(&key(1), "prod", 42);
        let mut receiver = Authenticator::new(&key(1), "prod", 1);
        let age_max = limits::GOSSIP_DATAGRAM_AGE_MS_MAX;
        let old = sealed(&mut sender, b"e", NOW_MS - age_max - 1);
        let future = sealed(&mut sender, b"e", NOW_MS + age_max + 1);
        let edge = sealed(&mut sender, b"e", NOW_MS - age_max);
        assert_eq!(receiver.open(&old, NOW_MS), Err(Rejection::Stale));
        assert_eq!(receiver.open(&future, NOW_MS), Err(Rejection::Stale));
        assert_eq!(receiver.open(&edge, NOW_MS), Ok(&b"e"[..]));
    }

    #[test]
    fn truncated_or_garbage_datagram_is_dropped() {
        let mut receiver = Authenticator::new(&key(1), "prod", 1);
        assert_eq!(receiver.open(b"", NOW_MS), Err(Rejection::Length));
        assert_eq!(
            receiver.open(&[0; OVERHEAD_BYTES], NOW_MS),
            Err(Rejection::Length)
        );
        assert_eq!(receiver.open(&[0; 100], NOW_MS), Err(Rejection::Magic));
        let mut sender = Authenticator::new(&key(1), "prod", 42);
        let datagram = sealed(&mut sender, b"envelope", NOW_MS);
        assert_eq!(
            receiver.open(&datagram[..datagram.len() - 1], NOW_MS),
            Err(Rejection::Tag)
        );
    }
}
