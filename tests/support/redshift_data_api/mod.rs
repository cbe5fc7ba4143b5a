//! A Redshift Data API server for tests, running the SQL on the real
//! PostgreSQL (moto's Data API accepts statements but executes none).
//!
//! It speaks the wire protocol the AWS SDK uses (awsJson 1.1: `POST /`,
//! `X-Amz-Target: RedshiftData.<Operation>`, JSON bodies, timestamps as
//! epoch seconds) for ExecuteStatement, BatchExecuteStatement,
//! DescribeStatement, GetStatementResult and CancelStatement. Statements
//! run asynchronously and go through SUBMITTED -> STARTED -> FINISHED /
//! FAILED / ABORTED like on Redshift. Each server owns one PostgreSQL schema
//! (its `search_path`), so parallel tests do not see each other's tables.
//!
//! What is emulated and what is not: see README.md, "Redshift Data API
//! test server".

pub mod copy;
pub mod dialect;
mod results;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use self::copy::CopyFailure;
use self::results::ResultSet;

/// Statement states, as the Data API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Submitted,
    Started,
    Finished,
    Failed,
    Aborted,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::Started => "STARTED",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Aborted => "ABORTED",
        }
    }
    fn is_done(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Aborted)
    }
}

/// One SQL statement (alone, or one of a batch).
#[derive(Debug, Clone)]
struct Sub {
    sql: String,
    status: Status,
    error: Option<String>,
    query_id: i64,
    rows: i64,
    result: Option<ResultSet>,
    created: f64,
    updated: f64,
}

struct Statement {
    batch: bool,
    status: Status,
    error: Option<String>,
    subs: Vec<Sub>,
    request: Value,
    created: f64,
    updated: f64,
    cancel: Option<tokio_postgres::CancelToken>,
    cancel_requested: bool,
    pid: i64,
}

struct State {
    pg_url: String,
    schema: String,
    s3: aws_sdk_s3::Client,
    statements: Mutex<HashMap<String, Statement>>,
    next_id: AtomicI64,
    /// Seconds each batch sleeps in PostgreSQL before its statements (to
    /// have something running to cancel).
    batch_delay: Mutex<f64>,
    page_rows: AtomicUsize,
    /// Every call, as (operation, request body).
    calls: Mutex<Vec<(String, Value)>>,
}

/// A running test server. Dropping it stops the server (the schema stays
/// until [`DataApiServer::drop_schema`]).
pub struct DataApiServer {
    /// The endpoint URL for the SDK (`data_api_endpoint_url`).
    pub endpoint: String,
    /// The PostgreSQL schema holding this server's tables.
    pub schema: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DataApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl DataApiServer {
    /// Starts a server on a free loopback port, with a fresh schema named
    /// after `name` (recreated if left over from an earlier run).
    pub async fn start(name: &str) -> Self {
        let pg_url = nightjar::testenv::postgres_url();
        let schema = format!("rs_{}_{}", name, std::process::id());
        let (db, conn) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        tokio::spawn(conn);
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
             CREATE TABLE {schema}.sys_load_error_detail (
                 user_id int, query_id bigint, transaction_id bigint, session_id int,
                 start_time timestamp DEFAULT now(), file_name text, line_number bigint,
                 column_name text, column_type text, column_length text, position int,
                 error_code int, error_message text, raw_line text, raw_field_value text);
             CREATE VIEW {schema}.stl_load_errors AS SELECT user_id AS userid, 0 AS slice,
                 0 AS tbl, start_time AS starttime, session_id AS session, query_id AS query,
                 file_name AS filename, line_number, column_name AS colname, column_type AS type,
                 column_length AS col_length, position, raw_line, raw_field_value,
                 error_code AS err_code, error_message AS err_reason
                 FROM {schema}.sys_load_error_detail;"
        ))
        .await
        .expect("create the test schema");
        let s3 = nightjar::aws::s3_client(&nightjar::testenv::aws_options()).await;
        let state = Arc::new(State {
            pg_url,
            schema: schema.clone(),
            s3,
            statements: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1000),
            batch_delay: Mutex::new(0.0),
            page_rows: AtomicUsize::new(1000),
            calls: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            schema,
            state,
            task,
        }
    }

    /// Makes every later batch sleep `secs` in PostgreSQL first.
    pub fn delay_batches(&self, secs: f64) {
        *self.state.batch_delay.lock().unwrap() = secs;
    }

    /// Rows per GetStatementResult page (default 1000).
    pub fn page_rows(&self, n: usize) {
        self.state.page_rows.store(n, Ordering::SeqCst);
    }

    /// The operations called so far, in order, with their request bodies.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The final status names of every statement run so far, in id order.
    pub fn statuses(&self) -> Vec<String> {
        let map = self.state.statements.lock().unwrap();
        let mut ids: Vec<_> = map.keys().cloned().collect();
        ids.sort();
        ids.iter().map(|i| map[i].status.name().to_string()).collect()
    }

    /// The status names of the batches (BatchExecuteStatement) so far,
    /// in id order.
    pub fn batch_statuses(&self) -> Vec<String> {
        let map = self.state.statements.lock().unwrap();
        let mut ids: Vec<_> = map.iter().filter(|(_, s)| s.batch).map(|(k, _)| k.clone()).collect();
        ids.sort();
        ids.iter().map(|i| map[i].status.name().to_string()).collect()
    }

    /// A client on this server's schema, for setting up and checking tables.
    pub async fn db(&self) -> tokio_postgres::Client {
        connect(&self.state.pg_url, &self.schema).await.expect("connect")
    }

    pub async fn drop_schema(&self) {
        let db = self.db().await;
        db.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await
            .expect("drop schema");
    }
}

