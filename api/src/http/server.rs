//! Serving connections, with every timeout a peer can otherwise exploit.
//! poem's own `Server` offers only an inactivity timeout (which would also
//! cut a slow request mid-flight); this loop drives hyper-util's HTTP/1 and
//! HTTP/2 connections directly and hands each request to the same poem
//! endpoint:
//! - a request head must arrive whole within `server.header_read_timeout_secs`
//!   (hyper's own timer), and a new connection must start one by then;
//! - a keep-alive connection with no request in flight is closed after
//!   `server.idle_timeout_secs`;
//! - a request body must keep a minimum average rate
//!   (`server.min_body_bytes_per_sec` after `server.body_grace_secs`);
//! - at most `server.max_connections` are open; further ones are closed at
//!   once rather than queued;
//! - on shutdown, connections finish their requests for up to the grace
//!   period; requests still running then are cut, and counted in a warning.

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::Stream;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use poem::{Body, Endpoint, Response, http, web::{LocalAddr, RemoteAddr}};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::ServerSettings;

/// The limits of [`serve`], from `server.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub min_body_bytes_per_sec: u64,
    pub body_grace: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn from_settings(s: &ServerSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(s.idle_timeout_secs),
            min_body_bytes_per_sec: s.min_body_bytes_per_sec,
            body_grace: Duration::from_secs(s.body_grace_secs),
            max_connections: s.max_connections,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs),
        }
    }
}

/// What one connection's watcher needs to know.
#[derive(Debug)]
struct ConnState {
    opened: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// Milliseconds after `opened` at which the last request ended.
    last_end_ms: AtomicU64,
}

/// Requests in flight across every connection.
#[derive(Debug, Default)]
struct Totals {
    in_flight: AtomicUsize,
}

/// Counts a request in flight, on its connection and overall, until dropped
/// (also when a shutdown cuts it).
struct InFlight {
    conn: Arc<ConnState>,
    totals: Arc<Totals>,
}

