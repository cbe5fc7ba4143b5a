//! `transform.explode`: first normal form. A cell holding several values
//! (a café basket `"Large,Hot chocolate,2.9,Large,Chai latte,2.6"`) becomes
//! one row per item (`size, product, price`), numbered within its row.
//!
//! A step of its own rather than an option of `transform.normalize`: it
//! maps rows to rows (streaming, batch by batch), while normalize folds a
//! whole dataset; and a flat input often needs 1NF before anything else
//! (cleaning the exploded prices, say), so it sits anywhere in a DAG.
//!
//! Row accounting (one row becomes several, so the harness's `conserves_rows`
//! is off): every input row is exactly one of `rows_exploded` (gave one
//! output row per item), `empty_kept` (null/empty cell, one output row with
//! NULL fields), `rows_filtered` (null/empty cell with `empty = "drop"`) or
//! `rows_quarantined` (item count not a multiple of `fields`, or an item
//! that does not convert). `rows_out` = items written + `empty_kept`.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use serde::Deserialize;

use crate::data::artifact::{DatasetWriter, open};
use crate::data::ops::cast::cast_columns;
use crate::data::ops::row_values;
use crate::data::quarantine::BadRowLimit;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::data::types::ColumnSpec;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<ExplodeConfig>(
    "transform.explode",
    "splits multi-valued cells into one row per item (first normal form)",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "transform.explode"
column = "basket"
fields = ["size", "product", "price"]
cast = { price = "decimal(6,2)" }
line_number = "line_no"
empty = "keep"
"#;

/// What a null or empty cell becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Empty {
    /// One row with NULL fields and NULL line number (default): the parent
    /// row stays visible (an order with an empty basket is still an order).
    #[default]
    Keep,
    /// No row; counted as filtered.
    Drop,
}

/// Splits a multi-valued text column into rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplodeConfig {
    /// The text column holding several values.
    pub column: String,
    /// What separates the values (default ",").
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Each item is this many consecutive values, named so:
    /// `["size", "product", "price"]` reads `Large,Latte,2.6` as one item.
    /// Default: one value per item, in a column named after `column`.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Trim spaces around each value (default true). An empty value is
    /// NULL (e.g. a drink without a size).
    #[serde(default = "yes")]
    pub trim: bool,
    /// Types of the fields (as extract's `[columns]`); a value that does
    /// not convert quarantines its whole input row.
    #[serde(default)]
    pub cast: BTreeMap<String, ColumnSpec>,
    /// The column numbering items 1, 2, ... within their input row
    /// (default "line_no").
    #[serde(default = "default_line")]
    pub line_number: String,
    /// A null or empty cell: "keep" (one row of NULLs, default) or "drop".
    #[serde(default)]
    pub empty: Empty,
    /// Quarantined rows allowed (a count or a share such as "1%"). Default 0.
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
}

fn default_separator() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}
fn default_line() -> String {
    "line_no".into()
}

impl ExplodeConfig {
    fn field_names(&self) -> Vec<String> {
        if self.fields.is_empty() {
            vec![self.column.clone()]
        } else {
            self.fields.clone()
        }
    }
}

impl StepConfig for ExplodeConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.separator.is_empty() {
            p.push(ConfigProblem::new("separator", "the separator is empty").hint("e.g. separator = \",\""));
        }
        let names = self.field_names();
        for c in self.cast.keys() {
            if !names.contains(c) {
                p.push(
                    ConfigProblem::new(format!("cast.{c}"), format!("`{c}` is not one of the fields"))
                        .hint(format!("fields: {}", names.join(", "))),
                );
            }
        }
        if names.contains(&self.line_number) {
            p.push(ConfigProblem::new(
                "line_number",
                "the line number column has a field's name",
            ));
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Explode { cfg: Arc::new(self) }))
    }
}

struct Explode {
    cfg: Arc<ExplodeConfig>,
}

#[derive(Default)]
struct Counts {
    exploded: u64,
    empty_kept: u64,
    dropped: u64,
}

