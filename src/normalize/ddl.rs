//! CREATE TABLE statements for a normalize job's entities: primary keys,
//! foreign keys and column types from the entities' Arrow schemas, in the
//! Redshift, PostgreSQL or SQLite dialect.
//!
//! Redshift physical design follows AWS's table design guidance:
//! - the *fact* table is the entity that references others and is
//!   referenced by none (the one with most rows, then most references, when
//!   several are); it and its *largest* dimension share the distribution
//!   key (the foreign key column between them), so their join is local;
//!   without row counts, the largest dimension is the one whose key is part
//!   of the fact's key (invoice_lines -> invoices), else the first;
//! - other dimensions up to [`SMALL_ROWS`] rows (or of unknown size) are
//!   `DISTSTYLE ALL` (a copy on every node: joins never redistribute them);
//!   bigger ones `DISTSTYLE AUTO`;
//! - a table's first date or timestamp column is its sort key (range
//!   filters on dates skip blocks); a fact without one sorts on its
//!   distribution key (merge joins with the dimension), a dimension on its
//!   primary key.
//!
//! Text columns are VARCHAR(n) in Redshift: twice the longest value seen
//! (bytes), rounded up to a power of two, at least 256 and at most 65535
//! (the data seen is often one day: later days hold longer values). PostgreSQL and SQLite use TEXT. Types of SQLite columns
//! match what `load.sqlite` creates, so loads fit the generated tables.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Schema};

use super::model::{EntityPlan, Plan};

/// Dimensions up to this many rows are copied to every Redshift node.
pub const SMALL_ROWS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Redshift,
    Postgres,
    Sqlite,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Redshift => "redshift",
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// What is known of one entity's table.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: Schema,
    /// Rows, when known (from data).
    pub rows: Option<u64>,
    /// Longest text value in bytes, per column, when known.
    pub max_len: BTreeMap<String, usize>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_type(dt: &DataType, dialect: Dialect, max_len: Option<usize>) -> String {
    use DataType::*;
    let s = |x: &str| x.to_string();
    match (dialect, dt) {
        (Dialect::Sqlite, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Boolean) => s("INTEGER"),
        (Dialect::Sqlite, Float16 | Float32 | Float64) => s("REAL"),
        (Dialect::Sqlite, Decimal128(..) | Decimal256(..)) => s("NUMERIC"),
        (Dialect::Sqlite, _) => s("TEXT"),
        (_, Int8 | Int16 | UInt8) => s("SMALLINT"),
        (_, Int32 | UInt16) => s("INTEGER"),
        (_, Int64 | UInt32 | UInt64) => s("BIGINT"),
        (_, Float16 | Float32) => s("REAL"),
        (_, Float64) => s("DOUBLE PRECISION"),
        (_, Boolean) => s("BOOLEAN"),
        (_, Decimal128(p, sc) | Decimal256(p, sc)) => format!("NUMERIC({p},{sc})"),
        (_, Date32 | Date64) => s("DATE"),
        (_, Timestamp(_, Some(_))) => s("TIMESTAMPTZ"),
        (_, Timestamp(_, None)) => s("TIMESTAMP"),
        (Dialect::Redshift, _) => {
            let n = max_len.map_or(256, |n| (n * 2).next_power_of_two().clamp(256, 65535));
            format!("VARCHAR({n})")
        }
        (_, _) => s("TEXT"),
    }
}

