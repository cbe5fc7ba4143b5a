//! Reports of a split for the task metrics (`nightjar show --json`) and the
//! lines `nightjar show` prints under the task table.

use std::collections::BTreeMap;

use super::split::Split;
use crate::steps::Metrics;

/// Adds a split's figures to `metrics.extra`: per entity rows, folded
/// duplicates and NULL keys; violations with examples; foreign keys with
/// orphans.
pub fn add_to_metrics(split: &Split, metrics: &mut Metrics) {
    let mut entities = serde_json::Map::new();
    for e in &split.entities {
        entities.insert(
            e.name.clone(),
            serde_json::json!({
                "rows": e.batch.num_rows(),
                "duplicates_folded": e.folded,
                "null_keys": e.null_keys,
            }),
        );
    }
    metrics.extra.insert("entities".into(), entities.into());
    if !split.violations.is_empty() {
        let v: BTreeMap<&str, _> = split.violations.iter().map(|v| (v.entity.as_str(), v)).collect();
        metrics
            .extra
            .insert("violations".into(), serde_json::to_value(v).expect("serializable"));
    }
    if !split.foreign_keys.is_empty() {
        metrics.extra.insert(
            "foreign_keys".into(),
            serde_json::to_value(&split.foreign_keys).expect("serializable"),
        );
    }
}

/// Lines describing the violations and orphans recorded in a task's
/// metrics (empty when there are none), for `nightjar show`.
pub fn show_lines(task: &str, metrics: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(serde_json::Value::Object(v)) = metrics.extra.get("violations") {
        for (entity, v) in v {
            out.push(format!(
                "{task}: entity `{entity}`: {} keys break key -> attributes ({} rows; on_violation = {}, {} rows overridden)",
                v["keys"], v["rows"], v["policy"].as_str().unwrap_or("?"), v["rows_overridden"]
            ));
            for ex in v["examples"].as_array().into_iter().flatten() {
                let values: Vec<String> = ex["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| format!("{} x{}", x["values"], x["rows"]))
                    .collect();
                out.push(format!("    {} -> {}", ex["key"], values.join(" | ")));
            }
        }
    }
    if let Some(serde_json::Value::Array(fks)) = metrics.extra.get("foreign_keys") {
        for fk in fks.iter().filter(|f| f["orphans"].as_u64().unwrap_or(0) > 0) {
            out.push(format!(
                "{task}: {}({}) -> {}: {} orphans, e.g. {}",
                fk["entity"].as_str().unwrap_or("?"),
                fk["columns"],
                fk["references"].as_str().unwrap_or("?"),
                fk["orphans"],
                fk["examples"]
            ));
        }
    }
    out
}
