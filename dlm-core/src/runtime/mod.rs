//! The async runtime (feature `tokio`): the driver that runs a [`crate::Node`] over a
//! [`Transport`] and a storage, and the async client. Everything with IO lives here; the rest of
//! the crate stays sans-IO.

mod transport;

pub use transport::{ClientTransport, Incoming, Transport, TransportError};
