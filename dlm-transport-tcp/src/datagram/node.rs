//! A node's datagram endpoint: the UDP socket beside its TCP listener, and the connections it
//! takes datagrams for.

use super::packet::{self, Binding, Dropped, Kind, Token};
use super::{Counters, RECEIVE_RETRY};
use crate::tail_probe::TailProbes;
use dlm_core::message::PeerMessage;
use dlm_core::runtime::Incoming;
use dlm_core::{ClientRequest, ConnId, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Who a connection's datagrams come from, as its handshake established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A peer link dialed by this node.
    Peer(NodeId),
    /// A client connection; `admin` if it may run admin requests.
    Client { conn: ConnId, admin: bool },
}

struct Bound {
    role: Role,
    binding: Binding,
    /// Where and when the last authentic request datagram came from: answers are copied
    /// there for [`TailProbes::HOLD`] after it.
    reply_to: Option<(SocketAddr, Instant)>,
}

/// A datagram's message, checked, for the node.
#[derive(Debug)]
pub(crate) enum Received {
    Peer(PeerMessage),
    Request {
        conn: ConnId,
        request: ClientRequest,
    },
}

/// The UDP socket on the node's listening address, and the open connections it takes
/// datagrams for, by token.
pub(crate) struct NodeDatagrams {
    socket: UdpSocket,
    /// Datagrams per message sent.
    copies: usize,
    bound: Mutex<HashMap<Token, Bound>>,
    pub(crate) counters: Counters,
}

