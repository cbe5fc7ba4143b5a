//! `kind = "postgres"` connections:
//!
//! ```toml
//! [env.local.connections.dw]
//! kind = "postgres"
//! url = "postgres://etl@db.internal:5432/warehouse"   # or url_env, or host/port/user/dbname
//! password_env = "DW_PASSWORD"                        # optional: the password from this variable
//! schema = "analytics"                                 # optional: the search_path
//! sslmode = "verify-full"                              # optional: TLS (see pg_tls), with root_cert = "ca.pem"
//! ```
//!
//! Passwords never sit in `nightjar.toml`: `password_env` names the
//! environment variable holding it (or the URL / `PGPASSWORD` conventions
//! of the deployment provide it).

use anyhow::{Context, Result, anyhow, bail};
use tokio_postgres::Client;

use super::pg_tls::Tls;
use crate::spec::project::Connection;

const KEYS: &[&str] = &[
    "url",
    "url_env",
    "host",
    "port",
    "user",
    "dbname",
    "database",
    "password_env",
    "schema",
    "tls",
    "sslmode",
    "root_cert",
];

/// The connection's config (credentials from the environment), its TLS
/// mode, and a description safe to print (`postgres host:port/db as user`).
/// One reader of `kind = "postgres"` settings for loads, `sql` tasks and
/// `extract.sql`.
pub fn config(conn: &Connection) -> Result<(tokio_postgres::Config, Tls, String)> {
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
    let text = |k: &str| s.get(k).and_then(|v| v.as_str());
    let env = |k: &str| -> Result<Option<String>> {
        match text(k) {
            None => Ok(None),
            Some(var) => crate::secrets::var(var).map(Some).ok_or_else(|| {
                anyhow!(
                    "connection `{}`: environment variable `{var}` ({k}) is not set (export it, or declare it under [env.NAME.secrets])",
                    conn.name
                )
            }),
        }
    };
    let url = env("url_env")?.or_else(|| text("url").map(str::to_string));
    let mut cfg: tokio_postgres::Config = match url {
        Some(url) => url.parse().map_err(|_| {
            anyhow!(
                "connection `{}`: the PostgreSQL URL does not parse (for sslmode verify-ca/verify-full, write `sslmode` as a connection setting)",
                conn.name
            )
        })?,
        None => tokio_postgres::Config::new(),
    };
    if let Some(h) = text("host") {
        cfg.host(h);
    }
    if let Some(p) = s.get("port").and_then(|v| v.as_integer()) {
        cfg.port(p as u16);
    }
    if let Some(u) = text("user") {
        cfg.user(u);
    }
    // `database` is the name Redshift connections use; both are accepted.
    if let Some(d) = text("dbname").or_else(|| text("database")) {
        cfg.dbname(d);
    }
    if let Some(p) = env("password_env")? {
        cfg.password(p);
    }
    if cfg.get_hosts().is_empty() {
        bail!(
            "connection `{}`: give `url = \"postgres://user@host:5432/db\"`, `url_env` or `host`",
            conn.name
        );
    }
    let tls = Tls::of(conn, &cfg)?;
    cfg.application_name("nightjar");
    cfg.connect_timeout(std::time::Duration::from_secs(30));
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let shown = format!(
        "postgres {host}:{port}/{} as {}{}",
        cfg.get_dbname().unwrap_or("?"),
        cfg.get_user().unwrap_or("?"),
        if tls == Tls::Off { "" } else { " (TLS)" }
    );
    Ok((cfg, tls, shown))
}

/// Connects to `conn` (spawning the connection task) and sets its schema.
pub async fn connect(conn: &Connection) -> Result<Client> {
    let (mut config, tls, _) = config(conn)?;
    let (client, _connection) = tls.connect(&mut config).await.map_err(|e| {
        anyhow::anyhow!(
            "connecting to PostgreSQL (connection `{}`): {}",
            conn.name,
            e.describe(describe)
        )
    })?;
    if let Some(schema) = conn.settings.get("schema").and_then(|v| v.as_str()) {
        client
            .batch_execute(&format!("SET search_path TO {}", super::ident(schema)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(settings: &str) -> Connection {
        Connection {
            name: "dw".into(),
            kind: "postgres".into(),
            settings: settings.parse().unwrap(),
        }
    }

    #[test]
    fn settings_by_parts_url_or_url_env_and_nothing_unknown() {
        let (cfg, tls, shown) = config(&conn("host = \"db\"\nport = 6543\nuser = \"etl\"\ndbname = \"dw\"")).unwrap();
        assert_eq!(
            (cfg.get_dbname(), cfg.get_user(), tls),
            (Some("dw"), Some("etl"), Tls::Off)
        );
        assert_eq!(shown, "postgres db:6543/dw as etl");
        // `database`, as a Redshift connection writes it, names the same.
        let (cfg, ..) = config(&conn("host = \"db\"\ndatabase = \"shop\"")).unwrap();
        assert_eq!(cfg.get_dbname(), Some("shop"));
        // The URL from a variable; the password never shows.
        crate::secrets::set_for_test("NJ_PG_TEST_URL", "postgres://etl:s3cret@db2:5433/w");
        let (cfg, _, shown) = config(&conn("url_env = \"NJ_PG_TEST_URL\"")).unwrap();
        assert_eq!(cfg.get_ports(), &[5433]);
        assert!(!shown.contains("s3cret"), "{shown}");
        let err = config(&conn("url_env = \"NJ_PG_TEST_UNSET\"")).unwrap_err().to_string();
        assert!(err.contains("NJ_PG_TEST_UNSET") && err.contains("not set"), "{err}");
        let err = config(&conn("host = \"db\"\ndb_name = \"x\"")).unwrap_err().to_string();
        assert!(err.contains("unknown setting `db_name`"), "{err}");
        let err = config(&conn("user = \"etl\"")).unwrap_err().to_string();
        assert!(err.contains("url_env") && err.contains("host"), "{err}");
    }
}
