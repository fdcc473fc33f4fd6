//! `GET /metrics` in the Prometheus text format, on a listener of its own
//! (`metrics.listen`): the public router has no such route, so nothing
//! behind Traefik reaches it. Gauges read from state (the database pools)
//! are refreshed as each scrape renders.

use metrics_exporter_prometheus::PrometheusHandle;
use poem::{
    Endpoint, EndpointExt as _, Response, Route, get, handler,
    http::StatusCode,
    web::Data,
};

use crate::state::AppState;

pub fn routes(state: AppState, handle: PrometheusHandle) -> impl Endpoint<Output = Response> {
    Route::new().at("/metrics", get(metrics)).data(state).data(handle).map_to_response()
}

#[handler]
fn metrics(Data(state): Data<&AppState>, Data(handle): Data<&PrometheusHandle>) -> Response {
    state.db.report_pools();
    Response::builder().status(StatusCode::OK).content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}
