//! The shared cluster secret and the proofs made with it during the handshake.
//!
//! The secret never crosses the wire. Each side proves it knows it with an HMAC-SHA256 over the
//! handshake's [`Transcript`]: a fresh nonce from each side, the cluster id and the caller's role.
//! Because the verifier's own nonce is in it, a proof is good for one handshake only (a recorded
//! one cannot be replayed); because each side's proof starts with a label of its own ([`Side`]),
//! one side's proof cannot be reflected back as the other's.
//!
//! This authenticates the two ends of a connection when it opens; it neither encrypts nor
//! authenticates the frames that follow, so an attacker on the path can still read them, or take
//! over a connection after its handshake. Where that matters, run the cluster on a private
//! network or inside a tunnel.

use crate::error::TcpError;
use crate::wire::{HelloRole, Nonce, Proof, PROTOCOL_VERSION};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The refusal a node with a secret sends a caller without one.
pub const REQUIRES_SECRET: &str = "authentication failed: this node requires the cluster secret";
/// The refusal a node without a secret sends a caller that asks it for a proof.
pub const HAS_NO_SECRET: &str =
    "authentication failed: the caller has a cluster secret but this node has none";
/// The refusal a node sends a caller whose proof is wrong.
pub const CALLER_PROOF_BAD: &str =
    "authentication failed: the caller's proof did not verify: wrong secret?";
/// Why a caller hangs up on a node whose proof is wrong (after "authentication failed: ").
pub const NODE_PROOF_BAD: &str = "the node's proof did not verify: wrong secret?";
/// As [`NODE_PROOF_BAD`], for a caller that came with the admin secret.
pub const NODE_PROOF_BAD_ADMIN: &str = "the node's proof did not verify against the admin \
     secret: a wrong one, or a node without any (then connect without it: no \
     --admin-secret-file or DLM_ADMIN_SECRET_FILE)";
/// Why a caller with a secret hangs up on a node that accepts it without a proof.
pub const NODE_NOT_PROVEN: &str =
    "the node accepted without proving it knows the cluster secret (has it none?)";
/// Why a caller without a secret hangs up on a node that asks it for a proof.
pub const CALLER_HAS_NO_SECRET: &str = "the node requires a cluster secret and none is configured";
/// Why a client connection's admin request is refused on a node that has an admin secret.
pub const NEEDS_ADMIN_SECRET: &str =
    "this request needs the admin secret; connect with it (--admin-secret-file)";
/// Why it is refused on a node that authenticates clients but has no admin secret.
pub const NO_ADMIN_SECRET: &str = "this node authenticates clients (a secret or mutual TLS) \
     and has no admin secret, so it serves no admin requests";

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Too short to be hard to guess.
    #[error("the cluster secret is {len} bytes long; it must have at least {min}")]
    TooShort {
        /// Its length.
        len: usize,
        /// The least accepted, [`ClusterSecret::MIN_LEN`].
        min: usize,
    },
    /// The secret file could not be read.
    #[error("cannot read the secret file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// Why (the operating system's words).
        reason: String,
    },
}

/// A secret shared by every node and client of a cluster; with one set, a connection is
/// accepted only if both ends prove they know it.
///
/// It keeps only the HMAC key state, and its `Debug` prints no part of it, so that it can sit in
/// a config that is logged.
#[derive(Clone)]
pub struct ClusterSecret {
    keyed: HmacSha256,
}

