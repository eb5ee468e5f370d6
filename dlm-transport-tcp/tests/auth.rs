//! The cluster secret in the handshake: matching secrets connect, anything else is refused with
//! the reason on both sides, and recorded or forged proofs get nobody in.

mod common;

use common::*;
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::NodeId;
use dlm_transport_tcp::auth::{self, Side, Transcript};
use dlm_transport_tcp::wire::{self, Hello, HelloAnswer, HelloProof, HelloRole, Nonce, Proof};
use dlm_transport_tcp::{ClusterSecret, TcpClient, TcpClientConfig, TcpConfig, TcpTransport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

// Words that appear nowhere else, so that a test can look for them in printed text.
const RIGHT: &str = "zebra quartz mango velvet 9137";
const WRONG: &str = "zebra quartz mango velvet 9138";

fn secret(text: &str) -> ClusterSecret {
    ClusterSecret::new(text).unwrap()
}

fn config_with(id: u64, text: Option<&str>) -> TcpConfig {
    let mut c = config(id);
    c.secret = text.map(secret);
    c
}

fn client_with(addr: SocketAddr, text: Option<&str>) -> TcpClient {
    let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(1), addr)]));
    c.secret = text.map(secret);
    TcpClient::new(c)
}

/// A node with `text` as its secret that echoes client requests.
async fn echo_node(text: Option<&str>) -> SocketAddr {
    let node = TcpTransport::bind(config_with(1, text)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    addr
}

/// A client with the right secret still gets its answer.
async fn still_serving(addr: SocketAddr) {
    let client = client_with(addr, Some(RIGHT));
    let response = within(client.call(NodeId(1), request(100))).await.unwrap();
    assert_eq!(response, answer(&request(100)));
}

/// Node 2, turned into an echo server, answers a client that has the right secret.
async fn serves_a_client_with_the_right_secret(node: TcpTransport) {
    let addr = node.local_addr();
    spawn_echo(node);
    let client = TcpClient::new({
        let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(2), addr)]));
        c.secret = Some(secret(RIGHT));
        c
    });
    let response = within(client.call(NodeId(2), request(1))).await.unwrap();
    assert_eq!(response, answer(&request(1)));
}

/// The reason a call fails at the handshake; any other outcome fails the test.
async fn refusal(client: &TcpClient) -> String {
    match within(client.call(NodeId(1), request(1))).await {
        Err(TransportError::Handshake(reason)) => reason,
        other => panic!("expected a handshake refusal, got {other:?}"),
    }
}

fn challenging(role: HelloRole, nonce: Nonce) -> Hello {
    Hello {
        challenge: Some(nonce),
        ..hello(role)
    }
}

/// Sends a hello with a challenge, checks the node's proof, and returns the connection and the
/// transcript the node's challenge fixes.
async fn challenged(addr: SocketAddr, role: HelloRole, nonce: Nonce) -> (TcpStream, Transcript) {
    challenged_by(addr, role, nonce, RIGHT).await
}

/// As [`challenged`], from a node that proves `node_secret` for `role`.
async fn challenged_by(
    addr: SocketAddr,
    role: HelloRole,
    nonce: Nonce,
    node_secret: &str,
) -> (TcpStream, Transcript) {
    let (stream, answer) = within(raw_handshake(addr, &challenging(role, nonce))).await;
    let Some(HelloAnswer::Challenge {
        nonce: node_nonce,
        proof,
    }) = answer
    else {
        panic!("expected a challenge, got {answer:?}");
    };
    let transcript = Transcript {
        cluster_id: CLUSTER,
        role,
        connector_nonce: nonce,
        listener_nonce: node_nonce,
    };
    // The node knows the secret; the proof check itself is the connector's (tested below).
    assert_eq!(
        proof,
        secret(node_secret).proof(Side::Listener, &transcript)
    );
    (stream, transcript)
}