async fn connect(url: &str, schema: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    db.batch_execute(&format!("SET search_path TO {schema}")).await?;
    Ok(db)
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1".parse().expect("header"));
    r
}

fn error(kind: &str, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = reply(
        StatusCode::BAD_REQUEST,
        json!({"__type": kind, "message": message.into()}),
    );
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().expect("header"));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error("ValidationException", format!("cannot read the body: {e}"))),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Ok(error("SerializationException", "the body is not JSON"));
    };
    let Some(op) = target.strip_prefix("RedshiftData.") else {
        return Ok(error("UnknownOperationException", format!("unknown target `{target}`")));
    };
    state.calls.lock().unwrap().push((op.to_string(), body.clone()));
    Ok(match op {
        "ExecuteStatement" => submit(&state, &body, false),
        "BatchExecuteStatement" => submit(&state, &body, true),
        "DescribeStatement" => describe(&state, &body),
        "GetStatementResult" => result(&state, &body),
        "CancelStatement" => cancel(&state, &body).await,
        other => error(
            "UnknownOperationException",
            format!("{other} is not emulated by the test server"),
        ),
    })
}

fn submit(state: &Arc<State>, body: &Value, batch: bool) -> Response<Full<Bytes>> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let sqls: Vec<String> = if batch {
        body["Sqls"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    } else {
        text("Sql").into_iter().collect()
    };
    if sqls.is_empty() {
        return error("ValidationException", "no SQL given");
    }
    if batch && sqls.len() > 40 {
        return error("ValidationException", "a batch holds at most 40 statements");
    }
    if text("Database").is_none() {
        return error("ValidationException", "Database is required");
    }
    match (text("WorkgroupName"), text("ClusterIdentifier")) {
        (Some(_), Some(_)) => {
            return error(
                "ValidationException",
                "give WorkgroupName or ClusterIdentifier, not both",
            );
        }
        (None, None) => {
            return error("ValidationException", "WorkgroupName or ClusterIdentifier is required");
        }
        (None, Some(_)) if text("DbUser").is_none() && text("SecretArn").is_none() => {
            return error("ValidationException", "a provisioned cluster needs DbUser or SecretArn");
        }
        _ => {}
    }
    if body.get("Parameters").is_some() {
        return error("ValidationException", "the test server does not emulate Parameters");
    }
    let t = now();
    let n = state.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let subs = sqls
        .iter()
        .map(|sql| Sub {
            sql: sql.clone(),
            status: Status::Submitted,
            error: None,
            query_id: 0,
            rows: -1,
            result: None,
            created: t,
            updated: t,
        })
        .collect();
    state.statements.lock().unwrap().insert(
        id.clone(),
        Statement {
            batch,
            status: Status::Submitted,
            error: None,
            subs,
            request: body.clone(),
            created: t,
            updated: t,
            cancel: None,
            cancel_requested: false,
            pid: 0,
        },
    );
    tokio::spawn(execute(state.clone(), id.clone()));
    let mut out = json!({"Id": id, "CreatedAt": t, "Database": body["Database"]});
    for k in ["WorkgroupName", "ClusterIdentifier", "DbUser", "SecretArn"] {
        if let Some(v) = body.get(k) {
            out[k] = v.clone();
        }
    }
    reply(StatusCode::OK, out)
}

