//! Declared entities and the plan the split follows: each entity's output
//! columns, and the foreign keys found by matching other entities' keys.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::steps::ConfigProblem;

/// What to do when a key carries several different attribute values in the
/// data (the dependency key -> attributes does not hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    /// Fail the task, reporting the violating keys with examples (default).
    #[default]
    Fail,
    /// Keep the attribute values of the key's first row (input order).
    First,
    /// Keep the attribute values of the key's last row.
    Last,
    /// Keep the values seen on most rows (ties: the earliest seen).
    MostFrequent,
    /// Send every input row of a violating key to the quarantine; those rows
    /// are left out of every entity (so foreign keys stay consistent).
    Quarantine,
}

impl OnViolation {
    pub fn name(self) -> &'static str {
        match self {
            OnViolation::Fail => "fail",
            OnViolation::First => "first",
            OnViolation::Last => "last",
            OnViolation::MostFrequent => "most_frequent",
            OnViolation::Quarantine => "quarantine",
        }
    }
}

/// One entity (output table) of `transform.normalize`.
///
/// ```toml
/// [entity.products]
/// key = ["StockCode"]
/// attributes = ["Description"]
/// on_violation = "most_frequent"
/// surrogate_key = "product_id"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// The columns that identify a row of the entity (its natural key).
    /// Input rows with a NULL in any key column do not make an entity row
    /// (counted as `null_keys`); a NULL foreign key is not an orphan.
    pub key: Vec<String>,
    /// The columns that depend on the key. key -> attributes is checked in
    /// the data; see `on_violation`. An attribute that is the key of another
    /// entity is a foreign key to it (detected, and checked for orphans).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// fail | first | last | most_frequent | quarantine (default fail).
    #[serde(default)]
    pub on_violation: OnViolation,
    /// Adds this column: a 63-bit integer hash of the natural key, the same
    /// on every run and machine (so daily loads and parallel workers agree
    /// without a shared sequence). Entities referencing this one get this
    /// column instead of the natural key columns. Collisions within a run
    /// fail the task.
    pub surrogate_key: Option<String>,
    /// A generated key column (it must be listed in `key`): rows numbered
    /// 1, 2, ... within the other key columns, in input order. For line
    /// entities (`key = ["InvoiceNo", "line_no"]`): every input row is one
    /// entity row, so there is nothing to violate.
    pub line_number: Option<String>,
}

/// A foreign key of one entity to another.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    /// The referencing entity's natural columns (the other entity's key).
    pub columns: Vec<String>,
    /// The referenced entity.
    pub references: String,
    /// The surrogate column that replaces `columns` in the output, when the
    /// referenced entity has a surrogate key.
    pub surrogate: Option<String>,
}

impl ForeignKey {
    /// The columns as they appear in the output (and DDL).
    pub fn output_columns(&self) -> Vec<String> {
        match &self.surrogate {
            Some(s) => vec![s.clone()],
            None => self.columns.clone(),
        }
    }
}

/// One entity, resolved.
#[derive(Debug, Clone)]
pub struct EntityPlan {
    pub name: String,
    pub spec: EntitySpec,
    pub foreign_keys: Vec<ForeignKey>,
}

impl EntityPlan {
    /// Key columns as written in the output (natural key columns that are a
    /// foreign key to an entity with a surrogate are replaced by it).
    pub fn output_key(&self) -> Vec<String> {
        self.substitute(&self.spec.key)
    }

    /// The primary key of the output table: the surrogate when there is one.
    pub fn primary_key(&self) -> Vec<String> {
        match &self.spec.surrogate_key {
            Some(s) => vec![s.clone()],
            None => self.output_key(),
        }
    }

