//! The two socket options that neither tokio nor socket2 wraps, and the only `unsafe` code of
//! this crate: reading a socket's retransmission count (`TCP_INFO`) and setting its minimum
//! retransmission time-out (`TCP_RTO_MIN_US`, Linux 6.15 and later). Elsewhere both are
//! unavailable: the count is unknown and the option is refused.

use std::io;
use std::time::Duration;
use tokio::net::TcpStream;

/// Segments this socket has retransmitted since it opened, by any of TCP's loss recoveries
/// (fast retransmit, tail-loss probe, time-out), less those the receiver reported it already
/// had. `None` where the kernel does not say (or the C library's `tcp_info` lacks the fields:
/// only glibc's and musl's have them all).
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
pub(crate) fn retransmitted(stream: &TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    // SAFETY: an all-zero `tcp_info` is a valid value (integers only). The kernel writes at most
    // `len` bytes into it and sets `len` to what it wrote; `fd` is an open TCP socket, borrowed
    // from `stream` for the length of the call.
    #[allow(unsafe_code)]
    let (rc, info, len) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (rc, info, len)
    };
    if rc != 0 {
        return None;
    }
    // Fields a kernel does not know it leaves out (and zero, as they were).
    let has = |end: usize| len as usize >= end;
    if !has(std::mem::offset_of!(libc::tcp_info, tcpi_total_retrans) + 4) {
        return None;
    }
    // Retransmissions the receiver reported as duplicates (DSACK) were not losses: mostly a
    // tail-loss probe sent while the receiver was still delaying its acknowledgement.
    let spurious = if has(std::mem::offset_of!(libc::tcp_info, tcpi_dsack_dups) + 4) {
        info.tcpi_dsack_dups
    } else {
        0
    };
    Some(info.tcpi_total_retrans.saturating_sub(spurious))
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
pub(crate) fn retransmitted(_stream: &TcpStream) -> Option<u32> {
    None
}

/// `TCP_RTO_MIN_US` from the Linux UAPI headers (6.15); libc does not name it yet.
#[cfg(any(target_os = "linux", target_os = "android"))]
const TCP_RTO_MIN_US: libc::c_int = 45;

/// Sets the socket's minimum retransmission time-out (the kernel rounds it up to its clock
/// tick). Fails on kernels without the option.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_rto_min(stream: &TcpStream, rto_min: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let micros = libc::c_int::try_from(rto_min.as_micros()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is an open socket borrowed from `stream` for the call; the option value is a
    // live `c_int` and its exact size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_RTO_MIN_US,
            (&micros as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn set_rto_min(_stream: &TcpStream, _rto_min: Duration) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_RTO_MIN_US is Linux only",
    ))
}

#[cfg(all(
    test,
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl")
))]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_fresh_connection_has_retransmitted_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stream, _accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        assert_eq!(retransmitted(&stream.unwrap()), Some(0));
    }
}
