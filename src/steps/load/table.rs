//! What every table load (`load.sqlite`, `load.postgres`, `load.redshift`,
//! `load.warehouse`) is configured with: the connection, the table, the
//! mode and its `partition` or `key`, `create`, and Redshift's staging
//! options. One struct, so the keys and their docs are the same for every
//! warehouse and a job written for one loads any of them; each kind
//! refuses, with a validation error, the options that do not apply to it.
//!
//! (One struct rather than shared parts `#[serde(flatten)]`ed into each
//! kind's: flattening loses the key path of a bad value, so `validate`
//! could no longer point at the line, and hides the field names that
//! `validate` lists.)

use serde::Deserialize;

use crate::spec::duration::HumanDuration;
use crate::steps::ConfigProblem;
use crate::warehouse::modes;

/// How the input's rows go into the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Add the rows to the table (default). Not idempotent: a re-run adds
    /// them again.
    #[default]
    Append,
    /// Delete every row of the table, then insert the input.
    Replace,
    /// Rows whose `key` is already in the table are replaced by the input's;
    /// rows with a new key are inserted.
    Merge,
    /// Delete the rows of this run's `partition` (e.g. the run's date),
    /// then insert the input: re-running a date replaces that date's rows.
    ReplacePartition,
}

impl Mode {
    /// The name users write for `mode`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Append => "append",
            Mode::Replace => "replace",
            Mode::Merge => "merge",
            Mode::ReplacePartition => "replace_partition",
        }
    }
}

/// The partition a `replace_partition` load replaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// The column holding the partition (e.g. `order_date`). If the input
    /// lacks it, it is added, filled with `value`; if the input has it,
    /// every row must hold `value` (the load fails otherwise, before
    /// touching the table).
    pub column: String,
    /// This run's partition, usually a template: `"{{ ds }}"`. Compared as
    /// text with the column's values (dates as `YYYY-MM-DD`).
    pub value: String,
}

/// The options of every table load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableLoad {
    /// A connection from `nightjar.toml` (default `warehouse`). With
    /// `load.warehouse` it may be of kind `sqlite`, `postgres` or
    /// `redshift`; the other loads need their own kind.
    #[serde(default = "default_connection")]
    pub connection: String,
    /// The table: `table`, or `schema.table` on PostgreSQL and Redshift
    /// (SQLite has no schemas). Letters, digits and `_`; PostgreSQL and
    /// Redshift names are folded to lower case.
    pub table: String,
    /// A schema for the table (`schema = "acme"`, or `"{{ vars.project }}"`):
    /// on PostgreSQL and Redshift the same as `table = "acme.orders"`. SQLite
    /// has no schemas, so there the table goes into a database file of its
    /// own beside the connection's, `<path without .db>.<schema>.db`
    /// (`.nightjar/warehouse.acme.db`; `ATTACH DATABASE ... AS acme` reads it
    /// as `acme.orders`), and the load opens that one file and no other: a
    /// load with `schema = "acme"` cannot write a table of another schema
    /// (the per-project isolation of dags/customer_ingest.toml). Lower-case
    /// letters, digits and `_`, starting with a letter: a name, never a path.
    pub schema: Option<String>,
    /// `append` (default), `replace` (every row), `merge` (replace the rows
    /// whose `key` is in the input, insert the others) or
    /// `replace_partition` (delete the rows of `partition`, then insert).
    #[serde(default)]
    pub mode: Mode,
    /// For `mode = "replace_partition"`: `{ column = "order_date", value =
    /// "{{ ds }}" }`.
    pub partition: Option<Partition>,
    /// For `mode = "merge"`: the columns identifying a row, e.g.
    /// `["InvoiceNo", "StockCode"]`. A row with a NULL key fails the load.
    #[serde(default)]
    pub key: Vec<String>,
    /// Create the table from the input's columns when it does not exist.
    /// Default: `true` on SQLite (the embedded warehouse), `false` on
    /// PostgreSQL and Redshift, where a missing table fails the load (their
    /// tables usually come from DDL in `sql/`). Write `create = true` in a
    /// job meant for every env.
    pub create: Option<bool>,
    /// Redshift only: keep the staged files after a successful load
    /// (default false: they are deleted; after a failure they are always
    /// kept for diagnosis).
    pub keep_staged: Option<bool>,
    /// Redshift only: staged files come in multiples of this (the
    /// cluster's slices); default: the connection's `slices`, else 4.
    pub slices: Option<u32>,
    /// Redshift only: target size of one staged file, in MB after
    /// compression (default 128; AWS advises 1 MB to 1 GB).
    pub file_size_mb: Option<u64>,
    /// Redshift only: how long the Redshift statements may run before they
    /// are cancelled (default 1h).
    pub statement_timeout: Option<HumanDuration>,
}

