//! Bad input on a live 3-node TCP cluster (real sockets, data on disk), at the facade level:
//! garbage, truncated, oversized and undecodable frames, wrong handshakes, absurd but
//! well-formed requests, and a flood of connections, all aimed at the leader's listen address.
//! After each, the node must still answer, a good client must still lock, append and release,
//! and every node's files must hold exactly the acknowledged appends.
//!
//! The transport's own tests (dlm-transport-tcp/tests/faults.rs) check the same refusals against
//! an echo node; these check that a real node and its cluster come through them.
#![cfg(feature = "tcp")]

#[path = "../../dlm-transport-tcp/tests/common/noise.rs"]
mod noise;
#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod raw;

use cluster::Cluster;
use dlm::tcp::wire::{self, HelloAnswer, HelloRole};
use dlm::{
    ClientId, ClientRequest, ClientResponse, FencingToken, FileName, LockName, NodeId, Op,
    Rejection, Reply, Seq,
};
use noise::noise;
use raw::{accepted, closed_by_node, frame, handshake, hello, max_frame};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_before_the_handshake_closes_only_that_connection() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: dlm\r\n\r\n".to_vec(),
        vec![0; 64],
        vec![0xff; 64],
        noise(1, 4096),
        // A plausible length and a payload that is not a Hello.
        frame(&noise(2, 40)),
    ];
    for bytes in garbage {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        // The node may close before reading it all; a failed write is fine.
        let _ = raw.write_all(&bytes).await;
        let answer = closed_by_node(&mut raw).await;
        // No hello decoded, so nothing was answered, or a refusal if the noise happened to
        // decode as a hello with a wrong magic.
        if !answer.is_empty() {
            let refusal: Option<HelloAnswer> =
                wire::read_frame(&mut &answer[..], wire::HANDSHAKE_MAX_FRAME)
                    .await
                    .unwrap();
            assert!(
                matches!(refusal, Some(HelloAnswer::Refused(_))),
                "{refusal:?}"
            );
        }
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_then_close_ends_only_that_connection() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    let good_hello = wire::encode_frame(&hello(HelloRole::Client), 1024).unwrap();
    // Half a length prefix; a hello cut short.
    for bytes in [&good_hello[..2], &good_hello[..good_hello.len() - 1]] {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(bytes).await.unwrap();
        raw.shutdown().await.unwrap();
        assert!(closed_by_node(&mut raw).await.is_empty());
    }
    // After an accepted handshake, as a client and as a peer: a request cut short.
    for role in [HelloRole::Client, HelloRole::Peer(NodeId(peer_of(id)))] {
        let mut raw = accepted(addr, role).await;
        raw.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
        raw.shutdown().await.unwrap();
        assert!(closed_by_node(&mut raw).await.is_empty(), "{role:?}");
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_only_that_connection() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    // A hello over the handshake limit.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let over = (wire::HANDSHAKE_MAX_FRAME as u32 + 1).to_be_bytes();
    raw.write_all(&over).await.unwrap();
    assert!(closed_by_node(&mut raw).await.is_empty());
    // After the handshake: a length one over the frame limit (only a little of it is sent, so
    // a node that tried to read it all would never close) and the largest length there is.
    for len in [max_frame() as u32 + 1, u32::MAX] {
        for role in [HelloRole::Client, HelloRole::Peer(NodeId(peer_of(id)))] {
            let mut raw = accepted(addr, role).await;
            raw.write_all(&len.to_be_bytes()).await.unwrap();
            let _ = raw.write_all(&noise(3, 1024)).await;
            assert!(closed_by_node(&mut raw).await.is_empty(), "{role:?} {len}");
        }
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_does_not_decode_closes_only_that_connection() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    let payloads: Vec<Vec<u8>> = vec![
        // Empty, an unknown enum variant, and a handshake frame where a request belongs. (Not
        // a hello: since protocol version 9 a client's hello happens to decode as a request.)
        frame(&[]),
        frame(&[0xff, 0xff, 0xff]),
        wire::encode_frame(
            &HelloAnswer::Challenge {
                nonce: [0xff; 32],
                proof: [0xff; 32],
            },
            1024,
        )
        .unwrap(),
        frame(&noise(4, 200)),
    ];
    for role in [HelloRole::Client, HelloRole::Peer(NodeId(peer_of(id)))] {
        for bytes in &payloads {
            let mut raw = accepted(addr, role).await;
            raw.write_all(bytes).await.unwrap();
            assert!(
                closed_by_node(&mut raw).await.is_empty(),
                "{role:?} {bytes:?}"
            );
        }
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

/// Another member's id, for a connection that claims to be that peer.
fn peer_of(id: u64) -> u64 {
    id % 3 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_handshakes_are_refused_with_a_reason() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    let mut bad_magic = hello(HelloRole::Client);
    bad_magic.magic = u32::from_be_bytes(*b"HTTP");
    let mut newer = hello(HelloRole::Peer(NodeId(peer_of(id))));
    newer.version = wire::PROTOCOL_VERSION + 1;
    let mut older = hello(HelloRole::Client);
    older.version = 0;
    let mut stranger = hello(HelloRole::Client);
    stranger.cluster_id = dlm::DEFAULT_CLUSTER_ID + 1;
    for (bad, why) in [
        (bad_magic, "magic"),
        (newer, "version"),
        (older, "version"),
        (stranger, "cluster"),
    ] {
        let (mut raw, answer) = handshake(addr, &bad).await;
        match answer {
            Some(HelloAnswer::Refused(reason)) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{bad:?} answered {other:?}"),
        }
        // And then the node hangs up.
        assert!(closed_by_node(&mut raw).await.is_empty());
    }
    // A whole client of another cluster: every node refuses it, and it is told why (before
    // ClientError::Refused it retried until its deadline and reported `Unavailable`).
    let members = cluster.members().to_vec();
    let stranger = dlm::connect_tcp_with(members, dlm::DEFAULT_CLUSTER_ID + 1, |cfg| {
        support::tune(cfg);
        cfg.deadline = std::time::Duration::from_secs(2);
    });
    match stranger.try_lock("good").await.map(|_| ()) {
        Err(dlm::ClientError::Refused(reason)) => assert!(reason.contains("cluster"), "{reason}"),
        other => panic!("a client of another cluster got {other:?}"),
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

/// Sends `op` as seq `seq` of client `client` to whichever node leads, following `NotLeader`
/// (an election may move the leader while the test runs).
async fn to_leader(
    cluster: &Cluster,
    client: u128,
    seq: u64,
    acked_below: u64,
    op: Op,
) -> ClientResponse {
    let request = ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(acked_below),
        pending: Vec::new(),
        op,
    };
    for _ in 0..50 {
        let (_, addr) = cluster.target().await;
        let mut raw = accepted(addr, HelloRole::Client).await;
        let response = raw::call(&mut raw, &request).await;
        assert_eq!(
            (response.client, response.seq),
            (request.client, request.seq)
        );
        if !matches!(response.result, Err(Rejection::NotLeader { .. })) {
            return response;
        }
        // An election is under way: let it finish.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{request:?}: answered NotLeader 50 times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_but_well_formed_requests_get_typed_refusals() {
    let mut cluster = Cluster::start().await;
    let (id, _) = cluster.target().await;
    let limits = dlm::Limits::default();
    let (bad_name, bad_lease) = (
        Rejection::BadName {
            max: limits.max_name_len,
        },
        Rejection::BadLease {
            min: limits.min_lease,
            max: limits.max_lease,
        },
    );
    let acquire = |name: &str, lease: Duration| Op::Acquire {
        lock: LockName::new(name),
        lease,
        wait: None,
    };
    let append = |lock: &str, token: u64, file: &str, len: usize| Op::Append {
        lock: LockName::new(lock),
        token: FencingToken(token),
        file: FileName::new(file),
        data: vec![1; len],
    };
    let read = |file: &str, offset: u64| Op::Read {
        file: FileName::new(file),
        offset,
    };
    // One session (its first request opens it), one request per seq, each acknowledging the
    // one before.
    let cases: Vec<(Op, Result<Reply, Rejection>)> = vec![
        (
            Op::KeepAlive,
            Ok(Reply::KeptAlive {
                held: vec![],
                revoked: vec![],
            }),
        ),
        (acquire("absurd", Duration::ZERO), Err(bad_lease.clone())),
        (acquire("absurd", Duration::MAX), Err(bad_lease)),
        (acquire("", Duration::from_secs(1)), Err(bad_name.clone())),
        (
            acquire(&"x".repeat(10_000), Duration::from_secs(1)),
            Err(bad_name),
        ),
        (
            Op::Release {
                lock: LockName::new("absurd"),
                token: FencingToken(u64::MAX),
            },
            Err(Rejection::NotHolder),
        ),
        (
            append("absurd", 1, "absurd.log", 64),
            Err(Rejection::NotHolder),
        ),
        (
            append("absurd", 1, "absurd.log", limits.max_append + 1),
            Err(Rejection::AppendTooLarge {
                max: limits.max_append,
            }),
        ),
        (
            append("good", u64::MAX, "good.log", 64),
            Err(Rejection::NotHolder),
        ),
        (read("absurd.log", 0), Err(Rejection::NoSuchFile)),
        (
            Op::Cancel {
                lock: LockName::new("absurd"),
                seq: Seq(1),
            },
            Ok(Reply::Cancelled(dlm::Withdrawn::Nothing)),
        ),
    ];
    let client = 0xabcd;
    for (i, (op, expected)) in cases.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let response = to_leader(&cluster, client, seq, seq, op.clone()).await;
        assert_eq!(response.result, expected, "seq {seq}: {op:?}");
    }
    // A read far past the end of a real file: nothing, and the file's length.
    let response = to_leader(&cluster, client, 100, 100, read("good.log", u64::MAX)).await;
    match response.result {
        Ok(Reply::Data { data, len }) => assert!(data.is_empty() && len > 0, "{len}"),
        other => panic!("read past the end answered {other:?}"),
    }
    // Seqs the session has acknowledged, and the largest seq there is.
    let response = to_leader(&cluster, client, 50, 101, Op::KeepAlive).await;
    assert_eq!(response.result, Err(Rejection::SeqBelowWatermark));
    let response = to_leader(&cluster, client, u64::MAX, u64::MAX, Op::KeepAlive).await;
    assert_eq!(
        response.result,
        Ok(Reply::KeptAlive {
            held: vec![],
            revoked: vec![]
        })
    );
    // A stranger claiming to have had answers: it cannot be told apart from an expired session.
    let response = to_leader(&cluster, 0xdcba, 7, 7, Op::KeepAlive).await;
    assert_eq!(response.result, Err(Rejection::SessionExpired));

    for node in cluster.servers.keys() {
        assert!(!cluster.has_file(*node, "absurd.log"), "node {node}");
    }
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

/// Connections held open without a hello: the node must close them at its handshake time-out.
const STALLED: usize = 150;
/// Connections past the handshake and then idle: legitimate clients, the node must keep them.
const IDLE_CLIENTS: usize = 100;
/// Connections opened and closed at once, half of them after a hello.
const CHURN: usize = 300;

// About 2 × (STALLED + IDLE_CLIENTS) descriptors at the peak (both ends are in this process),
// well under a 1024 limit even with the other tests of this file running alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_does_not_stop_the_node() {
    let mut cluster = Cluster::start().await;
    let (id, addr) = cluster.target().await;
    for i in 0..CHURN {
        if i % 2 == 0 {
            drop(TcpStream::connect(addr).await.unwrap());
        } else {
            drop(accepted(addr, HelloRole::Client).await);
        }
    }
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut idle = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        idle.push(accepted(addr, HelloRole::Client).await);
    }
    // Served while the flood is held.
    cluster.check_still_serving(id).await;
    // The stalled ones are hung up on (handshake time-out), without an answer.
    let closed = futures::future::join_all(stalled.iter_mut().map(closed_by_node)).await;
    assert!(closed.iter().all(Vec::is_empty));
    // The idle clients were kept, and each is still answered.
    for (i, stream) in idle.iter_mut().enumerate() {
        let request = ClientRequest {
            client: ClientId(0x1d1e_0000 + i as u128),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Status,
        };
        let response = raw::call(stream, &request).await;
        assert!(
            matches!(response.result, Ok(Reply::Status(ref s)) if s.id.get() == id),
            "{response:?}"
        );
    }
    drop(idle);
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}

/// A real client whose very first call is refused up front (a bad name) must still be able to
/// lock afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_client_whose_first_call_is_refused_can_still_lock() {
    let mut cluster = Cluster::start().await;
    let (id, _) = cluster.target().await;
    let client = cluster::client_of(cluster.members(), 77);
    let first = client.try_lock("").await.map(|_| ());
    assert!(
        matches!(
            first,
            Err(dlm::ClientError::Rejected(Rejection::BadName { .. }))
        ),
        "{first:?}"
    );
    let guard = client.try_lock("after-a-refusal").await.unwrap();
    client.release(guard).await.unwrap();
    cluster.check_still_serving(id).await;
    cluster.shutdown().await;
}
