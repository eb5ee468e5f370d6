//! # dlm-transport-tcp
//!
//! dlm over TCP with tokio: each frame is a `u32` length followed by a postcard payload, after a
//! handshake that carries a magic number, the protocol version and the cluster id.
//!
//! (Being built: see the transports issue.)
#![forbid(unsafe_code)]
