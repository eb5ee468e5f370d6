//! Both sides of the handshake.
//!
//! Without a cluster secret the caller sends a [`Hello`] and the node answers `Accepted` or
//! `Refused`. With one, the node proves itself first, then the caller ([`crate::auth`]):
//!
//! ```text
//! caller                                      node
//!   Hello { challenge: Some(caller nonce) }  →
//!                   ← Challenge { node nonce, node proof }
//!   checks the node's proof
//!   Proven(caller proof)                     →
//!                                               checks the caller's proof, then its limits
//!                   ← Accepted | Refused(why)
//! ```

use crate::auth::{self, ClusterSecret, Side, Transcript};
use crate::datagram::packet::{Binding, Token};
use crate::error::TcpError;
use crate::liveness::Liveness;
use crate::stream::{self, ConnRead, ConnWrite, Halves};
use crate::wire::{
    encode_frame, read_frame, read_payload, FrameError, Hello, HelloAnswer, HelloProof, HelloRole,
    Nonce, Proof, HANDSHAKE_MAX_FRAME, MAGIC, PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How a dialed connection is carried.
#[derive(Clone)]
pub(crate) enum Carrier {
    /// Plain TCP.
    Plain,
    /// TLS with these settings, checking this name in the node's certificate.
    #[cfg(feature = "tls")]
    Tls(
        std::sync::Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    ),
}

/// Whether `bytes`, the first a caller sent, start a TLS handshake record (content type 22,
/// protocol major version 3). A dlm hello starts with its length, whose first byte is 0.
pub(crate) fn looks_like_tls(bytes: &[u8]) -> bool {
    const HANDSHAKE_RECORD: u8 = 0x16;
    bytes.first() == Some(&HANDSHAKE_RECORD) && bytes.get(1).is_none_or(|major| *major == 3)
}

/// A dialed connection past its handshake.
pub(crate) struct Connected {
    pub(crate) halves: Halves,
    /// What ties datagrams to it, if we asked for them and the node takes them.
    pub(crate) datagrams: Option<Binding>,
}

/// Connects to `addr` over `carrier` and introduces ourselves as `role`, proving we know
/// `secret` if given, and asking for datagrams beside the connection if `datagrams`. The
/// connect is limited by `live` as well as by `connect_timeout`, and the socket gets the
/// kernel's time-outs derived from it before any TLS; the TLS handshake and dlm's are limited
/// by `handshake_timeout` each.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connect(
    addr: SocketAddr,
    carrier: &Carrier,
    cluster_id: u64,
    secret: Option<&ClusterSecret>,
    role: HelloRole,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    live: &Liveness,
    datagrams: bool,
) -> Result<Connected, TcpError> {
    let stream = timeout(
        live.connect_timeout(connect_timeout),
        TcpStream::connect(addr),
    )
    .await
    .map_err(|_| TcpError::Timeout("connect"))??;
    stream.set_nodelay(true)?;
    live.tune(&stream);
    let (mut read, mut write) = match carrier {
        Carrier::Plain => stream::plain(stream),
        #[cfg(feature = "tls")]
        Carrier::Tls(config, name) => {
            crate::tls::connect(stream, config, name.clone(), handshake_timeout).await?
        }
    };
    let auth = match secret {
        Some(secret) => Some((secret, auth::fresh_nonce()?)),
        None => None,
    };
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        cluster_id,
        role,
        challenge: auth.map(|(_, nonce)| nonce),
        datagrams,
    };
    let exchange = async {
        send(&mut write, &hello).await?;
        match (receive::<HelloAnswer>(&mut read).await?, auth) {
            (HelloAnswer::Refused(reason), _) => Err(TcpError::Refused(reason)),
            (
                answer @ (HelloAnswer::Accepted | HelloAnswer::AcceptedWithDatagrams { .. }),
                None,
            ) => Ok(offered(&answer).map(|token| Binding { token, key: None })),
            (HelloAnswer::Accepted | HelloAnswer::AcceptedWithDatagrams { .. }, Some(_)) => {
                Err(TcpError::Auth(auth::NODE_NOT_PROVEN.into()))
            }
            (HelloAnswer::Challenge { .. }, None) => {
                hang_up(&mut write, auth::CALLER_HAS_NO_SECRET).await
            }
            (HelloAnswer::Challenge { nonce, proof }, Some((secret, caller_nonce))) => {
                let transcript = Transcript {
                    cluster_id,
                    role,
                    connector_nonce: caller_nonce,
                    listener_nonce: nonce,
                };
                let token = prove(&mut read, &mut write, secret, &transcript, &proof).await?;
                Ok(token.and_then(|token| {
                    let key = secret.datagram_key(&transcript)?;
                    Some(Binding {
                        token,
                        key: Some(key),
                    })
                }))
            }
        }
    };
    let binding = timeout(handshake_timeout, exchange)
        .await
        .map_err(|_| TcpError::Timeout("handshake"))?
        .map_err(reclassify)?;
    Ok(Connected {
        halves: (read, write),
        // A token we did not ask for is ignored.
        datagrams: binding.filter(|_| datagrams),
    })
}

