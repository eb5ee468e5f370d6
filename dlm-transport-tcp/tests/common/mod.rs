//! Helpers shared by the TCP tests.
#![allow(dead_code)]

pub mod noise;
pub mod pki;

use dlm_core::message::{PeerBody, PeerMessage};
use dlm_core::runtime::{Incoming, Transport};
use dlm_core::{ClientId, ClientRequest, ClientResponse, NodeId, Op, Reply, Seq, Term};
use dlm_transport_tcp::wire::{self, Hello, HelloAnswer, HelloRole};
use dlm_transport_tcp::{TcpClient, TcpClientConfig, TcpConfig, TcpTransport};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const CLUSTER: u64 = 77;

/// A guard against hangs only; no test depends on how fast anything is.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step hung")
}

pub fn config(id: u64) -> TcpConfig {
    let mut c = TcpConfig::new(NodeId(id), "127.0.0.1:0".parse().unwrap(), CLUSTER);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(100);
    c
}

pub fn client_for(nodes: &[(u64, SocketAddr)]) -> TcpClient {
    let map: HashMap<_, _> = nodes.iter().map(|(id, a)| (NodeId(*id), *a)).collect();
    TcpClient::new(TcpClientConfig::new(CLUSTER, map))
}

pub fn msg(from: u64, to: u64, term: u64) -> PeerMessage {
    PeerMessage {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: PeerBody::TimeoutNow,
    }
}

pub fn request(seq: u64) -> ClientRequest {
    ClientRequest {
        client: ClientId(5),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Status,
    }
}

pub fn answer(request: &ClientRequest) -> ClientResponse {
    ClientResponse {
        client: request.client,
        seq: request.seq,
        result: Ok(Reply::Released),
    }
}

/// Plays a node that answers every client request at once.
pub fn spawn_echo(mut node: TcpTransport) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = node.recv().await {
            if let Incoming::Client { conn, request } = incoming {
                node.reply(conn, answer(&request)).await;
            }
        }
    })
}

pub fn hello(role: HelloRole) -> Hello {
    Hello {
        magic: wire::MAGIC,
        version: wire::PROTOCOL_VERSION,
        cluster_id: CLUSTER,
        role,
        challenge: None,
        datagrams: false,
    }
}

/// Opens a raw connection and sends `hello`; returns the stream and the node's answer.
pub async fn raw_handshake(addr: SocketAddr, hello: &Hello) -> (TcpStream, Option<HelloAnswer>) {
    raw_first_frame(
        addr,
        wire::encode_frame(hello, wire::HANDSHAKE_MAX_FRAME).unwrap(),
    )
    .await
}

/// Opens a raw connection and sends `frame` as its hello; returns the stream and the answer.
pub async fn raw_first_frame(addr: SocketAddr, frame: Vec<u8>) -> (TcpStream, Option<HelloAnswer>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let answer = wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME)
        .await
        .unwrap();
    (stream, answer)
}

/// Waits until the node closes `stream` (EOF or reset).
pub async fn closed_by_node(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
