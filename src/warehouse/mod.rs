//! What the SQL warehouse loads (`load.redshift`, `load.postgres`) share:
//! finding their connection, the target's columns and how they compare
//! with the input's (the refusal diff), DDL from an Arrow schema, and the
//! statements of each load mode, run after the rows are in a staging table.
//!
//! The modes and their config (`mode`, `partition`, `key`) are those of
//! `load.sqlite`, so one job loads any warehouse by switching `--env`.

pub mod ddl;
pub mod modes;
pub mod mysql;
pub mod pg_tls;
pub mod pg_values;
pub mod postgres;
pub mod schema;
pub mod sql_text;

use anyhow::{Result, bail};

use crate::spec::project::Connection;
use crate::steps::StepContext;

/// The connection `name` of the run's env, which must be of `kind`.
pub fn connection<'a>(cx: &'a StepContext, name: &str, kind: &str, step: &str) -> Result<&'a Connection> {
    let list = |only: Option<&str>| {
        let names: Vec<String> = cx
            .connections
            .values()
            .filter(|c| only.is_none_or(|k| c.kind == k))
            .map(|c| format!("`{}` ({})", c.name, c.kind))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let Some(conn) = cx.connections.get(name) else {
        bail!(
            "no connection `{name}` in env `{}` (available: {}); declare it in nightjar.toml under [env.{}.connections.{name}]",
            cx.env,
            list(None),
            cx.env,
        );
    };
    if conn.kind != kind {
        bail!(
            "connection `{name}` is a {} connection, but {step} needs a {kind} one ({kind} connections in env `{}`: {})",
            conn.kind,
            cx.env,
            list(Some(kind))
        );
    }
    Ok(conn)
}

/// A table name as written in a config: `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub table: String,
}

impl TableName {
    /// Parses and checks `name` (letters, digits, `_`, `$`; one optional
    /// schema prefix).
    pub fn parse(name: &str) -> Result<Self, (String, String)> {
        let parts: Vec<&str> = name.split('.').collect();
        let valid = |p: &str| {
            let mut c = p.chars();
            c.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
            return Err((
                format!("`{name}` is not a valid table name"),
                "write `table` or `schema.table` with letters, digits and `_`, e.g. `analytics.order_lines`".into(),
            ));
        }
        Ok(match parts.as_slice() {
            [s, t] => Self {
                schema: Some(s.to_string()),
                table: t.to_string(),
            },
            _ => Self {
                schema: None,
                table: name.to_string(),
            },
        })
    }

    /// The quoted name for SQL: `"schema"."table"`. Redshift and
    /// PostgreSQL fold unquoted names to lower case, so the names are
    /// lower-cased before quoting, as an unquoted name would be.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", ident(s), ident(&self.table)),
            None => ident(&self.table),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// A column name as a quoted identifier, folded to lower case (Redshift
/// folds every identifier; PostgreSQL folds unquoted ones).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.to_lowercase().replace('"', "\"\""))
}

/// A string literal.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(TableName::parse("Orders").unwrap().sql(), "\"orders\"");
        assert_eq!(TableName::parse("dw.orders").unwrap().sql(), "\"dw\".\"orders\"");
        for bad in ["", "a.b.c", "1x", "a b", "x;drop"] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(literal("it's"), "'it''s'");
    }
}
