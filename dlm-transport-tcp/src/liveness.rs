//! Telling a silent connection from an idle one.
//!
//! TCP notices a dead path only when a write fails, and when packets are dropped silently (a
//! pulled cable, a switch that black-holes traffic, no reset) it retransmits with a back-off
//! that doubles up to minutes: a link cut for 14 s was still dead 10 s after the network
//! healed. So each end of a connection notes when it last heard from the other
//! ([`Heard`], fed by [`Noting`]), the ends make sure there is something to hear
//! ([`crate::wire::PING`], [`crate::wire::PONG`]), and an end that hears nothing for the
//! silence bound closes the connection ([`silence`]); a peer link then dials a fresh socket.
//! The kernel's own time-outs ([`Liveness::tune`]) are a second line behind that.

use crate::datagram::Datagrams;
use crate::duplicates::Duplicates;
use crate::tail_probe::TailProbes;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Keep-alive probes sent, after the idle time, before the kernel gives a connection up.
#[cfg_attr(
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "windows",
    )),
    allow(dead_code)
)]
const KEEPALIVE_PROBES: u32 = 3;

/// How often to ping, how long a silence ends a connection, and how lost segments are
/// recovered sooner than TCP's retransmission timer alone would.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Liveness {
    /// Never zero (a zero interval would spin).
    pub(crate) ping_interval: Duration,
    /// Zero turns the silence checks off.
    pub(crate) silence_timeout: Duration,
    /// When writers follow a burst with a probe ([`crate::tail_probe`]).
    pub(crate) tail_probes: TailProbes,
    /// `TCP_RTO_MIN_US` for every socket, if set.
    pub(crate) rto_min: Option<Duration>,
    /// When messages go out on more than one connection ([`crate::duplicates`]).
    pub(crate) duplicates: Duplicates,
    /// When small messages also go out as datagrams ([`crate::datagram`]); `Never` where
    /// there is no UDP socket, or under TLS.
    pub(crate) datagrams: Datagrams,
}

impl Liveness {
    /// Pings and silence as given; the kernel's retransmission timer, and tail probes after
    /// losses.
    pub(crate) fn new(ping_interval: Duration, silence_timeout: Duration) -> Liveness {
        Liveness {
            ping_interval: ping_interval.max(Duration::from_millis(1)),
            silence_timeout,
            tail_probes: TailProbes::default(),
            rto_min: None,
            duplicates: Duplicates::Never,
            datagrams: Datagrams::Never,
        }
    }

    /// The same, with small messages also sent as datagrams per `datagrams`.
    pub(crate) fn with_datagrams(self, datagrams: Datagrams) -> Liveness {
        Liveness { datagrams, ..self }
    }

    pub(crate) fn with_loss_recovery(
        self,
        tail_probes: TailProbes,
        rto_min: Option<Duration>,
        duplicates: Duplicates,
    ) -> Liveness {
        Liveness {
            tail_probes,
            rto_min,
            duplicates,
            ..self
        }
    }

    /// The silence bound, if the checks are on.
    pub(crate) fn bound(&self) -> Option<Duration> {
        (!self.silence_timeout.is_zero()).then_some(self.silence_timeout)
    }

    /// A connect time-out no longer than the silence bound. A connect sent into a black hole
    /// waits for the kernel's SYN retransmission (1 s, then 3 s, 7 s...) even after the path
    /// heals; giving up sooner and dialing again sends a fresh SYN.
    pub(crate) fn connect_timeout(&self, configured: Duration) -> Duration {
        match self.bound() {
            Some(bound) => configured.min(bound),
            None => configured,
        }
    }

    /// `TCP_USER_TIMEOUT`: twice the silence bound, so the kernel gives up on unacknowledged data
    /// only after our own check would have, yet long before its retransmission back-off would.
    fn user_timeout(bound: Duration) -> Duration {
        bound * 2
    }

    /// Keep-alive idle time and probe interval: the silence bound in whole seconds (the unit
    /// the kernel takes), at least one. Keep-alive matters on connections with nothing to ping
    /// for, such as a client's connection with no call waiting.
    fn keepalive_period(bound: Duration) -> Duration {
        Duration::from_secs(bound.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Sets TCP keep-alive and `TCP_USER_TIMEOUT` on `stream`, from the silence bound, and the
    /// minimum retransmission time-out if one is set. Best effort: where an option is
    /// unsupported the liveness signals still do the work.
    pub(crate) fn tune(&self, stream: &TcpStream) {
        if let Some(rto_min) = self.rto_min {
            if let Err(e) = crate::kernel::set_rto_min(stream, rto_min) {
                tracing::debug!("cannot set TCP_RTO_MIN_US to {rto_min:?}: {e}");
            }
        }
        let Some(bound) = self.bound() else {
            return;
        };
        let socket = socket2::SockRef::from(stream);
        let period = Self::keepalive_period(bound);
        let keepalive = socket2::TcpKeepalive::new().with_time(period);
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "windows",
        ))]
        let keepalive = keepalive
            .with_interval(period)
            .with_retries(KEEPALIVE_PROBES);
        if let Err(e) = socket.set_tcp_keepalive(&keepalive) {
            tracing::debug!("cannot set TCP keep-alive: {e}");
        }
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
        if let Err(e) = socket.set_tcp_user_timeout(Some(Self::user_timeout(bound))) {
            tracing::debug!("cannot set TCP_USER_TIMEOUT: {e}");
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
        tracing::debug!(
            "TCP_USER_TIMEOUT ({:?}) is not available on this platform",
            Self::user_timeout(bound)
        );
    }
}

