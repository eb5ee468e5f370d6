//! A connection's two halves: plain TCP, or (feature `tls`) TLS over it.
//!
//! An enum rather than a type parameter, so that connection code stays written once and a
//! plain connection pays one predictable branch per read or write. The socket options
//! ([`crate::liveness::Liveness::tune`]) are set on the TCP socket before any TLS, and the
//! writer still reads the socket's retransmission count (`TCP_INFO`, see
//! [`crate::tail_probe`]) through the TLS layer.

use crate::tail_probe::Retransmissions;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A connection past its handshake: a buffered reader and the writer.
pub(crate) type Halves = (BufReader<ConnRead>, ConnWrite);

/// The reading half of a connection.
pub(crate) enum ConnRead {
    Plain(OwnedReadHalf),
    #[cfg(feature = "tls")]
    Tls(tls_split::TlsRead),
}

/// The writing half of a connection.
pub(crate) enum ConnWrite {
    Plain(OwnedWriteHalf),
    #[cfg(feature = "tls")]
    Tls(tls_split::TlsWrite),
}

/// A plain TCP connection's halves.
pub(crate) fn plain(stream: TcpStream) -> Halves {
    let (read, write) = stream.into_split();
    (
        BufReader::new(ConnRead::Plain(read)),
        ConnWrite::Plain(write),
    )
}

/// A TLS connection's halves.
#[cfg(feature = "tls")]
pub(crate) fn tls(stream: tokio_rustls::TlsStream<TcpStream>) -> Halves {
    let (read, write) = tls_split::split(stream);
    (BufReader::new(ConnRead::Tls(read)), ConnWrite::Tls(write))
}

impl AsyncRead for ConnRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnRead::Plain(read) => Pin::new(read).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            ConnRead::Tls(read) => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ConnWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnWrite::Plain(write) => Pin::new(write).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            ConnWrite::Tls(write) => Pin::new(write).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Plain(write) => Pin::new(write).poll_flush(cx),
            #[cfg(feature = "tls")]
            ConnWrite::Tls(write) => Pin::new(write).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Plain(write) => Pin::new(write).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            ConnWrite::Tls(write) => Pin::new(write).poll_shutdown(cx),
        }
    }
}

impl Retransmissions for ConnWrite {
    fn retransmitted(&self) -> Option<u32> {
        match self {
            ConnWrite::Plain(write) => crate::kernel::retransmitted(write.as_ref()),
            #[cfg(feature = "tls")]
            ConnWrite::Tls(write) => write.retransmitted(),
        }
    }
}

/// Splits a TLS stream in two. tokio's `split` would do, but hides the stream, and the writer
/// needs the TCP socket under it for `TCP_INFO`.
#[cfg(feature = "tls")]
mod tls_split {
    use std::io;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsStream;

    /// Both halves lock the stream for the length of one poll, never across an `.await`, so
    /// the lock is uncontended when both run in one task (as every connection here does) and
    /// held for microseconds otherwise. TLS needs the one stream for both directions: reading
    /// may have to write (an alert, a key update) and the other way round.
    type Shared = Arc<Mutex<TlsStream<TcpStream>>>;

    pub(crate) struct TlsRead(Shared);
    pub(crate) struct TlsWrite(Shared);

    pub(crate) fn split(stream: TlsStream<TcpStream>) -> (TlsRead, TlsWrite) {
        let shared = Arc::new(Mutex::new(stream));
        (TlsRead(shared.clone()), TlsWrite(shared))
    }

    fn lock(shared: &Shared) -> MutexGuard<'_, TlsStream<TcpStream>> {
        // A panic while polling leaves the TLS state as it was between records: usable.
        shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl TlsWrite {
        pub(crate) fn retransmitted(&self) -> Option<u32> {
            crate::kernel::retransmitted(lock(&self.0).get_ref().0)
        }
    }

    impl AsyncRead for TlsRead {
        /// A close without TLS's `close_notify` reads as a plain end of stream: dlm's frames
        /// carry their length, so a connection cut mid-frame is still caught (as a truncated
        /// frame), and a client that exits without the courtesy is no error.
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match Pin::new(&mut *lock(&self.0)).poll_read(cx, buf) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(()))
                }
                polled => polled,
            }
        }
    }

    impl AsyncWrite for TlsWrite {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut *lock(&self.0)).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut *lock(&self.0)).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut *lock(&self.0)).poll_shutdown(cx)
        }
    }
}