/// The datagram token in a node's acceptance, if it gave one.
fn offered(answer: &HelloAnswer) -> Option<Token> {
    match answer {
        HelloAnswer::AcceptedWithDatagrams { token } => Some(*token),
        _ => None,
    }
}

/// `e`, or the TLS failure under it (see `tls::reclassify`).
pub(crate) fn reclassify(e: TcpError) -> TcpError {
    #[cfg(feature = "tls")]
    return crate::tls::reclassify(e);
    #[cfg(not(feature = "tls"))]
    e
}

/// The caller's side of a challenge: checks the node's proof, then sends its own. Returns the
/// datagram token the node gave with its acceptance, if any.
async fn prove(
    read: &mut BufReader<ConnRead>,
    write: &mut ConnWrite,
    secret: &ClusterSecret,
    transcript: &Transcript,
    node_proof: &Proof,
) -> Result<Option<Token>, TcpError> {
    if !secret.verify(Side::Listener, transcript, node_proof) {
        let why = match transcript.role {
            HelloRole::Admin => auth::NODE_PROOF_BAD_ADMIN,
            _ => auth::NODE_PROOF_BAD,
        };
        return hang_up(write, why).await;
    }
    let proof = HelloProof::Proven(secret.proof(Side::Connector, transcript));
    send(write, &proof).await?;
    match receive::<HelloAnswer>(read).await? {
        HelloAnswer::Accepted => Ok(None),
        HelloAnswer::AcceptedWithDatagrams { token } => Ok(Some(token)),
        HelloAnswer::Refused(reason) => Err(TcpError::Refused(reason)),
        HelloAnswer::Challenge { .. } => Err(TcpError::Refused(
            "the node sent a second challenge: not a dlm node of this version".into(),
        )),
    }
}

/// Fails the handshake for `why`, telling the node first so that its log says why too.
async fn hang_up<T>(write: &mut ConnWrite, why: &str) -> Result<T, TcpError> {
    let error = TcpError::Auth(why.into());
    // Best effort: we close the connection anyway.
    let _ = send(write, &HelloProof::Refused(error.to_string())).await;
    Err(error)
}

/// Why a [`Hello`] is refused, if it is.
pub(crate) fn check(hello: &Hello, cluster_id: u64) -> Result<(), String> {
    if hello.magic != MAGIC {
        return Err(format!(
            "bad magic {:#010x} (expected {MAGIC:#010x}): not a dlm connection",
            hello.magic
        ));
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(unsupported(hello.version));
    }
    if hello.cluster_id != cluster_id {
        return Err(format!(
            "cluster id {} does not match this node's cluster {cluster_id}",
            hello.cluster_id
        ));
    }
    Ok(())
}

fn unsupported(version: u16) -> String {
    format!("protocol version {version} is not supported (this node speaks {PROTOCOL_VERSION})")
}

/// How the node's side of a handshake ends when it does not accept.
enum Stop {
    /// Answer `Refused` with this reason, then close.
    Refuse(String),
    /// Close without an answer (the caller is gone, mute, or not speaking the protocol).
    Abort(TcpError),
}