/// When a connection last heard from the other end. Shared by reference between the futures of
/// one connection's task, so atomics rather than a lock.
pub(crate) struct Heard {
    origin: Instant,
    /// Nanoseconds from `origin` to the last time we heard.
    at: AtomicU64,
    /// Set while we are not listening (see [`Heard::deaf`]).
    deaf: AtomicBool,
}

impl Heard {
    /// Counts as having just heard: a new connection is not silent yet.
    pub(crate) fn new() -> Heard {
        Heard {
            origin: Instant::now(),
            at: AtomicU64::new(0),
            deaf: AtomicBool::new(false),
        }
    }

    /// Stops the count until the guard drops, and restarts it then: while a reader waits for
    /// its node to take a message, it reads nothing, and the peer's signals wait in the socket.
    /// A node too busy to take messages for a while does not make its peers silent.
    pub(crate) fn deaf(&self) -> Deaf<'_> {
        self.deaf.store(true, Ordering::Relaxed);
        Deaf(self)
    }

    /// Notes that we heard now; also restarts the count when calls start waiting on a client's
    /// connection.
    pub(crate) fn now(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.at.fetch_max(nanos, Ordering::Relaxed);
    }

    /// How long since we last heard (zero while deaf).
    pub(crate) fn quiet_for(&self) -> Duration {
        if self.deaf.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let at = self.origin + Duration::from_nanos(self.at.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(at)
    }
}

/// While it lives, a [`Heard`] counts no silence.
pub(crate) struct Deaf<'a>(&'a Heard);

impl Drop for Deaf<'_> {
    fn drop(&mut self) {
        self.0.deaf.store(false, Ordering::Relaxed);
        self.0.now();
    }
}

/// Ends once nothing has been heard for `bound`; never, without a bound.
///
/// Poll it after the connection's reader (`tokio::select!` with `biased;`): after this task
/// itself was held up, the reader then takes what arrived in the meantime before the check, so
/// a late wake-up of our own is not taken for silence of the other end.
pub(crate) async fn silence(heard: &Heard, bound: Option<Duration>) {
    let Some(bound) = bound else {
        return std::future::pending().await;
    };
    loop {
        let quiet = heard.quiet_for();
        if quiet >= bound {
            return;
        }
        tokio::time::sleep(bound - quiet).await;
    }
}

/// A reader that notes in a [`Heard`] every time bytes arrive. Bytes rather than whole frames,
/// so that a large frame arriving slowly over a busy link is not taken for silence.
pub(crate) struct Noting<'a, R> {
    inner: R,
    heard: &'a Heard,
}

impl<'a, R> Noting<'a, R> {
    pub(crate) fn new(inner: R, heard: &'a Heard) -> Noting<'a, R> {
        Noting { inner, heard }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Noting<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.heard.now();
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn silence_ends_after_the_bound_and_each_byte_heard_restarts_it() {
        let heard = Heard::new();
        let (mut far, near) = tokio::io::duplex(64);
        let mut near = Noting::new(near, &heard);
        let bound = Some(Duration::from_millis(300));
        let start = Instant::now();
        // The far end speaks twice, 200 ms apart, then falls silent.
        let talk = async {
            for _ in 0..2 {
                far.write_all(&[1]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            std::future::pending::<()>().await;
        };
        let listen = async {
            let mut byte = [0u8; 1];
            loop {
                near.read_exact(&mut byte).await.unwrap();
            }
        };
        tokio::select! {
            biased;
            () = listen => unreachable!(),
            () = talk => unreachable!(),
            () = silence(&heard, bound) => {}
        }
        // Last heard at 200 ms (virtual time), so silent from 500 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_bound_silence_never_ends() {
        let heard = Heard::new();
        let waited = tokio::time::timeout(Duration::from_secs(3600), silence(&heard, None)).await;
        assert!(waited.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn noting_now_holds_the_bound_off() {
        let heard = Heard::new();
        tokio::time::sleep(Duration::from_millis(250)).await;
        heard.now();
        assert_eq!(heard.quiet_for(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(heard.quiet_for(), Duration::from_millis(100));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_kernel_time_outs_are_set_on_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        Liveness::new(Duration::from_millis(50), Duration::from_millis(300)).tune(&stream);
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(1));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(600))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_silence_is_counted_while_deaf_and_the_count_restarts_after() {
        let heard = Heard::new();
        let bound = Some(Duration::from_millis(300));
        let start = Instant::now();
        let deaf = heard.deaf();
        let waiting = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(deaf);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            biased;
            () = waiting => unreachable!(),
            () = silence(&heard, bound) => {}
        }
        // Deaf for 10 s, then silent for the bound (to within one check of the deaf time).
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(10_300), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(10_600), "{elapsed:?}");
    }

    #[test]
    fn derived_time_outs_follow_the_bound() {
        let live = Liveness::new(Duration::ZERO, Duration::from_millis(300));
        assert_eq!(live.ping_interval, Duration::from_millis(1));
        assert_eq!(
            live.connect_timeout(Duration::from_secs(2)),
            Duration::from_millis(300)
        );
        assert_eq!(
            Liveness::user_timeout(Duration::from_millis(300)),
            Duration::from_millis(600)
        );
        assert_eq!(
            Liveness::keepalive_period(Duration::from_millis(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Liveness::keepalive_period(Duration::from_millis(2500)),
            Duration::from_secs(3)
        );
        let off = Liveness::new(Duration::from_millis(50), Duration::ZERO);
        assert_eq!(off.bound(), None);
        assert_eq!(
            off.connect_timeout(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
