//! `/healthz` (the process is alive) and `/readyz` (the database, the cache
//! and object storage all answer). Readiness names the failing dependency and
//! why, for the operator; it reveals nothing of any tenant.

use std::time::Duration;

use poem::{IntoResponse, Response, handler, http::StatusCode, web::{Data, Json}};
use serde_json::{Value, json};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[handler]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
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
