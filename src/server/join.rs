//! Joining a running cluster from an empty data directory, given the address of any member
//! ([`ServerBuilder::join`](crate::ServerBuilder::join)): find the leader through that member,
//! read the configuration, start outside it (such a node never stands for election), ask to
//! be added as a learner at this node's address, and catch up by snapshot and log; optionally
//! ask to be promoted once caught up.

use super::join_record::JoinRecord;
use super::{ClusterAccess, Server, ServerBuilder, StartError};
use crate::data_dir::{self, DataDirError, Owner};
use dlm_core::runtime::{deadline_after, Client, ReplaceError};
use dlm_core::{Config, Membership, NodeId};
use dlm_transport_tcp::TcpClient;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// How long a join may take by default: finding the leader, being added, and (if asked)
/// catching up and being promoted.
pub const JOIN_WITHIN: Duration = Duration::from_secs(120);

/// The id the member given to join through is called by until it says its own.
const ENTRY_POINT: NodeId = NodeId(u64::MAX);

/// What a joining node was asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Join {
    /// A member's `host:port`.
    pub(crate) via: String,
    /// Ask to be promoted to voter once caught up.
    pub(crate) promote: bool,
    /// The bound on the whole join.
    pub(crate) within: Duration,
}

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The node listens on a wildcard address and was given no address to advertise.
    #[error(
        "a joining node needs an address the members can dial: listen on a specific address \
         or set one to advertise (ServerBuilder::advertise, --advertise)"
    )]
    NoAddress,
    /// Start-up peers were given as well: a joining node learns the members from the cluster.
    #[error("give either the peers or a member to join through, not both")]
    PeersAndJoin,
    /// Over TLS, the node has no CA to verify the members it joins with.
    #[error("joining a cluster over TLS needs the CA that verifies its members (NodeTls::mutual, --tls-ca)")]
    Tls,
    /// No member was reached through the given address in time (or none knew a leader).
    #[error("no leader found through {via} within {waited:?}: {last}")]
    NoLeader {
        /// The address given.
        via: String,
        /// How long it tried.
        waited: Duration,
        /// The last thing that went wrong.
        last: String,
    },
    /// The cluster refused to add (or promote) this node; see [`ReplaceError`].
    #[error(transparent)]
    Refused(#[from] ReplaceError),
}

impl ServerBuilder {
    /// [`ServerBuilder::serve_tcp`] for a node joining through a member: bind, find the
    /// leader and the configuration, record its voters in the data directory, start outside
    /// the configuration, then be added (and promoted if asked).
    pub(super) async fn serve_joining(
        self,
        listen: SocketAddr,
        join: Join,
    ) -> Result<Server, StartError> {
        let id = self.id.ok_or(StartError::MissingId)?;
        if !self.peers.is_empty() {
            return Err(JoinError::PeersAndJoin.into());
        }
        let access = self.join_access()?;
        if let Some(dir) = &self.data_dir {
            // Before anything is asked or written: another node's directory stays untouched.
            std::fs::create_dir_all(dir).map_err(|source| DataDirError::Io {
                path: dir.clone(),
                source,
            })?;
            let cluster = self.cluster_id.unwrap_or(super::DEFAULT_CLUSTER_ID);
            data_dir::claim(dir, Owner { node: id, cluster })?;
        }
        let transport = self.bind_tcp(id, listen).await?;
        let addr = transport.local_addr();
        let me = self.advertised(addr).ok_or(JoinError::NoAddress)?;
        let deadline = deadline_after(join.within);
        let (client, config) = discover(&join, &access, deadline).await?;
        // Recorded before the first start, so that no later start of this directory can
        // begin from its flags alone (see `join_record`).
        let record = JoinRecord::of(&config);
        if let Some(dir) = &self.data_dir {
            record.write(dir)?;
        }
        let cfg = self.joined_config(id, &record, Some(&me))?;
        tracing::info!(node = %id, addr = %me, via = %join.via, "joining");
        let server = self.start(cfg, transport, Some(addr)).await?;
        if let Err(e) = ensure_member(&client, id, &me, &join, deadline).await {
            let _ = server.shutdown().await;
            return Err(JoinError::from(e).into());
        }
        tracing::info!(node = %id, promoted = join.promote, "joined");
        Ok(server)
    }

    /// [`ServerBuilder::serve_tcp`] for a data directory that joined a cluster before: start at
    /// once from the recorded voters (a configuration in the log wins), whatever the flags.
    /// With [`ServerBuilder::join`], the membership the join asked for is then made sure of in
    /// the background (it is already there unless the first join was cut short), within the
    /// join's bound; a failure is logged, the node keeps running.
    pub(super) async fn serve_rejoining(
        self,
        listen: SocketAddr,
        record: JoinRecord,
    ) -> Result<Server, StartError> {
        let id = self.id.ok_or(StartError::MissingId)?;
        if !self.peers.is_empty() {
            tracing::warn!(
                node = %id,
                "this data directory joined a cluster: its members come from there, the peers given are not used"
            );
        }
        let transport = self.bind_tcp(id, listen).await?;
        let addr = transport.local_addr();
        let me = self.advertised(addr);
        if self.join.is_some() && me.is_none() {
            return Err(JoinError::NoAddress.into());
        }
        let cfg = self.joined_config(id, &record, me.as_deref())?;
        let follow_up = match (self.join.clone(), me) {
            (Some(join), Some(me)) => match self.join_access() {
                Ok(access) => Some((join, me, access)),
                Err(e) => {
                    tracing::warn!(node = %id, "cannot make sure of this node's membership: {e}");
                    None
                }
            },
            _ => None,
        };
        tracing::info!(node = %id, voters = ?record.voters.keys().collect::<Vec<_>>(), "starting as a node that joined its cluster");
        let server = self.start(cfg, transport, Some(addr)).await?;
        if let Some((join, me, access)) = follow_up {
            tokio::spawn(async move {
                let deadline = deadline_after(join.within);
                let made_sure = async {
                    let (client, _) = discover(&join, &access, deadline).await?;
                    ensure_member(&client, id, &me, &join, deadline).await?;
                    Ok::<(), JoinError>(())
                };
                match made_sure.await {
                    Ok(()) => {
                        tracing::info!(node = %id, "membership asked for at the join is in place")
                    }
                    Err(e) => {
                        tracing::warn!(node = %id, "could not make sure of this node's membership: {e}")
                    }
                }
            });
        }
        Ok(server)
    }

