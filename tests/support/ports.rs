//! Free loopback ports for nodes a test starts with a fixed address.
//!
//! Binding port 0 and letting go hands out a port from the kernel's ephemeral range, which
//! every outgoing connection also draws from: before the node binds it, any connection of a
//! test running beside it (a client, a peer link, an extra connection for copies) may take it
//! as its local port, and the node fails with "address in use". Ports below that range
//! (32768 and up on Linux) are never given to outgoing connections, so a port found free
//! there stays free until the node binds it.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

const FIRST: u32 = 20_000;
const SPAN: u32 = 10_000;

/// Counts the ports handed out in this process; it starts at a place of its own per process,
/// so that test binaries run one after another do not retry the same ports.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback port below the ephemeral range that nothing listens on now, never the same one
/// twice in a process (until the span is used up).
pub fn free_port() -> u16 {
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() % 40) * (SPAN / 40),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let Ok(port) = u16::try_from(FIRST + offset) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN);
}
