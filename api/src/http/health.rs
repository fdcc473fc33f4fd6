//! `/healthz` (the process is alive and not draining before a stop: what a
//! load balancer asks) and `/readyz` (that, and the database, the cache and
//! object storage all answer: what an operator asks). Readiness names the failing dependency and
//! why, for the operator; it reveals nothing of any tenant.

use std::time::Duration;

use poem::{IntoResponse, Response, handler, http::StatusCode, web::{Data, Json}};
use serde_json::{Value, json};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A balancer checks this one: every replica shares the dependencies
/// `/readyz` checks, so failing on them would take every replica out at
/// once and turn a degraded service (each answers 503 fast for what needs
/// the missing dependency) into no service. Only draining turns it away.
#[handler]
pub async fn healthz(Data(state): Data<&AppState>) -> Response {
    if state.draining.is_cancelled() {
        return stopping();
    }
    Json(json!({ "status": "ok" })).into_response()
}

/// The answer while draining: 503, so balancers send nothing new.
fn stopping() -> Response {
    let mut resp = Json(json!({ "status": "stopping" })).into_response();
    resp.set_status(StatusCode::SERVICE_UNAVAILABLE);
    resp
}

async fn check<F, E>(backend: &str, fut: F) -> (bool, Value)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => (true, json!({ "status": "up", "backend": backend })),
        Ok(Err(e)) => (false, json!({ "status": "down", "backend": backend, "reason": e.to_string() })),
        Err(_) => (false, json!({ "status": "down", "backend": backend, "reason": format!("no answer within {}s", CHECK_TIMEOUT.as_secs()) })),
    }
}

#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    if state.draining.is_cancelled() {
        return stopping();
    }
    let ((db_ok, db), (cache_ok, cache), (obj_ok, objects)) = tokio::join!(
        check(state.db.backend_name(), state.db.ping()),
        check(state.cache.backend_name(), state.cache.ping()),
        check(state.objects.backend_name(), state.objects.ping()),
    );
    let ready = db_ok && cache_ok && obj_ok;
    if !ready {
        tracing::warn!(%db, %cache, %objects, "not ready");
    }
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": { "database": db, "cache": cache, "storage": objects },
    });
    let mut resp = Json(body).into_response();
    resp.set_status(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE });
    resp
}
