//! Speaking (and misspeaking) the wire protocol on raw sockets.

use dlm::tcp::wire::{self, Hello, HelloAnswer, HelloRole};
use dlm::{ClientId, ClientRequest, ClientResponse, NodeStatus, Op, Reply, Seq};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against hangs only; nothing asserts how fast anything is.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step hung")
}

/// A correct hello.
pub fn hello(role: HelloRole) -> Hello {
    Hello {
        magic: wire::MAGIC,
        version: wire::PROTOCOL_VERSION,
        cluster_id: dlm::DEFAULT_CLUSTER_ID,
        role,
        challenge: None,
        datagrams: false,
    }
}

/// The largest frame the nodes accept (the facade keeps the transport's default).
pub fn max_frame() -> usize {
    let any = "127.0.0.1:0".parse().unwrap();
    dlm::tcp::TcpConfig::new(dlm::NodeId(1), any, 0).max_frame
}

/// A length prefix and `payload`, whatever the payload is.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Connects and sends `hello`; returns the stream and the node's answer.
pub async fn handshake(addr: SocketAddr, hello: &Hello) -> (TcpStream, Option<HelloAnswer>) {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    let frame = wire::encode_frame(hello, wire::HANDSHAKE_MAX_FRAME).unwrap();
    stream.write_all(&frame).await.unwrap();
    let answer = within(wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME))
        .await
        .unwrap();
    (stream, answer)
}

/// A connection past an accepted handshake as `role`.
pub async fn accepted(addr: SocketAddr, role: HelloRole) -> TcpStream {
    let (stream, answer) = handshake(addr, &hello(role)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    stream
}

/// Waits until the node closes `stream` (end of stream or reset); returns what it sent first.
pub async fn closed_by_node(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    within(async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    got
}

/// Sends `request` on an accepted client connection and reads the answer.
pub async fn call(stream: &mut TcpStream, request: &ClientRequest) -> ClientResponse {
    let frame = wire::encode_frame(request, max_frame()).unwrap();
    stream.write_all(&frame).await.unwrap();
    within(wire::read_frame(stream, max_frame()))
        .await
        .unwrap()
        .expect("the node closed the connection instead of answering")
}

/// Asks node `addr` about itself on a fresh connection.
pub async fn status(addr: SocketAddr) -> NodeStatus {
    let mut stream = accepted(addr, HelloRole::Client).await;
    let request = ClientRequest {
        client: ClientId(0x5747),
        seq: Seq(1),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Status,
    };
    let response = call(&mut stream, &request).await;
    match response.result {
        Ok(Reply::Status(status)) => status,
        other => panic!("status request answered {other:?}"),
    }
}
