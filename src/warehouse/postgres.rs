//! `kind = "postgres"` connections:
//!
//! ```toml
//! [env.local.connections.dw]
//! kind = "postgres"
//! url = "postgres://etl@db.internal:5432/warehouse"   # or host/port/user/dbname
//! password_env = "DW_PASSWORD"                        # optional: the password from this variable
//! schema = "analytics"                                 # optional: the search_path
//! sslmode = "verify-full"                              # optional: TLS (see pg_tls), with root_cert = "ca.pem"
//! ```
//!
//! Passwords never sit in `nightjar.toml`: `password_env` names the
//! environment variable holding it (or the URL / `PGPASSWORD` conventions
//! of the deployment provide it).

use anyhow::{Context, Result, bail};
use tokio_postgres::Client;

use crate::spec::project::Connection;

const KEYS: &[&str] = &[
    "url",
    "host",
    "port",
    "user",
    "dbname",
    "password_env",
    "schema",
    "tls",
    "sslmode",
    "root_cert",
];

/// Connects to `conn` (spawning the connection task) and sets its schema.
pub async fn connect(conn: &Connection) -> Result<Client> {
    let s = &conn.settings;
    for k in s.keys() {
        if !KEYS.contains(&k.as_str()) {
            bail!(
                "connection `{}`: unknown setting `{k}` for a postgres connection (known: {})",
                conn.name,
                KEYS.join(", ")
            );
        }
    }
    let text = |k: &str| s.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut config: tokio_postgres::Config = match text("url") {
        Some(url) => url
            .parse()
            .with_context(|| format!("connection `{}`: `url` is not a PostgreSQL URL", conn.name))?,
        None => tokio_postgres::Config::new(),
    };
    if let Some(h) = text("host") {
        config.host(&h);
    }
    if let Some(p) = s.get("port").and_then(|v| v.as_integer()) {
        config.port(p as u16);
    }
    if let Some(u) = text("user") {
        config.user(&u);
    }
    if let Some(d) = text("dbname") {
        config.dbname(&d);
    }
    if let Some(var) = text("password_env") {
        let pw = crate::secrets::var(&var).with_context(|| {
            format!(
                "connection `{}`: `password_env` names `{var}`, which is not set (export it, or declare it under [env.NAME.secrets])",
                conn.name
            )
        })?;
        config.password(pw);
    }
    if config.get_hosts().is_empty() {
        bail!(
            "connection `{}`: give `url = \"postgres://user@host:5432/db\"` or `host`",
            conn.name
        );
    }
    let tls = super::pg_tls::Tls::of(conn, &config)?;
    let (client, _connection) = tls.connect(&mut config).await.map_err(|e| {
        anyhow::anyhow!(
            "connecting to PostgreSQL (connection `{}`): {}",
            conn.name,
            e.describe(describe)
        )
    })?;
    if let Some(schema) = text("schema") {
        client
            .batch_execute(&format!("SET search_path TO {}", super::ident(&schema)))
            .await
            .with_context(|| format!("setting schema `{schema}`"))?;
    }
    Ok(client)
}

/// A PostgreSQL error with its detail and hint, which `Display` omits.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut s = db.message().to_string();
    if let Some(d) = db.detail() {
        s.push_str(&format!(" ({d})"));
    }
    if let Some(w) = db.where_() {
        s.push_str(&format!(" [{w}]"));
    }
    if let Some(h) = db.hint() {
        s.push_str(&format!("; hint: {h}"));
    }
    s
}
