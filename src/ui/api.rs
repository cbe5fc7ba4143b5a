//! The JSON API (`/api/...`, described in docs/openapi.json) and the
//! actions. Actions take JSON (with the `X-CSRF-Token` header) or a form
//! post from a page (with the `csrf` field); a form post is answered with
//! a redirect to the page that shows the result, JSON with JSON.
//!
//! Every action calls [`crate::control`], the same code as the CLI, which
//! records it in the audit log. Runs and backfills go on in the
//! background; the answer comes once the run exists.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as JsonValue, json};

use super::auth;
use super::state::AppState;
use super::views::{self, BadRequest, NotFound};
use crate::control;
use crate::schedule::backfill;

/// An error answer: JSON `{"error": ...}` for the API, a small page for
/// form posts.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub html: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            html: false,
        }
    }

    /// Maps an error: not found (404), bad request (400), else `status`.
    pub fn from_anyhow(e: anyhow::Error, status: StatusCode) -> Self {
        let status = if e.downcast_ref::<NotFound>().is_some() {
            StatusCode::NOT_FOUND
        } else if e.downcast_ref::<BadRequest>().is_some() {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, format!("{e:#}"))
    }

    fn html(mut self, html: bool) -> Self {
        self.html = html;
        self
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::from_anyhow(e, StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.html {
            let body = format!(
                "<!doctype html><meta charset=utf-8><link rel=stylesheet href=/static/app.css><title>nightjar: error</title>\
                 <main><h1>{}</h1><p class=error id=action-error>{}</p><p><a href=\"javascript:history.back()\">back</a> · <a href=/>DAGs</a></p></main>",
                self.status,
                super::svg::esc(&self.message)
            );
            (self.status, Html(body)).into_response()
        } else {
            (self.status, Json(json!({ "error": self.message }))).into_response()
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs blocking reads (SQLite, files) off the async threads.
async fn blocking<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

// ---- reads ----

pub async fn dags(State(st): State<Arc<AppState>>) -> ApiResult<Json<views::DagList>> {
    Ok(Json(blocking(&st, views::dag_list).await?))
}

/// A DAG: its summary, tasks, next fire times and recent actions.
pub fn dag_detail(st: &AppState, name: &str) -> anyhow::Result<JsonValue> {
    let dag = views::find_dag(st, name)?;
    let paused = st.store.paused()?.contains(&dag.name);
    let summary = views::summary(st, &dag, paused)?;
    let tasks: Vec<JsonValue> = super::svg::ordered_tasks(&dag)
        .iter()
        .filter_map(|id| dag.tasks.iter().find(|t| &t.id == id))
        .map(|t| json!({ "id": t.id, "kind": t.kind, "needs": t.needs }))
        .collect();
    let mut fires = Vec::new();
    if let Some(s) = dag.schedule.as_ref() {
        let mut t = chrono::Utc::now();
        for _ in 0..5 {
            let Some(f) = s.next_fire(t) else { break };
            t = f.at.with_timezone(&chrono::Utc);
            fires.push(json!({ "fire": f.at.to_rfc3339(), "logical_date": s.slot_ending_at(&f).map(|sl| sl.key) }));
        }
    }
    let audit = st.store.audit(Some(&dag.name), 20)?;
    Ok(json!({ "dag": summary, "tasks": tasks, "next_fires": fires, "audit": audit }))
}

pub async fn dag(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult<Json<JsonValue>> {
    Ok(Json(blocking(&st, move |st| dag_detail(st, &name)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    pub limit: Option<usize>,
}

pub async fn runs(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<JsonValue>> {
    Ok(Json(
        blocking(&st, move |st| {
            let dag = views::find_dag(st, &name)?;
            let runs = st.store.runs(Some(&dag.name), q.limit.unwrap_or(30).min(1000))?;
            Ok(serde_json::to_value(runs)?)
        })
        .await?,
    ))
}

pub async fn grid(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<views::Grid>> {
    Ok(Json(
        blocking(&st, move |st| {
            let dag = views::find_dag(st, &name)?;
            views::grid(st, &dag, q.limit.unwrap_or(views::GRID_DATES).min(views::GRID_MAX))
        })
        .await?,
    ))
}

pub async fn run(State(st): State<Arc<AppState>>, Path(run_id): Path<String>) -> ApiResult<Json<views::RunView>> {
    Ok(Json(
        blocking(&st, move |st| Ok(views::run_view(st, &run_id)?.0)).await?,
    ))
}

pub async fn task(
    State(st): State<Arc<AppState>>,
    Path((run_id, task)): Path<(String, String)>,
) -> ApiResult<Json<views::TaskView>> {
    Ok(Json(
        blocking(&st, move |st| Ok(views::task_view(st, &run_id, &task)?.0)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    pub offset: u64,
    pub max: Option<usize>,
}

pub async fn logs(
    State(st): State<Arc<AppState>>,
    Path((run_id, task)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<views::LogChunk>> {
    let max = q.max.unwrap_or(256 * 1024).clamp(1024, 4 * 1024 * 1024);
    Ok(Json(
        blocking(&st, move |st| views::log_chunk(st, &run_id, &task, q.offset, max)).await?,
    ))
}

pub async fn quarantine(
    State(st): State<Arc<AppState>>,
    Path((run_id, task)): Path<(String, String)>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<views::QuarantineSample>> {
    Ok(Json(
        blocking(&st, move |st| {
            let (_, dag) = views::find_run(st, &run_id)?;
            if !dag.tasks.iter().any(|t| t.id == task) {
                anyhow::bail!(NotFound(format!("DAG {} has no task `{task}`", dag.name)));
            }
            views::quarantine(st, &dag, &run_id, &task, q.limit.unwrap_or(20).min(1000))
        })
        .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub dag: Option<String>,
    pub limit: Option<usize>,
}

pub async fn audit(State(st): State<Arc<AppState>>, Query(q): Query<AuditQuery>) -> ApiResult<Json<JsonValue>> {
    Ok(Json(
        blocking(&st, move |st| {
            Ok(serde_json::to_value(
                st.store.audit(q.dag.as_deref(), q.limit.unwrap_or(100).min(1000))?,
            )?)
        })
        .await?,
    ))
}

/// What a backfill form or query asks for.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct BackfillInput {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub only_failed: bool,
    #[serde(default)]
    pub rerun_succeeded: bool,
    #[serde(default)]
    pub reverse: bool,
    pub parallel: Option<usize>,
}

impl BackfillInput {
    pub fn options(&self, env: Option<String>) -> anyhow::Result<backfill::BackfillOptions> {
        control::backfill_options(
            &self.from,
            &self.to,
            self.parallel.unwrap_or(1),
            self.only_failed,
            self.rerun_succeeded,
            self.reverse,
            env,
            Default::default(),
        )
        .map_err(|e| anyhow::anyhow!(BadRequest(format!("{e:#}"))))
    }
}

/// The dry-run plan of a backfill: what each date would do, and counts.
pub fn plan(st: &AppState, name: &str, input: &BackfillInput) -> anyhow::Result<JsonValue> {
    let dag = views::find_dag(st, name)?;
    let opts = input.options(st.opts.env.clone())?;
    let planned = backfill::plan(&dag, &st.store, &opts)?;
    let count = |a: backfill::Action| planned.iter().filter(|p| p.action == a).count();
    Ok(json!({
        "dag": dag.name,
        "from": opts.from.to_string(),
        "to": opts.to.to_string(),
        "dates": planned.iter().map(control::plan_json).collect::<Vec<_>>(),
        "counts": {
            "run": count(backfill::Action::Run), "resume": count(backfill::Action::Resume),
            "rerun": count(backfill::Action::Rerun), "skip": count(backfill::Action::Skip),
        },
    }))
}

pub async fn backfill_plan(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BackfillInput>,
) -> ApiResult<Json<JsonValue>> {
    Ok(Json(blocking(&st, move |st| plan(st, &name, &q)).await?))
}

// ---- actions ----

/// An action's input, its CSRF token checked, and who asked.
pub struct Action<T> {
    pub input: T,
    /// A form post from a page (answered with a redirect).
    pub form: bool,
    /// `ui:<client address>`.
    pub actor: String,
}

/// Form values are text: `true`/`on` and `false` become booleans and
/// digits numbers, so that one input type serves JSON and forms. Empty
/// values are left out (an empty date field means "not given").
fn form_to_json(pairs: Vec<(String, String)>) -> JsonValue {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        let val = match v.as_str() {
            "" => continue,
            "true" | "on" => JsonValue::Bool(true),
            "false" => JsonValue::Bool(false),
            s if s.bytes().all(|b| b.is_ascii_digit()) && s.len() < 10 => {
                JsonValue::from(s.parse::<u64>().unwrap_or_default())
            }
            s => JsonValue::String(s.to_string()),
        };
        m.insert(k, val);
    }
    JsonValue::Object(m)
}

impl<T: DeserializeOwned + Default + Send> FromRequest<Arc<AppState>> for Action<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let actor = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or("ui:unknown".to_string(), |c| format!("ui:{}", c.0.ip()));
        let ctype = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let form = ctype.starts_with("application/x-www-form-urlencoded");
        let header_csrf = parts
            .headers
            .get(auth::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the request: {e}")).html(form))?;
        let (value, field_csrf) = if form {
            let pairs: Vec<(String, String)> = axum::Form::<Vec<(String, String)>>::from_request(
                Request::from_parts(parts, axum::body::Body::from(bytes)),
                st,
            )
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()).html(true))?
            .0;
            let csrf = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.clone());
            let rest = pairs.into_iter().filter(|(k, _)| k != "csrf").collect();
            (form_to_json(rest), csrf)
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            (json!({}), None)
        } else if ctype.starts_with("application/json") {
            let v: JsonValue = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
            (v, None)
        } else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the action as JSON (Content-Type: application/json) or as a form",
            ));
        };
        let presented = header_csrf.or(field_csrf);
        if !auth::csrf_ok(st, presented.as_deref()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong: send this server's token (in the pages' forms; `csrf` in /api/dags) as the X-CSRF-Token header; \
                 a restarted server has a new one, so reload the page",
            )
            .html(form));
        }
        let input: T = serde_json::from_value(value)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad action input: {e}")).html(form))?;
        Ok(Action { input, form, actor })
    }
}

/// No input.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `run now`: a date (default: today in the DAG's zone).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    pub date: Option<String>,
    #[serde(default)]
    pub force: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClearInput {
    #[serde(default)]
    pub downstream: bool,
    /// Run the cleared tasks again right away.
    #[serde(default)]
    pub run: bool,
}

/// The answer to an action: a redirect for a form post, else JSON.
fn done(form: bool, page: String, body: JsonValue) -> Response {
    if form {
        Redirect::to(&page).into_response()
    } else {
        (StatusCode::ACCEPTED, Json(body)).into_response()
    }
}

/// Waits (briefly) until `changed` holds, so that the page the action
/// leads to shows the run. The run goes on either way.
async fn wait_for(mut changed: impl FnMut() -> bool) {
    for _ in 0..60 {
        if changed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run_now(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    a: Action<RunInput>,
) -> ApiResult<Response> {
    let form = a.form;
    let dag = views::find_dag(&st, &name).map_err(|e| ApiError::from(e).html(form))?;
    let req = control::date_request(
        &dag,
        a.input.date.as_deref().unwrap_or(""),
        st.opts.env.clone(),
        a.input.force,
    )
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{e:#}")).html(form))?;
    let interval = crate::spec::schedule::interval_for(req.logical_time, dag.schedule.as_ref(), dag.tz);
    let key = crate::spec::schedule::logical_key(&interval.start, dag.schedule.as_ref());
    let before = st.store.latest_run(&dag.name, &key).map_err(ApiError::from)?;
    if let Some(b) = &before {
        if b.state == crate::store::RunState::Success && !a.input.force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{} already succeeded; run it again with `force`", b.run_id),
            )
            .html(form));
        }
        if st.store.is_live(b) {
            return Err(ApiError::new(StatusCode::CONFLICT, format!("{} is running now", b.run_id)).html(form));
        }
    }
    let engine = st.engine();
    let (dag2, actor) = (dag.clone(), a.actor.clone());
    tokio::spawn(async move {
        if let Err(e) = control::run_date(engine, &dag2, req, None, &actor).await {
            tracing::warn!("run of {} {} from the UI failed to start: {e:#}", dag2.name, actor);
        }
    });
    let store = st.store.clone();
    let (dag_name, k) = (dag.name.clone(), key.clone());
    let before_sig = before.as_ref().map(|b| (b.run_id.clone(), b.state));
    wait_for(|| {
        store
            .latest_run(&dag_name, &k)
            .ok()
            .flatten()
            .is_some_and(|r| Some((r.run_id.clone(), r.state)) != before_sig)
    })
    .await;
    let run = st.store.latest_run(&dag.name, &key).map_err(ApiError::from)?;
    Ok(done(
        form,
        format!("{}?watch=1", views::dag_url(&dag.name)),
        json!({ "dag": dag.name, "logical_date": key, "run_id": run.as_ref().map(|r| &r.run_id),
                "state": run.map(|r| r.state.to_string()) }),
    ))
}

pub async fn rerun_failed(
    State(st): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    a: Action<NoInput>,
) -> ApiResult<Response> {
    let form = a.form;
    let (run, dag) = views::find_run(&st, &run_id).map_err(|e| ApiError::from(e).html(form))?;
    control::check_rerun(&st.store, &dag, &run_id)
        .map_err(|e| ApiError::from_anyhow(e, StatusCode::CONFLICT).html(form))?;
    start_rerun(&st, dag, &run_id, &a.actor);
    let store = st.store.clone();
    let id = run_id.clone();
    wait_for(|| store.run(&id).ok().flatten().is_some_and(|r| r.state != run.state)).await;
    let now = st.store.run(&run_id).map_err(ApiError::from)?;
    Ok(done(
        form,
        format!("{}?watch=1", views::run_url(&run_id)),
        json!({ "run_id": run_id, "state": now.map(|r| r.state.to_string()) }),
    ))
}

fn start_rerun(st: &AppState, dag: Arc<crate::spec::Dag>, run_id: &str, actor: &str) {
    let engine = st.engine();
    let (run_id, actor) = (run_id.to_string(), actor.to_string());
    tokio::spawn(async move {
        if let Err(e) = control::rerun_failed(engine, &dag, &run_id, &actor).await {
            tracing::warn!("rerun of {run_id} from the UI failed: {e:#}");
        }
    });
}

pub async fn clear(
    State(st): State<Arc<AppState>>,
    Path((run_id, task)): Path<(String, String)>,
    a: Action<ClearInput>,
) -> ApiResult<Response> {
    let form = a.form;
    let (_, dag) = views::find_run(&st, &run_id).map_err(|e| ApiError::from(e).html(form))?;
    let cleared = control::clear(&st.store, &dag, &run_id, &task, a.input.downstream, &a.actor)
        .map_err(|e| ApiError::from_anyhow(e, StatusCode::CONFLICT).html(form))?;
    if a.input.run {
        start_rerun(&st, dag, &run_id, &a.actor);
        let store = st.store.clone();
        let id = run_id.clone();
        wait_for(|| {
            store
                .run(&id)
                .ok()
                .flatten()
                .is_some_and(|r| r.state != crate::store::RunState::Partial)
        })
        .await;
    }
    Ok(done(
        form,
        format!("{}?watch=1", views::run_url(&run_id)),
        json!({ "run_id": run_id, "cleared": cleared, "running": a.input.run }),
    ))
}

pub async fn backfill(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    a: Action<BackfillInput>,
) -> ApiResult<Response> {
    let form = a.form;
    let dag = views::find_dag(&st, &name).map_err(|e| ApiError::from(e).html(form))?;
    let opts = a
        .input
        .options(st.opts.env.clone())
        .map_err(|e| ApiError::from(e).html(form))?;
    let planned = backfill::plan(&dag, &st.store, &opts).map_err(|e| ApiError::from(e).html(form))?;
    let dates = planned.iter().filter(|p| p.action != backfill::Action::Skip).count();
    let engine = Arc::new(st.engine());
    let actor = a.actor.clone();
    let dag2 = dag.clone();
    tokio::spawn(async move {
        let r = control::backfill(
            engine,
            dag2.clone(),
            &opts,
            planned,
            Arc::new(backfill::NoProgress),
            &actor,
        )
        .await;
        if let Err(e) = r {
            tracing::warn!("backfill of {} from the UI failed: {e:#}", dag2.name);
        }
    });
    Ok(done(
        form,
        format!("{}?watch=1", views::dag_url(&dag.name)),
        json!({ "dag": dag.name, "dates": dates }),
    ))
}

async fn set_paused(st: Arc<AppState>, name: String, a: Action<NoInput>, paused: bool) -> ApiResult<Response> {
    let form = a.form;
    let dag = views::find_dag(&st, &name).map_err(|e| ApiError::from(e).html(form))?;
    let changed =
        control::set_paused(&st.store, &dag.name, paused, &a.actor).map_err(|e| ApiError::from(e).html(form))?;
    Ok(done(
        form,
        views::dag_url(&dag.name),
        json!({ "dag": dag.name, "paused": paused, "changed": changed }),
    ))
}

pub async fn pause(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    a: Action<NoInput>,
) -> ApiResult<Response> {
    set_paused(st, name, a, true).await
}

pub async fn unpause(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    a: Action<NoInput>,
) -> ApiResult<Response> {
    set_paused(st, name, a, false).await
}
