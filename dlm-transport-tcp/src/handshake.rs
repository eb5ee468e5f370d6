//! Both sides of the handshake.

use crate::error::TcpError;
use crate::wire::{
    encode_frame, read_frame, Hello, HelloAnswer, HelloRole, HANDSHAKE_MAX_FRAME, MAGIC,
    PROTOCOL_VERSION,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A connection past its handshake: a buffered reader and the raw writer.
pub(crate) type Halves = (BufReader<OwnedReadHalf>, OwnedWriteHalf);

/// Connects to `addr` and introduces ourselves as `role`.
pub(crate) async fn connect(
    addr: SocketAddr,
    cluster_id: u64,
    role: HelloRole,
    connect_timeout: Duration,
    handshake_timeout: Duration,
) -> Result<Halves, TcpError> {
    let stream = timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| TcpError::Timeout("connect"))??;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        cluster_id,
        role,
    };
    let exchange = async {
        write
            .write_all(&encode_frame(&hello, HANDSHAKE_MAX_FRAME)?)
            .await?;
        match read_frame::<_, HelloAnswer>(&mut read, HANDSHAKE_MAX_FRAME).await? {
            Some(HelloAnswer::Accepted) => Ok(()),
            Some(HelloAnswer::Refused(reason)) => Err(TcpError::Refused(reason)),
            None => Err(TcpError::Refused(
                "connection closed during the handshake".into(),
            )),
        }
    };
    timeout(handshake_timeout, exchange)
        .await
        .map_err(|_| TcpError::Timeout("handshake"))??;
    Ok((read, write))
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
        return Err(format!(
            "protocol version {} is not supported (this node speaks {PROTOCOL_VERSION})",
            hello.version
        ));
    }
    if hello.cluster_id != cluster_id {
        return Err(format!(
            "cluster id {} does not match this node's cluster {cluster_id}",
            hello.cluster_id
        ));
    }
    Ok(())
}

/// Reads the caller's [`Hello`] and answers it. Returns the caller's role once accepted.
/// `admit` has the last word on a well-formed hello (e.g. a limit on clients).
pub(crate) async fn accept(
    read: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
    cluster_id: u64,
    handshake_timeout: Duration,
    admit: impl FnOnce(&HelloRole) -> Result<(), String>,
) -> Result<HelloRole, TcpError> {
    let hello = timeout(
        handshake_timeout,
        read_frame::<_, Hello>(read, HANDSHAKE_MAX_FRAME),
    )
    .await
    .map_err(|_| TcpError::Timeout("handshake"))??
    .ok_or_else(|| TcpError::Refused("connection closed before the handshake".into()))?;
    let answer = match check(&hello, cluster_id).and_then(|()| admit(&hello.role)) {
        Ok(()) => HelloAnswer::Accepted,
        Err(reason) => HelloAnswer::Refused(reason),
    };
    // Best effort: the caller may already be gone, and we close the connection anyway.
    let _ = write
        .write_all(&encode_frame(&answer, HANDSHAKE_MAX_FRAME)?)
        .await;
    match answer {
        HelloAnswer::Accepted => Ok(hello.role),
        HelloAnswer::Refused(reason) => Err(TcpError::Refused(reason)),
    }
}