/// Runs a submitted statement: all of it in one transaction.
async fn execute(state: Arc<State>, id: String) {
    // Let SUBMITTED be observable, as on Redshift.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let db = match connect(&state.pg_url, &state.schema).await {
        Ok(db) => db,
        Err(e) => return finish(&state, &id, None, Some(format!("cannot connect: {e}"))),
    };
    let pid: i32 = db
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    let (sqls, batch) = {
        let mut map = state.statements.lock().unwrap();
        let Some(st) = map.get_mut(&id) else { return };
        if st.cancel_requested {
            return;
        }
        st.status = Status::Started;
        st.updated = now();
        st.cancel = Some(db.cancel_token());
        st.pid = pid as i64;
        (st.subs.iter().map(|s| s.sql.clone()).collect::<Vec<_>>(), st.batch)
    };
    if let Err(e) = db.batch_execute("BEGIN").await {
        return finish(&state, &id, None, Some(e.to_string()));
    }
    // The delay runs in PostgreSQL in short sleeps, checking between them
    // for a cancel that arrived while no query was running (which
    // PostgreSQL's cancel would miss).
    let delay = *state.batch_delay.lock().unwrap();
    let mut slept = 0.0;
    while batch && slept < delay {
        if cancelled(&state, &id) {
            let _ = db.batch_execute("ROLLBACK").await;
            return finish(&state, &id, Some(0), Some("cancelled".into()));
        }
        if let Err(e) = db.execute("SELECT pg_sleep(0.1)", &[]).await {
            let _ = db.batch_execute("ROLLBACK").await;
            return finish(&state, &id, Some(0), Some(pg_message(&e)));
        }
        slept += 0.1;
    }
    for (i, sql) in sqls.iter().enumerate() {
        let query_id = state.next_id.fetch_add(1, Ordering::SeqCst);
        if cancelled(&state, &id) {
            let _ = db.batch_execute("ROLLBACK").await;
            return finish(&state, &id, Some(i), Some("cancelled".into()));
        }
        set_sub(&state, &id, i, |s| {
            s.status = Status::Started;
            s.query_id = query_id;
        });
        match run_one(&state, &db, sql, query_id, pid).await {
            Ok((rows, result)) => set_sub(&state, &id, i, |s| {
                s.status = Status::Finished;
                s.rows = rows;
                s.result = result;
            }),
            Err(message) => {
                let _ = db.batch_execute("ROLLBACK").await;
                return finish(&state, &id, Some(i), Some(message));
            }
        }
    }
    match db.batch_execute("COMMIT").await {
        Ok(()) => finish(&state, &id, None, None),
        Err(e) => finish(&state, &id, None, Some(pg_message(&e))),
    }
}

fn cancelled(state: &State, id: &str) -> bool {
    state
        .statements
        .lock()
        .unwrap()
        .get(id)
        .is_some_and(|s| s.cancel_requested)
}

fn set_sub(state: &State, id: &str, i: usize, f: impl FnOnce(&mut Sub)) {
    let mut map = state.statements.lock().unwrap();
    if let Some(s) = map.get_mut(id).and_then(|st| st.subs.get_mut(i)) {
        f(s);
        s.updated = now();
    }
}

