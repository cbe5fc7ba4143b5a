//! `validate`'s PII warning: a DAG that loads a column whose name hints
//! PII (email, phone, card, name, address, iban, ssn, dob, ...) with no
//! `transform.pii` task upstream of the load.
//!
//! Validate does not read data, so the columns are the ones the DAG's
//! configs name: extract `[columns]`, clean's `select`, `rename` targets
//! and `derive` keys, join outputs are not known. A column a `transform.pii`
//! task acts on upstream of the load is protected, so no warning.

use std::collections::BTreeSet;

use toml::Value;

use super::scan::name_hint;
use crate::graph::DagGraph;
use crate::spec::Dag;
use crate::spec::diagnostic::Diagnostic;

/// Column names a task's config introduces.
fn columns_named(config: &toml::Table) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let keys = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    out.extend(keys(config.get("columns")));
    out.extend(keys(config.get("derive")));
    if let Some(Value::Table(r)) = config.get("rename") {
        out.extend(r.values().filter_map(|v| v.as_str().map(str::to_string)));
    }
    if let Some(Value::Array(s)) = config.get("select") {
        out.extend(s.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    out
}

/// Warnings for one loaded DAG.
pub fn warnings(dag: &Dag) -> Vec<Diagnostic> {
    let graph = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let mut out = Vec::new();
    for load in dag.tasks.iter().filter(|t| t.kind.starts_with("load.")) {
        let upstream = graph.upstream_of(&load.id);
        let ups: Vec<_> = dag
            .tasks
            .iter()
            .filter(|t| t.id != load.id && upstream.contains(&t.id))
            .collect();
        if ups.iter().any(|t| t.kind == "transform.pii") {
            continue;
        }
        let mut cols: BTreeSet<String> = BTreeSet::new();
        for t in &ups {
            cols.extend(columns_named(&t.config));
        }
        let flagged: Vec<String> = cols
            .iter()
            .filter_map(|c| name_hint(c).map(|k| format!("`{c}` ({k})")))
            .chain(
                dag.pii
                    .iter()
                    .filter(|c| cols.contains(*c))
                    .map(|c| format!("`{c}` (declared pii)")),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if flagged.is_empty() {
            continue;
        }
        out.push(
            Diagnostic::warning(
                load.origin.clone(),
                format!(
                    "task `{}` loads {} with no transform.pii task upstream",
                    load.id,
                    flagged.join(", ")
                ),
            )
            .with_hint("add a transform.pii task before the load (`nightjar pii scan FILE` suggests one)"),
        );
    }
    out
}