/// Sends `proof` as the caller's and returns the node's last word.
async fn send_proof(stream: &mut TcpStream, proof: Proof) -> Option<HelloAnswer> {
    let frame = wire::encode_frame(&HelloProof::Proven(proof), wire::HANDSHAKE_MAX_FRAME).unwrap();
    stream.write_all(&frame).await.unwrap();
    within(wire::read_frame(stream, wire::HANDSHAKE_MAX_FRAME))
        .await
        .unwrap()
}

/// Makes a proof from a connection's transcript, the way a forger might.
type Forge = fn(&Transcript) -> Proof;

fn caller_proof_refused(answer: &Option<HelloAnswer>) -> bool {
    matches!(answer, Some(HelloAnswer::Refused(r)) if r == auth::CALLER_PROOF_BAD)
}

#[tokio::test]
async fn matching_secrets_connect_peers_and_clients() {
    let a = TcpTransport::bind(config_with(1, Some(RIGHT)))
        .await
        .unwrap();
    let mut b = TcpTransport::bind(config_with(2, Some(RIGHT)))
        .await
        .unwrap();
    a.set_peer(NodeId(2), b.local_addr());
    a.send(msg(1, 2, 1)).await;
    assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, 1))));

    serves_a_client_with_the_right_secret(b).await;
}

#[tokio::test]
async fn a_client_with_the_wrong_secret_is_refused_with_the_reason() {
    let addr = echo_node(Some(RIGHT)).await;
    let reason = refusal(&client_with(addr, Some(WRONG))).await;
    assert_eq!(
        reason,
        format!("authentication failed: {}", auth::NODE_PROOF_BAD)
    );
    still_serving(addr).await;
}

#[tokio::test]
async fn a_peer_with_the_wrong_secret_gets_no_message_through() {
    let mut b = TcpTransport::bind(config_with(2, Some(RIGHT)))
        .await
        .unwrap();
    let wrong = TcpTransport::bind(config_with(1, Some(WRONG)))
        .await
        .unwrap();
    wrong.set_peer(NodeId(2), b.local_addr());
    // Long enough for several reconnection attempts (backoff 10 to 100 ms).
    for term in 1..=10 {
        wrong.send(msg(1, 2, term)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = tokio::time::timeout(Duration::from_millis(200), b.recv()).await;
    assert!(
        got.is_err(),
        "a peer with the wrong secret got through: {got:?}"
    );
    // The same node id with the right secret does get through, so the silence above was the
    // secret's doing.
    drop(wrong);
    let right = TcpTransport::bind(config_with(1, Some(RIGHT)))
        .await
        .unwrap();
    right.set_peer(NodeId(2), b.local_addr());
    right.send(msg(1, 2, 11)).await;
    assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, 11))));
}

#[tokio::test]
async fn a_secret_on_one_side_only_is_refused_both_ways() {
    let guarded = echo_node(Some(RIGHT)).await;
    let reason = refusal(&client_with(guarded, None)).await;
    assert_eq!(reason, auth::REQUIRES_SECRET);
    // A peer without the secret too.
    let (mut raw, answer) = raw_handshake(guarded, &hello(HelloRole::Peer(NodeId(2)))).await;
    assert_eq!(
        answer,
        Some(HelloAnswer::Refused(auth::REQUIRES_SECRET.into()))
    );
    within(closed_by_node(&mut raw)).await;

    let open = echo_node(None).await;
    let reason = refusal(&client_with(open, Some(RIGHT))).await;
    assert_eq!(reason, auth::HAS_NO_SECRET);
    still_serving(guarded).await;
}

