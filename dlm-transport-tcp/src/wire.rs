//! What goes on the wire: the handshake and the frame format. Public so that tools and tests can
//! speak the protocol (or deliberately misspeak it).

use dlm_core::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// First field of every handshake: "DLM1" in ASCII.
pub const MAGIC: u32 = 0x444C_4D31;
/// The protocol version this build speaks; connections with another version are refused.
/// Version 2 added the nonces and proofs of the cluster secret ([`crate::auth`]).
/// Version 3 added the liveness signals [`PING`] and [`PONG`], so that each end of a connection
/// can tell a silent peer (a pulled cable, a switch that drops packets without a reset) from an
/// idle one instead of waiting for TCP's retransmission back-off. A version-2 node would read a
/// signal as a frame over its limit and close the connection, hence the new number. It also
/// carries the new meaning of `Op::Cancel` (it undoes a granted acquire, and its answer
/// `Reply::Cancelled` says what it found), which a version-2 peer would decode wrongly.
/// Version 4 added the operators' requests (`Op::Locks`, `Op::Sessions`, `Op::Revoke`), the
/// revoked grants in `Reply::KeptAlive`, and the caller role [`HelloRole::Admin`].
/// Version 5 added membership changes: `Command::Membership` in replicated entries, the ops
/// `AddLearner`, `Promote`, `Remove` and `Members`, their replies, and
/// `Rejection::Membership`.
/// Version 6 added `NodeStatus::leader_addr`, so that a node joining through any member can
/// follow the way to the leader (a version-5 peer would decode the status wrongly).
/// Version 7 added lock kinds: `Op::AcquireAs` (shared locks and semaphores), the rejections
/// `WrongKind` and `NotExclusive`, and several holders with their modes in `Op::Locks` pages
/// (`LockInfo::holders`), which a version-6 peer would decode wrongly.
/// Version 8 added elections and watches: `Op::Proclaim`, `Op::WatchLock`, `Op::TailFile`,
/// their replies and the rejections `ValueTooLarge` and `TooManyWatches`.
/// Version 9 (one release of changes): holders in watch answers named by `ClientTag` (32
/// bits) instead of `ClientId` (128), so that a watch no longer hands out the credential of the
/// session it names; the rejection `TooManyLocks` (a bound on the locks one session holds or
/// waits for); datagram copies ([`crate::Datagrams`]): [`Hello::datagrams`] and
/// [`HelloAnswer::AcceptedWithDatagrams`], which change how a hello and its answer decode; and
/// `ClientRequest::pending` (the seqs below `acked_below` a client still waits on) with the
/// command that carries it in the log, which a version-8 peer would decode wrongly.
pub const PROTOCOL_VERSION: u16 = 9;
/// Largest handshake frame, so that a stranger cannot make us allocate before we know it.
pub const HANDSHAKE_MAX_FRAME: usize = 1024;
/// Length of a frame's length word, before its payload.
pub(crate) const FRAME_HEADER_LEN: usize = 4;
/// Length of a [`Nonce`] in bytes.
pub const NONCE_LEN: usize = 32;

/// Set in a frame's 4-byte length word, it makes the word a liveness signal with no payload
/// instead of a length (the low bits say which signal). No frame is that large: payloads are
/// limited to less than this.
pub const SIGNAL_BIT: u32 = 0x8000_0000;
/// "Are you there?": the listening node answers a client's `PING` with a [`PONG`]. On a peer
/// connection the first `PING` from the connecting node asks the listening one to send a `PONG`
/// every ping interval from then on; the connecting node then pings whenever it has had nothing
/// else to send for a ping interval. Never sent during the handshake.
pub const PING: [u8; 4] = (SIGNAL_BIT | 1).to_be_bytes();
/// "I am here": an answer to [`PING`], needing none. Any bytes count as hearing from the other
/// side; the signals only make sure there are some while it has nothing else to say.
pub const PONG: [u8; 4] = (SIGNAL_BIT | 2).to_be_bytes();

/// What one frame carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<T> {
    /// A message of the connection's type.
    Message(T),
    /// A [`PING`].
    Ping,
    /// A [`PONG`].
    Pong,
}

/// Random bytes drawn for one handshake, so that the proofs made in it are good for it alone.
pub type Nonce = [u8; NONCE_LEN];
/// An HMAC-SHA256 proof of knowing the cluster secret ([`crate::ClusterSecret::proof`]).
pub type Proof = [u8; 32];

