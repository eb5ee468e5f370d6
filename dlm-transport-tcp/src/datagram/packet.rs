//! One datagram on the wire: how it is sealed to a connection and how a received one is
//! checked before anything in it is trusted.
//!
//! ```text
//! magic "DLMd" (4) | kind (1) | token (16) | payload: one postcard message | tag (16, keyed only)
//! ```
//!
//! The token names the TCP connection the datagram belongs to: the listening node draws it at
//! random for each connection that asks for datagrams and hands it over at the end of the
//! handshake, on that connection ([`crate::wire::HelloAnswer::AcceptedWithDatagrams`]). With a
//! cluster secret, both ends also derive a key from the handshake
//! ([`crate::auth::ClusterSecret::datagram_key`]), and the tag is an HMAC-SHA256 under that key
//! over everything before it, cut to 16 bytes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The first bytes of every dlm datagram.
pub(crate) const MAGIC: [u8; 4] = *b"DLMd";
/// Length of a [`Token`].
pub(crate) const TOKEN_LEN: usize = 16;
/// Length of a tag (HMAC-SHA256 cut to its first 16 bytes).
pub(crate) const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + 1 + TOKEN_LEN;
/// The largest datagram sent or accepted, in bytes: under the IPv6 minimum MTU (1280) with
/// room for the IP and UDP headers, so that no datagram is ever fragmented (a lost fragment
/// loses the whole datagram, which would multiply the loss datagrams are there to beat).
pub(crate) const MAX_DATAGRAM: usize = 1200;

/// Names one TCP connection to the datagrams that travel beside it.
pub(crate) type Token = [u8; TOKEN_LEN];

/// What a datagram carries; each kind goes one way only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `PeerMessage`, from the node that dialed the connection to the one that accepted it.
    Peer = 1,
    /// A `ClientRequest`, from a client to a node.
    Request = 2,
    /// A `ClientResponse`, from a node to a client.
    Response = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Peer),
            2 => Some(Kind::Request),
            3 => Some(Kind::Response),
            _ => None,
        }
    }
}

/// The key that authenticates one connection's datagrams (both ways: the kind, which differs
/// by direction, is under the tag).
#[derive(Clone)]
pub(crate) struct DatagramKey(HmacSha256);

impl DatagramKey {
    /// A key from 32 bytes derived for one connection. HMAC takes keys of any length, so this
    /// is never `None` in practice; a connection without a key gets no datagrams.
    pub(crate) fn new(bytes: &[u8; 32]) -> Option<DatagramKey> {
        HmacSha256::new_from_slice(bytes).ok().map(DatagramKey)
    }

    fn tag(&self, sealed: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(sealed);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verify(&self, sealed: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(sealed);
        mac.verify_truncated_left(tag).is_ok()
    }
}

impl std::fmt::Debug for DatagramKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatagramKey(<redacted>)")
    }
}

/// What ties datagrams to one connection: its token, and its key when the handshake proved a
/// cluster secret.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub(crate) token: Token,
    pub(crate) key: Option<DatagramKey>,
}

impl Binding {
    /// The datagram carrying `payload` (a postcard message, a frame without its length word)
    /// as `kind`, or `None` if it would be over [`MAX_DATAGRAM`] (then TCP alone carries it).
    pub(crate) fn seal(&self, kind: Kind, payload: &[u8]) -> Option<Vec<u8>> {
        let tag_len = if self.key.is_some() { TAG_LEN } else { 0 };
        let len = HEADER_LEN + payload.len() + tag_len;
        if len > MAX_DATAGRAM {
            return None;
        }
        let mut datagram = Vec::with_capacity(len);
        datagram.extend_from_slice(&MAGIC);
        datagram.push(kind as u8);
        datagram.extend_from_slice(&self.token);
        datagram.extend_from_slice(payload);
        if let Some(key) = &self.key {
            let tag = key.tag(&datagram);
            datagram.extend_from_slice(&tag);
        }
        Some(datagram)
    }

    /// The payload of `datagram` (already read by [`header`] as `kind` for this binding's
    /// token), if its tag verifies under this binding's key (or there is no key).
    pub(crate) fn open<'d>(&self, datagram: &'d [u8]) -> Result<&'d [u8], Dropped> {
        let Some(key) = &self.key else {
            return datagram.get(HEADER_LEN..).ok_or(Dropped::Malformed);
        };
        let Some(split) = datagram.len().checked_sub(TAG_LEN) else {
            return Err(Dropped::Forged);
        };
        if split < HEADER_LEN {
            return Err(Dropped::Forged);
        }
        let (sealed, tag) = datagram.split_at(split);
        if !key.verify(sealed, tag) {
            return Err(Dropped::Forged);
        }
        Ok(&sealed[HEADER_LEN..])
    }
}