#[tokio::test]
async fn a_replayed_or_forged_caller_proof_is_refused() {
    let addr = echo_node(Some(RIGHT)).await;
    let role = HelloRole::Client;
    let nonce = [7; wire::NONCE_LEN];

    // An honest exchange on raw frames is accepted (so the refusals below are the proofs').
    let (mut honest, recorded) = challenged(addr, role, nonce).await;
    let recorded_proof = secret(RIGHT).proof(Side::Connector, &recorded);
    assert_eq!(
        send_proof(&mut honest, recorded_proof).await,
        Some(HelloAnswer::Accepted)
    );

    // Replayed: the same hello and the same proof on a new connection. The node draws a new
    // nonce, so the recorded proof does not cover it.
    let (mut replay, fresh) = challenged(addr, role, nonce).await;
    assert_ne!(fresh.listener_nonce, recorded.listener_nonce);
    let answer = send_proof(&mut replay, recorded_proof).await;
    assert!(caller_proof_refused(&answer), "{answer:?}");
    within(closed_by_node(&mut replay)).await;

    // Forged, each over this connection's transcript: no proof at all, the wrong secret's, one
    // made for another role, and the node's own proof reflected back.
    let forgeries: [(&str, Forge); 4] = [
        ("zeros", |_| [0; 32]),
        ("wrong secret", |t| secret(WRONG).proof(Side::Connector, t)),
        ("another role", |t| {
            let as_peer = Transcript {
                role: HelloRole::Peer(NodeId(2)),
                ..*t
            };
            secret(RIGHT).proof(Side::Connector, &as_peer)
        }),
        ("reflected", |t| secret(RIGHT).proof(Side::Listener, t)),
    ];
    for (what, forge) in forgeries {
        let (mut raw, transcript) = challenged(addr, role, [9; wire::NONCE_LEN]).await;
        let answer = send_proof(&mut raw, forge(&transcript)).await;
        assert!(caller_proof_refused(&answer), "{what}: {answer:?}");
        within(closed_by_node(&mut raw)).await;
    }
    still_serving(addr).await;
}

/// A fake node that answers every hello with `answer` (one connection after another).
async fn fake_node(answer: HelloAnswer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _: Option<Hello> = wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME)
                .await
                .unwrap_or(None);
            let frame = wire::encode_frame(&answer, wire::HANDSHAKE_MAX_FRAME).unwrap();
            let _ = stream.write_all(&frame).await;
            // Held open until the caller hangs up.
            closed_by_node(&mut stream).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_client_refuses_a_node_that_cannot_prove_the_secret() {
    // A node that just says yes.
    let yes = fake_node(HelloAnswer::Accepted).await;
    let reason = refusal(&client_with(yes, Some(RIGHT))).await;
    assert_eq!(
        reason,
        format!("authentication failed: {}", auth::NODE_NOT_PROVEN)
    );

    // A node that replays a real node's challenge, recorded for another caller's nonce.
    let real = echo_node(Some(RIGHT)).await;
    let (_raw, recorded) = challenged(real, HelloRole::Client, [3; wire::NONCE_LEN]).await;
    let replaying = fake_node(HelloAnswer::Challenge {
        nonce: recorded.listener_nonce,
        proof: secret(RIGHT).proof(Side::Listener, &recorded),
    })
    .await;
    let reason = refusal(&client_with(replaying, Some(RIGHT))).await;
    assert_eq!(
        reason,
        format!("authentication failed: {}", auth::NODE_PROOF_BAD)
    );
}

#[tokio::test]
async fn authentication_keeps_the_client_and_handshake_limits() {
    let mut cfg = config_with(1, Some(RIGHT));
    cfg.max_clients = 1;
    cfg.max_handshaking = 2;
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);

    // Challenged but silent: it takes no client place, so a real client still gets the only one
    // (and keeps it while this test runs).
    let (mut stalled, _) = challenged(addr, HelloRole::Client, [1; wire::NONCE_LEN]).await;
    let client = client_with(addr, Some(RIGHT));
    let response = within(client.call(NodeId(1), request(1))).await;
    assert_eq!(response.ok(), Some(answer(&request(1))));
    // With that place taken, a caller who proves the secret is still refused for the limit.
    let (mut second, t) = challenged(addr, HelloRole::Client, [2; wire::NONCE_LEN]).await;
    let answer = send_proof(&mut second, secret(RIGHT).proof(Side::Connector, &t)).await;
    assert!(
        matches!(&answer, Some(HelloAnswer::Refused(r)) if r.contains("too many client connections")),
        "{answer:?}"
    );
    // The stalled one still counts as in its handshake: two newcomers push it out.
    let _third = TcpStream::connect(addr).await.unwrap();
    let _fourth = TcpStream::connect(addr).await.unwrap();
    within(closed_by_node(&mut stalled)).await;
    drop(client);
}