/// The first frame on every connection, from the side that connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must be [`MAGIC`].
    pub magic: u32,
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Must match the listening node's cluster id.
    pub cluster_id: u64,
    /// Who is connecting.
    pub role: HelloRole,
    /// With a cluster secret, the caller's nonce: the node must answer with
    /// [`HelloAnswer::Challenge`]. `None` without a secret.
    pub challenge: Option<Nonce>,
    /// Whether the caller would send (or, as a client, receive) copies of small messages as
    /// UDP datagrams beside this connection; a node that takes them answers
    /// [`HelloAnswer::AcceptedWithDatagrams`] instead of `Accepted`.
    pub datagrams: bool,
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloRole {
    /// A peer node; it then sends `PeerMessage` frames and receives nothing.
    Peer(NodeId),
    /// A client; it then sends `ClientRequest` frames and receives `ClientResponse` frames.
    Client,
    /// A client that proves the admin secret (`TcpConfig::admin_secret`) instead of the client
    /// one, so that the node carries its admin requests (`Op::is_admin`). Otherwise a client.
    Admin,
}

/// The listening side's answer to a [`Hello`], and to a [`HelloProof`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloAnswer {
    /// Go ahead.
    Accepted,
    /// Refused, and why; the connection is then closed.
    Refused(String),
    /// The node's answer to a hello with a challenge: its proof over both nonces, and its own
    /// nonce, which the caller's [`HelloProof`] must cover in turn.
    Challenge {
        /// The node's nonce.
        nonce: Nonce,
        /// The node's proof ([`crate::auth::Side::Listener`]).
        proof: Proof,
    },
    /// Go ahead, and send datagrams for this connection with this token (the answer to a
    /// hello that asked for them, from a node that takes them).
    AcceptedWithDatagrams {
        /// Names this connection in every datagram that belongs to it; drawn at random by the
        /// node, and good until the connection closes.
        token: DatagramToken,
    },
}

/// Names one connection in the datagrams that travel beside it.
pub type DatagramToken = [u8; 16];

/// The caller's answer to [`HelloAnswer::Challenge`]; the node then answers `Accepted` or
/// `Refused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloProof {
    /// The node's proof verified; here is the caller's ([`crate::auth::Side::Connector`]).
    Proven(Proof),
    /// The node's proof did not verify, and so the caller hangs up; why, for the node's log.
    Refused(String),
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload does not encode or decode as the expected type.
    #[error("frame does not decode: {0}")]
    Codec(#[from] postcard::Error),
    /// The connection ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `value` as one frame (length prefix included), refusing payloads over `max`.
pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = postcard::to_extend(value, vec![0u8; 4])?;
    let len = buf.len() - 4;
    if len > max || len >= SIGNAL_BIT as usize {
        return Err(FrameError::TooLarge { len, max });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Reads one message frame and decodes it, skipping liveness signals. `Ok(None)` is a clean end
/// of stream between frames.
pub async fn read_frame<R, T>(reader: &mut R, max: usize) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    loop {
        match read_frame_or_signal(reader, max).await? {
            Some(Frame::Message(value)) => return Ok(Some(value)),
            Some(Frame::Ping | Frame::Pong) => {}
            None => return Ok(None),
        }
    }
}

/// Reads one frame: a message, decoded, or a liveness signal. `Ok(None)` is a clean end of stream
/// between frames. A word with [`SIGNAL_BIT`] set that is no known signal is refused as a frame
/// over the limit, as a version-2 reader would have.
pub async fn read_frame_or_signal<R, T>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Frame<T>>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    Ok(match read_raw(reader, max).await? {
        Some(Raw::Payload(payload)) => Some(Frame::Message(postcard::from_bytes(&payload)?)),
        Some(Raw::Signal(PING)) => Some(Frame::Ping),
        Some(Raw::Signal(PONG)) => Some(Frame::Pong),
        Some(Raw::Signal(word)) => return Err(too_large(word, max)),
        None => None,
    })
}

/// Reads one frame's payload, undecoded; a signal is refused (the handshake has none).
/// `Ok(None)` is a clean end of stream between frames.
pub(crate) async fn read_payload<R>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError>
where
    R: AsyncRead + Unpin,
{
    match read_raw(reader, max).await? {
        Some(Raw::Payload(payload)) => Ok(Some(payload)),
        Some(Raw::Signal(word)) => Err(too_large(word, max)),
        None => Ok(None),
    }
}

/// A frame as it arrived.
enum Raw {
    Payload(Vec<u8>),
    /// The length word of a signal.
    Signal([u8; 4]),
}