impl Explode {
    /// Explodes one batch: (output, bad rows as (row, reason)).
    fn batch(&self, b: &RecordBatch, counts: &mut Counts) -> Result<(RecordBatch, Vec<(usize, String)>)> {
        let cfg = &self.cfg;
        let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        let col = b.column_by_name(&cfg.column).with_context(|| {
            format!(
                "no column `{}` to explode ({})",
                cfg.column,
                crate::spec::diagnostic::unknown_name_hint(&cfg.column, &names)
            )
        })?;
        let text = arrow::compute::cast(col, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let fields = cfg.field_names();
        let width = fields.len();
        let mut parent: Vec<u32> = Vec::new();
        let mut line: Vec<Option<i64>> = Vec::new();
        let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
        let mut bad: Vec<(usize, String)> = Vec::new();
        for row in 0..b.num_rows() {
            let cell = text
                .is_valid(row)
                .then(|| text.value(row))
                .filter(|s| !s.trim().is_empty());
            let Some(cell) = cell else {
                match cfg.empty {
                    Empty::Keep => {
                        counts.empty_kept += 1;
                        parent.push(row as u32);
                        line.push(None);
                        values.iter_mut().for_each(|v| v.push(None));
                    }
                    Empty::Drop => counts.dropped += 1,
                }
                continue;
            };
            let items: Vec<&str> = cell.split(cfg.separator.as_str()).collect();
            if !items.len().is_multiple_of(width) {
                bad.push((
                    row,
                    format!(
                        "`{}` has {} values, not a multiple of {width} ({})",
                        cfg.column,
                        items.len(),
                        fields.join(", ")
                    ),
                ));
                continue;
            }
            counts.exploded += 1;
            for (n, item) in items.chunks(width).enumerate() {
                parent.push(row as u32);
                line.push(Some(n as i64 + 1));
                for (i, v) in item.iter().enumerate() {
                    let v = if cfg.trim { v.trim() } else { v };
                    values[i].push((!v.is_empty()).then(|| v.to_string()));
                }
            }
        }
        let idx = UInt32Array::from(parent.clone());
        let mut out_fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (f, c) in b.schema_ref().fields().iter().zip(b.columns()) {
            if f.name() != &cfg.column {
                out_fields.push(f.as_ref().clone());
                cols.push(take(c.as_ref(), &idx, None)?);
            }
        }
        out_fields.push(Field::new(&cfg.line_number, DataType::Int64, true));
        cols.push(Arc::new(Int64Array::from(line)));
        for (name, v) in fields.iter().zip(values) {
            out_fields.push(Field::new(name, DataType::Utf8, true));
            cols.push(Arc::new(StringArray::from(v)));
        }
        let exploded = RecordBatch::try_new(Arc::new(Schema::new(out_fields)), cols)?;
        let casts: Vec<(String, ColumnSpec)> = cfg.cast.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if casts.is_empty() {
            return Ok((exploded, bad));
        }
        // Casting drops failing item rows; their whole input row goes to the
        // quarantine instead, so no basket is half loaded.
        let (_, failures) = cast_columns(&exploded, &casts)?;
        let mut failed_parent = vec![false; b.num_rows()];
        for f in &failures {
            let p = parent[f.row] as usize;
            if !failed_parent[p] {
                failed_parent[p] = true;
                counts.exploded -= 1;
                bad.push((p, format!("item {}: {}: {}", f.row, f.column, f.reason)));
            }
        }
        let keep: BooleanArray = parent.iter().map(|&p| Some(!failed_parent[p as usize])).collect();
        let kept = arrow::compute::filter_record_batch(&exploded, &keep)?;
        let (cast, rest) = cast_columns(&kept, &casts)?;
        debug_assert!(rest.is_empty());
        Ok((cast, bad))
    }

    fn run_blocking(&self, cx: &StepContext) -> Result<StepOutput> {
        let input = cx.single_input()?.clone();
        let source = format!("{}.{}", input.task, input.name);
        let mut quarantine = cx.quarantine();
        let mut writer: Option<DatasetWriter> = None;
        let mut counts = Counts::default();
        let (mut rows_in, mut first) = (0u64, 0u64);
        let mut schema = None;
        for b in open(&input, DEFAULT_BATCH_ROWS)? {
            cx.check_cancelled()?;
            let b = b?;
            rows_in += b.num_rows() as u64;
            let (out, bad) = self.batch(&b, &mut counts)?;
            for (row, reason) in bad {
                let values = row_values(&b, row);
                quarantine.add(
                    &source,
                    first + row as u64 + 1,
                    Some(&self.cfg.column),
                    &reason,
                    values.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                )?;
            }
            if writer.is_none() {
                writer = Some(DatasetWriter::create(
                    &cx.artifact_dir(),
                    &cx.task,
                    "default",
                    out.schema(),
                )?);
            }
            writer.as_mut().expect("created").write(&out)?;
            schema = Some(out.schema());
            first += b.num_rows() as u64;
        }
        let writer = match writer {
            Some(w) => w,
            None => DatasetWriter::create(
                &cx.artifact_dir(),
                &cx.task,
                "default",
                schema.unwrap_or_else(|| Arc::new(Schema::empty())),
            )?,
        };
        let dataset = writer.finish()?;
        let bad = quarantine.count();
        let qpath = quarantine.path().to_path_buf();
        quarantine.finish()?;
        let mut metrics = Metrics {
            rows_in,
            rows_out: dataset.rows.unwrap_or(0),
            rows_quarantined: bad,
            rows_filtered: counts.dropped,
            ..Default::default()
        };
        metrics.extra.insert("rows_exploded".into(), counts.exploded.into());
        metrics.extra.insert("empty_kept".into(), counts.empty_kept.into());
        cx.log.note(&format!(
            "{rows_in} rows in: {} exploded into {} rows, {} empty kept, {} empty dropped, {bad} quarantined",
            counts.exploded, metrics.rows_out, counts.empty_kept, counts.dropped
        ));
        self.cfg
            .max_bad_rows
            .check(bad, rows_in, &qpath)
            .map_err(anyhow::Error::msg)?;
        Ok(StepOutput {
            datasets: vec![dataset],
            metrics,
        })
    }
}

#[async_trait]
impl Step for Explode {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let me = Explode { cfg: self.cfg.clone() };
        cx.blocking(move |cx| me.run_blocking(&cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::Harness;

    fn baskets() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order", DataType::Int64, true),
            Field::new("basket", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
                Arc::new(StringArray::from(vec![
                    Some("Large,Hot chocolate,2.9,Large,Chai latte,2.6"),
                    Some(",Espresso,1.8"),
                    None,
                    Some(""),
                    Some("Large,Tea"),
                    Some("Small,Tea,cheap"),
                ])),
            ],
        )
        .unwrap()
    }

