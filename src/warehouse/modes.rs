//! The load modes of the SQL warehouses, as statements run after the input
//! is in a staging table shaped like the target (`CREATE TEMP TABLE stage
//! (LIKE target)`), inside the load's one transaction.
//!
//! `replace` deletes rather than truncates: on Redshift `TRUNCATE` commits
//! the transaction it runs in, which would make a failed load visible.

use std::collections::BTreeSet;

use crate::steps::ConfigProblem;
pub use crate::steps::load::table::{Mode, Partition};

use super::{TableName, ident, literal};

/// The name users write for `mode`.
pub fn mode_name(mode: Mode) -> &'static str {
    mode.name()
}

/// What a statement's affected-row count means, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Deleted,
    Inserted,
}

/// The statements moving `stage` into `target` in `mode`.
pub fn statements(
    mode: Mode,
    target: &TableName,
    stage: &str,
    key: &[String],
    partition: Option<&Partition>,
) -> Vec<(String, Role)> {
    let t = target.sql();
    let mut out = Vec::new();
    match mode {
        Mode::Append => {}
        Mode::Replace => out.push((format!("DELETE FROM {t}"), Role::Deleted)),
        Mode::Merge => {
            let on: Vec<String> = key
                .iter()
                .map(|k| format!("{t}.{c} = {stage}.{c}", c = ident(k)))
                .collect();
            out.push((
                format!("DELETE FROM {t} USING {stage} WHERE {}", on.join(" AND ")),
                Role::Deleted,
            ));
        }
        Mode::ReplacePartition => {
            if let Some(p) = partition {
                out.push((
                    format!("DELETE FROM {t} WHERE {} = {}", ident(&p.column), literal(&p.value)),
                    Role::Deleted,
                ));
            }
        }
    }
    out.push((format!("INSERT INTO {t} SELECT * FROM {stage}"), Role::Inserted));
    out
}

/// Validate-time checks of `mode`, `partition` and `key` (the same rules
/// as load.sqlite).
pub fn check(mode: Mode, partition: Option<&Partition>, key: &[String]) -> Vec<ConfigProblem> {
    let mut p = Vec::new();
    match (partition, mode) {
        (None, Mode::ReplacePartition) => p.push(
            ConfigProblem::new("partition", "mode `replace_partition` needs `partition`")
                .hint("add `partition = { column = \"order_date\", value = \"{{ ds }}\" }`"),
        ),
        (Some(_), Mode::ReplacePartition) | (None, _) => {}
        (Some(_), m) => p.push(
            ConfigProblem::new(
                "partition",
                format!("`partition` is not used by mode `{}`", mode_name(m)),
            )
            .hint("set `mode = \"replace_partition\"`, or remove `partition`"),
        ),
    }
    if let Some(part) = partition
        && part.column.trim().is_empty()
    {
        p.push(
            ConfigProblem::new("partition.column", "`partition.column` is empty")
                .hint("name the partition column, e.g. `column = \"order_date\"`"),
        );
    }
    match (key.is_empty(), mode) {
        (true, Mode::Merge) => p.push(ConfigProblem::new("key", "mode `merge` needs `key`").hint(
            "add the columns that identify a row (the primary key), e.g. `key = [\"InvoiceNo\", \"StockCode\"]`",
        )),
        (false, m) if m != Mode::Merge => p.push(
            ConfigProblem::new("key", format!("`key` is not used by mode `{}`", mode_name(m)))
                .hint("set `mode = \"merge\"`, or remove `key`"),
        ),
        _ => {}
    }
    let mut seen = BTreeSet::new();
    for (i, k) in key.iter().enumerate() {
        if k.trim().is_empty() {
            p.push(ConfigProblem::new(format!("key[{i}]"), "empty column name in `key`"));
        } else if !seen.insert(k.to_lowercase()) {
            p.push(ConfigProblem::new(
                format!("key[{i}]"),
                format!("`{k}` is twice in `key`"),
            ));
        }
    }
    p
}

/// Checks, batch by batch, what the modes need of the input before
/// anything is loaded: every `replace_partition` row holds the partition
/// value, no `merge` row has a NULL key.
pub struct InputRules {
    partition: Option<(usize, String, String)>,
    keys: Vec<(usize, String)>,
    offset: u64,
}

impl InputRules {
    pub fn new(
        mode: Mode,
        schema: &arrow::datatypes::Schema,
        partition: Option<&Partition>,
        key: &[String],
    ) -> anyhow::Result<Self> {
        let find = |name: &str| schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(name));
        let partition = match (mode, partition) {
            (Mode::ReplacePartition, Some(p)) => find(&p.column).map(|i| (i, p.column.clone(), p.value.clone())),
            _ => None,
        };
        let mut keys = Vec::new();
        if mode == Mode::Merge {
            for k in key {
                let Some(i) = find(k) else {
                    let names: Vec<String> = schema.fields().iter().map(|f| format!("`{}`", f.name())).collect();
                    anyhow::bail!(
                        "key column `{k}` is not in the input (its columns: {})",
                        names.join(", ")
                    );
                };
                keys.push((i, k.clone()));
            }
        }
        Ok(Self {
            partition,
            keys,
            offset: 0,
        })
    }

    pub fn check(&mut self, batch: &arrow::record_batch::RecordBatch) -> anyhow::Result<()> {
        use arrow::array::{Array, AsArray};
        for (i, name) in &self.keys {
            let c = batch.column(*i);
            if c.null_count() > 0 {
                let row = (0..c.len()).find(|r| c.is_null(*r)).unwrap_or(0);
                anyhow::bail!(
                    "row {}: key column `{name}` is NULL; merge needs a key on every row",
                    self.offset + row as u64 + 1
                );
            }
        }
        if let Some((i, name, value)) = &self.partition {
            let text = arrow::compute::cast(batch.column(*i), &arrow::datatypes::DataType::Utf8)?;
            let text = text.as_string::<i32>();
            if let Some(row) = (0..text.len()).find(|r| text.is_null(*r) || text.value(*r) != value) {
                let got = if text.is_null(row) { "NULL" } else { text.value(row) };
                anyhow::bail!(
                    "row {} has `{name}` = `{got}`, but this run replaces partition `{value}`; \
                     filter the input to the run's partition, or use another mode",
                    self.offset + row as u64 + 1
                );
            }
        }
        self.offset += batch.num_rows() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_statements() {
        let t = TableName::parse("dw.orders").unwrap();
        let part = Partition {
            column: "order_date".into(),
            value: "2010-12-01".into(),
        };
        let s = statements(Mode::ReplacePartition, &t, "stage", &[], Some(&part));
        assert_eq!(
            s[0].0,
            "DELETE FROM \"dw\".\"orders\" WHERE \"order_date\" = '2010-12-01'"
        );
        assert_eq!(s[1].0, "INSERT INTO \"dw\".\"orders\" SELECT * FROM stage");
        let s = statements(Mode::Merge, &t, "stage", &["a".into(), "B".into()], None);
        assert_eq!(
            s[0].0,
            "DELETE FROM \"dw\".\"orders\" USING stage WHERE \"dw\".\"orders\".\"a\" = stage.\"a\" AND \"dw\".\"orders\".\"b\" = stage.\"b\""
        );
        assert_eq!(statements(Mode::Append, &t, "stage", &[], None).len(), 1);
        assert!(check(Mode::Merge, None, &[]).iter().any(|p| p.path == "key"));
    }
}
