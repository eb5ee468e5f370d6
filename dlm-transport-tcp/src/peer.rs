//! An outbound link to one peer: a bounded queue and a task that keeps a connection up.

use crate::auth::ClusterSecret;
use crate::handshake;
use crate::queue::OutQueue;
use crate::wire::HelloRole;
use crate::TcpError;
use dlm_core::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

/// The settings a link needs, copied out of the config.
#[derive(Clone)]
pub(crate) struct LinkSettings {
    pub(crate) me: NodeId,
    pub(crate) cluster_id: u64,
    pub(crate) secret: Option<ClusterSecret>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
}

/// A peer's queue and the task that drains it; dropping the link stops the task.
pub(crate) struct PeerLink {
    pub(crate) queue: Arc<OutQueue>,
    task: JoinHandle<()>,
}

impl PeerLink {
    pub(crate) fn start(
        peer: NodeId,
        addr: SocketAddr,
        settings: LinkSettings,
        queue: Arc<OutQueue>,
    ) -> PeerLink {
        let task = tokio::spawn(run(peer, addr, settings, queue.clone()));
        PeerLink { queue, task }
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(peer: NodeId, addr: SocketAddr, s: LinkSettings, queue: Arc<OutQueue>) {
    let me = s.me;
    let mut backoff = s.backoff_min;
    loop {
        let role = HelloRole::Peer(me);
        match handshake::connect(
            addr,
            s.cluster_id,
            s.secret.as_ref(),
            role,
            s.connect_timeout,
            s.handshake_timeout,
        )
        .await
        {
            Ok((mut read, write)) => {
                backoff = s.backoff_min;
                tracing::debug!(node = %me, %peer, %addr, "connected to peer");
                // The peer never writes after the handshake: a read ending means it has gone,
                // which we notice at once instead of at the next failed write.
                let closed = async {
                    let mut sink = [0u8; 64];
                    while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
                };
                tokio::select! {
                    () = closed => tracing::warn!(node = %me, %peer, "peer link closed"),
                    result = queue.write_loop(write) => {
                        if let Err(e) = result {
                            tracing::warn!(node = %me, %peer, "peer link write failed: {e}");
                        }
                    }
                }
            }
            Err(TcpError::Refused(reason)) => {
                tracing::error!(node = %me, %peer, %addr, "peer refused the handshake: {reason}");
            }
            Err(e @ TcpError::Auth(_)) => {
                tracing::error!(node = %me, %peer, %addr, "peer not trusted: {e}");
            }
            Err(e) => {
                tracing::debug!(node = %me, %peer, %addr, "cannot reach peer: {e}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(s.backoff_max);
    }
}
