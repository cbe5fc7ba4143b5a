//! A discovery's result for people: FDs named by column, the proposed 3NF
//! entities, and a ready `transform.normalize` job.

use std::fmt::Write;

use super::synthesis::{Relation, synthesize};
use super::table::Encoded;
use super::{Cols, Fd, members};

/// One proposed entity.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entity {
    pub name: String,
    pub key: Vec<String>,
    pub attributes: Vec<String>,
    /// FDs of this entity that only hold approximately: (text, rows breaking it).
    pub approximate: Vec<(String, u64)>,
}

/// Everything `normalize infer` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proposal {
    pub rows: usize,
    pub columns: Vec<String>,
    /// (lhs columns, rhs column, rows breaking it; 0 = exact).
    pub fds: Vec<(Vec<String>, String, u64)>,
    pub candidate_keys: Vec<Vec<String>>,
    pub entities: Vec<Entity>,
}

fn names(t: &Encoded, set: Cols) -> Vec<String> {
    members(set).map(|c| t.names[c].clone()).collect()
}

fn entity_name(key: &[String], taken: &[Entity]) -> String {
    let mut base: String = key
        .iter()
        .map(|k| {
            k.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_");
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("e_{base}");
    }
    let mut name = base.clone();
    let mut i = 2;
    while taken.iter().any(|e| e.name == name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    name
}

/// Builds the proposal from discovered FDs (exact and approximate alike are
/// used for synthesis; approximate ones are flagged).
pub fn propose(t: &Encoded, fds: &[Fd]) -> Proposal {
    let (_, rels, keys) = synthesize(t.width(), fds);
    let mut entities: Vec<Entity> = Vec::new();
    for Relation { key, columns } in &rels {
        let key_names = names(t, *key);
        let approximate = fds
            .iter()
            .filter(|f| !f.is_exact() && f.lhs & key == f.lhs && columns & (1 << f.rhs) != 0 && f.lhs == *key)
            .map(|f| {
                (
                    format!("{} -> {}", names(t, f.lhs).join(", "), t.names[f.rhs]),
                    f.violating_rows,
                )
            })
            .collect();
        let name = entity_name(&key_names, &entities);
        entities.push(Entity {
            name,
            key: key_names,
            attributes: names(t, columns & !key),
            approximate,
        });
    }
    Proposal {
        rows: t.rows,
        columns: t.names.clone(),
        fds: fds
            .iter()
            .map(|f| (names(t, f.lhs), t.names[f.rhs].clone(), f.violating_rows))
            .collect(),
        candidate_keys: keys.iter().map(|&k| names(t, k)).collect(),
        entities,
    }
}

fn list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", q.join(", "))
}

impl Proposal {
    /// The entities as a `transform.normalize` job file.
    pub fn job(&self) -> String {
        let mut s = String::from(
            "# Proposed by `nightjar normalize infer` (Bernstein 3NF synthesis of the discovered FDs).\n\
             kind = \"transform.normalize\"\n",
        );
        for e in &self.entities {
            let _ = write!(s, "\n[entity.{}]\nkey = {}\n", e.name, list(&e.key));
            if !e.attributes.is_empty() {
                let _ = writeln!(s, "attributes = {}", list(&e.attributes));
            }
            if e.approximate.is_empty() {
                let _ = writeln!(s, "on_violation = \"fail\"");
            } else {
                let _ = writeln!(s, "on_violation = \"most_frequent\"");
                for (fd, rows) in &e.approximate {
                    let _ = writeln!(s, "# approximate: {fd} ({rows} rows break it)");
                }
            }
        }
        s
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{} rows, {} columns\n", self.rows, self.columns.len());
        let _ = writeln!(s, "Minimal functional dependencies ({}):", self.fds.len());
        for (l, r, rows) in &self.fds {
            let lhs = if l.is_empty() { "{}".to_string() } else { l.join(", ") };
            let how = if *rows == 0 {
                "exact".to_string()
            } else {
                format!(
                    "approximate: {rows} rows break it (g3 {:.4}%)",
                    *rows as f64 * 100.0 / self.rows.max(1) as f64
                )
            };
            let _ = writeln!(s, "  {lhs} -> {r}    {how}");
        }
        let _ = writeln!(s, "\nCandidate keys:");
        for k in &self.candidate_keys {
            let _ = writeln!(s, "  {{{}}}", k.join(", "));
        }
        let _ = writeln!(s, "\nProposed 3NF entities:");
        for e in &self.entities {
            let _ = writeln!(
                s,
                "  {} key ({}) attributes ({})",
                e.name,
                e.key.join(", "),
                e.attributes.join(", ")
            );
        }
        let _ = writeln!(s, "\nJob file:\n{}", self.job());
        s
    }
}
