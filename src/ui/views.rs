//! The data of each page, read from the DAG files and the run history.
//! The pages render these with templates; the API returns them as JSON.
//! Text that may hold a secret (errors, logs, config) is masked here, so
//! neither front end can forget to.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value as Json;

use super::mask::{mask_config, mask_quarantine_row};
use super::state::AppState;
use super::svg;
use crate::spec::Dag;
use crate::store::{RunRecord, RunState, TaskRecord};

/// Dates the grid shows unless asked (`?limit=`).
pub const GRID_DATES: usize = 60;
/// The most dates the grid shows.
pub const GRID_MAX: usize = 1000;

/// A thing that is not there (404).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// A request that cannot be served as asked (400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Percent-encodes one URL path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn dag_url(dag: &str) -> String {
    format!("/dags/{}", seg(dag))
}
pub fn run_url(run_id: &str) -> String {
    format!("/runs/{}", seg(run_id))
}
pub fn task_url(run_id: &str, task: &str) -> String {
    format!("/runs/{}/tasks/{}", seg(run_id), seg(task))
}

/// A DAG's schedule, in words and with its next fire time.
#[derive(Debug, Serialize)]
pub struct ScheduleView {
    pub cron: String,
    pub text: String,
    pub tz: String,
    /// The next fire time, local to the DAG's zone (RFC 3339).
    pub next_fire: Option<String>,
    /// The logical date that fire runs.
    pub next_date: Option<String>,
}

pub fn schedule_view(dag: &Dag) -> Option<ScheduleView> {
    let s = dag.schedule.as_ref()?;
    let fire = s.next_fire(Utc::now());
    Some(ScheduleView {
        cron: s.expr.clone(),
        text: s.describe(),
        tz: dag.tz.to_string(),
        next_date: fire.as_ref().and_then(|f| s.slot_ending_at(f)).map(|sl| sl.key),
        next_fire: fire.map(|f| f.at.to_rfc3339()),
    })
}

/// One run as a coloured square.
#[derive(Debug, Serialize)]
pub struct RunDot {
    pub run_id: String,
    pub logical_date: String,
    pub state: String,
    pub url: String,
}

fn dot(r: &RunRecord, live: bool) -> RunDot {
    RunDot {
        run_id: r.run_id.clone(),
        logical_date: r.logical_date.clone(),
        state: shown_state(r, live),
        url: run_url(&r.run_id),
    }
}

/// A run's state as shown: `running` only while its process lives.
fn shown_state(r: &RunRecord, live: bool) -> String {
    if r.state == RunState::Running && !live {
        "interrupted".into()
    } else {
        r.state.to_string()
    }
}

