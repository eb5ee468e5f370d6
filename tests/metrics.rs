//! The metrics listener (`ServerBuilder::metrics`): a scrape of a live 3-node TCP cluster
//! reports the work done on it, and a flood of scrapes, idle connections and garbage gets
//! clear refusals while the node goes on serving locks. Real time and sockets; each wait is
//! bounded, and nothing asserts on speed.
#![cfg(all(feature = "tcp", feature = "metrics"))]

mod support;

use dlm::runtime::ClientTransport;
use dlm::tcp::{TcpClient, TcpClientConfig};
use dlm::{
    ClientId, ClientRequest, ClientResponse, LockName, NodeId, Op, Rejection, Reply, Seq, Server,
    DEFAULT_CLUSTER_ID,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Sends `request` raw on a fresh connection and returns the status code and the body. The
/// whole exchange is bounded.
async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the metrics listener answers within 10 s")
        .expect("the exchange works");
    let text = String::from_utf8(answer).expect("the answer is text");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (status, body.to_owned())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
}

/// A scrape, as `series -> value` (`name{labels}` exactly as written).
async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = http(addr, &get("/metrics")).await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line has a value");
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("{series} missing from the scrape: {m:#?}"))
}

/// Scrapes until `ok` holds, for at most 10 s.
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(addr).await;
        if ok(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within 10 s: {m:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Entries between two snapshots in the live cluster: few, so that the test's work takes one.
const SNAPSHOT_EVERY: u64 = 8;

async fn start_cluster(dir: &tempfile::TempDir) -> BTreeMap<u64, Server> {
    let members = support::local_members(3);
    let mut servers = BTreeMap::new();
    for (id, addr) in &members {
        let mut builder = Server::builder()
            .id(*id)
            .data_dir(dir.path().join(format!("node-{id}")))
            .snapshot_every(SNAPSHOT_EVERY)
            .metrics("127.0.0.1:0".parse().unwrap());
        for (peer, peer_addr) in members.iter().filter(|(p, _)| p != id) {
            builder = builder.peer(*peer, *peer_addr);
        }
        servers.insert(*id, builder.serve_tcp(*addr).await.unwrap());
    }
    servers
}

fn nodes(servers: &BTreeMap<u64, Server>) -> Vec<(u64, SocketAddr)> {
    servers
        .iter()
        .map(|(id, s)| (*id, s.local_addr().unwrap()))
        .collect()
}

/// Sends an acquire of `lock` under a 100 ms lease to `node` straight, from a client of its
/// own (`client`) that never renews it, and returns the answer.
async fn acquire_raw(
    servers: &BTreeMap<u64, Server>,
    node: u64,
    client: u128,
    lock: &str,
) -> ClientResponse {
    let addrs: HashMap<NodeId, SocketAddr> = nodes(servers)
        .into_iter()
        .map(|(id, a)| (NodeId(id), a))
        .collect();
    let raw = TcpClient::new(TcpClientConfig::new(DEFAULT_CLUSTER_ID, addrs));
    let request = ClientRequest {
        client: ClientId::from_random(client),
        seq: Seq(1),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Acquire {
            lock: LockName::from(lock),
            lease: Duration::from_millis(100),
            wait: None,
        },
    };
    tokio::time::timeout(Duration::from_secs(10), raw.call(NodeId(node), request))
        .await
        .expect("the node answers within 10 s")
        .expect("the call works")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_of_a_live_cluster_reports_its_work() {
    let dir = tempfile::Builder::new()
        .prefix("dlm-metrics-")
        .tempdir()
        .unwrap();
    let servers = start_cluster(&dir).await;
    let leader = support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let at = |id: u64| servers[&id].metrics_addr().expect("a metrics listener");
    let client = dlm::connect_tcp_with(nodes(&servers), DEFAULT_CLUSTER_ID, support::tune);

    const CYCLES: usize = 5;
    for _ in 0..CYCLES {
        let guard = client.lock("cycled").await.unwrap();
        client.release(guard).await.unwrap();
    }
    // One acquire waits behind a holder, then is granted on the release.
    let holder = client.lock("contended").await.unwrap();
    let other = dlm::connect_tcp_with(nodes(&servers), DEFAULT_CLUSTER_ID, support::tune);
    let waiter = tokio::spawn(async move {
        let guard = other.lock("contended").await.unwrap();
        other.release(guard).await.unwrap();
    });
    let queued = scrape_until(at(leader), "the queued acquire", |m| {
        m.get("dlm_waiting_acquires") == Some(&1.0)
    })
    .await;
    assert!(value(&queued, "dlm_held_locks") >= 1.0);
    assert_eq!(
        value(&queued, "dlm_sessions"),
        2.0,
        "two clients, two sessions"
    );
    client.release(holder).await.unwrap();
    waiter.await.unwrap();
    // Taken by a client that never renews it, so that it expires.
    let answer = acquire_raw(&servers, leader, 0xab_a0d0, "abandoned").await;
    assert!(
        matches!(answer.result, Ok(Reply::Granted { .. })),
        "{answer:?}"
    );
    let grants = (CYCLES + 3) as f64;

    let m = scrape_until(at(leader), "the expiry", |m| {
        m.get("dlm_lease_expiries_total").is_some_and(|v| *v >= 1.0)
    })
    .await;
    assert_eq!(value(&m, "dlm_node_id"), leader as f64);
    assert_eq!(value(&m, r#"dlm_role{role="leader"}"#), 1.0);
    assert_eq!(value(&m, r#"dlm_role{role="follower"}"#), 0.0);
    assert_eq!(value(&m, "dlm_leader_id"), leader as f64);
    assert!(value(&m, "dlm_term") >= 1.0);
    assert!(value(&m, "dlm_commit_index") >= grants);
    assert!(value(&m, "dlm_applied_index") <= value(&m, "dlm_commit_index"));
    assert!(value(&m, "dlm_commits_total") >= grants);
    assert!(value(&m, "dlm_log_entries") >= 1.0);
    assert_eq!(value(&m, "dlm_state_available"), 1.0);
    assert!(value(&m, "dlm_grants_total") >= grants);
    let acquired = value(
        &m,
        r#"dlm_client_requests_total{op="acquire",outcome="ok"}"#,
    );
    assert!(acquired >= grants, "{acquired} acquires answered ok");
    let released = value(
        &m,
        r#"dlm_client_requests_total{op="release",outcome="ok"}"#,
    );
    assert!(
        released >= (CYCLES + 2) as f64,
        "{released} releases answered ok"
    );
    assert!(value(&m, "dlm_lock_wait_seconds_count") >= grants);
    assert_eq!(
        value(&m, "dlm_lock_wait_seconds_count"),
        value(&m, r#"dlm_lock_wait_seconds_bucket{le="+Inf"}"#)
    );
    assert!(
        value(&m, "dlm_lock_wait_seconds_sum") > 0.0,
        "the queued acquire waited"
    );
    assert!(value(&m, "dlm_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(value(&m, "dlm_revokes_total"), 0.0);
    for peer in servers.keys().filter(|p| **p != leader) {
        assert_eq!(value(&m, &format!(r#"dlm_peer_up{{peer="{peer}"}}"#)), 1.0);
        let contact = value(
            &m,
            &format!(r#"dlm_peer_last_contact_seconds{{peer="{peer}"}}"#),
        );
        assert!(contact < 60.0, "peer {peer} last heard {contact} s ago");
    }

    // Past SNAPSHOT_EVERY entries, every node has stored a snapshot.
    let index = value(&m, "dlm_snapshot_index");
    assert!(index >= SNAPSHOT_EVERY as f64, "snapshot at {index}");
    let age = value(&m, "dlm_snapshot_age_seconds");
    assert!((0.0..60.0).contains(&age), "snapshot {age} s old");

    // A follower answers an acquire with a rejection, counted by its outcome.
    let follower = *servers.keys().find(|id| **id != leader).unwrap();
    let refused = acquire_raw(&servers, follower, 0xf0_11e7, "at a follower").await;
    assert!(
        matches!(refused.result, Err(Rejection::NotLeader { .. })),
        "{refused:?}"
    );
    let f = scrape(at(follower)).await;
    assert!(
        value(
            &f,
            r#"dlm_client_requests_total{op="acquire",outcome="not_leader"}"#
        ) >= 1.0,
        "the rejection is counted"
    );
    assert!(value(&f, "dlm_snapshot_index") >= SNAPSHOT_EVERY as f64);
    assert_eq!(value(&f, r#"dlm_role{role="follower"}"#), 1.0);
    assert_eq!(value(&f, "dlm_leader_id"), leader as f64);
    assert!(
        value(&f, "dlm_grants_total") >= grants - 1.0,
        "followers apply the grants too"
    );
    let heard = format!(r#"dlm_peer_last_contact_seconds{{peer="{leader}"}}"#);
    assert!(value(&f, &heard) < 60.0, "a follower hears its leader");

    let (status, _) = http(at(leader), &get("/other")).await;
    assert_eq!(status, 404, "only /metrics is served");
    let post =
        "POST /metrics HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    assert_eq!(http(at(leader), post).await.0, 404, "only GET is served");

    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_scrapes_is_refused_clearly_and_the_node_keeps_serving() {
    let server = Server::builder()
        .id(1)
        .metrics("127.0.0.1:0".parse().unwrap())
        .serve_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = server.metrics_addr().unwrap();
    let client = dlm::connect_tcp_with(
        [(1, server.local_addr().unwrap())],
        DEFAULT_CLUSTER_ID,
        support::tune,
    );

    // Garbage gets a 400, and the connection is closed.
    assert_eq!(http(at, "NOT HTTP AT ALL\r\n\r\n").await.0, 400);

    // A connection that never finishes its request head is closed after the header time-out.
    let mut slow = TcpStream::connect(at).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nhost: sl")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest))
        .await
        .expect("a slow request head is cut off")
        .ok();

    // Idle connections take every scrape slot; the next ones are refused with a reason, or
    // closed once the refusals are many too.
    let mut idle = Vec::new();
    for _ in 0..dlm::metrics::MAX_SCRAPES {
        idle.push(TcpStream::connect(at).await.unwrap());
    }
    let (status, body) = http(at, &get("/metrics")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many metrics scrapes"), "{body}");
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(at).await {
            flood.push(stream);
        }
    }

    // The node serves locks meanwhile.
    for _ in 0..3 {
        let guard = client.lock("during the flood").await.unwrap();
        client.release(guard).await.unwrap();
    }

    // Once the flood is gone (the listener notices the closed connections on its own time),
    // scrapes are served again.
    drop(flood);
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http(at, &get("/metrics")).await;
        if status == 200 {
            assert!(body.contains("dlm_grants_total 3"), "{body}");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "no good scrape within 10 s of the flood"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
}

/// An operator's request from a client without the admin secret is refused by the transport,
/// before the node sees it; the node's request counts still show the refusal. A revoke that
/// takes a grant is counted among the revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_requests_are_counted_refused_or_done() {
    const CLIENT: &str = "a client secret, long enough";
    const ADMIN: &str = "an operators' secret, long enough";
    let server = Server::builder()
        .id(1)
        .secret(dlm::ClusterSecret::new(CLIENT).unwrap())
        .admin_secret(dlm::ClusterSecret::new(ADMIN).unwrap())
        .peer_secret(dlm::ClusterSecret::new("the members' own secret").unwrap())
        .metrics("127.0.0.1:0".parse().unwrap())
        .serve_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let metrics = server.metrics_addr().unwrap();
    let access = dlm::ClusterAccess::new(DEFAULT_CLUSTER_ID)
        .secret(dlm::ClusterSecret::new(CLIENT).unwrap());
    let user = dlm::connect_tcp_with([(1, server.local_addr().unwrap())], access, |_| {});
    let guard = user.lock("held").await.unwrap();
    let refused = user.locks("").await;
    assert!(
        matches!(
            refused,
            Err(dlm::ClientError::Rejected(Rejection::NotAuthorized(_)))
        ),
        "{refused:?}"
    );
    let series = r#"dlm_client_requests_total{op="locks",outcome="not_authorized"}"#;
    scrape_until(metrics, "the refusal counted", |m| {
        m.get(series).is_some_and(|v| *v >= 1.0)
    })
    .await;

    // An operator's revoke that takes the grant is counted as one.
    let access = dlm::ClusterAccess::new(DEFAULT_CLUSTER_ID)
        .admin_secret(dlm::ClusterSecret::new(ADMIN).unwrap());
    let operator = dlm::connect_tcp_with([(1, server.local_addr().unwrap())], access, |_| {});
    assert_eq!(
        operator.revoke("held").await.unwrap(),
        (user.id(), guard.token())
    );
    let m = scrape_until(metrics, "the revoke counted", |m| {
        m.get("dlm_revokes_total").is_some_and(|v| *v >= 1.0)
    })
    .await;
    assert_eq!(value(&m, "dlm_revokes_total"), 1.0);
    server.shutdown().await.unwrap();
}
