//! Target `wire_frame`: bytes arriving on a TCP connection, read by the production frame reader
//! (`dlm_transport_tcp::wire::read_frame`) as each type the transport reads, plus the snapshot
//! decoder (`StateMachine::from_bytes`) that an `InstallSnapshot` or the snapshot file feeds.
//!
//! Input: one selector byte, then the stream. The low three bits of the selector pick the type;
//! for frames, the other five, when not zero, are the most bytes one read returns, as a socket
//! may deliver a frame in pieces. Frames are read until the stream ends or a frame is refused, as
//! a connection does. Every decoded value must survive encode → decode unchanged, within the
//! limit it was read under, and the frames read must not depend on how the bytes arrive.

use dlm_core::message::PeerMessage;
use dlm_core::{ClientRequest, ClientResponse, Entry, NodeId, StateMachine};
use dlm_transport_tcp::wire::{
    self, FrameError, Hello, HelloAnswer, HelloProof, HANDSHAKE_MAX_FRAME,
};
use dlm_transport_tcp::TcpConfig;
use futures::executor::block_on;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

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
    let chunk = usize::from(selector >> 3);
    match selector & 7 {
        // What a server reads from a client after the handshake.
        0 => frames::<ClientRequest>(stream, max_frame(), chunk),
        // What a client reads from a server.
        1 => frames::<ClientResponse>(stream, max_frame(), chunk),
        // What a server reads from a peer.
        2 => frames::<PeerMessage>(stream, max_frame(), chunk),
        // The handshake: what the node reads first, what the caller reads (once or, with a
        // secret, twice), and what the node reads after its challenge.
        3 => frames::<Hello>(stream, HANDSHAKE_MAX_FRAME, chunk),
        4 => frames::<HelloAnswer>(stream, HANDSHAKE_MAX_FRAME, chunk),
        5 => frames::<HelloProof>(stream, HANDSHAKE_MAX_FRAME, chunk),
        // A log entry as the WAL stores it (the payload of one record).
        6 => payload::<Entry>(stream),
        // Snapshot data, from a leader's InstallSnapshot chunks or the snapshot file.
        _ => snapshot(stream),
    }
}

/// What a connection reads from a stream: the frames, then why it stopped.
#[derive(Debug, PartialEq)]
struct Frames<T> {
    values: Vec<T>,
    end: End,
}

/// Why a connection stopped reading.
#[derive(Debug, PartialEq)]
enum End {
    /// The stream ended between frames.
    Clean,
    /// A length prefix over the limit.
    TooLarge { len: usize, max: usize },
    /// A payload that does not decode.
    Codec(postcard::Error),
    /// The stream ended inside a frame.
    Truncated,
}

fn read_all<R, T>(reader: &mut R, max: usize) -> Frames<T>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut values = Vec::new();
    let end = loop {
        match block_on(wire::read_frame::<_, T>(reader, max)) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => break End::Clean,
            // A refused frame closes the connection.
            Err(FrameError::TooLarge { len, max }) => break End::TooLarge { len, max },
            Err(FrameError::Codec(e)) => break End::Codec(e),
            Err(FrameError::Truncated) => break End::Truncated,
            Err(FrameError::Io(e)) => panic!("reading from memory failed: {e}"),
            Err(other) => panic!("a new kind of frame error: {other}"),
        }
    };
    Frames { values, end }
}

fn frames<T>(stream: &[u8], max: usize, chunk: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let whole = read_all::<_, T>(&mut &stream[..], max);
    for value in &whole.values {
        round_trip(value, max);
    }
    if chunk > 0 {
        let pieces = read_all::<_, T>(
            &mut Trickle {
                data: stream,
                chunk,
            },
            max,
        );
        assert_eq!(
            pieces, whole,
            "the frames read depend on how the bytes arrive"
        );
    }
}

/// A stream that returns at most `chunk` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(buf.remaining()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// Encoding a decoded value and decoding it again gives the same value, and encoding is then a
/// fixed point (postcard may accept non-canonical varints, so the input bytes need not match).
/// The encoding is canonical, so never longer than what was read: it fits the same limit, and a
/// value a node accepts is one it could send.
fn round_trip<T>(value: &T, max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let frame = wire::encode_frame(value, max).expect("a decoded value encodes within its limit");
    let again: T = block_on(wire::read_frame(&mut &frame[..], max))
        .expect("a re-encoded frame decodes")
        .expect("a re-encoded frame is not empty");
    assert_eq!(&again, value, "decode(encode(v)) != v");
    let frame2 = wire::encode_frame(&again, max).expect("encodes again");
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