impl From<TcpError> for Stop {
    fn from(e: TcpError) -> Stop {
        Stop::Abort(e)
    }
}

impl From<FrameError> for Stop {
    fn from(e: FrameError) -> Stop {
        Stop::Abort(e.into())
    }
}

/// Reads the caller's [`Hello`] and answers it (and, with a secret for the caller's role, which
/// `secret_for` picks, checks its proof). Returns the caller's role once accepted, and, if the
/// caller asked for datagrams and `offer` is a token (the node takes them), what ties them to
/// this connection. `admit` has the last word on an authenticated caller (e.g. a limit on
/// clients), so that a caller who cannot authenticate takes no place.
pub(crate) async fn accept<'s>(
    read: &mut BufReader<ConnRead>,
    write: &mut ConnWrite,
    cluster_id: u64,
    secret_for: impl FnOnce(&HelloRole) -> Option<&'s ClusterSecret>,
    handshake_timeout: Duration,
    admit: impl FnOnce(&HelloRole) -> Result<(), String>,
    offer: Option<Token>,
) -> Result<(HelloRole, Option<Binding>), TcpError> {
    let exchange = async {
        let hello = read_hello(read).await?;
        check(&hello, cluster_id).map_err(Stop::Refuse)?;
        let secret = secret_for(&hello.role);
        let transcript = authenticate(read, write, secret, &hello).await?;
        admit(&hello.role).map_err(Stop::Refuse)?;
        let binding = match (offer.filter(|_| hello.datagrams), secret, transcript) {
            (None, _, _) => None,
            (Some(token), Some(secret), Some(transcript)) => {
                secret.datagram_key(&transcript).map(|key| Binding {
                    token,
                    key: Some(key),
                })
            }
            (Some(token), _, _) => Some(Binding { token, key: None }),
        };
        Ok((hello.role, binding))
    };
    let outcome = timeout(handshake_timeout, exchange)
        .await
        .map_err(|_| TcpError::Timeout("handshake"))?;
    // Best effort, both ways: the caller may already be gone, and a refusal closes anyway.
    let reason = match outcome {
        Ok((role, binding)) => {
            let answer = match &binding {
                Some(binding) => HelloAnswer::AcceptedWithDatagrams {
                    token: binding.token,
                },
                None => HelloAnswer::Accepted,
            };
            let _ = send(write, &answer).await;
            return Ok((role, binding));
        }
        Err(Stop::Abort(e)) => return Err(e),
        Err(Stop::Refuse(reason)) => reason,
    };
    let _ = send(write, &HelloAnswer::Refused(reason.clone())).await;
    Err(TcpError::Refused(reason))
}

/// The caller's hello. One of another protocol version may not decode as ours, but its magic
/// and version (always its first fields) still do, and then it is refused for its version.
async fn read_hello(read: &mut BufReader<ConnRead>) -> Result<Hello, Stop> {
    if looks_like_tls(read.fill_buf().await.map_err(TcpError::Io)?) {
        return Err(Stop::Abort(TcpError::Refused(
            "the caller started a TLS handshake, but this node serves plain TCP (no TLS \
             certificate configured)"
                .into(),
        )));
    }
    let payload = read_payload(read, HANDSHAKE_MAX_FRAME)
        .await?
        .ok_or_else(|| TcpError::Refused("connection closed before the handshake".into()))?;
    match postcard::from_bytes::<Hello>(&payload) {
        Ok(hello) => Ok(hello),
        Err(e) => match postcard::from_bytes::<(u32, u16)>(&payload) {
            Ok((MAGIC, version)) if version != PROTOCOL_VERSION => {
                Err(Stop::Refuse(unsupported(version)))
            }
            _ => Err(FrameError::Codec(e).into()),
        },
    }
}

