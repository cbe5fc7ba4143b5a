//! `transform.normalize`: one flat dataset into one deduplicated dataset
//! per declared entity (3NF tables with keys), checking the dependencies
//! the split relies on.
//!
//! Row accounting (the step folds rows, so `rows_in = rows_out + ...` does
//! not hold): `rows_in` is the input rows; `rows_quarantined` the input rows
//! of keys that broke key -> attributes under `on_violation = "quarantine"`;
//! `rows_out` the rows written over all entities; `rows_filtered` is 0.
//! For every entity, `rows_in - rows_quarantined` equals its `rows` plus
//! `duplicates_folded` plus `null_keys` (in `metrics.extra.entities`): each
//! remaining input row is either that entity's row, folded into it, or has
//! no key.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use serde::Deserialize;

use crate::data::artifact::DatasetWriter;
use crate::data::ops::dedupe::value_hashes;
use crate::data::ops::row_values;
use crate::data::quarantine::BadRowLimit;
use crate::normalize::mask::PiiColumns;
use crate::normalize::model::{EntitySpec, Plan, check_entities};
use crate::normalize::report::add_to_metrics;
use crate::normalize::split::{ColumnHashes, SplitOptions, split_with};
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<NormalizeConfig>(
    "transform.normalize",
    "splits one flat dataset into 3NF entities with keys, checking key -> attributes",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "transform.normalize"

[entity.customers]
key = ["CustomerID"]
attributes = ["Country"]
on_violation = "most_frequent"

[entity.products]
key = ["StockCode"]
attributes = ["Description"]
on_violation = "most_frequent"
surrogate_key = "product_id"

[entity.invoices]
key = ["InvoiceNo"]
attributes = ["InvoiceDate", "CustomerID"]   # CustomerID: a foreign key to customers
on_violation = "first"

[entity.invoice_lines]
key = ["InvoiceNo", "line_no"]
line_number = "line_no"
attributes = ["StockCode", "Quantity", "UnitPrice"]
"#;

/// Splits one flat dataset into entities: one output per entity, named
/// after it, holding one row per distinct key.
///
/// Foreign keys are found, not declared: an entity whose columns include
/// another entity's whole key references it, and every reference is
/// checked (orphans counted in the metrics). key -> attributes is checked
/// in the data; keys that break it are counted and shown with examples in
/// the metrics and `nightjar show` (values of PII columns masked).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// The entities, by output name: `[entity.NAME]` with `key`,
    /// `attributes`, and optionally `on_violation`, `surrogate_key`,
    /// `line_number`.
    pub entity: BTreeMap<String, EntitySpec>,
    /// Seeds every surrogate key (default none). Changing it changes every
    /// key; it may come from the environment: `"{{ env.KEY_SALT }}"`.
    #[serde(default)]
    pub surrogate_salt: String,
    /// Columns whose values are masked in reports and the quarantine, on
    /// top of those whose names suggest personal data (name, email, phone,
    /// address, customer, ...).
    #[serde(default)]
    pub pii: Vec<String>,
    /// Violating keys shown as examples per entity (default 5).
    #[serde(default = "default_examples")]
    pub examples: usize,
    /// Quarantined rows allowed (a count or a share such as "1%"); past it
    /// the task fails. Default 0.
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
}

fn default_examples() -> usize {
    5
}

impl StepConfig for NormalizeConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        check_entities(&self.entity)
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Normalize { cfg: Arc::new(self) }))
    }
}

struct Normalize {
    cfg: Arc<NormalizeConfig>,
}

