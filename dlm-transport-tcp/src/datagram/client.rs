//! A client's datagram side: one UDP socket per address family, bound when a connection first
//! gets a token, and which open connection each answer datagram belongs to.

use super::packet::{self, Binding, Dropped, Kind, Token};
use super::Counters;
use dlm_core::ClientResponse;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What takes the answers that arrive by datagram: a client connection's waiting calls.
pub(crate) trait Answers: Send + Sync {
    /// An answer arrived for this connection.
    fn answer(&self, response: ClientResponse);
}

struct Route {
    binding: Binding,
    conn: Weak<dyn Answers>,
}

type Routes = Arc<Mutex<HashMap<Token, Route>>>;

fn lock(routes: &Routes) -> MutexGuard<'_, HashMap<Token, Route>> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client's UDP sockets and routes; dropping it stops the receiving tasks.
pub(crate) struct ClientDatagrams {
    /// By address family: IPv4, IPv6. `None` inside once a bind failed (logged once).
    sockets: [tokio::sync::OnceCell<Option<Arc<UdpSocket>>>; 2],
    routes: Routes,
    counters: Arc<Counters>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Datagrams per request sent.
    copies: usize,
}

/// How one connection sends its requests as datagrams.
pub(crate) struct Path {
    socket: Arc<UdpSocket>,
    binding: Binding,
    to: SocketAddr,
    counters: Arc<Counters>,
    copies: usize,
}

impl Path {
    /// Sends a copy of a request (`payload`, a frame without its length word), if it fits.
    pub(crate) fn send(&self, payload: &[u8]) {
        if let Some(datagram) = self.binding.seal(Kind::Request, payload) {
            super::send_now(
                &self.socket,
                &datagram,
                self.to,
                &self.counters,
                self.copies,
            );
        }
    }
}

/// A connection's answer datagrams taken until dropped.
pub(crate) struct Routed {
    routes: Routes,
    token: Token,
}

impl Drop for Routed {
    fn drop(&mut self) {
        lock(&self.routes).remove(&self.token);
    }
}

impl ClientDatagrams {
    /// Sending each request as `copies` datagrams.
    pub(crate) fn new(copies: usize) -> ClientDatagrams {
        ClientDatagrams {
            sockets: Default::default(),
            routes: Routes::default(),
            counters: Arc::default(),
            tasks: Mutex::default(),
            copies: copies.max(1),
        }
    }

    /// The path for a connection to the node at `to` with `binding`, binding the socket of
    /// that address family first if needed; `None` if it cannot be bound.
    pub(crate) async fn path(&self, to: SocketAddr, binding: Binding) -> Option<Path> {
        let family = usize::from(to.is_ipv6());
        let socket = self.sockets[family]
            .get_or_init(|| self.bind(to))
            .await
            .clone()?;
        Some(Path {
            socket,
            binding,
            to,
            counters: self.counters.clone(),
            copies: self.copies,
        })
    }

    async fn bind(&self, to: SocketAddr) -> Option<Arc<UdpSocket>> {
        let any: SocketAddr = if to.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        match UdpSocket::bind(any).await {
            Ok(socket) => {
                let socket = Arc::new(socket);
                let task = tokio::spawn(serve(
                    socket.clone(),
                    self.routes.clone(),
                    self.counters.clone(),
                ));
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(task);
                Some(socket)
            }
            Err(e) => {
                tracing::warn!("cannot bind a UDP socket ({e}): no datagram copies to nodes");
                None
            }
        }
    }

    /// Takes the answer datagrams of the connection `binding` names for `conn` until dropped.
    pub(crate) fn route(&self, binding: &Binding, conn: Weak<dyn Answers>) -> Routed {
        let route = Route {
            binding: binding.clone(),
            conn,
        };
        lock(&self.routes).insert(binding.token, route);
        Routed {
            routes: self.routes.clone(),
            token: binding.token,
        }
    }

    /// Counts so far.
    pub(crate) fn stats(&self) -> super::DatagramStats {
        self.counters.snapshot()
    }
}

impl Drop for ClientDatagrams {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            task.abort();
        }
    }
}

/// Checks an answer datagram; nothing in it is trusted before its token and tag check out.
fn receive(
    routes: &Routes,
    datagram: &[u8],
) -> Result<(Arc<dyn Answers>, ClientResponse), Dropped> {
    let (kind, token) = packet::header(datagram)?;
    let (payload, conn) = {
        let routes = lock(routes);
        let route = routes.get(&token).ok_or(Dropped::Unknown)?;
        if kind != Kind::Response {
            return Err(Dropped::Unknown);
        }
        let payload = route.binding.open(datagram)?;
        (payload, route.conn.upgrade().ok_or(Dropped::Unknown)?)
    };
    let response = postcard::from_bytes(payload).map_err(|_| Dropped::Malformed)?;
    Ok((conn, response))
}

async fn serve(socket: Arc<UdpSocket>, routes: Routes, counters: Arc<Counters>) {
    let mut buf = vec![0u8; packet::MAX_DATAGRAM + 1];
    loop {
        let len = match socket.recv_from(&mut buf).await {
            Ok((len, _)) => len,
            Err(e) => {
                // A pause, so that an error that persists cannot spin the task.
                tracing::trace!("datagram receive failed: {e}");
                tokio::time::sleep(super::RECEIVE_RETRY).await;
                continue;
            }
        };
        match receive(&routes, &buf[..len]) {
            Ok((conn, response)) => {
                counters.delivered();
                conn.answer(response);
            }
            Err(why) => {
                tracing::trace!("datagram dropped: {why:?}");
                counters.dropped(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::packet::DatagramKey;
    use dlm_core::{ClientId, Reply, Seq};

    #[derive(Default)]
    struct Taken(Mutex<Vec<ClientResponse>>);

    impl Answers for Taken {
        fn answer(&self, response: ClientResponse) {
            self.0.lock().unwrap().push(response);
        }
    }

    fn response() -> ClientResponse {
        ClientResponse {
            client: ClientId(1),
            seq: Seq(2),
            result: Ok(Reply::Released),
        }
    }

    #[test]
    fn an_answer_datagram_reaches_its_connection_only_when_authentic() {
        let datagrams = ClientDatagrams::new(1);
        let binding = Binding {
            token: [6; 16],
            key: DatagramKey::new(&[6; 32]),
        };
        let taken: Arc<Taken> = Arc::default();
        let conn: Arc<dyn Answers> = taken.clone();
        let routed = datagrams.route(&binding, Arc::downgrade(&conn));
        let payload = postcard::to_allocvec(&response()).unwrap();
        let good = binding.seal(Kind::Response, &payload).unwrap();
        let (_, got) = receive(&datagrams.routes, &good).unwrap();
        assert_eq!(got, response());
        let unkeyed = Binding {
            token: [6; 16],
            key: None,
        };
        let forged = unkeyed.seal(Kind::Response, &payload).unwrap();
        assert_eq!(
            receive(&datagrams.routes, &forged).err(),
            Some(Dropped::Forged)
        );
        // A request sent back at the client is no answer.
        let reflected = binding.seal(Kind::Request, &payload).unwrap();
        assert_eq!(
            receive(&datagrams.routes, &reflected).err(),
            Some(Dropped::Unknown)
        );
        drop(routed);
        assert_eq!(
            receive(&datagrams.routes, &good).err(),
            Some(Dropped::Unknown)
        );
    }
}
