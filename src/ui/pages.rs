//! The HTML pages: the DAG list, a DAG's run grid, its graph, a run, a
//! task, and the backfill plan. Each renders a [`super::views`] value with
//! its template; actions are forms posting to the API with the CSRF token.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::api::{ApiError, BackfillInput};
use super::state::AppState;
use super::views;

type PageResult = Result<Html<String>, ApiError>;

fn page_err(e: anyhow::Error) -> ApiError {
    let mut e = ApiError::from(e);
    e.html = true;
    e
}

fn render(st: &AppState, name: &str, ctx: minijinja::Value) -> PageResult {
    let t = st.templates.get_template(name).map_err(|e| page_err(e.into()))?;
    t.render(ctx).map(Html).map_err(|e| page_err(e.into()))
}

/// Reads on the blocking pool, then renders.
async fn page(
    st: Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<(&'static str, minijinja::Value), ApiError> + Send + 'static,
) -> PageResult {
    tokio::task::spawn_blocking(move || {
        let (name, ctx) = f(&st)?;
        render(&st, name, ctx)
    })
    .await
    .map_err(|e| page_err(anyhow::anyhow!("{e}")))?
}

pub async fn dag_list(State(st): State<Arc<AppState>>) -> PageResult {
    page(st, |st| {
        let list = views::dag_list(st).map_err(page_err)?;
        Ok(("dags.html", context! { list, csrf => st.csrf }))
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct GridQuery {
    pub limit: Option<usize>,
    pub watch: Option<String>,
}

/// The grid page of a DAG (also what the benchmark renders).
pub fn grid_page(st: &AppState, name: &str, limit: usize, watch: bool) -> PageResult {
    let dag = views::find_dag(st, name).map_err(page_err)?;
    let paused = st.store.paused().map_err(page_err)?.contains(&dag.name);
    let summary = views::summary(st, &dag, paused).map_err(page_err)?;
    let grid = views::grid(st, &dag, limit).map_err(page_err)?;
    let audit = st.store.audit(Some(&dag.name), 10).map_err(page_err)?;
    let live = grid.columns.iter().any(|c| c.state == "running" || c.state == "queued");
    let today = chrono::Utc::now().with_timezone(&dag.tz).date_naive().to_string();
    render(
        st,
        "grid.html",
        context! { dag => summary, grid, audit, csrf => st.csrf, today, limit,
        watch => watch || live, watch_url => format!("/api/dags/{}/grid?limit=5", views::seg(&dag.name)) },
    )
}

pub async fn grid(State(st): State<Arc<AppState>>, Path(name): Path<String>, Query(q): Query<GridQuery>) -> PageResult {
    let limit = q.limit.unwrap_or(views::GRID_DATES).clamp(1, views::GRID_MAX);
    let watch = q.watch.is_some();
    tokio::task::spawn_blocking(move || grid_page(&st, &name, limit, watch))
        .await
        .map_err(|e| page_err(anyhow::anyhow!("{e}")))?
}

#[derive(Deserialize, Default)]
pub struct GraphQuery {
    pub run: Option<String>,
}

pub async fn graph(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<GraphQuery>,
) -> PageResult {
    page(st, move |st| {
        let dag = views::find_dag(st, &name).map_err(page_err)?;
        let runs = st.store.runs(Some(&dag.name), 30).map_err(page_err)?;
        let selected = match q.run.as_deref().or(runs.first().map(|r| r.run_id.as_str())) {
            Some(id) => Some(views::run_view(st, id).map_err(page_err)?.0),
            None => None,
        };
        if let Some(r) = &selected
            && r.run.dag != dag.name
        {
            return Err(page_err(anyhow::anyhow!(views::BadRequest(format!(
                "run {} is not a run of {}",
                r.run.run_id, dag.name
            )))));
        }
        let svg = views::graph_svg(&dag, selected.as_ref());
        let runs: Vec<(String, String, String)> = runs
            .into_iter()
            .map(|r| (r.run_id, r.logical_date, r.state.to_string()))
            .collect();
        Ok((
            "graph.html",
            context! { dag => dag.name, dag_url => views::dag_url(&dag.name), svg, runs, selected },
        ))
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct WatchQuery {
    pub watch: Option<String>,
}

pub async fn run(
    State(st): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Query(q): Query<WatchQuery>,
) -> PageResult {
    page(st, move |st| {
        let (run, dag) = views::run_view(st, &run_id).map_err(page_err)?;
        let graph = views::graph_svg(&dag, Some(&run));
        let gantt = views::gantt_svg(&run);
        let live = run.state == "running" || run.state == "queued";
        Ok((
            "run.html",
            context! { run, graph, gantt, csrf => st.csrf, watch => q.watch.is_some() || live,
            watch_url => format!("/api/runs/{}", views::seg(&run_id)) },
        ))
    })
    .await
}

pub async fn task(State(st): State<Arc<AppState>>, Path((run_id, task)): Path<(String, String)>) -> PageResult {
    page(st, move |st| {
        let (view, _) = views::task_view(st, &run_id, &task).map_err(page_err)?;
        let gantt = views::gantt_svg(&view.run);
        let config = serde_json::to_string_pretty(&view.config).unwrap_or_default();
        let quarantine: Vec<String> = view
            .quarantine
            .rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect();
        let log = views::log_chunk(st, &run_id, &task, 0, 512 * 1024).map_err(page_err)?;
        Ok((
            "task.html",
            context! { t => view, gantt, config, quarantine, log, csrf => st.csrf },
        ))
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct BackfillQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub only_failed: Option<String>,
    pub rerun_succeeded: Option<String>,
    pub reverse: Option<String>,
    pub parallel: Option<usize>,
}

/// The backfill page: the form, and with `from` and `to` the dry-run plan
/// and the button that starts it.
pub async fn backfill(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BackfillQuery>,
) -> PageResult {
    page(st, move |st| {
        let dag = views::find_dag(st, &name).map_err(page_err)?;
        let on = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty() && s != "false");
        let input = BackfillInput {
            from: q.from.clone().unwrap_or_default(),
            to: q.to.clone().unwrap_or_default(),
            only_failed: on(&q.only_failed),
            rerun_succeeded: on(&q.rerun_succeeded),
            reverse: on(&q.reverse),
            parallel: q.parallel,
        };
        let (plan, error) = if input.from.is_empty() || input.to.is_empty() {
            (None, None)
        } else {
            match super::api::plan(st, &dag.name, &input) {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            }
        };
        Ok((
            "backfill.html",
            context! { dag => dag.name, dag_url => views::dag_url(&dag.name), plan, error, csrf => st.csrf,
            from => input.from, to => input.to, only_failed => input.only_failed,
            rerun_succeeded => input.rerun_succeeded, reverse => input.reverse,
            parallel => input.parallel.unwrap_or(1),
            action => format!("/api/dags/{}/backfill", views::seg(&dag.name)) },
        ))
    })
    .await
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    let mut e = ApiError::new(StatusCode::NOT_FOUND, format!("no such page: {}", uri.path()));
    e.html = !uri.path().starts_with("/api/");
    e.into_response()
}
