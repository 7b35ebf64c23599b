//! Serving the gate (every route behind its checks) over TCP within bounds, so that
//! connections cannot exhaust the daemon: at most `max_connections` at once (one more is
//! answered 503 and closed), a connection that sends no complete request head within
//! `header_timeout` is closed (that is also how long an idle keep-alive connection lives),
//! and a write that the client does not read for `write_timeout` ends the connection. Request bodies have their own timeout (`body.rs`).
//!
//! `axum::serve` has none of these knobs (it gives hyper no timer), so this is its loop with
//! hyper's HTTP/1 builder configured: accept, take a connection slot, serve, and at shutdown
//! stop accepting and let the connections in flight finish, for `drain` at most.
//!
//! With TLS (`tls.rs`) each connection's handshake runs in its own task, within
//! `header_timeout` and under its slot, so a client that stalls mid-handshake holds one slot
//! for a bounded time and never the accept loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::net::SocketAddr;

use axum::body::Body;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::Gate;

/// What bounds the server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; one more is refused with 503.
    pub max_connections: usize,
    /// Time a client has to send a request's head, and an idle connection stays open.
    pub header_timeout: Duration,
    /// Time a blocked write to a client may wait before the connection is dropped.
    pub write_timeout: Duration,
    /// Time connections in flight get to finish when the server stops.
    pub drain: Duration,
}

/// The answer to a connection beyond the limit: the JSON error envelope, then close.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 68\r\n\r\n\
{\"error_message\":\"Too many connections to tickd; try again shortly\"}";

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}

/// Serves `gate` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves, then
/// drains.
pub async fn serve(
    listener: TcpListener,
    gate: Gate,
    limits: ServerLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let warned = Arc::new(AtomicBool::new(false));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} connections are open, the limit ([server] max_connections): new ones \
                     are answered 503 until some close",
                    limits.max_connections
                );
            }
            if tls.is_none() {
                tokio::spawn(refuse(stream));
            }
            // Over TLS a plain-text refusal would be noise to the client: closing is the answer.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let service = TowerToHyperService::new(with_body(gate.for_peer(peer)));
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        let warned = Arc::clone(&warned);
        tokio::spawn(async move {
            if let Some(io) = handshake(io, tls, limits.header_timeout, peer).await {
                let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
                if let Err(error) = connection.await {
                    tracing::debug!("connection ended: {error}");
                }
            }
            drop(slot);
            warned.store(false, Ordering::Relaxed);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "Connections still open {} s after shutdown began were dropped",
            limits.drain.as_secs()
        );
    }
}

/// The connection's stream: as it is without TLS, else after a TLS handshake that must end
/// within `timeout`; `None` when it failed (logged at debug: a client's mistake).
async fn handshake(
    io: TimeoutStream<TcpStream>,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    peer: SocketAddr,
) -> Option<Pin<Box<dyn Io>>> {
    let Some(acceptor) = tls else {
        return Some(Box::pin(io));
    };
    match tokio::time::timeout(timeout, acceptor.accept(Box::pin(io))).await {
        Ok(Ok(stream)) => Some(Box::pin(stream)),
        Ok(Err(error)) => {
            tracing::debug!(client = %peer, "TLS handshake failed: {error}");
            None
        }
        Err(_) => {
            tracing::debug!(client = %peer, "TLS handshake not done within {} s", timeout.as_secs());
            None
        }
    }
}

/// The gate, taking hyper's requests (their bodies made axum's).
fn with_body(
    gate: Gate,
) -> impl tower::Service<
    axum::extract::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send {
    gate.map_request(|request: axum::extract::Request<hyper::body::Incoming>| {
        request.map(Body::new)
    })
}

/// Answers 503 and closes, without reading the request (bounded: a client that does not read
/// gets nothing after a second).
async fn refuse(mut stream: TcpStream) {
    let answer = async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// An accept that failed: out of descriptors (the limit in the kernel or the process), or a
/// connection reset before it was taken. Waits a moment rather than spin on it.
async fn accept_failed(error: &std::io::Error) {
    let out_of_descriptors = matches!(
        rustix::io::Errno::from_io_error(error),
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
    );
    if out_of_descriptors {
        tracing::warn!("Cannot accept a connection: {error}; retrying in 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    } else {
        tracing::debug!("accept failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::REFUSAL;

    #[test]
    fn the_refusal_is_a_complete_response_with_the_envelope() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            json["error_message"]
                .as_str()
                .unwrap()
                .contains("Too many connections")
        );
    }
}