fn default_connection() -> String {
    "warehouse".into()
}

impl TableLoad {
    /// Checks every load runs: a connection name, and the rules of `mode`
    /// with `partition` and `key`. The table name is checked by each kind
    /// (SQLite's rules differ).
    pub fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.connection.trim().is_empty() {
            p.push(ConfigProblem::new("connection", "`connection` is empty").hint("e.g. `connection = \"warehouse\"`"));
        }
        p.extend(modes::check(self.mode, self.partition.as_ref(), &self.key));
        if let Some(mb) = self.file_size_mb
            && !(1..=1024).contains(&mb)
        {
            p.push(
                ConfigProblem::new("file_size_mb", "`file_size_mb` must be between 1 and 1024")
                    .hint("AWS advises staged files of 1 MB to 1 GB after compression; 128 is a good default"),
            );
        }
        if self.slices == Some(0) {
            p.push(ConfigProblem::new("slices", "`slices` must be at least 1"));
        }
        if self.schema.is_some() && self.table.contains('.') {
            p.push(
                ConfigProblem::new("schema", "`schema` and a `schema.table` name both name the schema")
                    .hint("write `table = \"orders\"` with `schema = \"acme\"`, or `table = \"acme.orders\"` alone"),
            );
        }
        p
    }

    /// `schema.table` when `schema` is set, else `table` (PostgreSQL and
    /// Redshift).
    pub fn qualified_table(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.table),
            None => self.table.clone(),
        }
    }

    /// The Redshift-only options that are set.
    pub fn redshift_only(&self) -> Vec<&'static str> {
        [
            ("keep_staged", self.keep_staged.is_some()),
            ("slices", self.slices.is_some()),
            ("file_size_mb", self.file_size_mb.is_some()),
            ("statement_timeout", self.statement_timeout.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }

    /// Validation problems for the Redshift-only options on `kind`.
    pub fn refuse_redshift_only(&self, kind: &str) -> Vec<ConfigProblem> {
        self.redshift_only()
            .into_iter()
            .map(|k| {
                ConfigProblem::new(k, format!("`{k}` only applies to Redshift, not to {kind}"))
                    .hint("remove it (it is for `load.redshift`, or `load.warehouse` on a redshift connection)")
            })
            .collect()
    }

    /// `file_size_mb` (default 128).
    pub fn file_size_mb(&self) -> u64 {
        self.file_size_mb.unwrap_or(128)
    }

    /// `statement_timeout` (default 1h).
    pub fn statement_timeout(&self) -> std::time::Duration {
        self.statement_timeout
            .map_or(std::time::Duration::from_secs(3600), |d| d.0)
    }

    /// The partition, when the mode replaces one.
    pub fn replaced_partition(&self) -> Option<&Partition> {
        self.partition.as_ref().filter(|_| self.mode == Mode::ReplacePartition)
    }

    /// `create`, for PostgreSQL and Redshift (default false).
    pub fn creates(&self) -> bool {
        self.create.unwrap_or(false)
    }
}
