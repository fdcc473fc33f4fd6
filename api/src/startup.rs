//! Starting the application: connect what the settings choose (see
//! `state`), bind the listener, serve until a shutdown signal. Tests call the
//! same `build` with port 0.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use crate::{config::Settings, http, state::AppState};

pub struct Application {
    listener: tokio::net::TcpListener,
    /// `metrics.listen`'s listener and the recorder it renders.
    metrics: Option<(tokio::net::TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    state: AppState,
}

impl Application {
    /// Connects and binds `server.host:server.port` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        // Installed before anything connects, so start-up is counted too.
        let handle = match settings.metrics.listen {
            Some(_) => Some(crate::metrics::install(settings.metrics.max_operation_names)?),
            None => None,
        };
        let metrics_addr = settings.metrics.listen;
        let state = AppState::connect(settings).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (settings server.host, server.port)"))?;
        let metrics = match (metrics_addr, handle) {
            (Some(at), Some(handle)) => {
                let listener = tokio::net::TcpListener::bind(at).await.with_context(|| format!("binding {at} (setting metrics.listen)"))?;
                Some((listener, handle))
            }
            _ => None,
        };
        Ok(Self { listener, metrics, state })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Where `GET /metrics` is served, if `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// for up to `server.shutdown_grace_secs`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let limits = http::server::Limits::from_settings(&self.state.settings.server);
        let db = self.state.db.clone();
        let stopping = self.state.stopping.clone();
        let draining = self.state.draining.clone();
        let drain = Duration::from_secs(self.state.settings.server.drain_secs);
        // Metrics stay up while the server drains, and stop with it.
        let metrics_stop = tokio_util::sync::CancellationToken::new();
        let metrics = self.metrics.map(|(listener, handle)| {
            let routes = http::metrics::routes(self.state.clone(), handle);
            let stop = metrics_stop.clone();
            tokio::spawn(async move {
                let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
                poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(routes, stop.cancelled_owned(), Some(Duration::from_secs(1))).await
            })
        });
        // Boxed: the middleware stack's type nests too deep for rustc to lay
        // out the connection future in a release build.
        let routes = poem::EndpointExt::boxed(http::routes(self.state));
        let shutdown = async move {
            shutdown.await;
            if !drain.is_zero() {
                draining.cancel();
                tracing::info!(drain_secs = drain.as_secs(), "draining: /healthz and /readyz answer 503 while requests are still served (setting server.drain_secs)");
                tokio::time::sleep(drain).await;
            }
            stopping.cancel();
        };
        let result = http::server::serve(self.listener, routes, limits, shutdown).await;
        metrics_stop.cancel();
        if let Some(metrics) = metrics {
            match metrics.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics listener ended abnormally"),
            }
        }
        // A statement cut by the shutdown may hold its connection a while;
        // the process does not wait on it.
        if tokio::time::timeout(Duration::from_secs(2), db.close()).await.is_err() {
            tracing::warn!("database connections still busy at exit; leaving them to the server to end");
        }
        result
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