/// The Redshift table attributes of each entity: (DISTSTYLE/DISTKEY, SORTKEY).
fn redshift_design(plan: &Plan, tables: &BTreeMap<String, TableInfo>) -> BTreeMap<String, (String, String)> {
    let rows = |e: &EntityPlan| tables.get(&e.name).and_then(|t| t.rows);
    let referenced = |e: &EntityPlan| {
        plan.entities
            .iter()
            .any(|o| o.foreign_keys.iter().any(|f| f.references == e.name))
    };
    let fact = plan
        .entities
        .iter()
        .filter(|e| !e.foreign_keys.is_empty() && !referenced(e))
        .max_by_key(|e| (rows(e).unwrap_or(0), e.foreign_keys.len()));
    let mut shared: Option<(String, String, String)> = None; // (dimension, fact column, dimension column)
    if let Some(f) = fact {
        let largest = f
            .foreign_keys
            .iter()
            .filter(|fk| fk.output_columns().len() == 1)
            .max_by_key(|fk| {
                let dim = plan.entity(&fk.references).expect("exists");
                let in_key = fk.columns.iter().all(|c| f.spec.key.contains(c));
                (rows(dim).unwrap_or(0), in_key)
            });
        if let Some(fk) = largest {
            let dim = plan.entity(&fk.references).expect("exists");
            shared = Some((
                dim.name.clone(),
                fk.output_columns()[0].clone(),
                dim.primary_key()[0].clone(),
            ));
        }
    }
    let date_col = |e: &EntityPlan| {
        tables.get(&e.name).and_then(|t| {
            t.schema
                .fields()
                .iter()
                .find(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
                    )
                })
                .map(|f| f.name().clone())
        })
    };
    let mut out = BTreeMap::new();
    for e in &plan.entities {
        let is_fact = fact.is_some_and(|f| f.name == e.name);
        let dist = match &shared {
            Some((_, fcol, _)) if is_fact => format!("DISTKEY({})", quote(fcol)),
            Some((dim, _, dcol)) if *dim == e.name => format!("DISTKEY({})", quote(dcol)),
            _ if rows(e).is_none_or(|n| n <= SMALL_ROWS) => "DISTSTYLE ALL".into(),
            _ => "DISTSTYLE AUTO".into(),
        };
        let sort = match date_col(e) {
            Some(d) => d,
            None => match &shared {
                Some((_, fcol, _)) if is_fact => fcol.clone(),
                _ => e.primary_key()[0].clone(),
            },
        };
        out.insert(e.name.clone(), (dist, format!("SORTKEY({})", quote(&sort))));
    }
    out
}

/// The DDL of every entity, referenced tables first.
pub fn generate(plan: &Plan, tables: &BTreeMap<String, TableInfo>, dialect: Dialect) -> anyhow::Result<String> {
    let design = (dialect == Dialect::Redshift).then(|| redshift_design(plan, tables));
    let mut out = format!(
        "-- Generated by `nightjar normalize ddl --dialect {}`: one table per entity,\n\
         -- referenced tables first. Re-generate rather than edit.\n",
        dialect.name()
    );
    for e in plan.dependency_order() {
        let t = tables
            .get(&e.name)
            .ok_or_else(|| anyhow::anyhow!("no schema for entity `{}`", e.name))?;
        let pk = e.primary_key();
        let mut lines = Vec::new();
        for f in t.schema.fields() {
            let ty = sql_type(f.data_type(), dialect, t.max_len.get(f.name()).copied());
            let not_null = if pk.contains(f.name()) || !f.is_nullable() {
                " NOT NULL"
            } else {
                ""
            };
            lines.push(format!("    {} {ty}{not_null}", quote(f.name())));
        }
        let cols = |c: &[String]| c.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        lines.push(format!("    PRIMARY KEY ({})", cols(&pk)));
        if e.spec.surrogate_key.is_some() {
            lines.push(format!("    UNIQUE ({})", cols(&e.output_key())));
        }
        for fk in &e.foreign_keys {
            let target = plan.entity(&fk.references).expect("exists");
            let target_cols = match &fk.surrogate {
                Some(_) => target.primary_key(),
                None => fk.columns.clone(),
            };
            lines.push(format!(
                "    FOREIGN KEY ({}) REFERENCES {} ({})",
                cols(&fk.output_columns()),
                quote(&fk.references),
                cols(&target_cols)
            ));
        }
        out.push_str(&format!(
            "\nCREATE TABLE IF NOT EXISTS {} (\n{}\n)",
            quote(&e.name),
            lines.join(",\n")
        ));
        if let Some((dist, sort)) = design.as_ref().and_then(|d| d.get(&e.name)) {
            out.push_str(&format!("\n{dist}\n{sort}"));
        }
        out.push_str(";\n");
    }
    Ok(out)
}