/// Ends a statement: FINISHED, or FAILED / ABORTED (when a cancel was
/// asked for) at sub-statement `failed` with `error`; the sub-statements
/// after a failed one are ABORTED, as on Redshift.
fn finish(state: &State, id: &str, failed: Option<usize>, err: Option<String>) {
    let mut map = state.statements.lock().unwrap();
    let Some(st) = map.get_mut(id) else { return };
    let t = now();
    st.updated = t;
    st.cancel = None;
    let Some(message) = err else {
        st.status = Status::Finished;
        return;
    };
    let status = if st.cancel_requested {
        Status::Aborted
    } else {
        Status::Failed
    };
    st.status = status;
    st.error = Some(if status == Status::Aborted {
        "Query cancelled on user's request".to_string()
    } else {
        message.clone()
    });
    let at = failed.unwrap_or(0);
    for (i, s) in st.subs.iter_mut().enumerate() {
        if i == at {
            s.status = status;
            s.error = st.error.clone();
            s.updated = t;
        } else if i > at {
            s.status = Status::Aborted;
            s.updated = t;
        }
    }
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| format!("ERROR: {}", d.message()))
}

/// Runs one statement on `db` (inside the statement's transaction):
/// returns the rows affected or returned, and a result set for queries.
async fn run_one(
    state: &State,
    db: &tokio_postgres::Client,
    sql: &str,
    query_id: i64,
    pid: i32,
) -> Result<(i64, Option<ResultSet>), String> {
    if let Some(c) = dialect::parse_s3_copy(sql) {
        return match copy::run(db, &state.s3, &c).await {
            Ok(rows) => Ok((rows as i64, None)),
            Err(f) => {
                if let CopyFailure::Row(e) = &f {
                    record_load_error(state, e, query_id, pid).await;
                }
                Err(format!("ERROR: {}", f.message(&c.table)))
            }
        };
    }
    let sql = dialect::strip_redshift_clauses(sql);
    if dialect::is_truncate(&sql) {
        // Redshift commits the open transaction when it runs TRUNCATE.
        // (Three round trips: in one query string, BEGIN would pull the
        // TRUNCATE into the new transaction.)
        for step in ["COMMIT", sql.as_str(), "BEGIN"] {
            db.batch_execute(step).await.map_err(|e| pg_message(&e))?;
        }
        return Ok((0, None));
    }
    let prepared = db.prepare(&sql).await.map_err(|e| pg_message(&e))?;
    if prepared.columns().is_empty() {
        let n = db.execute(&prepared, &[]).await.map_err(|e| pg_message(&e))?;
        return Ok((n as i64, None));
    }
    let rows = db.simple_query(&sql).await.map_err(|e| pg_message(&e))?;
    let set = ResultSet::new(prepared.columns(), rows);
    Ok((set.rows.len() as i64, Some(set)))
}

/// Writes the row Redshift keeps in SYS_LOAD_ERROR_DETAIL, outside the
/// failing transaction (system tables are not rolled back).
async fn record_load_error(state: &State, e: &copy::LoadError, query_id: i64, pid: i32) {
    let Ok(db) = connect(&state.pg_url, &state.schema).await else {
        return;
    };
    let _ = db
        .execute(
            "INSERT INTO sys_load_error_detail (user_id, query_id, session_id, file_name, line_number, \
             column_name, column_type, error_code, error_message, raw_field_value) \
             VALUES (100, $1, $2, $3, $4, $5, $6, 1216, $7, $8)",
            &[
                &query_id,
                &pid,
                &e.file,
                &e.line,
                &e.column,
                &e.column_type,
                &e.reason,
                &e.raw_value,
            ],
        )
        .await;
}

/// The statement and sub-statement (1-based) an id names: `ID` or `ID:N`.
fn split_id(id: &str) -> (&str, Option<usize>) {
    match id.rsplit_once(':') {
        Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) => (base, n.parse().ok()),
        _ => (id, None),
    }
}

fn not_found(id: &str) -> Response<Full<Bytes>> {
    error("ResourceNotFoundException", format!("Query does not exist: {id}"))
}