impl NodeDatagrams {
    /// Binds the socket on `addr` (the TCP listener's own address and port); each message goes
    /// out as `copies` datagrams.
    pub(crate) async fn bind(addr: SocketAddr, copies: usize) -> std::io::Result<NodeDatagrams> {
        Ok(NodeDatagrams {
            socket: UdpSocket::bind(addr).await?,
            copies: copies.max(1),
            bound: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    fn bound(&self) -> MutexGuard<'_, HashMap<Token, Bound>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A token to offer a connection in its handshake; `None` (no datagrams for it) if the
    /// operating system has no randomness to give.
    pub(crate) fn offer(&self) -> Option<Token> {
        match packet::fresh_token() {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::warn!("no datagram token for a connection: {e}");
                None
            }
        }
    }

    /// Takes datagrams for a connection past its handshake until the guard is dropped (when
    /// the connection closes).
    pub(crate) fn register(self: &Arc<Self>, binding: Binding, role: Role) -> Registered {
        let token = binding.token;
        self.bound().insert(
            token,
            Bound {
                role,
                binding,
                reply_to: None,
            },
        );
        Registered {
            endpoint: self.clone(),
            token,
        }
    }

    /// Sends a copy of a peer message (`payload`, a frame without its length word) to the
    /// node at `to`, on the link's `binding`, if it fits in a datagram.
    pub(crate) fn send_peer(&self, binding: &Binding, payload: &[u8], to: SocketAddr) {
        if let Some(datagram) = binding.seal(Kind::Peer, payload) {
            super::send_now(&self.socket, &datagram, to, &self.counters, self.copies);
        }
    }

    /// Sends a copy of an answer (`payload`) to where the client connection `token` last sent
    /// a request datagram from, if it did within [`TailProbes::HOLD`] before `now`, and if
    /// the answer fits in a datagram. Returns whether it went.
    pub(crate) fn reply(&self, token: &Token, payload: &[u8], now: Instant) -> bool {
        let sealed = {
            let bound = self.bound();
            let Some(b) = bound.get(token) else {
                return false;
            };
            match b.reply_to {
                Some((to, at)) if now.saturating_duration_since(at) < TailProbes::HOLD => {
                    b.binding.seal(Kind::Response, payload).map(|d| (d, to))
                }
                _ => None,
            }
        };
        let Some((datagram, to)) = sealed else {
            return false;
        };
        super::send_now(&self.socket, &datagram, to, &self.counters, self.copies);
        true
    }

    /// Checks a datagram that came from `from` at `now` and returns its message; nothing in it
    /// is trusted before its token and tag check out.
    pub(crate) fn receive(
        &self,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
        max_frame: usize,
    ) -> Result<Received, Dropped> {
        let (kind, token) = packet::header(datagram)?;
        let mut bound = self.bound();
        let b = bound.get_mut(&token).ok_or(Dropped::Unknown)?;
        match (kind, b.role) {
            (Kind::Peer, Role::Peer(peer)) => {
                let payload = b.binding.open(datagram)?;
                drop(bound);
                let msg: PeerMessage = decode(payload, max_frame)?;
                if msg.from != peer {
                    return Err(Dropped::Refused);
                }
                Ok(Received::Peer(msg))
            }
            (Kind::Request, Role::Client { conn, admin }) => {
                let payload = b.binding.open(datagram)?;
                let request: ClientRequest = decode(payload, max_frame)?;
                if request.op.is_admin() && !admin {
                    return Err(Dropped::Refused);
                }
                b.reply_to = Some((from, now));
                Ok(Received::Request { conn, request })
            }
            // A response is a client's to receive; a kind that does not match its
            // connection is no datagram of that connection.
            _ => Err(Dropped::Unknown),
        }
    }

    /// Takes datagrams until the task is aborted, and passes their messages to the node as
    /// its connections' readers would (without waiting: when the node's input is full, a
    /// datagram is dropped, as its TCP copy is on its way).
    pub(crate) async fn serve(self: Arc<Self>, shared: Arc<crate::server::Shared>) {
        // One byte more than the largest datagram, so that a larger one shows as such.
        let mut buf = vec![0u8; packet::MAX_DATAGRAM + 1];
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf).await {
                Ok(got) => got,
                Err(e) => {
                    // ICMP errors for earlier sends show up here on some systems: not fatal.
                    // A pause, so that an error that persists cannot spin the task.
                    tracing::trace!(node = %shared.id, "datagram receive failed: {e}");
                    tokio::time::sleep(RECEIVE_RETRY).await;
                    continue;
                }
            };
            let received = self.receive(&buf[..len], from, Instant::now(), shared.max_frame);
            let incoming = match received {
                Ok(Received::Peer(msg)) => Incoming::Peer(msg),
                Ok(Received::Request { conn, request }) => {
                    shared.conns().spoke(conn, request.client);
                    Incoming::Client { conn, request }
                }
                Err(why) => {
                    tracing::trace!(node = %shared.id, %from, "datagram dropped: {why:?}");
                    self.counters.dropped(why);
                    continue;
                }
            };
            match shared.incoming.try_send(incoming) {
                Ok(()) => self.counters.delivered(),
                Err(_) => self.counters.dropped(Dropped::Refused),
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8], max_frame: usize) -> Result<T, Dropped> {
    if payload.len() > max_frame {
        return Err(Dropped::Malformed);
    }
    postcard::from_bytes(payload).map_err(|_| Dropped::Malformed)
}

/// A connection's datagrams taken until dropped.
pub(crate) struct Registered {
    endpoint: Arc<NodeDatagrams>,
    token: Token,
}

impl Registered {
    pub(crate) fn token(&self) -> Token {
        self.token
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.endpoint.bound().remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::packet::DatagramKey;
    use dlm_core::message::PeerBody;
    use dlm_core::{ClientId, Op, Seq, Term};

    fn peer_message(from: u64) -> PeerMessage {
        PeerMessage {
            from: NodeId(from),
            to: NodeId(1),
            term: Term(4),
            body: PeerBody::TimeoutNow,
        }
    }

    fn request(op: Op) -> ClientRequest {
        ClientRequest {
            client: ClientId(9),
            seq: Seq(3),
            acked_below: Seq(1),
            pending: Vec::new(),
            op,
        }
    }

    fn binding(byte: u8, keyed: bool) -> Binding {
        Binding {
            token: [byte; 16],
            key: keyed.then(|| DatagramKey::new(&[byte; 32])).flatten(),
        }
    }

    async fn endpoint() -> Arc<NodeDatagrams> {
        Arc::new(
            NodeDatagrams::bind("127.0.0.1:0".parse().unwrap(), 1)
                .await
                .unwrap(),
        )
    }

    fn from() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    const MAX: usize = 1 << 20;

    #[tokio::test]
    async fn a_peer_datagram_is_taken_only_on_its_connection_and_from_its_peer() {
        let node = endpoint().await;
        let link = binding(1, true);
        let registered = node.register(link.clone(), Role::Peer(NodeId(2)));
        let now = Instant::now();
        let payload = postcard::to_allocvec(&peer_message(2)).unwrap();
        let datagram = link.seal(Kind::Peer, &payload).unwrap();
        match node.receive(&datagram, from(), now, MAX) {
            Ok(Received::Peer(msg)) => assert_eq!(msg, peer_message(2)),
            other => panic!("{other:?}"),
        }
        // Another key (a forger who saw the token), no tag, another token.
        let forged = binding(1, false).seal(Kind::Peer, &payload).unwrap();
        assert_eq!(
            node.receive(&forged, from(), now, MAX).err(),
            Some(Dropped::Forged)
        );
        let stranger = Binding {
            token: [1; 16],
            key: DatagramKey::new(&[7; 32]),
        };
        let forged = stranger.seal(Kind::Peer, &payload).unwrap();
        assert_eq!(
            node.receive(&forged, from(), now, MAX).err(),
            Some(Dropped::Forged)
        );
        let unknown = binding(2, true).seal(Kind::Peer, &payload).unwrap();
        assert_eq!(
            node.receive(&unknown, from(), now, MAX).err(),
            Some(Dropped::Unknown)
        );
        // A message that names another sender than the link's peer.
        let other = postcard::to_allocvec(&peer_message(3)).unwrap();
        let spoofed = link.seal(Kind::Peer, &other).unwrap();
        assert_eq!(
            node.receive(&spoofed, from(), now, MAX).err(),
            Some(Dropped::Refused)
        );
        // Authentic bytes that are no message.
        let junk = link.seal(Kind::Peer, &[0xff; 8]).unwrap();
        assert_eq!(
            node.receive(&junk, from(), now, MAX).err(),
            Some(Dropped::Malformed)
        );
        // Once the connection closes, its datagrams are strangers.
        drop(registered);
        assert_eq!(
            node.receive(&datagram, from(), now, MAX).err(),
            Some(Dropped::Unknown)
        );
    }

    #[tokio::test]
    async fn a_datagram_of_the_wrong_kind_for_its_connection_is_dropped() {
        let node = endpoint().await;
        let peer = binding(1, false);
        let client = binding(2, false);
        let _p = node.register(peer.clone(), Role::Peer(NodeId(2)));
        let _c = node.register(
            client.clone(),
            Role::Client {
                conn: ConnId(5),
                admin: true,
            },
        );
        let now = Instant::now();
        let req = postcard::to_allocvec(&request(Op::Status)).unwrap();
        let msg = postcard::to_allocvec(&peer_message(2)).unwrap();
        for (datagram, what) in [
            (
                peer.seal(Kind::Request, &req).unwrap(),
                "a request on a peer link",
            ),
            (
                client.seal(Kind::Peer, &msg).unwrap(),
                "a peer message on a client's",
            ),
            (
                client.seal(Kind::Response, &req).unwrap(),
                "a response to the node",
            ),
        ] {
            let got = node.receive(&datagram, from(), now, MAX).err();
            assert_eq!(got, Some(Dropped::Unknown), "{what}");
        }
    }

    #[tokio::test]
    async fn answers_are_copied_only_after_a_request_datagram_and_for_the_hold_time() {
        let node = endpoint().await;
        let client = binding(3, true);
        let registered = node.register(
            client.clone(),
            Role::Client {
                conn: ConnId(5),
                admin: false,
            },
        );
        let token = registered.token();
        let now = Instant::now();
        // No request datagram yet: nowhere to send to.
        assert!(!node.reply(&token, b"answer", now));
        let req = postcard::to_allocvec(&request(Op::Status)).unwrap();
        let datagram = client.seal(Kind::Request, &req).unwrap();
        match node.receive(&datagram, from(), now, MAX) {
            Ok(Received::Request { conn, request: r }) => {
                assert_eq!((conn, r.seq), (ConnId(5), Seq(3)))
            }
            other => panic!("{other:?}"),
        }
        assert!(node.reply(&token, b"answer", now));
        assert!(!node.reply(&token, b"answer", now + TailProbes::HOLD));
        // An answer too large for a datagram keeps to TCP.
        assert!(!node.reply(&token, &vec![0; packet::MAX_DATAGRAM], now));
        // A forged request does not move the answers elsewhere.
        let later = now + TailProbes::HOLD;
        let forged = binding(3, false).seal(Kind::Request, &req).unwrap();
        let elsewhere: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        assert!(node.receive(&forged, elsewhere, later, MAX).is_err());
        assert!(!node.reply(&token, b"answer", later));
    }

    #[tokio::test]
    async fn an_admin_request_by_datagram_needs_an_admin_connection() {
        let node = endpoint().await;
        let client = binding(4, false);
        let _r = node.register(
            client.clone(),
            Role::Client {
                conn: ConnId(6),
                admin: false,
            },
        );
        let admin_op = request(Op::Sessions {
            after: None,
            limit: 10,
        });
        assert!(admin_op.op.is_admin());
        let payload = postcard::to_allocvec(&admin_op).unwrap();
        let datagram = client.seal(Kind::Request, &payload).unwrap();
        let got = node.receive(&datagram, from(), Instant::now(), MAX).err();
        assert_eq!(got, Some(Dropped::Refused));
    }
}
