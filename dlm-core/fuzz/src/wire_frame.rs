//! Target `wire_frame`: bytes arriving on a TCP connection, read by the production frame reader
//! (`dlm_transport_tcp::wire::read_frame`) as each type the transport reads, plus the snapshot
//! decoder (`StateMachine::from_bytes`) that an `InstallSnapshot` or the snapshot file feeds.
//!
//! Input: one selector byte, then the stream. Frames are read until the stream ends or a frame
//! is refused, as a connection does. Every decoded value must survive encode → decode unchanged.

use dlm_core::message::PeerMessage;
use dlm_core::{ClientRequest, ClientResponse, Entry, NodeId, StateMachine};
use dlm_transport_tcp::wire::{self, FrameError, Hello, HelloAnswer, HANDSHAKE_MAX_FRAME};
use dlm_transport_tcp::TcpConfig;
use futures::executor::block_on;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::OnceLock;

/// The frame limit a node applies to peers and clients by default.
fn max_frame() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        TcpConfig::new(NodeId(1), addr, 0).max_frame
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    match selector % 7 {
        // What a server reads from a client after the handshake.
        0 => frames::<ClientRequest>(stream, max_frame()),
        // What a client reads from a server.
        1 => frames::<ClientResponse>(stream, max_frame()),
        // What a server reads from a peer.
        2 => frames::<PeerMessage>(stream, max_frame()),
        // The handshake, both directions.
        3 => frames::<Hello>(stream, HANDSHAKE_MAX_FRAME),
        4 => frames::<HelloAnswer>(stream, HANDSHAKE_MAX_FRAME),
        // A log entry as the WAL stores it (the payload of one record).
        5 => payload::<Entry>(stream),
        // Snapshot data, from a leader's InstallSnapshot chunks or the snapshot file.
        _ => snapshot(stream),
    }
}

fn frames<T>(stream: &[u8], max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut reader = stream;
    loop {
        match block_on(wire::read_frame::<_, T>(&mut reader, max)) {
            Ok(Some(value)) => round_trip(&value),
            Ok(None) => return,
            // A refused frame closes the connection.
            Err(FrameError::TooLarge { .. } | FrameError::Codec(_) | FrameError::Truncated) => {
                return
            }
            Err(FrameError::Io(e)) => panic!("reading from memory failed: {e}"),
        }
    }
}

/// Encoding a decoded value and decoding it again gives the same value, and encoding is then a
/// fixed point (postcard may accept non-canonical varints, so the input bytes need not match).
fn round_trip<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let limit = u32::MAX as usize;
    let frame = wire::encode_frame(value, limit).expect("a decoded value encodes");
    let again: T = block_on(wire::read_frame(&mut &frame[..], limit))
        .expect("a re-encoded frame decodes")
        .expect("a re-encoded frame is not empty");
    assert_eq!(&again, value, "decode(encode(v)) != v");
    let frame2 = wire::encode_frame(&again, limit).expect("encodes again");
    assert_eq!(frame, frame2, "encoding is not deterministic");
}

fn payload<T>(bytes: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    if let Ok(value) = postcard::from_bytes::<T>(bytes) {
        let encoded = postcard::to_allocvec(&value).expect("a decoded value encodes");
        let again: T = postcard::from_bytes(&encoded).expect("a re-encoded value decodes");
        assert_eq!(again, value, "decode(encode(v)) != v");
    }
}

fn snapshot(bytes: &[u8]) {
    if let Ok(sm) = StateMachine::from_bytes(bytes) {
        let encoded = sm.to_bytes().expect("a decoded state machine encodes");
        let again = StateMachine::from_bytes(&encoded).expect("a re-encoded state decodes");
        assert_eq!(again, sm, "decode(encode(sm)) != sm");
    }
}