fn describe(state: &State, body: &Value) -> Response<Full<Bytes>> {
    let id = body["Id"].as_str().unwrap_or_default();
    let (base, sub) = split_id(id);
    let map = state.statements.lock().unwrap();
    let Some(st) = map.get(base) else { return not_found(id) };
    let sub_json = |i: usize, s: &Sub| {
        let mut v = json!({
            "Id": format!("{base}:{}", i + 1),
            "Status": s.status.name(),
            "QueryString": s.sql,
            "CreatedAt": s.created,
            "UpdatedAt": s.updated,
            "Duration": ((s.updated - s.created) * 1e9) as i64,
            "HasResultSet": s.result.is_some(),
            "ResultRows": s.rows,
            "ResultSize": s.result.as_ref().map_or(0, ResultSet::size),
            "RedshiftQueryId": s.query_id,
        });
        if let Some(e) = &s.error {
            v["Error"] = json!(e);
        }
        v
    };
    let mut out = if let Some(n) = sub {
        let Some(s) = st.subs.get(n.wrapping_sub(1)) else {
            return not_found(id);
        };
        sub_json(n - 1, s)
    } else {
        let mut v = json!({
            "Id": base,
            "Status": st.status.name(),
            "CreatedAt": st.created,
            "UpdatedAt": st.updated,
            "Duration": ((st.updated - st.created) * 1e9) as i64,
            "RedshiftPid": st.pid,
        });
        if st.batch {
            v["SubStatements"] = st.subs.iter().enumerate().map(|(i, s)| sub_json(i, s)).collect();
            v["HasResultSet"] = json!(false);
        } else {
            let s = &st.subs[0];
            v["QueryString"] = json!(s.sql);
            v["HasResultSet"] = json!(s.result.is_some());
            v["ResultRows"] = json!(s.rows);
            v["ResultSize"] = json!(s.result.as_ref().map_or(0, ResultSet::size));
            v["RedshiftQueryId"] = json!(s.query_id);
        }
        if let Some(e) = &st.error {
            v["Error"] = json!(e);
        }
        v
    };
    for k in ["Database", "WorkgroupName", "ClusterIdentifier", "DbUser", "SecretArn"] {
        if let Some(v) = st.request.get(k) {
            out[k] = v.clone();
        }
    }
    reply(StatusCode::OK, out)
}

fn result(state: &State, body: &Value) -> Response<Full<Bytes>> {
    let id = body["Id"].as_str().unwrap_or_default();
    let (base, sub) = split_id(id);
    let map = state.statements.lock().unwrap();
    let Some(st) = map.get(base) else { return not_found(id) };
    let s = match sub {
        Some(n) => st.subs.get(n.wrapping_sub(1)),
        None if st.batch => {
            return error(
                "ValidationException",
                "a batch has no result of its own: ask for a sub-statement (ID:N)",
            );
        }
        None => st.subs.first(),
    };
    let Some(s) = s else { return not_found(id) };
    if s.status != Status::Finished {
        return error(
            "ValidationException",
            format!("Query {id} has not finished (status {})", s.status.name()),
        );
    }
    let Some(set) = &s.result else {
        return error("ValidationException", format!("Query {id} does not have a result set"));
    };
    let start: usize = body["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
    let page = state.page_rows.load(Ordering::SeqCst).max(1);
    reply(StatusCode::OK, set.page(start, page))
}

async fn cancel(state: &State, body: &Value) -> Response<Full<Bytes>> {
    let id = body["Id"].as_str().unwrap_or_default();
    let token = {
        let mut map = state.statements.lock().unwrap();
        let Some(st) = map.get_mut(id) else {
            return not_found(id);
        };
        if st.status.is_done() {
            return error(
                "ValidationException",
                format!("Could not cancel a query that is already in {} state", st.status.name()),
            );
        }
        st.cancel_requested = true;
        if st.status == Status::Submitted {
            st.status = Status::Aborted;
            st.error = Some("Query cancelled on user's request".into());
            st.updated = now();
            for s in &mut st.subs {
                s.status = Status::Aborted;
            }
        }
        st.cancel.clone()
    };
    if let Some(t) = token {
        let _ = t.cancel_query(tokio_postgres::NoTls).await;
    }
    reply(StatusCode::OK, json!({"Status": true}))
}