/// With a secret, has the caller prove it knows it (after proving that we do); returns the
/// handshake's transcript then.
async fn authenticate(
    read: &mut BufReader<ConnRead>,
    write: &mut ConnWrite,
    secret: Option<&ClusterSecret>,
    hello: &Hello,
) -> Result<Option<Transcript>, Stop> {
    let (secret, caller_nonce): (&ClusterSecret, Nonce) = match (secret, hello.challenge) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(Stop::Refuse(auth::REQUIRES_SECRET.into())),
        (None, Some(_)) => return Err(Stop::Refuse(auth::HAS_NO_SECRET.into())),
        (Some(secret), Some(nonce)) => (secret, nonce),
    };
    let transcript = Transcript {
        cluster_id: hello.cluster_id,
        role: hello.role,
        connector_nonce: caller_nonce,
        listener_nonce: auth::fresh_nonce()?,
    };
    let challenge = HelloAnswer::Challenge {
        nonce: transcript.listener_nonce,
        proof: secret.proof(Side::Listener, &transcript),
    };
    send(write, &challenge).await?;
    match receive::<HelloProof>(read).await? {
        HelloProof::Proven(proof) if secret.verify(Side::Connector, &transcript, &proof) => {
            Ok(Some(transcript))
        }
        HelloProof::Proven(_) => Err(Stop::Refuse(auth::CALLER_PROOF_BAD.into())),
        HelloProof::Refused(reason) => Err(Stop::Abort(TcpError::Refused(format!(
            "the caller hung up: {reason}"
        )))),
    }
}

async fn send<T: Serialize>(write: &mut ConnWrite, value: &T) -> Result<(), TcpError> {
    write
        .write_all(&encode_frame(value, HANDSHAKE_MAX_FRAME)?)
        .await?;
    // Pushes a TLS record out; on plain TCP it does nothing.
    write.flush().await?;
    Ok(())
}

/// The next handshake frame; the connection closing instead is a refusal.
async fn receive<T: DeserializeOwned>(read: &mut BufReader<ConnRead>) -> Result<T, TcpError> {
    read_frame(read, HANDSHAKE_MAX_FRAME)
        .await?
        .ok_or_else(|| TcpError::Refused("connection closed during the handshake".into()))
}

/// Answers a caller that did not start TLS on a node that serves TLS only: its hello, if it
/// sent one, gets a refusal saying so; anything else just closes. Returns what to log.
#[cfg(feature = "tls")]
pub(crate) async fn refuse_plain(
    (mut read, mut write): Halves,
    handshake_timeout: Duration,
) -> TcpError {
    const WHY: &str = "this node serves TLS only: connect with TLS (a client needs the cluster's \
                       CA, --tls-ca)";
    match timeout(handshake_timeout, read_hello(&mut read)).await {
        Err(_) => return TcpError::Timeout("handshake"),
        Ok(Err(Stop::Abort(e))) => {
            return TcpError::Refused(format!("neither a TLS handshake nor a dlm hello: {e}"))
        }
        // A hello, of this version or another: a dlm caller, which can be told why.
        Ok(Err(Stop::Refuse(_)) | Ok(_)) => {}
    }
    // Best effort: the caller may be gone already.
    let _ = timeout(
        handshake_timeout,
        send(&mut write, &HelloAnswer::Refused(WHY.into())),
    )
    .await;
    TcpError::Refused(format!("a plain TCP caller: {WHY}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn a_tls_handshake_record_is_told_from_a_dlm_hello() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
        assert!(looks_like_tls(&[0x16]));
        assert!(!looks_like_tls(&[0x16, 0x04]));
        assert!(!looks_like_tls(&[0x00, 0x00, 0x00, 0x2a]));
        assert!(!looks_like_tls(&[]));
    }

    #[tokio::test]
    async fn a_plain_node_names_a_tls_caller_in_its_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut caller = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        // The first bytes of a ClientHello.
        caller
            .write_all(&[0x16, 0x03, 0x01, 0x00, 0xf0])
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (mut read, mut write) = stream::plain(stream);
        let refused = accept(
            &mut read,
            &mut write,
            1,
            |_| None,
            Duration::from_secs(10),
            |_| Ok(()),
            None,
        )
        .await;
        match refused {
            Err(TcpError::Refused(why)) => assert!(why.contains("serves plain TCP"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
