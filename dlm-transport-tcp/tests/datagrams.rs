//! Copies of small messages as datagrams (`Datagrams`), end to end over real sockets: a client
//! and a node that copy every message both ways still give one answer per call, and a real
//! node applies an append that reached it by TCP and by datagram once, at one offset. (The
//! datagram format, its checks, and messages that come by datagram alone are tested in the
//! crate's unit tests.)

mod common;

use common::*;
use dlm_core::runtime::{
    spawn_server, Client, ClientConfig, ClientTransport, Incoming, MemStorage, ServerOptions,
    Transport,
};
use dlm_core::{ClientRequest, ClientResponse, Config, NodeId, Seq};
use dlm_transport_tcp::{Datagrams, Duplicates, TcpClient, TcpClientConfig, TcpTransport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

fn datagram_client(addr: SocketAddr, copies: usize) -> TcpClient {
    let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(1), addr)]));
    c.datagrams = Datagrams::Always { copies };
    // One connection: copies by datagram only.
    c.duplicates = Duplicates::Never;
    TcpClient::new(c)
}

async fn datagram_node() -> TcpTransport {
    let mut c = config(1);
    c.datagrams = Datagrams::Always { copies: 1 };
    c.duplicates = Duplicates::Never;
    TcpTransport::bind(c).await.unwrap()
}

#[tokio::test]
async fn every_call_goes_both_ways_and_takes_one_answer() {
    for copies in [1, 2] {
        calls_go_both_ways(copies).await;
    }
}

async fn calls_go_both_ways(copies: usize) {
    let mut node = datagram_node().await;
    let client = Arc::new(datagram_client(node.local_addr(), copies));
    // Answers every copy of every call (by TCP, and by datagram), counting the copies.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let echo = tokio::spawn(async move {
        let mut copies: HashMap<Seq, u32> = HashMap::new();
        loop {
            tokio::select! {
                incoming = node.recv() => match incoming {
                    Some(Incoming::Client { conn, request }) => {
                        *copies.entry(request.seq).or_default() += 1;
                        node.reply(conn, answer(&request)).await;
                    }
                    Some(_) => {}
                    None => panic!("the node stopped"),
                },
                _ = &mut stopped => return (node, copies),
            }
        }
    });
    for seq in 1..=20 {
        let response = within(client.call(NodeId(1), request(seq))).await.unwrap();
        assert_eq!(response.seq, Seq(seq));
    }
    let _ = stop.send(());
    let (node, received) = within(echo).await.unwrap();
    let sent = client.datagram_stats().sent;
    assert_eq!(sent, 20 * copies as u64, "{copies} datagrams per call");
    // At most one copy by TCP and `copies` by datagram of each call reached the node.
    let most = 1 + copies as u32;
    assert!(received.values().all(|n| *n <= most), "{received:?}");
    let stats = node.datagram_stats().unwrap();
    assert!(stats.delivered > 0, "{stats:?}");
    assert_eq!((stats.forged, stats.unknown, stats.malformed), (0, 0, 0));
    assert_eq!(node.client_connections(), 1);
}

/// A client transport the test keeps a hand on, to read its counts afterwards.
struct Kept(Arc<TcpClient>);

#[async_trait::async_trait]
impl ClientTransport for Kept {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, dlm_core::runtime::TransportError> {
        self.0.call(node, request).await
    }
}

#[tokio::test]
async fn an_append_that_comes_by_tcp_and_by_datagram_is_applied_once() {
    let transport = datagram_node().await;
    let addr = transport.local_addr();
    let node = spawn_server(
        Config::new(NodeId(1), [NodeId(1)]),
        MemStorage::new(),
        transport,
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let transport = Arc::new(datagram_client(addr, 2));
    let client = Client::new(Kept(transport.clone()), ClientConfig::new([NodeId(1)]));
    let guard = within(client.lock("l")).await.unwrap();
    let mut offsets = Vec::new();
    let mut expected = Vec::new();
    for i in 0..20u8 {
        let line = format!("line {i}\n").into_bytes();
        let offset = within(client.append(&guard, "f", line.clone()))
            .await
            .unwrap();
        assert_eq!(offset, expected.len() as u64, "append {i} landed elsewhere");
        offsets.push(offset);
        expected.extend_from_slice(&line);
    }
    within(client.release(guard)).await.unwrap();
    // Each line once, where its acknowledgement said.
    assert_eq!(within(client.read("f")).await.unwrap(), expected);
    // Both paths were used: every request went as a datagram too, and answers came back so.
    let stats = transport.datagram_stats();
    assert!(stats.sent >= 40, "{stats:?}");
    assert!(stats.delivered > 0, "{stats:?}");
    node.shutdown().await.unwrap();
}