    /// How this node's own client reaches the cluster it joins: its secrets, and over TLS the
    /// node's CA and certificate, as it dials its peers.
    fn join_access(&self) -> Result<ClusterAccess, JoinError> {
        #[allow(unused_mut)]
        let mut access = self.access();
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            access = access.tls(tls.member_client().ok_or(JoinError::Tls)?);
        }
        Ok(access)
    }

    /// The start-up configuration of a node that joined: the recorded voters (this node is
    /// not among them on a first start, so it never stands), with their addresses and its own.
    fn joined_config(
        &self,
        id: NodeId,
        record: &JoinRecord,
        me: Option<&str>,
    ) -> Result<Config, StartError> {
        let mut cfg = Config::new(id, record.voters.keys().copied());
        cfg.addresses = record
            .voters
            .iter()
            .filter(|(_, addr)| !addr.is_empty())
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        if let Some(me) = me {
            cfg.addresses.insert(id, me.to_string());
        }
        self.tuned(cfg)
    }
}

/// Makes sure node `id` is a member at `me`, and a voter if the join asked for it.
async fn ensure_member(
    client: &Client<TcpClient>,
    id: NodeId,
    me: &str,
    join: &Join,
    deadline: Instant,
) -> Result<(), ReplaceError> {
    client.ensure_learner(id, me, deadline).await?;
    if join.promote {
        client.ensure_voter(id, deadline, join.within).await?;
    }
    Ok(())
}

/// A client of the cluster that the member at `join.via` belongs to, and its configuration
/// in force, once a leader answered.
pub(crate) async fn discover(
    join: &Join,
    access: &ClusterAccess,
    deadline: Instant,
) -> Result<(Client<TcpClient>, Membership), JoinError> {
    let started = Instant::now();
    loop {
        let last = match try_discover(&join.via, access).await {
            Ok(found) => return Ok(found),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(JoinError::NoLeader {
                via: join.via.clone(),
                waited: started.elapsed(),
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One attempt: the entry point's status names the leader and where it listens; the leader
/// answers the configuration, whose members become the client's nodes. Each node is dialed
/// by the host it is known by, which TLS checks in its certificate.
async fn try_discover(
    via: &str,
    access: &ClusterAccess,
) -> Result<(Client<TcpClient>, Membership), String> {
    let entry = resolve(via).await?;
    let probe = client(
        &HashMap::from([(ENTRY_POINT, (entry, host_of(via)))]),
        access,
    );
    let status = probe
        .status(ENTRY_POINT)
        .await
        .map_err(|e| format!("{via}: {e}"))?;
    let leader = status
        .leader
        .ok_or_else(|| format!("{via} knows no leader yet"))?;
    // Each node with where to dial it and the host its certificate is checked for.
    let mut nodes = HashMap::from([(status.id, (entry, host_of(via)))]);
    if leader != status.id {
        let at = resolve(&status.leader_addr)
            .await
            .map_err(|e| format!("leader {leader}: {e}"))?;
        nodes.insert(leader, (at, host_of(&status.leader_addr)));
    }
    let info = client(&nodes, access)
        .membership()
        .await
        .map_err(|e| format!("asking for the configuration: {e}"))?;
    for member in info.config.members() {
        if let Ok(at) = resolve(&member.addr).await {
            nodes
                .entry(member.id)
                .or_insert((at, host_of(&member.addr)));
        }
    }
    Ok((client(&nodes, access), info.config))
}

/// A client of `nodes` (where to dial each, and the host it is known by), with time-outs
/// short enough to try again within the join's bound.
fn client(
    nodes: &HashMap<NodeId, (SocketAddr, &str)>,
    access: &ClusterAccess,
) -> Client<TcpClient> {
    let hosts: HashMap<NodeId, &str> = nodes.iter().map(|(id, (_, host))| (*id, *host)).collect();
    let dial = nodes.iter().map(|(id, (at, _))| (id.get(), *at));
    crate::connect_tcp_with(dial, named(access, &hosts), |cfg| {
        cfg.deadline = Duration::from_secs(5);
        cfg.attempt_timeout = Duration::from_secs(1);
    })
}

/// `access`, with TLS checking each node's certificate for the host name it is known by (an
/// IP address is checked as such without being told).
fn named(access: &ClusterAccess, hosts: &HashMap<NodeId, &str>) -> ClusterAccess {
    #[cfg(feature = "tls")]
    if let Some(tls) = &access.tls {
        let mut tls = tls.clone();
        for (id, host) in hosts {
            if host.parse::<std::net::IpAddr>().is_err() {
                // A host that is no valid name cannot be checked: the IP address is instead.
                if let Ok(by_name) = tls.clone().node_name(*id, host) {
                    tls = by_name;
                }
            }
        }
        return access.clone().tls(tls);
    }
    #[cfg(not(feature = "tls"))]
    let _ = hosts;
    access.clone()
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(host_port: &str) -> &str {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The first address `host_port` resolves to.
async fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    if host_port.is_empty() {
        return Err("no address known".into());
    }
    tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| format!("{host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}