    /// Output columns in order: surrogate, key, attributes.
    pub fn output_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = self.spec.surrogate_key.iter().cloned().collect();
        for c in self.substitute(&self.spec.key) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        for c in self.substitute(&self.spec.attributes) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Replaces natural foreign key columns by surrogate columns.
    fn substitute(&self, cols: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for c in cols {
            let fk = self
                .foreign_keys
                .iter()
                .find(|f| f.surrogate.is_some() && f.columns.contains(c));
            let name = match fk {
                Some(f) => f.surrogate.clone().expect("checked"),
                None => c.clone(),
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Input columns this entity reads (key minus generated line number,
    /// attributes).
    pub fn input_columns(&self) -> Vec<String> {
        self.spec
            .key
            .iter()
            .chain(&self.spec.attributes)
            .filter(|c| Some(*c) != self.spec.line_number.as_ref())
            .cloned()
            .collect()
    }
}

/// The entities of one normalize job, with their foreign keys.
#[derive(Debug, Clone)]
pub struct Plan {
    pub entities: Vec<EntityPlan>,
}

impl Plan {
    /// Resolves foreign keys: entity A references entity B when every
    /// column of B's key is a column of A (key or attribute) and B's key is
    /// not A's own key. Entities keyed by a generated line number are never
    /// referenced (their key is not in the input).
    pub fn new(entities: &BTreeMap<String, EntitySpec>) -> Self {
        let mut out = Vec::new();
        for (name, spec) in entities {
            let own: BTreeSet<&String> = spec.key.iter().chain(&spec.attributes).collect();
            let own_key: BTreeSet<&String> = spec.key.iter().collect();
            let mut fks = Vec::new();
            for (other, ospec) in entities {
                if other == name || ospec.line_number.is_some() {
                    continue;
                }
                let okey: BTreeSet<&String> = ospec.key.iter().collect();
                if okey.is_subset(&own) && okey != own_key {
                    fks.push(ForeignKey {
                        columns: ospec.key.clone(),
                        references: other.clone(),
                        surrogate: ospec.surrogate_key.clone(),
                    });
                }
            }
            out.push(EntityPlan {
                name: name.clone(),
                spec: spec.clone(),
                foreign_keys: fks,
            });
        }
        Plan { entities: out }
    }

    pub fn entity(&self, name: &str) -> Option<&EntityPlan> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Entities in an order where every referenced entity comes before the
    /// entities referencing it (for DDL).
    pub fn dependency_order(&self) -> Vec<&EntityPlan> {
        let mut done: Vec<&EntityPlan> = Vec::new();
        while done.len() < self.entities.len() {
            let before = done.len();
            for e in &self.entities {
                if done.iter().any(|d| d.name == e.name) {
                    continue;
                }
                if e.foreign_keys
                    .iter()
                    .all(|f| done.iter().any(|d| d.name == f.references))
                {
                    done.push(e);
                }
            }
            if done.len() == before {
                // A reference cycle (A.x -> B, B.y -> A): keep the rest in name order.
                for e in &self.entities {
                    if !done.iter().any(|d| d.name == e.name) {
                        done.push(e);
                    }
                }
            }
        }
        done
    }
}

/// Validate-time checks of the entity declarations.
pub fn check_entities(entities: &BTreeMap<String, EntitySpec>) -> Vec<ConfigProblem> {
    let mut p = Vec::new();
    if entities.is_empty() {
        p.push(
            ConfigProblem::new("entity", "no entities declared")
                .hint("add `[entity.NAME]` tables with `key = [...]` and `attributes = [...]`"),
        );
    }
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    for (name, e) in entities {
        let at = |k: &str| format!("entity.{name}.{k}");
        if !ident(name) {
            p.push(
                ConfigProblem::new(
                    format!("entity.{name}"),
                    format!("entity name `{name}` is not a table name"),
                )
                .hint("use letters, digits and `_`, not starting with a digit"),
            );
        }
        if e.key.is_empty() {
            p.push(ConfigProblem::new(at("key"), "the key is empty").hint("list the columns that identify a row"));
        }
        let mut seen = BTreeSet::new();
        for c in e.key.iter().chain(&e.attributes) {
            if !seen.insert(c) {
                p.push(
                    ConfigProblem::new(at("attributes"), format!("column `{c}` is listed twice"))
                        .hint("a column is either part of the key or an attribute"),
                );
            }
        }
        if let Some(s) = &e.surrogate_key
            && (seen.contains(s) || !ident(s))
        {
            p.push(
                ConfigProblem::new(
                    at("surrogate_key"),
                    format!("`{s}` clashes with a column or is not a name"),
                )
                .hint("name a new column, e.g. `product_id`"),
            );
        }
        if let Some(l) = &e.line_number
            && !e.key.contains(l)
        {
            p.push(
                ConfigProblem::new(at("line_number"), format!("`{l}` is not in the key"))
                    .hint(format!("add it: key = [..., \"{l}\"]")),
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &[&str], attrs: &[&str], sk: Option<&str>) -> EntitySpec {
        EntitySpec {
            key: key.iter().map(|s| s.to_string()).collect(),
            attributes: attrs.iter().map(|s| s.to_string()).collect(),
            on_violation: OnViolation::Fail,
            surrogate_key: sk.map(str::to_string),
            line_number: None,
        }
    }

    #[test]
    fn foreign_keys_come_from_other_entities_keys() {
        let mut m = BTreeMap::new();
        m.insert("customers".into(), spec(&["CustomerID"], &["Country"], None));
        m.insert(
            "products".into(),
            spec(&["StockCode"], &["Description"], Some("product_id")),
        );
        m.insert(
            "invoices".into(),
            spec(&["InvoiceNo"], &["InvoiceDate", "CustomerID"], None),
        );
        m.insert("lines".into(), spec(&["InvoiceNo", "StockCode"], &["Quantity"], None));
        let plan = Plan::new(&m);
        let inv = plan.entity("invoices").unwrap();
        assert_eq!(inv.foreign_keys.len(), 1);
        assert_eq!(inv.foreign_keys[0].references, "customers");
        let lines = plan.entity("lines").unwrap();
        let refs: Vec<&str> = lines.foreign_keys.iter().map(|f| f.references.as_str()).collect();
        assert_eq!(refs, ["invoices", "products"]);
        assert_eq!(lines.output_columns(), ["InvoiceNo", "product_id", "Quantity"]);
        assert_eq!(lines.primary_key(), ["InvoiceNo", "product_id"]);
        let order: Vec<&str> = plan.dependency_order().iter().map(|e| e.name.as_str()).collect();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("customers") < pos("invoices") && pos("invoices") < pos("lines") && pos("products") < pos("lines"));
    }

    #[test]
    fn bad_declarations_are_reported() {
        let mut m = BTreeMap::new();
        let mut e = spec(&[], &["a", "a"], Some("a"));
        e.line_number = Some("n".into());
        m.insert("9x".into(), e);
        let paths: Vec<String> = check_entities(&m).into_iter().map(|p| p.path).collect();
        assert_eq!(paths.len(), 5, "{paths:?}");
    }
}