    const CFG: &str = "column = \"basket\"\nfields = [\"size\", \"product\", \"price\"]\ncast = { price = \"decimal(6,2)\" }\nmax_bad_rows = 2\n";

    #[tokio::test]
    async fn baskets_become_item_rows_and_every_row_is_accounted_for() {
        let mut h = Harness::new("explode");
        h.conserves_rows = false;
        h.input("orders", &[baskets()]);
        let o = h.run(&KIND, CFG).await.unwrap();
        let m = &o.output.metrics;
        let exploded = m.extra["rows_exploded"].as_u64().unwrap();
        let kept = m.extra["empty_kept"].as_u64().unwrap();
        assert_eq!((exploded, kept, m.rows_quarantined, m.rows_filtered), (2, 2, 2, 0));
        assert_eq!(m.rows_in, exploded + kept + m.rows_quarantined + m.rows_filtered);
        assert_eq!(m.rows_out, 5);
        let b = &o.datasets["default"][0];
        let s = |c: &str| -> Vec<Option<String>> {
            let a = arrow::compute::cast(b.column_by_name(c).unwrap(), &DataType::Utf8).unwrap();
            a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
        };
        assert_eq!(
            s("order"),
            [Some("1"), Some("1"), Some("2"), Some("3"), Some("4")].map(|v| v.map(String::from))
        );
        assert_eq!(
            s("line_no"),
            [Some("1"), Some("2"), Some("1"), None, None].map(|v| v.map(String::from))
        );
        assert_eq!(s("size")[2], None, "an empty size is NULL");
        assert_eq!(s("product")[1].as_deref(), Some("Chai latte"));
        assert_eq!(
            b.column_by_name("price").unwrap().data_type(),
            &DataType::Decimal128(6, 2)
        );
        assert_eq!(s("price")[0].as_deref(), Some("2.90"));
        let reasons: Vec<&str> = o.quarantine.iter().map(|q| q["reason"].as_str().unwrap()).collect();
        assert!(reasons[0].contains("2 values, not a multiple of 3"), "{reasons:?}");
        assert!(reasons[1].contains("price"), "{reasons:?}");
        assert_eq!(o.quarantine[1]["line"], 6);
    }

    #[tokio::test]
    async fn empty_baskets_can_be_dropped_and_single_values_need_no_fields() {
        let mut h = Harness::new("explode");
        h.conserves_rows = false;
        h.input("orders", &[baskets()]);
        let o = h
            .run(&KIND, "column = \"basket\"\nempty = \"drop\"\nseparator = \",\"\n")
            .await
            .unwrap();
        let m = &o.output.metrics;
        assert_eq!(m.rows_filtered, 2);
        assert_eq!(m.rows_out, 6 + 3 + 2 + 3);
        assert!(o.datasets["default"][0].column_by_name("basket").is_some());
        let err = h.run(&KIND, "column = \"baskt\"").await.err().unwrap().to_string();
        assert!(err.contains("did you mean `basket`"), "{err}");
    }
}
