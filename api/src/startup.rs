//! Starting the application: connect what the settings choose (see
//! `state`), bind the listener, serve until a shutdown signal. Tests call the
//! same `build` with port 0.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use crate::{config::Settings, http, state::AppState};

pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Connects and binds `server.host:server.port` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        let state = AppState::connect(settings).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (settings server.host, server.port)"))?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// for up to `server.shutdown_grace_secs`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let limits = http::server::Limits::from_settings(&self.state.settings.server);
        let db = self.state.db.clone();
        // Boxed: the middleware stack's type nests too deep for rustc to lay
        // out the connection future in a release build.
        let stopping = self.state.stopping.clone();
        let routes = poem::EndpointExt::boxed(http::routes(self.state));
        let shutdown = async move {
            shutdown.await;
            stopping.cancel();
        };
        let result = http::server::serve(self.listener, routes, limits, shutdown).await;
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
