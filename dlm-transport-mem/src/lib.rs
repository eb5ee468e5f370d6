//! # dlm-transport-mem
//!
//! An in-process transport for dlm, for tests, benchmarks and the demo: a `MemNetwork` of tokio
//! channels between N nodes and any number of clients, where each link can drop, duplicate,
//! delay or cut messages, switched while it runs, from a seeded generator.
//!
//! (Being built: see the transports issue.)
#![forbid(unsafe_code)]
