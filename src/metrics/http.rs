//! The HTTP side of the metrics listener: hyper's HTTP/1 server, one request per connection,
//! under the bounds described in the module above.

use super::{
    encode, CONNECTION_DEADLINE, HEADER_TIMEOUT, MAX_ACCEPTS_PER_SECOND, MAX_REFUSALS, MAX_SCRAPES,
    MIN_REFRESH, STATE_WAIT,
};
use bytes::Bytes;
use dlm_core::runtime::MetricsReader;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Wait after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Time a refused connection gets to take its 503.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(1);

/// Accepts scrape connections until the listener is dropped; the tasks it started end with it.
pub(super) async fn accept_loop(listener: TcpListener, reader: MetricsReader) {
    let scrapes = Arc::new(Semaphore::new(MAX_SCRAPES));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let source = Arc::new(Source {
        reader,
        last: Mutex::new(None),
    });
    // Holds every connection task, so that they are aborted with this loop; the semaphores
    // bound it to MAX_SCRAPES + MAX_REFUSALS running tasks.
    let mut tasks = JoinSet::new();
    let mut window = (Instant::now(), 0);
    loop {
        while tasks.try_join_next().is_some() {}
        pace(&mut window).await;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics listener: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Ok(permit) = Arc::clone(&scrapes).try_acquire_owned() {
            let source = Arc::clone(&source);
            tasks.spawn(async move {
                serve(stream, source).await;
                drop(permit);
            });
        } else if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
            tracing::debug!("metrics listener: too many scrapes at once; answering 503");
            tasks.spawn(async move {
                refuse(stream).await;
                drop(permit);
            });
        } else {
            tracing::debug!("metrics listener: flooded; connection closed unanswered");
        }
    }
}

/// Waits, once [`MAX_ACCEPTS_PER_SECOND`] connections were taken in the current second, for
/// the next one. `window` is the second's start and its count.
async fn pace(window: &mut (Instant, u32)) {
    let second = Duration::from_secs(1);
    if window.0.elapsed() >= second {
        *window = (Instant::now(), 0);
    }
    if window.1 >= MAX_ACCEPTS_PER_SECOND {
        tracing::debug!("metrics listener: too many connections this second; pausing");
        tokio::time::sleep_until(window.0 + second).await;
        *window = (Instant::now(), 0);
    }
    window.1 += 1;
}

/// The node's metrics and the last text made of them.
struct Source {
    reader: MetricsReader,
    /// When the text was made, and the text. Locked across a read of the node (bounded by
    /// [`STATE_WAIT`]), so that scrapes at once share one read.
    last: Mutex<Option<(Instant, Bytes)>>,
}

impl Source {
    async fn text(&self) -> Result<Bytes, std::fmt::Error> {
        let mut last = self.last.lock().await;
        if let Some((at, text)) = &*last {
            if at.elapsed() < MIN_REFRESH {
                return Ok(text.clone());
            }
        }
        let text = Bytes::from(encode::encode(self.reader.read(STATE_WAIT).await)?);
        *last = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

async fn serve(stream: TcpStream, source: Arc<Source>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let source = Arc::clone(&source);
        async move { Ok::<_, Infallible>(answer(request, &source).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("metrics connection ended: {e}"),
        Err(_) => tracing::debug!("metrics connection outlived {CONNECTION_DEADLINE:?}; closed"),
    }
}

async fn answer(request: Request<Incoming>, source: &Source) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at GET /metrics\n".into(),
        );
    }
    match source.text().await {
        Ok(text) => {
            let mut response = Response::new(Full::new(text));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(encode::CONTENT_TYPE));
            response
        }
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n".into(),
        ),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer to a connection beyond [`MAX_SCRAPES`].
fn refusal() -> String {
    let body = format!("too many metrics scrapes at once (at most {MAX_SCRAPES}); try again\n");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn refuse(mut stream: TcpStream) {
    let answer = async {
        stream.write_all(refusal().as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent: closing with unread data would reset the connection,
        // and the client might lose the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_DEADLINE, answer).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn past_the_accept_budget_the_listener_waits_for_the_next_second() {
        let start = Instant::now();
        let mut window = (start, 0);
        for _ in 0..MAX_ACCEPTS_PER_SECOND {
            pace(&mut window).await;
        }
        assert_eq!(Instant::now(), start, "the budget is taken without waiting");
        pace(&mut window).await;
        assert_eq!(Instant::now(), start + Duration::from_secs(1));
        assert_eq!(
            window.1, 1,
            "the new second counts the connection just taken"
        );
    }

    #[cfg(feature = "mem")]
    #[tokio::test(start_paused = true)]
    async fn scrapes_closer_than_the_refresh_share_one_answer() {
        let net = dlm_transport_mem::MemNetwork::new(1);
        let server = crate::Server::builder()
            .id(1)
            .serve_mem(&net)
            .await
            .unwrap();
        let source = Source {
            reader: server.metrics(),
            last: Mutex::new(None),
        };
        let first = source.text().await.unwrap();
        let again = source.text().await.unwrap();
        assert_eq!(
            first.as_ptr(),
            again.as_ptr(),
            "the same text, not a new one"
        );
        tokio::time::advance(MIN_REFRESH).await;
        let fresh = source.text().await.unwrap();
        assert_ne!(
            first.as_ptr(),
            fresh.as_ptr(),
            "a new text once the refresh passed"
        );
        server.shutdown().await.unwrap();
    }
}
