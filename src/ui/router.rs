//! The routes: pages, the JSON API under `/api/`, static files.
//!
//! The API routes are declared once, in [`api_routes`], which also lists
//! them (method, path): a test checks that list against
//! `docs/openapi.json`, both ways.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};

use super::state::AppState;
use super::{api, auth, pages};

type Routes = Vec<(&'static str, &'static str, MethodRouter<Arc<AppState>>)>;

/// Every API route: (method, path in OpenAPI/axum syntax, handler).
fn api_table() -> Routes {
    vec![
        ("get", "/api/openapi.json", get(openapi)),
        ("get", "/api/dags", get(api::dags)),
        ("get", "/api/dags/{dag}", get(api::dag)),
        ("get", "/api/dags/{dag}/runs", get(api::runs)),
        ("get", "/api/dags/{dag}/grid", get(api::grid)),
        ("get", "/api/dags/{dag}/backfill-plan", get(api::backfill_plan)),
        ("get", "/api/runs/{run}", get(api::run)),
        ("get", "/api/runs/{run}/tasks/{task}", get(api::task)),
        ("get", "/api/runs/{run}/tasks/{task}/logs", get(api::logs)),
        ("get", "/api/runs/{run}/tasks/{task}/quarantine", get(api::quarantine)),
        ("get", "/api/audit", get(api::audit)),
        ("post", "/api/dags/{dag}/run", post(api::run_now)),
        ("post", "/api/dags/{dag}/backfill", post(api::backfill)),
        ("post", "/api/dags/{dag}/pause", post(api::pause)),
        ("post", "/api/dags/{dag}/unpause", post(api::unpause)),
        ("post", "/api/runs/{run}/rerun-failed", post(api::rerun_failed)),
        ("post", "/api/runs/{run}/tasks/{task}/clear", post(api::clear)),
    ]
}

/// The API routes as (method, path), for the OpenAPI check.
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    api_table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// The OpenAPI description of the API (docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/app.js"),
    )
}

async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/app.css"),
    )
}

pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/", get(pages::dag_list))
        .route("/login", get(auth::login))
        .route("/dags/{dag}", get(pages::grid))
        .route("/dags/{dag}/graph", get(pages::graph))
        .route("/dags/{dag}/backfill", get(pages::backfill))
        .route("/runs/{run}", get(pages::run))
        .route("/runs/{run}/tasks/{task}", get(pages::task))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css));
    for (_, path, handler) in api_table() {
        r = r.route(path, handler);
    }
    r.fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state)
}