/// Table facts from an entity's output batches.
pub fn table_info(batches: &[arrow::record_batch::RecordBatch], schema: &Schema) -> TableInfo {
    use arrow::array::AsArray;
    let mut max_len = BTreeMap::new();
    for b in batches {
        for (f, c) in b.schema_ref().fields().iter().zip(b.columns()) {
            if let Some(s) = c.as_string_opt::<i32>() {
                let m = s.iter().flatten().map(str::len).max().unwrap_or(0);
                let e = max_len.entry(f.name().clone()).or_insert(0);
                *e = m.max(*e);
            }
        }
    }
    TableInfo {
        schema: schema.clone(),
        rows: Some(batches.iter().map(|b| b.num_rows() as u64).sum()),
        max_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::model::{EntitySpec, OnViolation};
    use arrow::datatypes::Field;

    fn spec(key: &[&str], attrs: &[&str], sk: Option<&str>, line: Option<&str>) -> EntitySpec {
        EntitySpec {
            key: key.iter().map(|s| s.to_string()).collect(),
            attributes: attrs.iter().map(|s| s.to_string()).collect(),
            on_violation: OnViolation::First,
            surrogate_key: sk.map(str::to_string),
            line_number: line.map(str::to_string),
        }
    }

    fn info(fields: &[(&str, DataType)], rows: Option<u64>) -> TableInfo {
        TableInfo {
            schema: Schema::new(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(*n, t.clone(), true))
                    .collect::<Vec<_>>(),
            ),
            rows,
            max_len: BTreeMap::new(),
        }
    }

    #[test]
    fn redshift_follows_the_distribution_guidance() {
        let mut m = BTreeMap::new();
        m.insert("customers".into(), spec(&["CustomerID"], &["Country"], None, None));
        m.insert(
            "products".into(),
            spec(&["StockCode"], &["Description"], Some("product_id"), None),
        );
        m.insert(
            "invoices".into(),
            spec(&["InvoiceNo"], &["InvoiceDate", "CustomerID"], None, None),
        );
        m.insert(
            "lines".into(),
            spec(
                &["InvoiceNo", "line_no"],
                &["StockCode", "Quantity"],
                None,
                Some("line_no"),
            ),
        );
        let plan = Plan::new(&m);
        let mut t = BTreeMap::new();
        let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
        t.insert(
            "customers".into(),
            info(
                &[("CustomerID", DataType::Int64), ("Country", DataType::Utf8)],
                Some(4000),
            ),
        );
        t.insert(
            "products".into(),
            info(
                &[
                    ("product_id", DataType::Int64),
                    ("StockCode", DataType::Utf8),
                    ("Description", DataType::Utf8),
                ],
                Some(4000),
            ),
        );
        t.insert(
            "invoices".into(),
            info(
                &[
                    ("InvoiceNo", DataType::Utf8),
                    ("InvoiceDate", ts),
                    ("CustomerID", DataType::Int64),
                ],
                Some(25000),
            ),
        );
        t.insert(
            "lines".into(),
            info(
                &[
                    ("InvoiceNo", DataType::Utf8),
                    ("line_no", DataType::Int64),
                    ("product_id", DataType::Int64),
                    ("Quantity", DataType::Decimal128(10, 3)),
                ],
                Some(500_000),
            ),
        );
        let d = redshift_design(&plan, &t);
        assert_eq!(d["lines"].0, "DISTKEY(\"InvoiceNo\")");
        assert_eq!(
            d["invoices"],
            ("DISTKEY(\"InvoiceNo\")".into(), "SORTKEY(\"InvoiceDate\")".into())
        );
        assert_eq!(d["products"].0, "DISTSTYLE ALL");
        assert_eq!(d["customers"].0, "DISTSTYLE ALL");
        assert_eq!(d["lines"].1, "SORTKEY(\"InvoiceNo\")");
        let sql = generate(&plan, &t, Dialect::Redshift).unwrap();
        assert!(
            sql.contains("FOREIGN KEY (\"product_id\") REFERENCES \"products\" (\"product_id\")"),
            "{sql}"
        );
        assert!(sql.contains("\"Quantity\" NUMERIC(10,3)"), "{sql}");
        assert!(sql.contains("UNIQUE (\"StockCode\")"), "{sql}");
        assert!(sql.find("\"customers\" (").unwrap() < sql.find("\"invoices\" (").unwrap());
        let lite = generate(&plan, &t, Dialect::Sqlite).unwrap();
        assert!(
            lite.contains("\"InvoiceDate\" TEXT") && !lite.contains("DISTKEY"),
            "{lite}"
        );
    }

    #[test]
    fn text_lengths_round_up() {
        assert_eq!(sql_type(&DataType::Utf8, Dialect::Redshift, Some(200)), "VARCHAR(512)");
        assert_eq!(sql_type(&DataType::Utf8, Dialect::Redshift, Some(3)), "VARCHAR(256)");
        assert_eq!(
            sql_type(&DataType::Utf8, Dialect::Redshift, Some(70000)),
            "VARCHAR(65535)"
        );
        assert_eq!(sql_type(&DataType::Utf8, Dialect::Postgres, Some(3)), "TEXT");
    }
}