/// Why a received datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Not a dlm datagram, too large, cut short, or its message does not decode.
    Malformed,
    /// Its token names no connection open here, or a connection of another kind.
    Unknown,
    /// Its tag is missing or does not verify.
    Forged,
    /// Authentic, but refused: a peer message from another sender than the connection's, or
    /// the node's input full.
    Refused,
}

/// A received datagram's kind and token, read before anything else is trusted.
pub(crate) fn header(datagram: &[u8]) -> Result<(Kind, Token), Dropped> {
    if datagram.len() > MAX_DATAGRAM || datagram.len() < HEADER_LEN {
        return Err(Dropped::Malformed);
    }
    if datagram[..MAGIC.len()] != MAGIC {
        return Err(Dropped::Malformed);
    }
    let kind = Kind::from_byte(datagram[MAGIC.len()]).ok_or(Dropped::Malformed)?;
    let mut token = Token::default();
    token.copy_from_slice(&datagram[MAGIC.len() + 1..HEADER_LEN]);
    Ok((kind, token))
}

/// A fresh token from the operating system's generator.
pub(crate) fn fresh_token() -> Result<Token, crate::TcpError> {
    let mut token = Token::default();
    getrandom::fill(&mut token).map_err(|e| crate::TcpError::Random(e.to_string()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(byte: u8) -> Binding {
        Binding {
            token: [byte; TOKEN_LEN],
            key: DatagramKey::new(&[byte; 32]),
        }
    }

    #[test]
    fn a_sealed_datagram_opens_with_its_binding_only() {
        let binding = keyed(1);
        let datagram = binding.seal(Kind::Peer, b"hello").unwrap();
        assert_eq!(header(&datagram), Ok((Kind::Peer, [1; TOKEN_LEN])));
        assert_eq!(binding.open(&datagram), Ok(&b"hello"[..]));
        // Another connection's key.
        let other = Binding {
            token: [1; TOKEN_LEN],
            key: DatagramKey::new(&[2; 32]),
        };
        assert_eq!(other.open(&datagram), Err(Dropped::Forged));
        // Without its tag, or with a bit changed anywhere.
        assert_eq!(
            binding.open(&datagram[..datagram.len() - TAG_LEN]),
            Err(Dropped::Forged)
        );
        for at in 0..datagram.len() {
            let mut changed = datagram.clone();
            changed[at] ^= 0x10;
            assert_eq!(binding.open(&changed), Err(Dropped::Forged), "byte {at}");
        }
        // A datagram sealed without a key does not pass a keyed binding.
        let unkeyed = Binding {
            token: [1; TOKEN_LEN],
            key: None,
        };
        let plain = unkeyed.seal(Kind::Peer, b"hello").unwrap();
        assert_eq!(binding.open(&plain), Err(Dropped::Forged));
        assert_eq!(unkeyed.open(&plain), Ok(&b"hello"[..]));
    }

    #[test]
    fn the_kind_is_under_the_tag() {
        let binding = keyed(3);
        let mut datagram = binding.seal(Kind::Request, b"call").unwrap();
        datagram[MAGIC.len()] = Kind::Response as u8;
        assert_eq!(header(&datagram).map(|(k, _)| k), Ok(Kind::Response));
        assert_eq!(binding.open(&datagram), Err(Dropped::Forged));
    }

    #[test]
    fn garbage_and_oversized_datagrams_are_malformed() {
        assert_eq!(header(b""), Err(Dropped::Malformed));
        assert_eq!(header(b"DLMd"), Err(Dropped::Malformed));
        let binding = keyed(4);
        let good = binding.seal(Kind::Peer, b"x").unwrap();
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert_eq!(header(&bad_magic), Err(Dropped::Malformed));
        let mut bad_kind = good.clone();
        bad_kind[MAGIC.len()] = 9;
        assert_eq!(header(&bad_kind), Err(Dropped::Malformed));
        assert_eq!(
            header(&vec![0u8; MAX_DATAGRAM + 1]),
            Err(Dropped::Malformed)
        );
    }

    #[test]
    fn a_payload_that_would_not_fit_is_not_sealed() {
        let binding = keyed(5);
        let room = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;
        assert_eq!(
            binding.seal(Kind::Peer, &vec![7; room]).map(|d| d.len()),
            Some(MAX_DATAGRAM)
        );
        assert!(binding.seal(Kind::Peer, &vec![7; room + 1]).is_none());
    }

    #[test]
    fn fresh_tokens_differ() {
        assert_ne!(fresh_token().unwrap(), fresh_token().unwrap());
    }
}