#[derive(Debug, Serialize)]
pub struct DagSummary {
    pub name: String,
    pub description: Option<String>,
    pub file: String,
    pub tasks: usize,
    pub schedule: Option<ScheduleView>,
    pub paused: bool,
    /// The last 14 runs, oldest first.
    pub recent: Vec<RunDot>,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct InvalidFile {
    pub file: String,
    pub errors: String,
}

#[derive(Debug, Serialize)]
pub struct DagList {
    pub dags: Vec<DagSummary>,
    pub invalid: Vec<InvalidFile>,
    /// This server's CSRF token, for scripts that post actions
    /// (`X-CSRF-Token`).
    pub csrf: String,
}

fn rel(st: &AppState, p: &std::path::Path) -> String {
    p.strip_prefix(&st.project.root).unwrap_or(p).display().to_string()
}

pub fn summary(st: &AppState, dag: &Dag, paused: bool) -> Result<DagSummary> {
    let mut recent: Vec<RunDot> = st
        .store
        .runs(Some(&dag.name), 14)?
        .iter()
        .map(|r| dot(r, st.store.is_live(r)))
        .collect();
    recent.reverse();
    Ok(DagSummary {
        name: dag.name.clone(),
        description: dag.description.clone(),
        file: rel(st, &dag.file),
        tasks: dag.tasks.len(),
        schedule: schedule_view(dag),
        paused,
        recent,
        url: dag_url(&dag.name),
    })
}

pub fn dag_list(st: &AppState) -> Result<DagList> {
    let cat = st.catalog();
    let paused = st.store.paused()?;
    let dags = cat
        .dags
        .values()
        .map(|d| summary(st, d, paused.contains(&d.name)))
        .collect::<Result<_>>()?;
    let invalid = cat
        .invalid
        .iter()
        .map(|(p, e)| InvalidFile {
            file: rel(st, p),
            errors: st.secrets.scrub(e),
        })
        .collect();
    Ok(DagList {
        dags,
        invalid,
        csrf: st.csrf.clone(),
    })
}

pub fn find_dag(st: &AppState, name: &str) -> Result<Arc<Dag>> {
    st.dag(name)
        .ok_or_else(|| anyhow!(NotFound(format!("no DAG `{name}` in {}", st.opts.dags_dir.display()))))
}

pub fn find_run(st: &AppState, run_id: &str) -> Result<(RunRecord, Arc<Dag>)> {
    let run = st
        .store
        .run(run_id)?
        .ok_or_else(|| anyhow!(NotFound(format!("no run `{run_id}`"))))?;
    let dag = find_dag(st, &run.dag)?;
    Ok((run, dag))
}

// ---- the grid ----

#[derive(Debug, Serialize)]
pub struct GridColumn {
    pub run_id: String,
    pub logical_date: String,
    pub state: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct GridCell {
    pub state: String,
    pub attempts: u32,
    pub duration: String,
    pub rows_out: Option<u64>,
    /// The hover text: state, attempts, duration, rows out.
    pub title: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct GridRow {
    pub task: String,
    pub cells: Vec<Option<GridCell>>,
}

#[derive(Debug, Serialize)]
pub struct Grid {
    /// Logical dates, oldest first.
    pub columns: Vec<GridColumn>,
    /// Tasks in graph order.
    pub rows: Vec<GridRow>,
}

/// A task's duration as text (`…` while it runs).
pub fn duration(start: Option<&str>, end: Option<&str>) -> String {
    match (start.and_then(svg::epoch_secs), end.and_then(svg::epoch_secs)) {
        (Some(a), Some(b)) => svg::fmt_secs((b - a).max(0.0)),
        (Some(_), None) => "…".into(),
        _ => "-".into(),
    }
}

/// The latest run of each of the `limit` newest dates, tasks as rows.
pub fn grid(st: &AppState, dag: &Dag, limit: usize) -> Result<Grid> {
    let mut runs = st.store.latest_runs_by_date(&dag.name, limit)?;
    runs.reverse();
    let mut tasks = st.store.grid_tasks(&dag.name, limit)?;
    let order = svg::ordered_tasks(dag);
    let index: HashMap<&str, usize> = order.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut rows: Vec<GridRow> = order
        .iter()
        .map(|t| GridRow {
            task: t.clone(),
            cells: Vec::with_capacity(runs.len()),
        })
        .collect();
    let mut columns = Vec::with_capacity(runs.len());
    for r in &runs {
        let live = r.state == RunState::Running && st.store.is_live(r);
        columns.push(GridColumn {
            run_id: r.run_id.clone(),
            logical_date: r.logical_date.clone(),
            state: shown_state(r, live),
            url: run_url(&r.run_id),
        });
        let mut cells: Vec<Option<GridCell>> = (0..order.len()).map(|_| None).collect();
        for t in tasks.remove(&r.run_id).unwrap_or_default() {
            let Some(&i) = index.get(t.task_id.as_str()) else {
                continue;
            };
            let d = duration(t.started_at.as_deref(), t.ended_at.as_deref());
            let rows_out = t.metrics.as_ref().map(|m| m.rows_out);
            let title = format!(
                "{} {}: {} · attempt {} · {}{}",
                t.task_id,
                r.logical_date,
                t.state,
                t.attempt,
                d,
                rows_out.map_or(String::new(), |n| format!(" · {n} rows out"))
            );
            cells[i] = Some(GridCell {
                state: t.state.to_string(),
                attempts: t.attempt,
                duration: d,
                rows_out,
                title,
                url: task_url(&r.run_id, &t.task_id),
            });
        }
        for (row, cell) in rows.iter_mut().zip(cells) {
            row.cells.push(cell);
        }
    }
    Ok(Grid { columns, rows })
}

// ---- runs and tasks ----

#[derive(Debug, Serialize)]
pub struct TaskRow {
    pub task_id: String,
    pub kind: String,
    pub state: String,
    pub attempt: u32,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration: String,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
    pub rows_quarantined: Option<u64>,
    pub rows_filtered: Option<u64>,
    /// The error, secrets masked.
    pub error: Option<String>,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub run: RunRecord,
    /// The state as shown (`running` only while its process lives).
    pub state: String,
    pub duration: String,
    /// Every task of the DAG, in graph order (`none`: no record in this run).
    pub tasks: Vec<TaskRow>,
    /// Whether "rerun failed" applies: the latest run of its date, finished
    /// without success.
    pub can_rerun: bool,
    pub dag_url: String,
}

fn task_row(st: &AppState, dag: &Dag, run_id: &str, id: &str, rec: Option<&TaskRecord>) -> TaskRow {
    let m = rec.and_then(|t| t.metrics.as_ref());
    TaskRow {
        task_id: id.to_string(),
        kind: dag
            .tasks
            .iter()
            .find(|t| t.id == id)
            .map_or(String::new(), |t| t.kind.clone()),
        state: rec.map_or("none".into(), |t| t.state.to_string()),
        attempt: rec.map_or(0, |t| t.attempt),
        started_at: rec.and_then(|t| t.started_at.clone()),
        ended_at: rec.and_then(|t| t.ended_at.clone()),
        duration: rec.map_or("-".into(), |t| duration(t.started_at.as_deref(), t.ended_at.as_deref())),
        rows_in: m.map(|m| m.rows_in),
        rows_out: m.map(|m| m.rows_out),
        rows_quarantined: m.map(|m| m.rows_quarantined),
        rows_filtered: m.map(|m| m.rows_filtered),
        error: rec.and_then(|t| t.error.as_deref()).map(|e| st.secrets.scrub(e)),
        url: task_url(run_id, id),
    }
}

pub fn run_view(st: &AppState, run_id: &str) -> Result<(RunView, Arc<Dag>)> {
    let (run, dag) = find_run(st, run_id)?;
    let recs: HashMap<String, TaskRecord> = st
        .store
        .tasks(run_id)?
        .into_iter()
        .map(|t| (t.task_id.clone(), t))
        .collect();
    let tasks = svg::ordered_tasks(&dag)
        .iter()
        .map(|id| task_row(st, &dag, run_id, id, recs.get(id)))
        .collect();
    let live = st.store.is_live(&run);
    let latest = st
        .store
        .latest_run(&run.dag, &run.logical_date)?
        .is_some_and(|l| l.run_id == run.run_id);
    let view = RunView {
        state: shown_state(&run, live),
        duration: duration(run.started_at.as_deref(), run.ended_at.as_deref()),
        can_rerun: latest && !live && run.state != RunState::Success,
        dag_url: dag_url(&run.dag),
        tasks,
        run,
    };
    Ok((view, dag))
}

/// The graph of a DAG coloured by one run's task states (or plain).
pub fn graph_svg(dag: &Dag, run: Option<&RunView>) -> String {
    let states: HashMap<&str, &TaskRow> = run
        .map(|r| r.tasks.iter().map(|t| (t.task_id.as_str(), t)).collect())
        .unwrap_or_default();
    svg::graph(
        dag,
        |id| states.get(id).map(|t| t.state.clone()),
        |id| states.get(id).map(|t| t.url.clone()),
    )
}

/// The Gantt chart of a run's task times.
pub fn gantt_svg(run: &RunView) -> String {
    let now = Utc::now().timestamp_millis() as f64 / 1000.0;
    let mut bars: Vec<svg::Bar> = run
        .tasks
        .iter()
        .filter_map(|t| {
            let s = svg::epoch_secs(t.started_at.as_deref()?)?;
            let e = t.ended_at.as_deref().and_then(svg::epoch_secs).unwrap_or(now);
            Some(svg::Bar {
                task: t.task_id.clone(),
                state: t.state.clone(),
                start: s,
                end: e.max(s),
                href: Some(t.url.clone()),
            })
        })
        .collect();
    let t0 = bars.iter().map(|b| b.start).fold(f64::INFINITY, f64::min);
    for b in &mut bars {
        b.start -= t0;
        b.end -= t0;
    }
    bars.sort_by(|a, b| a.start.total_cmp(&b.start));
    svg::gantt(&bars)
}

#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub state: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaskView {
    pub run: RunView,
    pub task: TaskRow,
    pub attempts: Vec<AttemptView>,
    pub metrics: Option<crate::steps::Metrics>,
    /// The task's config as rendered for this run, secrets and PII masked.
    pub config: Json,
    /// Why the config is shown unrendered, if it is.
    pub config_note: Option<String>,
    pub quarantine: QuarantineSample,
    /// Whether the task is running now (the log page follows it).
    pub running: bool,
    pub logs_api: String,
}

pub fn task_view(st: &AppState, run_id: &str, task: &str) -> Result<(TaskView, Arc<Dag>)> {
    let (run, dag) = run_view(st, run_id)?;
    let spec = dag
        .tasks
        .iter()
        .find(|t| t.id == task)
        .ok_or_else(|| anyhow!(NotFound(format!("DAG {} has no task `{task}`", dag.name))))?;
    let row = run
        .tasks
        .iter()
        .position(|t| t.task_id == task)
        .map(|i| &run.tasks[i])
        .expect("every DAG task has a row");
    let rec = st.store.tasks(run_id)?.into_iter().find(|t| t.task_id == task);
    let attempts = st
        .store
        .attempts(run_id, task)?
        .into_iter()
        .map(|a| AttemptView {
            attempt: a.attempt,
            state: a.state.to_string(),
            duration: duration(Some(&a.started_at), a.ended_at.as_deref()),
            started_at: a.started_at,
            ended_at: a.ended_at,
            error: a.error.map(|e| st.secrets.scrub(&e)),
        })
        .collect();
    let (config, config_note) = rendered_config(st, &dag, &run.run, spec);
    let running = row.state == "running" || row.state == "up_for_retry";
    let view = TaskView {
        task: task_row(st, &dag, run_id, task, rec.as_ref()),
        metrics: rec.and_then(|t| t.metrics),
        attempts,
        config,
        config_note,
        quarantine: quarantine(st, &dag, run_id, task, 20)?,
        running: running && run.state == "running",
        logs_api: format!("/api/runs/{}/tasks/{}/logs", seg(run_id), seg(task)),
        run,
    };
    Ok((view, dag))
}

/// A task's config rendered for a run: `env.X` renders as `<env:X>`, the
/// run's vars as they were; then masked ([`super::mask`]). A config that
/// does not render here is shown unrendered, with the reason.
fn rendered_config(st: &AppState, dag: &Dag, run: &RunRecord, task: &crate::spec::Task) -> (Json, Option<String>) {
    let raw = toml::Value::Table(task.config.clone());
    let rendered = (|| -> Result<toml::Value> {
        let parse = |s: &str| -> Result<chrono::DateTime<chrono_tz::Tz>> {
            Ok(chrono::DateTime::parse_from_rfc3339(s)?.with_timezone(&dag.tz))
        };
        let interval = crate::spec::schedule::Interval {
            start: parse(&run.interval_start)?,
            end: parse(&run.interval_end)?,
        };
        let mut vars = dag.vars.clone();
        if let Some(o) = run.params.get("vars").and_then(Json::as_object) {
            for (k, v) in o {
                if let Some(s) = v.as_str() {
                    vars.insert(k.clone(), toml::Value::String(s.to_string()));
                }
            }
        }
        let env: BTreeMap<String, String> = std::env::vars()
            .map(|(k, _)| (k.clone(), format!("<env:{k}>")))
            .collect();
        let mut ctx = crate::engine::run_context(dag, &run.run_id, &interval, vars, env)?;
        ctx.task = task.id.clone();
        crate::spec::template::render_value(&raw, &ctx).map_err(|(p, e)| anyhow!("cannot render `{p}`: {e}"))
    })();
    match rendered {
        Ok(v) => (mask_config(&v, &dag.pii, &st.secrets), None),
        Err(e) => (
            mask_config(&raw, &dag.pii, &st.secrets),
            Some(st.secrets.scrub(&format!("shown unrendered: {e:#}"))),
        ),
    }
}

// ---- logs and quarantine ----

/// A piece of a task's log.
#[derive(Debug, Serialize)]
pub struct LogChunk {
    /// Whole lines from `offset`, secrets masked.
    pub text: String,
    pub offset: u64,
    /// Where the next request continues (bytes).
    pub next_offset: u64,
    /// The log's size now.
    pub size: u64,
    /// The task is still running: more may come.
    pub running: bool,
}

pub fn log_path(st: &AppState, dag: &str, run_id: &str, task: &str) -> PathBuf {
    st.project
        .state_dir()
        .join("logs")
        .join(dag)
        .join(run_id)
        .join(format!("{task}.log"))
}

/// At most `max` bytes of whole lines of a task's log from `offset`.
pub fn log_chunk(st: &AppState, run_id: &str, task: &str, offset: u64, max: usize) -> Result<LogChunk> {
    let (run, dag) = find_run(st, run_id)?;
    if !dag.tasks.iter().any(|t| t.id == task) {
        return Err(anyhow!(NotFound(format!("DAG {} has no task `{task}`", dag.name))));
    }
    let rec = st.store.tasks(run_id)?.into_iter().find(|t| t.task_id == task);
    let running = st.store.is_live(&run)
        && rec.is_some_and(|t| matches!(t.state.as_str(), "running" | "up_for_retry" | "pending"));
    let path = log_path(st, &dag.name, run_id, task);
    let Ok(mut f) = std::fs::File::open(&path) else {
        return Ok(LogChunk {
            text: String::new(),
            offset,
            next_offset: offset,
            size: 0,
            running,
        });
    };
    let size = f.metadata()?.len();
    let offset = offset.min(size);
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(max as u64).read_to_end(&mut buf)?;
    // Whole lines only (a line being written waits for the next poll),
    // unless a single line is longer than the whole chunk.
    let whole = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if buf.len() >= max => buf.len(),
        None => 0,
    };
    buf.truncate(whole);
    let text = String::from_utf8_lossy(&buf);
    Ok(LogChunk {
        text: st.secrets.scrub(&text),
        offset,
        next_offset: offset + whole as u64,
        size,
        running,
    })
}

/// The first rows of a task's quarantine file.
#[derive(Debug, Serialize)]
pub struct QuarantineSample {
    pub rows: Vec<Json>,
    /// More rows follow in the file.
    pub more: bool,
    /// Where the file is, relative to the project.
    pub file: Option<String>,
}

pub fn quarantine(st: &AppState, dag: &Dag, run_id: &str, task: &str, limit: usize) -> Result<QuarantineSample> {
    let path = crate::data::ArtifactStore::new(st.project.state_dir().join("artifacts"))
        .task_dir(&dag.name, run_id, task)
        .join("quarantine.ndjson");
    let Ok(f) = std::fs::File::open(&path) else {
        return Ok(QuarantineSample {
            rows: Vec::new(),
            more: false,
            file: None,
        });
    };
    let mut rows = Vec::new();
    let mut more = false;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() == limit {
            more = true;
            break;
        }
        let v: Json = serde_json::from_str(&line).unwrap_or(Json::String("(unreadable line)".into()));
        rows.push(mask_quarantine_row(v, &dag.pii, &st.secrets));
    }
    Ok(QuarantineSample {
        rows,
        more,
        file: Some(rel(st, &path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("d@2026-01-01.2"), "d@2026-01-01.2");
        assert_eq!(seg("a b/c?"), "a%20b%2Fc%3F");
    }
}