fn too_large(word: [u8; 4], max: usize) -> FrameError {
    FrameError::TooLarge {
        len: u32::from_be_bytes(word) as usize,
        max,
    }
}

async fn read_raw<R>(reader: &mut R, max: usize) -> Result<Option<Raw>, FrameError>
where
    R: AsyncRead + Unpin,
{
    let mut word = [0u8; 4];
    let first = reader.read(&mut word).await?;
    if first == 0 {
        return Ok(None);
    }
    read_rest(reader, &mut word[first..]).await?;
    let len = u32::from_be_bytes(word);
    if len & SIGNAL_BIT != 0 {
        return Ok(Some(Raw::Signal(word)));
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len];
    read_rest(reader, &mut payload).await?;
    Ok(Some(Raw::Payload(payload)))
}

async fn read_rest<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_the_limit_applies_both_ways() {
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster_id: 3,
            role: HelloRole::Peer(NodeId(2)),
            challenge: Some([9; NONCE_LEN]),
            datagrams: true,
        };
        let frame = encode_frame(&hello, 64).unwrap();
        assert_eq!(frame[..4], ((frame.len() - 4) as u32).to_be_bytes());
        let got: Option<Hello> = read_frame(&mut &frame[..], 64).await.unwrap();
        assert_eq!(got, Some(hello.clone()));
        assert!(matches!(
            encode_frame(&hello, 2),
            Err(FrameError::TooLarge { max: 2, .. })
        ));
        let refused = read_frame::<_, Hello>(&mut &frame[..], 2).await;
        assert!(matches!(refused, Err(FrameError::TooLarge { .. })));
        let cut = read_frame::<_, Hello>(&mut &frame[..frame.len() - 1], 64).await;
        assert!(matches!(cut, Err(FrameError::Truncated)));
        let empty = read_frame::<_, Hello>(&mut &[][..], 64).await.unwrap();
        assert_eq!(empty, None);
    }

    #[tokio::test]
    async fn signals_are_told_from_messages_and_skipped_by_read_frame() {
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster_id: 3,
            role: HelloRole::Client,
            challenge: None,
            datagrams: false,
        };
        let mut stream = PING.to_vec();
        stream.extend_from_slice(&encode_frame(&hello, 64).unwrap());
        stream.extend_from_slice(&PONG);
        let mut reader = &stream[..];
        let mut got = Vec::new();
        while let Some(frame) = read_frame_or_signal::<_, Hello>(&mut reader, 64)
            .await
            .unwrap()
        {
            got.push(frame);
        }
        assert_eq!(
            got,
            [Frame::Ping, Frame::Message(hello.clone()), Frame::Pong]
        );
        let only: Option<Hello> = read_frame(&mut &stream[..], 64).await.unwrap();
        assert_eq!(only, Some(hello));
        let none: Option<Hello> = read_frame(&mut &PONG[..], 64).await.unwrap();
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn an_unknown_signal_or_a_signal_in_the_handshake_is_refused() {
        let unknown = (SIGNAL_BIT | 77).to_be_bytes();
        let got = read_frame::<_, Hello>(&mut &unknown[..], 64).await;
        assert!(matches!(got, Err(FrameError::TooLarge { .. })), "{got:?}");
        let got = read_payload(&mut &PING[..], HANDSHAKE_MAX_FRAME).await;
        assert!(matches!(got, Err(FrameError::TooLarge { .. })), "{got:?}");
    }

    #[test]
    fn the_largest_handshake_frames_fit_the_handshake_limit() {
        let hello = Hello {
            magic: MAGIC,
            version: u16::MAX,
            cluster_id: u64::MAX,
            role: HelloRole::Peer(NodeId(u64::MAX)),
            challenge: Some([0xff; NONCE_LEN]),
            datagrams: true,
        };
        let challenge = HelloAnswer::Challenge {
            nonce: [0xff; NONCE_LEN],
            proof: [0xff; 32],
        };
        assert!(encode_frame(&hello, HANDSHAKE_MAX_FRAME).is_ok());
        assert!(encode_frame(&challenge, HANDSHAKE_MAX_FRAME).is_ok());
        assert!(encode_frame(&HelloProof::Proven([0xff; 32]), HANDSHAKE_MAX_FRAME).is_ok());
        let token = HelloAnswer::AcceptedWithDatagrams { token: [0xff; 16] };
        assert!(encode_frame(&token, HANDSHAKE_MAX_FRAME).is_ok());
    }
}
