//! `kind = "mysql"` connections (MySQL and MariaDB):
//!
//! ```toml
//! [env.local.connections.shop]
//! kind = "mysql"
//! url = "mysql://etl@db.internal:3306/shop"   # or host/port/user/dbname
//! password_env = "SHOP_PASSWORD"              # optional: the password from this variable
//! ```
//!
//! `url_env` names a variable holding the whole URL instead. Passwords
//! never sit in `nightjar.toml` and never appear in logs or errors: only
//! `host:port/db as user` is ever printed. The session's time zone is UTC,
//! so `TIMESTAMP` columns are read (and watermarks compared) in UTC. The
//! connection is not encrypted: reach a remote server through a private
//! network, an SSH tunnel or a TLS-terminating proxy.

use anyhow::{Result, anyhow, bail};
use mysql_async::{Conn, Opts, OptsBuilder};

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
];

/// The connection's options (credentials resolved through
/// [`crate::secrets::var`]) and a description safe to print.
pub fn options(conn: &Connection) -> Result<(Opts, String)> {
    let s = &conn.settings;
    for k in s.keys() {
        if !KEYS.contains(&k.as_str()) {
            bail!(
                "connection `{}`: unknown setting `{k}` for a mysql connection (known: {})",
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
    let mut b = match url {
        // The parser's own message may quote the URL: say only what to fix.
        Some(url) => OptsBuilder::from_opts(Opts::from_url(&url).map_err(|_| {
            anyhow!(
                "connection `{}`: the MySQL URL does not parse (expected mysql://user@host:3306/db)",
                conn.name
            )
        })?),
        None if text("host").is_none() => bail!(
            "connection `{}`: give `url = \"mysql://user@host:3306/db\"` or `host`",
            conn.name
        ),
        None => OptsBuilder::default(),
    };
    if let Some(h) = text("host") {
        b = b.ip_or_hostname(h);
    }
    if let Some(p) = s.get("port").and_then(|v| v.as_integer()) {
        let port = u16::try_from(p).map_err(|_| anyhow!("connection `{}`: `port = {p}` is not a port", conn.name))?;
        b = b.tcp_port(port);
    }
    if let Some(u) = text("user") {
        b = b.user(Some(u));
    }
    if let Some(d) = text("dbname").or_else(|| text("database")) {
        b = b.db_name(Some(d));
    }
    if let Some(p) = env("password_env")? {
        b = b.pass(Some(p));
    }
    // UTC sessions: TIMESTAMP values come back (and parameters are read) in
    // UTC whatever the server's zone. No socket detour: connect where asked.
    let b = b
        .init(vec!["SET time_zone = '+00:00'"])
        .prefer_socket(false)
        .stmt_cache_size(0);
    let opts = Opts::from(b);
    let shown = format!(
        "mysql {}:{}/{} as {}",
        opts.ip_or_hostname(),
        opts.tcp_port(),
        opts.db_name().unwrap_or("?"),
        opts.user().unwrap_or("?")
    );
    Ok((opts, shown))
}

/// Connects to `conn`; errors name the server, never the credentials.
pub async fn connect(conn: &Connection) -> Result<(Conn, String)> {
    let (opts, shown) = options(conn)?;
    let c = Conn::new(opts)
        .await
        .map_err(|e| anyhow!("connecting to {shown}: {}", describe(&e)))?;
    Ok((c, shown))
}

/// A MySQL error as the server said it (code and message), without any
/// connection options.
pub fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} (error {}, SQLSTATE {})", s.message, s.code, s.state),
        mysql_async::Error::Url(_) => "the connection URL is not valid".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(settings: &str) -> Connection {
        Connection {
            name: "shop".into(),
            kind: "mysql".into(),
            settings: toml::from_str(settings).unwrap(),
        }
    }

    #[test]
    fn options_from_url_or_parts_and_never_show_the_password() {
        let (o, shown) = options(&conn("url = \"mysql://etl:s3cret@db.example:3307/shop\"")).unwrap();
        assert_eq!(o.pass(), Some("s3cret"));
        assert_eq!(shown, "mysql db.example:3307/shop as etl");
        let (o, shown) = options(&conn("host = \"h\"\nuser = \"u\"\ndbname = \"d\"")).unwrap();
        assert_eq!((o.tcp_port(), o.pass()), (3306, None));
        assert_eq!(shown, "mysql h:3306/d as u");
        let e = options(&conn("host = \"h\"\npassword = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting `password`"), "{e}");
        let e = options(&conn("password_env = \"NJ_SURELY_UNSET_PW\"\nhost = \"h\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`NJ_SURELY_UNSET_PW` (password_env) is not set"), "{e}");
        let e = options(&conn("url = \"mysql://u:s3cret@[bad\""))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret") && e.contains("does not parse"), "{e}");
        assert!(
            options(&conn("user = \"u\""))
                .unwrap_err()
                .to_string()
                .contains("give `url")
        );
    }
}
