//! Properties of the handshake proofs: a proof is good for the exact secret, side and transcript
//! it was made for and for no other, including near misses (one field changed, the two nonces
//! swapped, a peer's role against a client's). The handshake accepts a proof when it equals the
//! one it computes (in constant time), so proofs that differ are proofs that do not verify.

use dlm_core::NodeId;
use dlm_transport_tcp::auth::{Side, Transcript};
use dlm_transport_tcp::wire::{HelloRole, Nonce};
use dlm_transport_tcp::ClusterSecret;
use proptest::prelude::*;

/// Everything a proof depends on. The secret has a fixed length: HMAC pads a short key with
/// zero bytes, so a key and the same key followed by zeros are one key, and with a fixed length
/// different bytes are a different key.
#[derive(Clone, Debug, PartialEq)]
struct Input {
    secret: [u8; 32],
    side: Side,
    transcript: Transcript,
}

impl Input {
    fn proof(&self) -> [u8; 32] {
        ClusterSecret::new(self.secret)
            .unwrap()
            .proof(self.side, &self.transcript)
    }
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Listener), Just(Side::Connector)]
}

/// Few values, so that two draws are often alike or nearly alike (`Peer(0)` against `Client`).
fn role() -> impl Strategy<Value = HelloRole> {
    prop_oneof![
        Just(HelloRole::Client),
        Just(HelloRole::Admin),
        Just(HelloRole::Peer(NodeId(0))),
        Just(HelloRole::Peer(NodeId(1))),
        any::<u64>().prop_map(|id| HelloRole::Peer(NodeId(id))),
    ]
}

fn nonce() -> impl Strategy<Value = Nonce> {
    prop_oneof![Just([0; 32]), Just([1; 32]), any::<Nonce>()]
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![Just([7; 32]), any::<[u8; 32]>()],
        side(),
        prop_oneof![0u64..3, any::<u64>()],
        role(),
        nonce(),
        nonce(),
    )
        .prop_map(|(secret, side, cluster_id, role, a, b)| Input {
            secret,
            side,
            transcript: Transcript {
                cluster_id,
                role,
                connector_nonce: a,
                listener_nonce: b,
            },
        })
}

/// `base` with the fields named in `changes` taken from `other` (0 the secret, 1 the side, 2 the
/// cluster id, 3 the role, 4 and 5 the nonces) or, for 6, its two nonces swapped: near misses
/// as well as unrelated inputs.
fn mix(base: &Input, other: &Input, changes: &[u8]) -> Input {
    let mut out = base.clone();
    let (t, o) = (&mut out.transcript, &other.transcript);
    for change in changes {
        match change {
            0 => out.secret = other.secret,
            1 => out.side = other.side,
            2 => t.cluster_id = o.cluster_id,
            3 => t.role = o.role,
            4 => t.connector_nonce = o.connector_nonce,
            5 => t.listener_nonce = o.listener_nonce,
            _ => std::mem::swap(&mut t.connector_nonce, &mut t.listener_nonce),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_proof_is_good_for_its_exact_inputs_only(
        base in input(),
        other in input(),
        changes in proptest::collection::vec(0u8..7, 0..4),
    ) {
        let changed = mix(&base, &other, &changes);
        prop_assert_eq!(base.proof(), base.proof(), "a proof is not deterministic");
        prop_assert_eq!(
            base.proof() == changed.proof(),
            base == changed,
            "proofs and inputs disagree: {:?} against {:?}",
            base,
            changed
        );
    }
}