#[tokio::test]
async fn a_caller_silent_after_the_challenge_is_closed_at_the_handshake_time_out() {
    let mut cfg = config_with(1, Some(RIGHT));
    cfg.handshake_timeout = Duration::from_millis(200);
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let (mut stalled, _) = challenged(addr, HelloRole::Peer(NodeId(2)), [4; wire::NONCE_LEN]).await;
    // Closed without an answer, well within `within`'s 20 s.
    within(closed_by_node(&mut stalled)).await;
    still_serving(addr).await;
}

#[test]
fn a_config_with_a_secret_prints_no_byte_of_it() {
    let mut node = config(1);
    node.secret = Some(secret(RIGHT));
    let mut client = TcpClientConfig::new(CLUSTER, HashMap::new());
    client.secret = Some(secret(RIGHT));
    for shown in [format!("{node:?}"), format!("{client:#?}")] {
        assert!(shown.contains("ClusterSecret(<redacted>)"), "{shown}");
        for word in RIGHT.split(' ') {
            assert!(!shown.contains(word), "{word:?} in {shown}");
        }
    }
}

const MEMBERS_ONLY: &str = "zebra quartz mango velvet members";

fn member_config(id: u64, client_text: Option<&str>, member_text: Option<&str>) -> TcpConfig {
    let mut c = config_with(id, client_text);
    c.peer_secret = member_text.map(secret);
    c
}

/// With a member secret, the client secret admits clients only: a caller that knows it and says
/// it is node 1 gets no message through, while a node with the member secret does, and clients
/// are still served.
#[tokio::test]
async fn with_a_member_secret_the_client_secret_admits_no_member() {
    let mut b = TcpTransport::bind(member_config(2, Some(RIGHT), Some(MEMBERS_ONLY)))
        .await
        .unwrap();
    let impostor = TcpTransport::bind(config_with(1, Some(RIGHT)))
        .await
        .unwrap();
    impostor.set_peer(NodeId(2), b.local_addr());
    for term in 1..=10 {
        impostor.send(msg(1, 2, term)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = tokio::time::timeout(Duration::from_millis(200), b.recv()).await;
    assert!(got.is_err(), "the client secret admitted a member: {got:?}");
    drop(impostor);

    let member = TcpTransport::bind(member_config(1, Some(RIGHT), Some(MEMBERS_ONLY)))
        .await
        .unwrap();
    member.set_peer(NodeId(2), b.local_addr());
    member.send(msg(1, 2, 11)).await;
    assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, 11))));

    serves_a_client_with_the_right_secret(b).await;
}

#[tokio::test]
async fn an_operator_gets_in_when_clients_have_taken_every_place() {
    const ADMIN: &str = "an operator's secret, long enough";
    let mut cfg = config_with(1, Some(RIGHT));
    cfg.peer_secret = Some(secret("the members' own secret, long"));
    cfg.admin_secret = Some(secret(ADMIN));
    cfg.max_clients = 1;
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let client = client_with(addr, Some(RIGHT));
    let response = within(client.call(NodeId(1), request(1))).await;
    assert_eq!(response.ok(), Some(answer(&request(1))));

    let (mut second, t) = challenged(addr, HelloRole::Client, [5; wire::NONCE_LEN]).await;
    let refused = send_proof(&mut second, secret(RIGHT).proof(Side::Connector, &t)).await;
    assert!(
        matches!(&refused, Some(HelloAnswer::Refused(r)) if r.contains("too many client connections")),
        "{refused:?}"
    );
    let (mut operator, t) =
        challenged_by(addr, HelloRole::Admin, [6; wire::NONCE_LEN], ADMIN).await;
    let admitted = send_proof(&mut operator, secret(ADMIN).proof(Side::Connector, &t)).await;
    assert_eq!(admitted, Some(HelloAnswer::Accepted));
    drop(client);
}
