//! A node's open client connections, and on which of them each client has spoken: an answer
//! goes to the connection the node names and to every other connection its client has sent a
//! request on. A client opens a second connection to a node only while it loses packets (see
//! [`crate::duplicates`]), and sends its requests on both; the node's answer, sent once by the
//! node to the newest copy's connection, is then copied to the other, so that the answer too
//! is late only when both copies are lost. A client with one connection costs one lookup.

use crate::datagram::packet::Token;
use crate::queue::OutQueue;
use dlm_core::{ClientId, ConnId};
use std::collections::HashMap;
use std::sync::Arc;

/// The most clients one connection is remembered for: a connection normally carries one
/// client's calls (or a few, when clients share a transport), and one sending requests under
/// ever new ids must not grow the table without bound; its answers just go where the node
/// says.
pub(crate) const MOST_CLIENTS_PER_CONN: usize = 16;

#[derive(Default)]
pub(crate) struct ClientConns {
    queues: HashMap<ConnId, Open>,
    /// The connections each client has sent a request on, oldest first.
    by_client: HashMap<ClientId, Vec<ConnId>>,
}

struct Open {
    queue: Arc<OutQueue>,
    /// The clients that have sent a request on it.
    clients: Vec<ClientId>,
    /// The token of its datagrams, if it takes them ([`crate::datagram`]).
    datagrams: Option<Token>,
}

impl ClientConns {
    /// A connection opened.
    pub(crate) fn open(&mut self, conn: ConnId, queue: Arc<OutQueue>) {
        let clients = Vec::new();
        let datagrams = None;
        self.queues.insert(
            conn,
            Open {
                queue,
                clients,
                datagrams,
            },
        );
    }

    /// `conn` takes datagrams under `token`.
    pub(crate) fn taking_datagrams(&mut self, conn: ConnId, token: Token) {
        if let Some(open) = self.queues.get_mut(&conn) {
            open.datagrams = Some(token);
        }
    }

    /// The datagram tokens of `conn` and of every other connection `client` has spoken on:
    /// where an answer to `client` named for `conn` may also go by datagram.
    pub(crate) fn datagram_tokens(&self, conn: ConnId, client: ClientId) -> Vec<Token> {
        let others = self.by_client.get(&client).map_or(&[][..], Vec::as_slice);
        let mut tokens = Vec::new();
        for c in std::iter::once(&conn).chain(others.iter().filter(|c| **c != conn)) {
            if let Some(token) = self.queues.get(c).and_then(|open| open.datagrams) {
                tokens.push(token);
            }
        }
        tokens
    }

    /// A connection closed: its queue and the note of its clients go.
    pub(crate) fn close(&mut self, conn: ConnId) {
        let Some(open) = self.queues.remove(&conn) else {
            return;
        };
        for client in open.clients {
            if let Some(conns) = self.by_client.get_mut(&client) {
                conns.retain(|c| *c != conn);
                if conns.is_empty() {
                    self.by_client.remove(&client);
                }
            }
        }
    }

    /// `client` sent a request on `conn`. Call it once per client and connection (the reader
    /// remembers which it has told).
    pub(crate) fn spoke(&mut self, conn: ConnId, client: ClientId) {
        let Some(open) = self.queues.get_mut(&conn) else {
            return;
        };
        if open.clients.contains(&client) || open.clients.len() >= MOST_CLIENTS_PER_CONN {
            return;
        }
        open.clients.push(client);
        self.by_client.entry(client).or_default().push(conn);
    }

    /// Queues an answer to `client` on `conn` and a copy on each other connection the client
    /// has spoken on; returns how many connections it went to.
    pub(crate) fn deliver(&self, conn: ConnId, client: ClientId, frame: Vec<u8>) -> usize {
        let others = self
            .by_client
            .get(&client)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|c| **c != conn)
            .filter_map(|c| self.queues.get(c));
        let mut sent = 0;
        for other in others {
            other.queue.push_drop_oldest(frame.clone());
            sent += 1;
        }
        if let Some(own) = self.queues.get(&conn) {
            own.queue.push_drop_oldest(frame);
            sent += 1;
        }
        sent
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Arc<OutQueue> {
        Arc::new(OutQueue::new(16, usize::MAX))
    }

    #[test]
    fn an_answer_goes_to_every_connection_its_client_spoke_on_once() {
        let mut conns = ClientConns::default();
        let (a, b, c) = (ConnId(1), ConnId(2), ConnId(3));
        let (qa, qb, qc) = (queue(), queue(), queue());
        conns.open(a, qa.clone());
        conns.open(b, qb.clone());
        conns.open(c, qc.clone());
        let (alice, bob) = (ClientId(7), ClientId(8));
        conns.spoke(a, alice);
        conns.spoke(b, alice);
        conns.spoke(b, alice);
        conns.spoke(c, bob);
        assert_eq!(conns.deliver(b, alice, vec![1]), 2);
        assert_eq!((qa.len(), qb.len(), qc.len()), (1, 1, 0));
        // Another client's answer stays on its own connection.
        assert_eq!(conns.deliver(c, bob, vec![2]), 1);
        assert_eq!((qa.len(), qb.len(), qc.len()), (1, 1, 1));
        // Once a connection closes, answers go to the other only, even when named.
        conns.close(b);
        assert_eq!(conns.deliver(b, alice, vec![3]), 1);
        assert_eq!(qa.len(), 2);
        conns.close(a);
        assert_eq!(conns.deliver(a, alice, vec![4]), 0);
        assert!(!conns.by_client.contains_key(&alice));
        assert_eq!(conns.len(), 1);
    }

    #[test]
    fn datagram_tokens_are_those_of_the_named_connection_and_the_clients_others() {
        let mut conns = ClientConns::default();
        let (a, b, c) = (ConnId(1), ConnId(2), ConnId(3));
        for conn in [a, b, c] {
            conns.open(conn, queue());
        }
        conns.taking_datagrams(a, [1; 16]);
        conns.taking_datagrams(c, [3; 16]);
        let alice = ClientId(7);
        conns.spoke(a, alice);
        conns.spoke(b, alice);
        // Named on b (no datagrams): a's token, where alice sends hers.
        assert_eq!(conns.datagram_tokens(b, alice), vec![[1; 16]]);
        assert_eq!(conns.datagram_tokens(a, alice), vec![[1; 16]]);
        // Another client on c: c's own only.
        assert_eq!(conns.datagram_tokens(c, ClientId(8)), vec![[3; 16]]);
        conns.close(a);
        assert!(conns.datagram_tokens(b, alice).is_empty());
    }

    #[test]
    fn a_client_that_has_not_spoken_gets_its_answer_where_the_node_says() {
        let mut conns = ClientConns::default();
        let (qa, qb) = (queue(), queue());
        conns.open(ConnId(1), qa.clone());
        conns.open(ConnId(2), qb.clone());
        assert_eq!(conns.deliver(ConnId(2), ClientId(9), vec![1]), 1);
        assert_eq!((qa.len(), qb.len()), (0, 1));
    }

    #[test]
    fn a_connection_is_remembered_for_a_bounded_number_of_clients() {
        let mut conns = ClientConns::default();
        conns.open(ConnId(1), queue());
        for id in 0..1000 {
            conns.spoke(ConnId(1), ClientId(id));
        }
        assert_eq!(conns.by_client.len(), MOST_CLIENTS_PER_CONN);
        conns.close(ConnId(1));
        assert!(conns.by_client.is_empty());
    }
}