impl InFlight {
    fn enter(conn: &Arc<ConnState>, totals: &Arc<Totals>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.started.fetch_add(1, Ordering::AcqRel);
        totals.in_flight.fetch_add(1, Ordering::AcqRel);
        Self { conn: conn.clone(), totals: totals.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.conn.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.conn.last_end_ms.store(ms, Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.totals.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `ep` on `listener` until `shutdown` resolves, then drains.
pub async fn serve<E>(listener: TcpListener, ep: E, limits: Limits, shutdown: impl Future<Output = ()>) -> std::io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let ep = Arc::new(ep);
    let local: SocketAddr = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let totals = Arc::new(Totals::default());
    let stop = CancellationToken::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut last_refusal_log: Option<Instant> = None;
    // Serves one accepted connection in the set, holding its slot until it ends.
    let spawn = |stream: tokio::net::TcpStream, peer: SocketAddr, permit: tokio::sync::OwnedSemaphorePermit| {
        let _ = stream.set_nodelay(true);
        let (ep, totals, stop) = (ep.clone(), totals.clone(), stop.clone());
        async move {
            serve_connection(stream, local, peer, ep, limits, totals, stop).await;
            drop(permit);
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a moment.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        last_refusal_log = Some(Instant::now());
                        tracing::warn!(max = limits.max_connections, "connection limit reached; closing new connections (setting server.max_connections)");
                    }
                    drop(stream);
                    continue;
                };
                connections.spawn(spawn(stream, peer, permit));
            }
        }
    }
    // Connections the kernel accepted before the signal are served too
    // (their first request), rather than reset with the listener.
    while let Some(Ok((stream, peer))) = futures::FutureExt::now_or_never(listener.accept()) {
        let Ok(permit) = slots.clone().try_acquire_owned() else { break };
        connections.spawn(spawn(stream, peer, permit));
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let cut = totals.in_flight.load(Ordering::Acquire);
        connections.abort_all();
        if cut > 0 {
            tracing::warn!(
                requests = cut,
                grace_secs = limits.shutdown_grace.as_secs(),
                "shutdown grace period over: cutting requests still in flight (setting server.shutdown_grace_secs)"
            );
        }
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

async fn serve_connection<E>(
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    ep: Arc<E>,
    limits: Limits,
    totals: Arc<Totals>,
    stop: CancellationToken,
) where
    E: Endpoint<Output = Response> + 'static,
{
    let conn_state =
        Arc::new(ConnState { opened: Instant::now(), in_flight: AtomicUsize::new(0), started: AtomicU64::new(0), last_end_ms: AtomicU64::new(0) });
    let service = hyper::service::service_fn({
        let conn_state = conn_state.clone();
        move |req: http::Request<Incoming>| {
            let ep = ep.clone();
            let guard = InFlight::enter(&conn_state, &totals);
            async move {
                let has_body = req.method() != http::Method::GET && req.method() != http::Method::HEAD;
                let mut req: poem::Request = (req, LocalAddr(local.into()), RemoteAddr(peer.into()), poem::http::uri::Scheme::HTTP).into();
                if has_body {
                    let body = req.take_body().into_bytes_stream();
                    req.set_body(Body::from_bytes_stream(MinRate::new(body, limits.min_body_bytes_per_sec, limits.body_grace)));
                }
                let resp: http::Response<BoxBody<Bytes, std::io::Error>> = ep.get_response(req).await.into();
                drop(guard);
                Ok::<_, Infallible>(resp)
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.idle_timeout / 2));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let idle = idle_watch(conn_state.clone(), limits);
    tokio::pin!(idle);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = &mut idle => {}
        () = stop.cancelled() => {
            // Accepted just before the stop: its request gets a moment to
            // arrive, is answered, and then the connection closes.
            if conn_state.started.load(Ordering::Acquire) == 0 {
                let first = async {
                    while conn_state.started.load(Ordering::Acquire) == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    _ = conn.as_mut() => return,
                    _ = tokio::time::timeout(Duration::from_secs(1), first) => {}
                }
            }
        }
    }
    // Idle, or the server is stopping: finish what is in flight, then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Resolves when the connection has been silent too long: no request ever
/// started within the head timeout, or none in flight for the idle timeout.
async fn idle_watch(conn: Arc<ConnState>, limits: Limits) {
    let tick = Duration::from_millis(500).min(limits.header_read_timeout);
    loop {
        tokio::time::sleep(tick).await;
        if conn.in_flight.load(Ordering::Acquire) > 0 {
            continue;
        }
        let now_ms = u64::try_from(conn.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (since, allowed) = if conn.started.load(Ordering::Acquire) == 0 {
            (now_ms, limits.header_read_timeout)
        } else {
            (now_ms.saturating_sub(conn.last_end_ms.load(Ordering::Acquire)), limits.idle_timeout)
        };
        if since >= u64::try_from(allowed.as_millis()).unwrap_or(u64::MAX) {
            return;
        }
    }
}

/// A body that must arrive at `rate` bytes a second on average once `grace`
/// has passed; slower, and it ends with an error (the request is cut off
/// rather than holding its connection and memory open indefinitely).
struct MinRate<S> {
    inner: S,
    rate: u64,
    grace: Duration,
    started: Instant,
    received: u64,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> MinRate<S> {
    fn new(inner: S, rate: u64, grace: Duration) -> Self {
        Self { inner, rate, grace, started: Instant::now(), received: 0, timer: None }
    }

    /// When the bytes received so far stop being enough.
    fn deadline(&self) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        let secs = self.received as f64 / self.rate as f64;
        Some(self.started + self.grace + Duration::from_secs_f64(secs))
    }
}

impl<S> Stream for MinRate<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                self.timer = None;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => {
                let Some(deadline) = self.deadline() else { return Poll::Pending };
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                if timer.as_mut().poll(cx).is_ready() {
                    let rate = self.rate;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the request body arrived slower than {rate} bytes a second (setting server.min_body_bytes_per_sec)"),
                    ))));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}