impl ClusterSecret {
    /// The shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A secret from its bytes (at least [`ClusterSecret::MIN_LEN`]): from a file, say, or from
    /// `head -c 32 /dev/urandom | base64`.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<ClusterSecret, SecretError> {
        let bytes = bytes.as_ref();
        let too_short = SecretError::TooShort {
            len: bytes.len(),
            min: Self::MIN_LEN,
        };
        if bytes.len() < Self::MIN_LEN {
            return Err(too_short);
        }
        // HMAC pads a short key with zeros and hashes a long one, so "k" and "k\0", or a long
        // secret and its hash, would be one key. Keying with a labelled hash of the secret
        // makes secrets that differ in any byte differ as keys. HMAC takes a key of any length,
        // so this cannot fail; mapped all the same.
        let key = Sha256::new()
            .chain_update(b"dlm cluster secret")
            .chain_update(bytes)
            .finalize();
        let keyed = HmacSha256::new_from_slice(&key).map_err(|_| too_short)?;
        Ok(ClusterSecret { keyed })
    }

    /// A secret from the bytes of the file at `path`, less one trailing newline (`\n` or
    /// `\r\n`), so that a file written by `echo` or an editor works.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<ClusterSecret, SecretError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| SecretError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        ClusterSecret::new(bytes)
    }

    /// `side`'s proof for the handshake `transcript`.
    pub fn proof(&self, side: Side, transcript: &Transcript) -> Proof {
        self.mac(side, transcript).finalize().into_bytes().into()
    }

    /// Whether `proof` is `side`'s proof for `transcript`, compared in constant time.
    pub(crate) fn verify(&self, side: Side, transcript: &Transcript, proof: &Proof) -> bool {
        self.mac(side, transcript).verify_slice(proof).is_ok()
    }

    /// The key of the datagrams that travel beside the connection whose handshake was
    /// `transcript` (see the module docs of `datagram` in the source): both ends derive it,
    /// and nobody without the secret can, nor from another handshake. `None` never happens in
    /// practice (HMAC takes any key); a connection without a key gets no datagrams.
    pub(crate) fn datagram_key(
        &self,
        transcript: &Transcript,
    ) -> Option<crate::datagram::packet::DatagramKey> {
        let bytes: [u8; 32] = self
            .labelled(b"dlm datagram key", transcript)
            .finalize()
            .into_bytes()
            .into();
        crate::datagram::packet::DatagramKey::new(&bytes)
    }

    fn mac(&self, side: Side, t: &Transcript) -> HmacSha256 {
        self.labelled(side.label(), t)
    }

    fn labelled(&self, label: &[u8], t: &Transcript) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        // Every field has a fixed length or a length prefix, so no two transcripts encode alike.
        mac.update(&[label.len() as u8]);
        mac.update(label);
        mac.update(&PROTOCOL_VERSION.to_be_bytes());
        mac.update(&t.cluster_id.to_be_bytes());
        match t.role {
            HelloRole::Peer(id) => {
                mac.update(&[0]);
                mac.update(&id.get().to_be_bytes());
            }
            HelloRole::Client => mac.update(&[1]),
            HelloRole::Admin => mac.update(&[2]),
        }
        mac.update(&t.connector_nonce);
        mac.update(&t.listener_nonce);
        mac
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

/// Which end of a connection made a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The node that accepted the connection.
    Listener,
    /// The node or client that opened it.
    Connector,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Listener => b"dlm listener",
            Side::Connector => b"dlm connector",
        }
    }
}

/// What both proofs of one handshake cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// The cluster id of the caller's hello.
    pub cluster_id: u64,
    /// The caller's role, so that a proof recorded on a client's connection cannot be moved to
    /// a member's. (It does not keep a client that knows the secret from claiming to be a
    /// member: a separate member secret, `TcpConfig::peer_secret`, does that.)
    pub role: HelloRole,
    /// The nonce of the caller's hello.
    pub connector_nonce: Nonce,
    /// The nonce of the node's challenge.
    pub listener_nonce: Nonce,
}