impl Normalize {
    fn run_blocking(&self, cx: &StepContext) -> Result<StepOutput> {
        let input = cx.single_input()?.clone();
        // The split needs the whole input at once: read as one batch, its
        // columns decoded side by side, and the columns the split tells
        // rows apart by hashed by their readers.
        let plan = Plan::new(&self.cfg.entity);
        let needed = ColumnHashes::needed(&plan);
        let (flat, hashed) = crate::data::artifact::read_whole_with(&input, |field, col| {
            Ok(match needed.contains(field.name()) {
                true => Some((field.name().clone(), value_hashes(col.as_ref())?)),
                false => None,
            })
        })?;
        cx.check_cancelled()?;
        let hashes = ColumnHashes::from_columns(hashed.into_iter().flatten());
        let schema = flat.schema();
        let pii = PiiColumns::new(self.cfg.pii.iter().cloned());
        let opts = SplitOptions {
            surrogate_salt: self.cfg.surrogate_salt.clone(),
            examples: self.cfg.examples,
            pii: pii.clone(),
        };
        let dir = cx.artifact_dir();
        // Each table is written as soon as it is built, on its builder's
        // thread (Parquet encoding and zstd dominate what is left).
        let (result, datasets) = split_with(&plan, &flat, Some(hashes), &opts, |name, batch| {
            write(&dir, &cx.task, name, batch)
        })?;

        let mut quarantine = cx
            .quarantine()
            .redacting(pii.among(schema.fields().iter().map(|f| f.name().as_str())));
        let source = format!("{}.{}", input.task, input.name);
        for (row, reason) in &result.quarantine {
            let values = row_values(&flat, *row);
            quarantine.add(
                &source,
                *row as u64 + 1,
                None,
                reason,
                values.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
            )?;
        }
        let bad = quarantine.count();
        let qpath = quarantine.path().to_path_buf();
        quarantine.finish()?;
        let mut metrics = Metrics {
            rows_in: flat.num_rows() as u64,
            rows_out: datasets.iter().map(|d| d.rows.unwrap_or(0)).sum(),
            rows_quarantined: bad,
            rows_filtered: 0,
            ..Default::default()
        };
        add_to_metrics(&result, &mut metrics);
        let sizes: Vec<String> = result
            .entities
            .iter()
            .map(|e| format!("{} {}", e.name, e.batch.num_rows()))
            .collect();
        cx.log.note(&format!(
            "{} rows in, {bad} quarantined: {}",
            metrics.rows_in,
            sizes.join(", ")
        ));
        for line in crate::normalize::report::show_lines(&cx.task, &metrics) {
            cx.log.note(&line);
        }
        self.cfg
            .max_bad_rows
            .check(bad, metrics.rows_in, &qpath)
            .map_err(anyhow::Error::msg)?;
        Ok(StepOutput { datasets, metrics })
    }
}

fn write(dir: &std::path::Path, task: &str, name: &str, b: &RecordBatch) -> Result<crate::data::DatasetRef> {
    let mut w = DatasetWriter::create_parallel(dir, task, name, b.schema())?;
    w.write(b)?;
    w.finish()
}

