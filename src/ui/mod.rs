//! The web UI: `nightjar ui` (or `nightjar schedule --ui`).
//!
//! An axum server over the project's run history, with pages rendered on
//! the server (minijinja templates compiled into the binary, a few lines of
//! embedded JavaScript for log follow and live refresh) and a JSON API under
//! `/api/` that backs them (documented in `docs/openapi.json`, served at
//! `/api/openapi.json`).
//!
//! - [`router`]: the routes (pages, API, static files);
//! - [`auth`]: the access token (required off loopback) and CSRF tokens;
//! - [`state`]: what handlers share: the project, the history, the DAGs;
//! - [`views`]: the data of each page, shared by the pages and the API;
//! - [`pages`] and [`api`]: the handlers; actions go through
//!   [`crate::control`], the same functions as the CLI;
//! - [`svg`]: the DAG graph and the Gantt chart, drawn on the server;
//! - [`mask`]: what never reaches a page (secrets, PII values).
//!
//! See docs/ui.md for the pages, the actions and the security model.

pub mod api;
pub mod auth;
pub mod mask;
pub mod pages;
pub mod router;
pub mod state;
pub mod svg;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use crate::spec::Project;
use crate::store::Store;

/// The environment variable holding the access token.
pub const TOKEN_VAR: &str = "NIGHTJAR_UI_TOKEN";

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// How the UI is served.
#[derive(Debug, Clone)]
pub struct UiOptions {
    pub bind: SocketAddr,
    /// The folder of DAG files.
    pub dags_dir: PathBuf,
    /// The access token (`NIGHTJAR_UI_TOKEN`): required when `bind` is not
    /// a loopback address; checked on every request when set.
    pub token: Option<String>,
    /// The environment actions run in (`None`: the project's default).
    pub env: Option<String>,
}

/// Refuses an address off loopback without a token (anyone on the network
/// could otherwise run and clear tasks), and a token too short to resist
/// guessing.
pub fn check_access(bind: &SocketAddr, token: Option<&str>) -> Result<()> {
    match token {
        None if !bind.ip().is_loopback() => bail!(
            "refusing to serve the UI on {bind} without a token: anyone who can reach it could run and clear tasks. \
             Set {TOKEN_VAR} (at least 16 characters, e.g. `export {TOKEN_VAR}=$(openssl rand -hex 24)`), \
             or bind to loopback (--bind 127.0.0.1:8080)"
        ),
        Some(t) if t.len() < 16 => {
            bail!("{TOKEN_VAR} is too short ({} characters): use at least 16", t.len())
        }
        _ => Ok(()),
    }
}

/// A running UI server.
pub struct Running {
    /// The address it listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    /// Finishes when the server has stopped.
    pub done: tokio::task::JoinHandle<Result<()>>,
}

/// Starts serving; stops when `stop` is cancelled (actions in flight are
/// cancelled with it: their runs are interrupted and resume on the next
/// run of their date).
pub async fn start(project: Project, store: Arc<Store>, opts: UiOptions, stop: CancellationToken) -> Result<Running> {
    check_access(&opts.bind, opts.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .with_context(|| format!("cannot listen on {}", opts.bind))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(state::AppState::new(project, store, opts, stop.child_token())?);
    let app = router::router(state);
    let done = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("web UI server")
    });
    Ok(Running { addr, done })
}