/// A nonce from the operating system's generator.
pub(crate) fn fresh_nonce() -> Result<Nonce, TcpError> {
    let mut nonce = Nonce::default();
    getrandom::fill(&mut nonce).map_err(|e| TcpError::Random(e.to_string()))?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_secret_file_loses_one_trailing_newline_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("dlm-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, b"0123456789abcdef\r\n").unwrap();
        let from_file = ClusterSecret::from_file(&path).unwrap();
        let direct = ClusterSecret::new(b"0123456789abcdef").unwrap();
        let t = transcript();
        assert_eq!(
            from_file.proof(Side::Listener, &t),
            direct.proof(Side::Listener, &t)
        );
        std::fs::write(&path, b"short\n").unwrap();
        assert!(matches!(
            ClusterSecret::from_file(&path),
            Err(SecretError::TooShort { len: 5, .. })
        ));
        let missing = ClusterSecret::from_file(dir.join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    use super::*;
    use dlm_core::NodeId;

    const BYTES: &[u8] = b"correct horse battery staple";

    fn transcript() -> Transcript {
        Transcript {
            cluster_id: 7,
            role: HelloRole::Peer(NodeId(2)),
            connector_nonce: [1; 32],
            listener_nonce: [2; 32],
        }
    }

    #[test]
    fn a_short_secret_is_refused_with_its_length() {
        assert_eq!(
            ClusterSecret::new(&BYTES[..15]).map(|_| ()),
            Err(SecretError::TooShort { len: 15, min: 16 })
        );
        assert!(ClusterSecret::new(&BYTES[..16]).is_ok());
    }

    #[test]
    fn debug_shows_no_byte_of_the_secret() {
        let secret = ClusterSecret::new(BYTES).unwrap();
        assert_eq!(format!("{secret:?}"), "ClusterSecret(<redacted>)");
        assert_eq!(format!("{secret:#?}"), "ClusterSecret(<redacted>)");
    }

    #[test]
    fn a_proof_verifies_only_for_its_side_transcript_and_secret() {
        let secret = ClusterSecret::new(BYTES).unwrap();
        let t = transcript();
        let proof = secret.proof(Side::Listener, &t);
        assert!(secret.verify(Side::Listener, &t, &proof));
        // Reflected as the other side's.
        assert!(!secret.verify(Side::Connector, &t, &proof));
        // Another secret.
        let other = ClusterSecret::new(b"correct horse battery stapler").unwrap();
        assert!(!other.verify(Side::Listener, &t, &proof));
        // Any field changed.
        let changed = [
            Transcript { cluster_id: 8, ..t },
            Transcript {
                role: HelloRole::Client,
                ..t
            },
            Transcript {
                role: HelloRole::Peer(NodeId(3)),
                ..t
            },
            Transcript {
                connector_nonce: [3; 32],
                ..t
            },
            Transcript {
                listener_nonce: [3; 32],
                ..t
            },
        ];
        for c in changed {
            assert!(!secret.verify(Side::Listener, &c, &proof), "{c:?}");
        }
    }

    #[test]
    fn a_datagram_key_is_neither_a_proof_nor_another_handshakes_key() {
        use crate::datagram::packet::{Binding, Kind};
        let secret = ClusterSecret::new(BYTES).unwrap();
        let t = transcript();
        let seal = |key| Binding {
            token: [0; 16],
            key,
        };
        let ours = seal(secret.datagram_key(&t));
        let datagram = ours.seal(Kind::Peer, b"m").unwrap();
        assert!(ours.open(&datagram).is_ok());
        // Both ends derive the same key from the same handshake.
        assert!(seal(secret.datagram_key(&t)).open(&datagram).is_ok());
        let other_handshake = Transcript {
            listener_nonce: [9; 32],
            ..t
        };
        assert!(seal(secret.datagram_key(&other_handshake))
            .open(&datagram)
            .is_err());
        let other_secret = ClusterSecret::new(b"correct horse battery stapler").unwrap();
        assert!(seal(other_secret.datagram_key(&t)).open(&datagram).is_err());
        // Not the bytes of either proof.
        let key_as_proof: [u8; 32] = secret
            .labelled(b"dlm datagram key", &t)
            .finalize()
            .into_bytes()
            .into();
        assert_ne!(key_as_proof, secret.proof(Side::Listener, &t));
        assert_ne!(key_as_proof, secret.proof(Side::Connector, &t));
    }

    #[test]
    fn secrets_that_differ_only_by_trailing_zeros_are_different_keys() {
        let t = transcript();
        let short = ClusterSecret::new(BYTES).unwrap();
        let mut padded = BYTES.to_vec();
        padded.push(0);
        let padded = ClusterSecret::new(padded).unwrap();
        let proof = short.proof(Side::Listener, &t);
        assert!(!padded.verify(Side::Listener, &t, &proof));
    }

    #[test]
    fn fresh_nonces_differ() {
        assert_ne!(fresh_nonce().unwrap(), fresh_nonce().unwrap());
    }
}