#[async_trait]
impl Step for Normalize {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let me = Normalize { cfg: self.cfg.clone() };
        cx.blocking(move |cx| me.run_blocking(&cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::{Harness, Outcome};
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    type Row<'a> = (&'a str, Option<i64>, &'a str, &'a str, &'a str, &'a str, i64);

    /// A flat order export: (invoice, customer, email, country, stock, description, qty).
    fn flat(rows: &[Row<'_>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("InvoiceNo", DataType::Utf8, true),
            Field::new("CustomerID", DataType::Int64, true),
            Field::new("Email", DataType::Utf8, true),
            Field::new("Country", DataType::Utf8, true),
            Field::new("StockCode", DataType::Utf8, true),
            Field::new("Description", DataType::Utf8, true),
            Field::new("Quantity", DataType::Int64, true),
        ]));
        let s = |f: for<'r> fn(&'r Row<'r>) -> &'r str| {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as _
        };
        RecordBatch::try_new(
            schema,
            vec![
                s(|r| r.0),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                s(|r| r.2),
                s(|r| r.3),
                s(|r| r.4),
                s(|r| r.5),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.6).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    fn orders() -> RecordBatch {
        flat(&[
            ("1", Some(10), "a@x.org", "UK", "A", "mug", 2),
            ("1", Some(10), "a@x.org", "UK", "B", "pen", 1),
            ("2", Some(11), "b@x.org", "France", "A", "mug", 5),
            ("3", None, "", "EIRE", "C", "cup", 1),
            ("3", None, "", "EIRE", "A", "MUG", 1),
            ("4", Some(10), "a@x.org", "UK", "A", "mug", 3),
        ])
    }

    const RETAIL: &str = r#"
max_bad_rows = 4
[entity.customers]
key = ["CustomerID"]
attributes = ["Country"]
[entity.products]
key = ["StockCode"]
attributes = ["Description"]
on_violation = "POLICY"
surrogate_key = "product_id"
[entity.invoices]
key = ["InvoiceNo"]
attributes = ["CustomerID"]
[entity.lines]
key = ["InvoiceNo", "line_no"]
line_number = "line_no"
attributes = ["StockCode", "Quantity"]
"#;

    async fn run(policy: &str, pii: &[&str]) -> anyhow::Result<Outcome> {
        let mut h = Harness::new("normalize");
        h.conserves_rows = false;
        h.pii_values = pii.iter().map(|s| s.to_string()).collect();
        h.input("clean", &[orders()]);
        h.run(&KIND, &RETAIL.replace("POLICY", policy)).await
    }

    fn strings(o: &Outcome, ds: &str, col: &str) -> Vec<Option<String>> {
        let b = arrow::compute::concat_batches(&o.datasets[ds][0].schema(), &o.datasets[ds]).unwrap();
        let c = arrow::compute::cast(b.column_by_name(col).unwrap(), &DataType::Utf8).unwrap();
        c.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    /// rows_in - quarantined = rows + folded + null keys, for every entity.
    fn assert_accounting(o: &Outcome) {
        let m = &o.output.metrics;
        let used = m.rows_in - m.rows_quarantined;
        let mut total = 0;
        for (name, e) in m.extra["entities"].as_object().unwrap() {
            let rows = e["rows"].as_u64().unwrap();
            assert_eq!(rows, o.rows(name) as u64);
            let sum = rows + e["duplicates_folded"].as_u64().unwrap() + e["null_keys"].as_u64().unwrap();
            assert_eq!(sum, used, "entity {name}: {e}");
            total += rows;
        }
        assert_eq!(total, m.rows_out);
    }

    #[tokio::test]
    async fn splits_into_entities_with_keys_and_checked_references() {
        let o = run("first", &[]).await.unwrap();
        assert_accounting(&o);
        // Customer 10 appears 3 times, the guest rows have no customer.
        assert_eq!(
            strings(&o, "customers", "CustomerID"),
            [Some("10".into()), Some("11".into())]
        );
        assert_eq!(o.output.metrics.extra["entities"]["customers"]["null_keys"], 2);
        assert_eq!(strings(&o, "invoices", "InvoiceNo").len(), 4);
        assert_eq!(strings(&o, "invoices", "CustomerID")[2], None);
        // "A" is "mug" on 3 rows and "MUG" on one: first keeps "mug".
        assert_eq!(
            strings(&o, "products", "Description"),
            [Some("mug".into()), Some("pen".into()), Some("cup".into())]
        );
        let lines = &o.datasets["lines"][0];
        let names: Vec<String> = lines.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["InvoiceNo", "line_no", "product_id", "Quantity"]);
        let n: Vec<i64> = lines.column(1).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(n, [1, 2, 1, 1, 2, 1]);
        // The lines' product_id is the products' surrogate of the same StockCode.
        let pid = strings(&o, "products", "product_id");
        let lpid = strings(&o, "lines", "product_id");
        assert_eq!(lpid[0], pid[0]);
        assert_eq!(lpid[1], pid[1]);
        assert_eq!(lpid[3], pid[2]);
        let fks = o.output.metrics.extra["foreign_keys"].as_array().unwrap();
        let refs: Vec<String> = fks
            .iter()
            .map(|f| format!("{}->{}:{}", f["entity"], f["references"], f["orphans"]))
            .collect();
        assert_eq!(refs.len(), 3, "{refs:?}");
        assert!(fks.iter().all(|f| f["orphans"] == 0));
        let v = &o.output.metrics.extra["violations"]["products"];
        assert_eq!(
            (v["keys"].as_u64(), v["rows"].as_u64(), v["rows_overridden"].as_u64()),
            (Some(1), Some(4), Some(1))
        );
    }

    #[tokio::test]
    async fn each_violation_policy() {
        let desc =
            |p: &'static str| async move { strings(&run(p, &[]).await.unwrap(), "products", "Description")[0].clone() };
        assert_eq!(desc("first").await.as_deref(), Some("mug"));
        // The last row of "A" is invoice 4's "mug"; invoice 3's "MUG" came before.
        assert_eq!(desc("last").await.as_deref(), Some("mug"));
        assert_eq!(desc("most_frequent").await.as_deref(), Some("mug"));

        let err = run("fail", &[]).await.err().unwrap().to_string();
        assert!(
            err.contains("entity `products`") && err.contains("MUG") && err.contains("on_violation"),
            "{err}"
        );

        // Quarantine: the 4 rows of "A" leave the input and every entity.
        let o = run("quarantine", &[]).await.unwrap();
        assert_accounting(&o);
        assert_eq!(o.output.metrics.rows_quarantined, 4);
        assert_eq!(o.quarantine.len(), 4);
        assert!(o.quarantine[0]["reason"].as_str().unwrap().contains("StockCode=A"));
        assert_eq!(
            strings(&o, "products", "StockCode"),
            [Some("B".into()), Some("C".into())]
        );
        assert_eq!(
            strings(&o, "invoices", "InvoiceNo"),
            [Some("1".into()), Some("3".into())]
        );
        assert_eq!(strings(&o, "customers", "CustomerID"), [Some("10".into())]);
    }

    #[tokio::test]
    async fn examples_and_quarantine_mask_pii_columns() {
        // Customer 10's email varies; CustomerID and Email are masked.
        let b = flat(&[
            ("1", Some(10), "a@x.org", "UK", "A", "mug", 1),
            ("2", Some(10), "secret@x.org", "UK", "A", "mug", 1),
        ]);
        let mut h = Harness::new("normalize");
        h.conserves_rows = false;
        h.pii_values = vec!["secret@x.org".into(), "a@x.org".into()];
        h.input("clean", &[b]);
        let cfg = "max_bad_rows = 2\n[entity.customers]\nkey = [\"CustomerID\"]\nattributes = [\"Email\"]\non_violation = \"quarantine\"\n";
        let o = h.run(&KIND, cfg).await.unwrap();
        assert_eq!(o.output.metrics.rows_quarantined, 2);
        let text = serde_json::to_string(&o.output.metrics).unwrap();
        assert!(
            !text.contains("a@x.org") && !text.contains("17850") && text.contains("<masked>"),
            "{text}"
        );
        assert!(
            o.quarantine[0]["reason"]
                .as_str()
                .unwrap()
                .contains("CustomerID=<masked>")
        );
        let shown = crate::normalize::report::show_lines("normalize", &o.output.metrics).join("\n");
        assert!(
            shown.contains("entity `customers`: 1 keys") && !shown.contains("@x.org"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_missing_column_is_named_with_a_hint() {
        let mut h = Harness::new("normalize");
        h.conserves_rows = false;
        h.input("clean", &[orders()]);
        let err = h
            .run(&KIND, "[entity.p]\nkey = [\"StockCod\"]\n")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("entity `p`") && err.contains("did you mean `StockCode`"),
            "{err}"
        );
    }

    #[test]
    fn validation_problems() {
        let cfg: NormalizeConfig = toml::from_str("[entity.x]\nkey = []\n").unwrap();
        assert_eq!(cfg.check().len(), 1);
        let cfg: NormalizeConfig = toml::from_str("entity = {}").unwrap();
        assert_eq!(cfg.check()[0].path, "entity");
    }
}
