//! # dlm-transport-mem
//!
//! An in-process transport for dlm, for tests, benchmarks and the demo: a [`MemNetwork`] of tokio
//! channels between N nodes and any number of clients, where each link can drop, duplicate,
//! delay or cut messages, switched while it runs, from a seeded generator.
//!
//! ```no_run
//! # async fn demo() {
//! use dlm_core::NodeId;
//! use dlm_transport_mem::{Endpoint, MemNetwork};
//! let net = MemNetwork::new(42);
//! let _n1 = net.node(NodeId(1));
//! let _n2 = net.node(NodeId(2));
//! let client = net.client();
//! net.set_drop(Endpoint::Node(NodeId(1)), Endpoint::Node(NodeId(2)), 0.1);
//! net.cut(client.endpoint(), Endpoint::Node(NodeId(2)));
//! net.isolate(NodeId(1));
//! # }
//! ```
//!
//! Faults are decided when a message is sent: a cut or a drop made later does not catch a message
//! already in flight (like a real network). Delays use `tokio::time`, so under a paused tokio clock
//! (`start_paused = true`) a run is deterministic for a given seed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod faults;
mod network;
mod node;

pub use client::MemClient;
pub use faults::{Endpoint, LinkFaults};
pub use network::{MemNetwork, NetworkStats};
pub use node::MemNode;
