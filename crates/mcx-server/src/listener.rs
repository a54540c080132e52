//! Bounded connections for both listeners: a cap on open connections, a deadline for a
//! request's headers, an idle timeout, and counters with a rate-limited log line when a
//! limit or an accept error is hit. axum's own `serve` has none of these knobs, so both
//! listeners run this accept loop over hyper-util's connection builder.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// The largest HTTP/1.1 request head (request line and headers) a listener reads; a larger
/// one is answered `431`. Also hyper's read buffer: at its minimum (8 KiB) the buffer is
/// allocated once, where hyper's default lets the first request's read double it to
/// 16 KiB for the connection's life (most of an idle event stream's memory).
pub const MAX_REQUEST_HEAD: usize = 8192;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this time.
    pub header_read_timeout: Duration,
    /// A connection with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// At most this many connections are open at once; more are closed at once.
    pub max_connections: usize,
}

/// What a listener refused or could not do, since start.
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// Connections closed at once because the cap was reached.
    pub refused_over_limit: AtomicU64,
    /// Connections closed for being idle or for not sending headers in time.
    pub timed_out: AtomicU64,
    /// Failed `accept` calls (for example, no file descriptor left).
    pub accept_errors: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    last_log: AtomicU64,
}

impl ListenerCounters {
    /// The counters as the API shows them.
    pub fn stats(&self, listener: &str) -> mcx_model::api::ListenerStats {
        mcx_model::api::ListenerStats {
            listener: listener.to_string(),
            open: self.open.load(Ordering::Relaxed),
            refused_over_limit: self.refused_over_limit.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// Logs at most once every ten seconds per listener: a flood must not flood the log.
    fn warn_limited(&self, started: Instant, name: &str, what: &str) {
        let now = started.elapsed().as_secs();
        let last = self.last_log.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 10)
            && self
                .last_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                listener = name,
                refused_over_limit = self.refused_over_limit.load(Ordering::Relaxed),
                accept_errors = self.accept_errors.load(Ordering::Relaxed),
                "{what}"
            );
        }
    }
}

/// Both listeners' counters.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The client API.
    pub client_api: Arc<ListenerCounters>,
    /// The interconnection endpoint.
    pub interconnection: Arc<ListenerCounters>,
}

/// The soft limit of open files raised to the hard limit: every connection is one, and
/// running out stops the server answering anyone.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
}

/// The peer's address, for handlers (log-on throttling by source address).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// What a connection handed to the listener's owner needs to be served within the limits.
pub(crate) struct Accepted {
    pub(crate) remote: SocketAddr,
    pub(crate) limits: ConnectionLimits,
    pub(crate) counters: Arc<ListenerCounters>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Accepts connections until `shutdown` turns true, at most `max_connections` open at
/// once, each handed to `handle` on its own task. Returns when every connection ended
/// (or five seconds after shutdown).
pub(crate) fn accept_loop<F, Fut>(
    listener: TcpListener,
    name: &'static str,
    limits: ConnectionLimits,
    counters: Arc<ListenerCounters>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) -> JoinHandle<()>
where
    F: Fn(TcpStream, Accepted) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                        counters.warn_limited(started, name, &format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = shutdown.wait_for(|down| *down).await; } => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                counters.refused_over_limit.fetch_add(1, Ordering::Relaxed);
                counters.warn_limited(
                    started,
                    name,
                    &format!(
                        "connection limit of {} reached: closing new connections",
                        limits.max_connections
                    ),
                );
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let accepted = Accepted {
                remote,
                limits,
                counters: counters.clone(),
                shutdown: shutdown.clone(),
            };
            let counters = counters.clone();
            let work = handle(tcp, accepted);
            tokio::spawn(async move {
                counters.open.fetch_add(1, Ordering::Relaxed);
                work.await;
                counters.open.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            });
        }
        // Wait for open connections to finish (they were told to close).
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::info!(
                listener = name,
                "connections still open after 5 s; closing them"
            );
        }
    })
}

/// Serves HTTP/1.1 and HTTP/2 on one connection with `app`, inserting `extension` into
/// every request, within the limits; `deadline` bounds the connection's whole life.
pub(crate) async fn serve_connection<I, X>(
    io: I,
    app: axum::Router,
    extension: X,
    accepted: &Accepted,
    deadline: Option<Duration>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    X: Clone + Send + Sync + 'static,
{
    let limits = accepted.limits;
    let opened = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: io,
        opened,
        last: activity.clone(),
    };
    let remote = PeerAddr(accepted.remote);
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(extension.clone());
            request.extensions_mut().insert(remote);
            app.clone().oneshot(request)
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    // Boxed in the same expression that builds it: a named local would keep its place in
    // this future after the move, and this future is most of what an idle event stream
    // costs.
    let mut connection =
        Box::pin(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    let mut shutdown = accepted.shutdown.clone();
    let check = deadline
        .map_or(limits.idle_timeout, |d| d.min(limits.idle_timeout))
        .checked_div(4)
        .unwrap_or_default()
        .clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut tick = tokio::time::interval(check);
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    if is_timeout(&*e) {
                        accepted.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(remote = %accepted.remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                let now = opened.elapsed();
                let idle = now.saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)));
                match closing {
                    None if idle >= limits.idle_timeout || deadline.is_some_and(|d| now >= d) => {
                        accepted.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                    }
                    // A peer that does not finish within a second of being told loses
                    // the connection.
                    Some(since) if since.elapsed() >= Duration::from_secs(1) => return,
                    _ => {}
                }
            }
            _ = shutdown.wait_for(|down| *down), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + Duration::from_secs(4));
            }
        }
    }
}

fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_timeout())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// An I/O stream that records when bytes last moved (ms since it opened).
struct Watched<I> {
    inner: I,
    opened: Instant,
    last: Arc<AtomicU64>,
}

impl<I> Watched<I> {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
