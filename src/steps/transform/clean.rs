//! `transform.clean`: rename, select, cast, trim, fill, flag, derive, split
//! off, filter, drop outliers and duplicates, in one declarative step.
//!
//! The operations run in this order, each only when configured:
//! rename -> select / drop -> trim -> case -> cast -> flag_missing -> fill ->
//! derive -> keep_apart -> filter -> outliers -> dedupe.
//!
//! Row accounting: rows that fail a cast go to the quarantine; rows removed
//! by `filter`, `outliers` and `dedupe` are counted as filtered (each op's
//! count is in the metrics); rows routed by `keep_apart` go to their own
//! outputs and count as output rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::compute::{and_kleene, is_null, not};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use serde::Deserialize;

use crate::data::DatasetRef;
use crate::data::artifact::{DatasetWriter, open};
use crate::data::expr::Expr;
use crate::data::ops::cast::cast_columns;
use crate::data::ops::dedupe::{FirstSeen, Keep, LastSeen, RowHasher};
use crate::data::ops::fill::{Fill, Filler};
use crate::data::ops::spill::{DEFAULT_BUDGET, KeptRows, Plan, SpillWriter, parse_size, plan};
use crate::data::ops::stats::Sample;
use crate::data::ops::{filter, row_values, with_column};
use crate::data::quarantine::BadRowLimit;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::data::types::ColumnSpec;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<CleanConfig>(
    "transform.clean",
    "renames, casts, fills, filters and dedupes one dataset",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "transform.clean"
rename = { InvoiceNo = "invoice_no" }
trim = ["Description"]
case = { Country = "upper" }
cast = { InvoiceDate = { type = "timestamp", formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"] } }
flag_missing = ["CustomerID"]
fill = { Description = "(no description)" }
derive = { revenue = "Quantity * UnitPrice", order_date = "date(InvoiceDate)" }
keep_apart = { cancelled = "invoice_no like 'C%'" }
filter = ["Quantity > 0"]
outliers = { UnitPrice = { min = 0, max = 10000 } }
dedupe = true
"#;

/// Letter case for `case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Upper,
    Lower,
    Title,
}

/// `trim = true` (every text column) or `trim = ["a", "b"]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(untagged)]
pub enum Trim {
    All(bool),
    Columns(Vec<String>),
    #[default]
    #[serde(skip)]
    Nothing,
}

/// `outliers`: drop rows whose value lies outside bounds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierRule {
    /// Smallest value kept.
    pub min: Option<f64>,
    /// Largest value kept.
    pub max: Option<f64>,
    /// `"iqr"`: keep values within [Q1 - k*IQR, Q3 + k*IQR] of the rows
    /// reaching this step.
    pub method: Option<String>,
    /// The IQR multiplier (default 1.5).
    pub k: Option<f64>,
}

/// `dedupe = true` (exact duplicate rows) or `{ on = ["key"], keep = "last" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Dedupe {
    Exact(bool),
    On {
        #[serde(default)]
        on: Vec<String>,
        #[serde(default)]
        keep: Keep,
    },
}

/// Cleans one dataset. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanConfig {
    /// Column renames: `{ old = "new" }`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Keep only these columns, in this order.
    #[serde(default)]
    pub select: Vec<String>,
    /// Remove these columns.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Trim whitespace: `true` for every text column, or a list.
    #[serde(default)]
    pub trim: Trim,
    /// Letter case of text columns: `{ Country = "upper" }` (upper, lower,
    /// title).
    #[serde(default)]
    pub case: BTreeMap<String, Case>,
    /// Convert columns: same types and options as extract's `[columns]`;
    /// several `formats` parse mixed date formats into one type. Values
    /// that do not convert send their row to the quarantine.
    #[serde(default)]
    pub cast: BTreeMap<String, ColumnSpec>,
    /// Add `<column>_missing` (bool) for each of these columns, computed
    /// before `fill`.
    #[serde(default)]
    pub flag_missing: Vec<String>,
    /// Fill missing values: a constant (`"unknown"`, `0`), or
    /// `{ method = "previous" | "mean" | "median" }`.
    #[serde(default)]
    pub fill: BTreeMap<String, Fill>,
    /// New (or replaced) columns from expressions, in order:
    /// `{ revenue = "Quantity * UnitPrice" }`. See the expression language
    /// in the docs.
    #[serde(default)]
    pub derive: toml::Table,
    /// Route matching rows to their own output instead of the main one:
    /// `{ cancelled = "InvoiceNo like 'C%'" }` (first match wins).
    #[serde(default)]
    pub keep_apart: toml::Table,
    /// Keep only rows for which every expression is true.
    #[serde(default)]
    pub filter: Vec<String>,
    /// Drop rows with values outside bounds: `{ UnitPrice = { min = 0,
    /// max = 10000 } }` or `{ UnitPrice = { method = "iqr", k = 1.5 } }`.
    #[serde(default)]
    pub outliers: BTreeMap<String, OutlierRule>,
    /// Drop duplicate rows: `true` (identical rows) or `{ on = ["InvoiceNo",
    /// "StockCode"], keep = "first" | "last" }`.
    pub dedupe: Option<Dedupe>,
    /// Memory `dedupe` may hold for the rows it has seen (default
    /// `"256MB"`; `"1GB"`, `"64MB"`, ...). A dedupe that would need more
    /// (about 40 bytes per input row) writes row hashes to temporary files
    /// in the task's artifact folder and dedupes them part by part: same
    /// result, one more pass over the input.
    pub dedupe_memory: Option<String>,
    /// Rows that fail a cast go to the quarantine; past this many (a count,
    /// or a share such as "0.5%") the task fails. Default 0.
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
}

fn exprs(t: &toml::Table, key: &str) -> Vec<(String, String, String)> {
    t.iter()
        .map(|(k, v)| {
            (
                format!("{key}.{k}"),
                k.clone(),
                v.as_str().map(str::to_string).unwrap_or_default(),
            )
        })
        .collect()
}

impl StepConfig for CleanConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut all: Vec<(String, String, String)> = exprs(&self.derive, "derive");
        all.extend(exprs(&self.keep_apart, "keep_apart"));
        all.extend(
            self.filter
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("filter[{i}]"), String::new(), f.clone())),
        );
        for (path, _, src) in &all {
            match Expr::parse(src) {
                Ok(_) => {}
                Err(e) => {
                    let mut pr = ConfigProblem::new(path.clone(), format!("bad expression `{src}`: {}", e.message));
                    if let Some(h) = e.hint {
                        pr = pr.hint(h);
                    }
                    p.push(pr);
                }
            }
        }
        for (k, v) in self.derive.iter().chain(self.keep_apart.iter()) {
            if !v.is_str() {
                p.push(ConfigProblem::new(
                    k.clone(),
                    format!("`{k}` must be an expression string"),
                ));
            }
        }
        if self.keep_apart.contains_key("default") {
            p.push(
                ConfigProblem::new("keep_apart.default", "`default` is the main output's name")
                    .hint("pick another name"),
            );
        }
        if !self.select.is_empty() && !self.drop.is_empty() {
            p.push(
                ConfigProblem::new("drop", "use `select` or `drop`, not both")
                    .hint("`select` alone lists the columns to keep"),
            );
        }
        for (col, r) in &self.outliers {
            let path = format!("outliers.{col}");
            match r.method.as_deref() {
                None if r.min.is_none() && r.max.is_none() => {
                    p.push(ConfigProblem::new(path, "give `min`, `max`, or `method = \"iqr\"`"))
                }
                None => {
                    if let (Some(a), Some(b)) = (r.min, r.max)
                        && a > b
                    {
                        p.push(ConfigProblem::new(path, format!("min {a} is greater than max {b}")));
                    }
                }
                Some("iqr") => {
                    if r.k.is_some_and(|k| k <= 0.0) {
                        p.push(ConfigProblem::new(path, "`k` must be positive"));
                    }
                }
                Some(m) => {
                    p.push(ConfigProblem::new(path, format!("unknown method `{m}`")).hint("the method is \"iqr\""))
                }
            }
        }
        if let Some(m) = &self.dedupe_memory
            && let Err(e) = parse_size(m)
        {
            p.push(ConfigProblem::new("dedupe_memory", e).hint("e.g. `dedupe_memory = \"512MB\"`"));
        }
        if let Some(Dedupe::On { on, .. }) = &self.dedupe
            && on.is_empty()
        {
            p.push(ConfigProblem::new("dedupe.on", "`on` is empty").hint("use `dedupe = true` for identical rows"));
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        let parse = |src: &str| Expr::parse(src).map_err(|e| anyhow::anyhow!("bad expression `{src}`: {e}"));
        let derive = self
            .derive
            .iter()
            .map(|(k, v)| Ok((k.clone(), parse(v.as_str().unwrap_or_default())?)))
            .collect::<Result<_>>()?;
        let keep_apart = self
            .keep_apart
            .iter()
            .map(|(k, v)| Ok((k.clone(), parse(v.as_str().unwrap_or_default())?)))
            .collect::<Result<_>>()?;
        let filters = self.filter.iter().map(|f| parse(f)).collect::<Result<_>>()?;
        Ok(Box::new(Clean {
            cfg: Arc::new(self),
            derive,
            keep_apart,
            filters,
        }))
    }
}

struct Clean {
    cfg: Arc<CleanConfig>,
    derive: Vec<(String, Expr)>,
    keep_apart: Vec<(String, Expr)>,
    filters: Vec<Expr>,
}

/// Where a pass stops: passes that gather statistics for a later operation
/// run the pipeline up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    BeforeFill,
    BeforeOutliers,
    BeforeDedupe,
    End,
}

/// Per-pass state of the pipeline.
struct Pass<'a> {
    step: &'a Clean,
    fillers: Vec<Filler>,
    hasher: Option<RowHasher>,
    first_seen: FirstSeen,
    /// Bounds per outlier column (IQR resolved).
    bounds: BTreeMap<String, (f64, f64)>,
    counts: BTreeMap<&'static str, u64>,
}

/// Dedupe decisions made by a pass before the final one.
enum Decided {
    /// Keep-last in memory: each hash's last row.
    Last(LastSeen),
    /// A spilled dedupe: the rows kept.
    Kept(KeptRows),
}

/// What one input batch became.
struct Processed {
    main: RecordBatch,
    apart: Vec<(usize, RecordBatch)>,
    /// Rows rejected by casts: (row index in the input batch, column, reason).
    bad: Vec<(usize, String, String)>,
    /// The input batch after the stage before casting (for quarantine values).
    precast: RecordBatch,
}

impl Clean {
    fn needs(&self) -> (bool, bool) {
        let fill_stats = self.cfg.fill.values().any(Fill::needs_stats);
        let iqr = self.cfg.outliers.values().any(|r| r.method.as_deref() == Some("iqr"));
        (fill_stats, iqr)
    }

    /// Which duplicate survives, when dedupe is on.
    fn dedupe_keep(&self) -> Option<Keep> {
        match &self.cfg.dedupe {
            None | Some(Dedupe::Exact(false)) => None,
            Some(Dedupe::Exact(true)) => Some(Keep::First),
            Some(Dedupe::On { keep, .. }) => Some(*keep),
        }
    }

    fn pass(&self) -> Pass<'_> {
        Pass {
            step: self,
            fillers: self.cfg.fill.iter().map(|(c, f)| Filler::new(c, f.clone())).collect(),
            hasher: None,
            first_seen: FirstSeen::default(),
            bounds: self
                .cfg
                .outliers
                .iter()
                .filter(|(_, r)| r.method.is_none())
                .map(|(c, r)| {
                    (
                        c.clone(),
                        (r.min.unwrap_or(f64::NEG_INFINITY), r.max.unwrap_or(f64::INFINITY)),
                    )
                })
                .collect(),
            counts: BTreeMap::new(),
        }
    }

    fn run_blocking(&self, cx: &StepContext) -> Result<StepOutput> {
        let input = cx.single_input()?.clone();
        let (fill_stats, iqr) = self.needs();

        // First passes: statistics for later operations.
        let mut stats: BTreeMap<String, Sample> = BTreeMap::new();
        if fill_stats {
            let mut pass = self.pass();
            for_each_batch(&input, cx, |b, _| {
                let p = pass.run(b, Stop::BeforeFill, None)?;
                for (c, f) in &self.cfg.fill {
                    if f.needs_stats() {
                        let col = column(&p.main, c, "fill")?;
                        stats.entry(c.clone()).or_default().add(col)?;
                    }
                }
                Ok(())
            })?;
        }
        let fill_values: BTreeMap<String, (Option<f64>, Option<f64>)> = stats
            .iter_mut()
            .map(|(c, s)| (c.clone(), (s.mean(), s.median())))
            .collect();
        let mut iqr_bounds = BTreeMap::new();
        if iqr {
            let mut pass = self.pass();
            pass.set_fill_stats(&fill_values);
            let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
            for_each_batch(&input, cx, |b, _| {
                let p = pass.run(b, Stop::BeforeOutliers, None)?;
                for (c, r) in &self.cfg.outliers {
                    if r.method.as_deref() == Some("iqr") {
                        samples
                            .entry(c.clone())
                            .or_default()
                            .add(column(&p.main, c, "outliers")?)?;
                    }
                }
                Ok(())
            })?;
            for (c, mut s) in samples {
                let k = self.cfg.outliers[&c].k.unwrap_or(1.5);
                if let (Some(q1), Some(q3)) = (s.quantile(0.25), s.quantile(0.75)) {
                    let iqr = q3 - q1;
                    iqr_bounds.insert(c, (q1 - k * iqr, q3 + k * iqr));
                }
            }
        }
        // Dedupe: keep-first in memory needs nothing more; keep-last in
        // memory and any spilled dedupe decide in a pass of their own.
        let mut decided = None;
        let mut first_seen = FirstSeen::default();
        if let Some(keep) = self.dedupe_keep() {
            let budget = match &self.cfg.dedupe_memory {
                Some(m) => parse_size(m).map_err(anyhow::Error::msg)?,
                None => DEFAULT_BUDGET,
            };
            let plan = plan(crate::data::artifact::row_count(&input)?, keep, budget);
            let spill_dir = cx.artifact_dir().join(".dedupe-spill");
            let mut seen = match (plan, keep) {
                (Plan::InMemory { rows }, Keep::First) => {
                    first_seen = FirstSeen::with_capacity(rows);
                    None
                }
                (Plan::InMemory { rows }, Keep::Last) => Some(Err(LastSeen::with_capacity(rows))),
                (Plan::Spill { bits }, _) => {
                    cx.log.note(&format!(
                        "dedupe: the input's rows need more than dedupe_memory ({budget} bytes); spilling row hashes to {} partitions",
                        1u32 << bits
                    ));
                    Some(Ok(SpillWriter::create(&spill_dir, bits, budget)?))
                }
            };
            if let Some(seen) = &mut seen {
                let mut pass = self.pass();
                pass.set_fill_stats(&fill_values);
                pass.bounds.extend(iqr_bounds.clone());
                let mut row = 0u64;
                for_each_batch(&input, cx, |b, _| {
                    let p = pass.run(b, Stop::BeforeDedupe, None)?;
                    let h = pass.hasher_for(&p.main)?.hashes(&p.main)?;
                    match seen {
                        Ok(spill) => spill.add(&h)?,
                        Err(last) => last.observe(&h, row),
                    }
                    row += p.main.num_rows() as u64;
                    Ok(())
                })?;
            }
            decided = match seen {
                None => None,
                Some(Err(last)) => Some(Decided::Last(last)),
                Some(Ok(spill)) => Some(Decided::Kept(spill.resolve(keep)?)),
            };
        }

        // The final pass writes the outputs.
        let mut pass = self.pass();
        pass.set_fill_stats(&fill_values);
        pass.bounds.extend(iqr_bounds);
        pass.first_seen = first_seen;
        let dir = cx.artifact_dir();
        let mut main: Option<DatasetWriter> = None;
        let mut apart: Vec<Option<DatasetWriter>> = self.keep_apart.iter().map(|_| None).collect();
        let mut quarantine = cx.quarantine();
        let source = format!("{}.{}", input.task, input.name);
        let (mut rows_in, mut dedupe_row) = (0u64, 0u64);
        let mut progress = cx.progress("clean");
        let mut last_schema = None;
        for_each_batch(&input, cx, |b, first_row| {
            rows_in += b.num_rows() as u64;
            let p = pass.run(b, Stop::End, decided.as_ref().map(|s| (s, &mut dedupe_row)))?;
            for (row, col, reason) in &p.bad {
                let values = row_values(&p.precast, *row);
                quarantine.add(
                    &source,
                    first_row + *row as u64 + 1,
                    Some(col),
                    reason,
                    values.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                )?;
            }
            write(&mut main, &dir, &cx.task, "default", &p.main)?;
            last_schema = Some(p.main.schema());
            for (i, b) in &p.apart {
                write(&mut apart[*i], &dir, &cx.task, &self.keep_apart[*i].0, b)?;
            }
            progress.add(b.num_rows() as u64, 0);
            Ok(())
        })?;
        progress.finish();

        let mut datasets = Vec::new();
        let empty_schema = last_schema.unwrap_or_else(|| Arc::new(Schema::empty()));
        datasets.push(finish(main, &dir, &cx.task, "default", &empty_schema)?);
        for (i, w) in apart.into_iter().enumerate() {
            datasets.push(finish(w, &dir, &cx.task, &self.keep_apart[i].0, &empty_schema)?);
        }
        let bad = quarantine.count();
        let qpath = quarantine.path().to_path_buf();
        quarantine.finish()?;
        let filtered = pass.counts.get("filtered_by_filter").copied().unwrap_or(0)
            + pass.counts.get("outliers").copied().unwrap_or(0)
            + pass.counts.get("duplicates").copied().unwrap_or(0);
        let mut metrics = Metrics {
            rows_in,
            rows_out: datasets.iter().map(|d| d.rows.unwrap_or(0)).sum(),
            rows_quarantined: bad,
            rows_filtered: filtered,
            ..Default::default()
        };
        for (k, v) in &pass.counts {
            metrics.extra.insert((*k).to_string(), (*v).into());
        }
        for d in datasets.iter().skip(1) {
            metrics
                .extra
                .insert(format!("kept_apart.{}", d.name), d.rows.unwrap_or(0).into());
        }
        cx.log.note(&format!(
            "{rows_in} rows in: {} out, {bad} quarantined, {filtered} filtered ({:?})",
            metrics.rows_out, pass.counts
        ));
        self.cfg
            .max_bad_rows
            .check(bad, rows_in, &qpath)
            .map_err(anyhow::Error::msg)?;
        Ok(StepOutput { datasets, metrics })
    }
}

fn write(w: &mut Option<DatasetWriter>, dir: &std::path::Path, task: &str, name: &str, b: &RecordBatch) -> Result<()> {
    if w.is_none() {
        *w = Some(DatasetWriter::create(dir, task, name, b.schema())?);
    }
    w.as_mut().expect("created").write(b)
}

fn finish(
    w: Option<DatasetWriter>,
    dir: &std::path::Path,
    task: &str,
    name: &str,
    schema: &Arc<Schema>,
) -> Result<DatasetRef> {
    match w {
        Some(w) => w.finish(),
        None => DatasetWriter::create(dir, task, name, schema.clone())?.finish(),
    }
}

/// Calls `f` with each input batch and the global index of its first row.
fn for_each_batch(
    input: &DatasetRef,
    cx: &StepContext,
    mut f: impl FnMut(&RecordBatch, u64) -> Result<()>,
) -> Result<()> {
    let mut first = 0u64;
    for b in open(input, DEFAULT_BATCH_ROWS)? {
        cx.check_cancelled()?;
        let b = b?;
        f(&b, first)?;
        first += b.num_rows() as u64;
    }
    Ok(())
}

fn column<'b>(b: &'b RecordBatch, name: &str, op: &str) -> Result<&'b ArrayRef> {
    b.column_by_name(name).with_context(|| {
        let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        format!(
            "{op}: no column `{name}` ({})",
            crate::spec::diagnostic::unknown_name_hint(name, &names)
        )
    })
}

impl Pass<'_> {
    fn set_fill_stats(&mut self, values: &BTreeMap<String, (Option<f64>, Option<f64>)>) {
        for f in &mut self.fillers {
            if let Some((mean, median)) = values.get(&f.column) {
                f.stat = match f.fill {
                    Fill::Mean => *mean,
                    Fill::Median => *median,
                    _ => None,
                };
            }
        }
    }

    fn hasher_for(&mut self, b: &RecordBatch) -> Result<&RowHasher> {
        if self.hasher.is_none() {
            let on = match &self.step.cfg.dedupe {
                Some(Dedupe::On { on, .. }) => on.clone(),
                _ => Vec::new(),
            };
            self.hasher = Some(RowHasher::new(&b.schema(), &on)?);
        }
        Ok(self.hasher.as_ref().expect("set above"))
    }

    fn count(&mut self, what: &'static str, n: usize) {
        if n > 0 {
            *self.counts.entry(what).or_default() += n as u64;
        }
    }

    /// Runs the operations on one batch, up to `stop`.
    fn run(&mut self, b: &RecordBatch, stop: Stop, decided: Option<(&Decided, &mut u64)>) -> Result<Processed> {
        let cfg = self.step.cfg.clone();
        let mut b = rename_select(b, &cfg)?;
        b = text_ops(&b, &cfg)?;
        let precast = b.clone();
        let casts: Vec<(String, ColumnSpec)> = cfg.cast.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (mut b, failures) = cast_columns(&b, &casts)?;
        let bad = failures.into_iter().map(|f| (f.row, f.column, f.reason)).collect();
        for c in &cfg.flag_missing {
            let flag = is_null(column(&b, c, "flag_missing")?.as_ref())?;
            b = with_column(&b, &format!("{c}_missing"), Arc::new(flag))?;
        }
        let done = |b: RecordBatch| Processed {
            main: b,
            apart: Vec::new(),
            bad: Vec::new(),
            precast: precast.clone(),
        };
        if stop == Stop::BeforeFill {
            return Ok(done(b));
        }
        for f in &mut self.fillers {
            let filled = f.apply(column(&b, &f.column.clone(), "fill")?)?;
            b = with_column(&b, &f.column.clone(), filled)?;
        }
        for (name, e) in &self.step.derive {
            let v = e.eval(&b).map_err(|e| anyhow::anyhow!("derive `{name}`: {e}"))?;
            b = with_column(&b, name, v)?;
        }
        let mut apart = Vec::new();
        for (i, (name, e)) in self.step.keep_apart.iter().enumerate() {
            let m = e
                .eval_predicate(&b)
                .map_err(|e| anyhow::anyhow!("keep_apart `{name}`: {e}"))?;
            let routed = filter(&b, &m)?;
            b = filter(&b, &not(&m)?)?;
            if routed.num_rows() > 0 {
                apart.push((i, routed));
            }
        }
        if !self.step.filters.is_empty() {
            let mut keep: Option<BooleanArray> = None;
            for e in &self.step.filters {
                let m = e
                    .eval_predicate(&b)
                    .map_err(|err| anyhow::anyhow!("filter `{}`: {err}", e.source()))?;
                keep = Some(match keep {
                    None => m,
                    Some(k) => and_kleene(&k, &m)?,
                });
            }
            let keep = keep.expect("at least one filter");
            let before = b.num_rows();
            b = filter(&b, &keep)?;
            self.count("filtered_by_filter", before - b.num_rows());
        }
        if stop == Stop::BeforeOutliers {
            return Ok(Processed { apart, ..done(b) });
        }
        if !self.bounds.is_empty() {
            let mut keep = vec![true; b.num_rows()];
            for (c, (lo, hi)) in &self.bounds {
                let col = arrow::compute::cast(column(&b, c, "outliers")?, &DataType::Float64)?;
                for (i, v) in col.as_primitive::<arrow::datatypes::Float64Type>().iter().enumerate() {
                    if let Some(v) = v
                        && (v < *lo || v > *hi)
                    {
                        keep[i] = false;
                    }
                }
            }
            let before = b.num_rows();
            b = filter(&b, &BooleanArray::from(keep))?;
            self.count("outliers", before - b.num_rows());
        }
        if stop == Stop::BeforeDedupe || cfg.dedupe.is_none() || matches!(cfg.dedupe, Some(Dedupe::Exact(false))) {
            return Ok(Processed { apart, bad, ..done(b) });
        }
        let mask = match decided {
            Some((Decided::Kept(kept), row)) => {
                let m = kept.mask(*row, b.num_rows());
                *row += b.num_rows() as u64;
                m
            }
            Some((Decided::Last(seen), row)) => {
                let m = seen.mask(&self.hasher_for(&b)?.hashes(&b)?, *row);
                *row += b.num_rows() as u64;
                m
            }
            None => {
                let hashes = self.hasher_for(&b)?.hashes(&b)?;
                self.first_seen.mask(&hashes)
            }
        };
        let before = b.num_rows();
        b = filter(&b, &mask)?;
        self.count("duplicates", before - b.num_rows());
        Ok(Processed { apart, bad, ..done(b) })
    }
}

/// rename, then select or drop.
fn rename_select(b: &RecordBatch, cfg: &CleanConfig) -> Result<RecordBatch> {
    let schema = b.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for old in cfg.rename.keys() {
        if !names.contains(&old.as_str()) {
            bail!(
                "rename: no column `{old}` ({})",
                crate::spec::diagnostic::unknown_name_hint(old, &names)
            );
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match cfg.rename.get(f.name()) {
            Some(new) => f.as_ref().clone().with_name(new),
            None => f.as_ref().clone(),
        })
        .collect();
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), b.columns().to_vec())?;
    let pick = |cols: Vec<String>| -> Result<RecordBatch> {
        let idx = cols
            .iter()
            .map(|c| column(&b, c, "select").map(|_| b.schema().index_of(c).expect("found")))
            .collect::<Result<Vec<_>>>()?;
        Ok(b.project(&idx)?)
    };
    if !cfg.select.is_empty() {
        return pick(cfg.select.clone());
    }
    if !cfg.drop.is_empty() {
        for d in &cfg.drop {
            column(&b, d, "drop")?;
        }
        let keep = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !cfg.drop.contains(n))
            .collect();
        return pick(keep);
    }
    Ok(b)
}

/// trim and case.
fn text_ops(b: &RecordBatch, cfg: &CleanConfig) -> Result<RecordBatch> {
    let mut b = b.clone();
    let trim_cols: Vec<String> = match &cfg.trim {
        Trim::All(true) => b
            .schema()
            .fields()
            .iter()
            .filter(|f| f.data_type() == &DataType::Utf8)
            .map(|f| f.name().clone())
            .collect(),
        Trim::Columns(c) => c.clone(),
        _ => Vec::new(),
    };
    let ops = trim_cols
        .iter()
        .map(|c| (c.clone(), None))
        .chain(cfg.case.iter().map(|(c, k)| (c.clone(), Some(*k))));
    for (c, case) in ops {
        let col = column(&b, &c, if case.is_some() { "case" } else { "trim" })?;
        let Some(s) = col.as_string_opt::<i32>() else {
            bail!(
                "`{c}` is {}, not text: trim and case apply to text columns",
                col.data_type()
            );
        };
        let out: StringArray = s
            .iter()
            .map(|v| {
                v.map(|v| match case {
                    None => v.trim().to_string(),
                    Some(Case::Upper) => v.to_uppercase(),
                    Some(Case::Lower) => v.to_lowercase(),
                    Some(Case::Title) => title(v),
                })
            })
            .collect();
        b = with_column(&b, &c, Arc::new(out))?;
    }
    Ok(b)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for ch in s.chars() {
        if start {
            out.extend(ch.to_uppercase());
        } else {
            out.extend(ch.to_lowercase());
        }
        start = !ch.is_alphanumeric();
    }
    out
}

#[async_trait]
impl Step for Clean {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let me = Clean {
            cfg: self.cfg.clone(),
            derive: self.derive.clone(),
            keep_apart: self.keep_apart.clone(),
            filters: self.filters.clone(),
        };
        cx.blocking(move |cx| me.run_blocking(&cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::Harness;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{Float64Type, Int64Type};

    fn orders() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("InvoiceNo", DataType::Utf8, true),
            Field::new("Description", DataType::Utf8, true),
            Field::new("Quantity", DataType::Int64, true),
            Field::new("InvoiceDate", DataType::Utf8, true),
            Field::new("UnitPrice", DataType::Float64, true),
            Field::new("Country", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["1", "1", "C2", "3", "4", "5", "6"])),
                Arc::new(StringArray::from(vec![
                    Some(" mug "),
                    Some(" mug "),
                    Some("x"),
                    None,
                    Some("pen"),
                    Some("cup"),
                    Some("box"),
                ])),
                Arc::new(Int64Array::from(vec![6, 6, -1, 2, 0, 3, 1])),
                Arc::new(StringArray::from(vec![
                    "2010-12-01 08:26:00",
                    "2010-12-01 08:26:00",
                    "01/12/2010 09:00",
                    "2010-12-01 10:00:00",
                    "not a date",
                    "2010-12-01 11:00:00",
                    "2010-12-01 12:00:00",
                ])),
                Arc::new(Float64Array::from(vec![2.5, 2.5, 4.0, 1.0, 1.0, 9999.0, 3.0])),
                Arc::new(StringArray::from(vec!["uk", "uk", "france", "uk", "uk", "uk", "eire"])),
            ],
        )
        .unwrap()
    }

    const CONFIG: &str = r#"
rename = { InvoiceNo = "invoice_no" }
trim = true
case = { Country = "title" }
cast = { InvoiceDate = { type = "timestamp", formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"] } }
flag_missing = ["Description"]
fill = { Description = "(none)" }
derive = { revenue = "Quantity * UnitPrice", hour = "hour(InvoiceDate)" }
keep_apart = { cancelled = "invoice_no like 'C%'" }
filter = ["Quantity > 0"]
outliers = { UnitPrice = { max = 1000 } }
dedupe = true
max_bad_rows = 1
"#;

    #[tokio::test]
    async fn the_whole_pipeline_accounts_for_every_row() {
        let mut h = Harness::new("clean");
        h.input("extract", &[orders()]);
        let out = h.run(&KIND, CONFIG).await.unwrap();
        let m = &out.output.metrics;
        // 7 in: 1 bad date quarantined, 1 cancelled kept apart, 1 zero
        // quantity filtered (the bad date row was also the zero one? no:
        // the bad date is row 5, quantity 0), 1 outlier, 1 duplicate.
        assert_eq!(m.rows_in, 7);
        assert_eq!(m.rows_quarantined, 1);
        assert_eq!(out.rows("cancelled"), 1);
        assert_eq!(m.extra["outliers"], 1);
        assert_eq!(m.extra["duplicates"], 1);
        assert_eq!(out.rows("default"), 3);
        let b = &out.datasets["default"][0];
        let desc = b.column_by_name("Description").unwrap().as_string::<i32>();
        assert_eq!(desc.value(0), "mug");
        assert_eq!(desc.value(1), "(none)");
        assert!(b.column_by_name("Description_missing").unwrap().as_boolean().value(1));
        assert_eq!(b.column_by_name("Country").unwrap().as_string::<i32>().value(2), "Eire");
        assert_eq!(
            b.column_by_name("revenue")
                .unwrap()
                .as_primitive::<Float64Type>()
                .value(0),
            15.0
        );
        assert_eq!(
            b.column_by_name("hour").unwrap().as_primitive::<Int64Type>().value(0),
            8
        );
        let q = &out.quarantine[0];
        assert_eq!(q["line"], 5);
        assert_eq!(q["column"], "InvoiceDate");
        assert_eq!(q["row"]["invoice_no"], "4");
    }

    #[tokio::test]
    async fn statistics_fills_iqr_and_keep_last() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 1, 3, 4, 5])),
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    None,
                    Some(3.0),
                    Some(2.0),
                    Some(100.0),
                    Some(2.5),
                ])),
            ],
        )
        .unwrap();
        let mut h = Harness::new("clean");
        h.input("x", &[b]);
        let out = h
            .run(
                &KIND,
                "fill = { v = { method = \"median\" } }\noutliers = { v = { method = \"iqr\" } }\ndedupe = { on = [\"k\"], keep = \"last\" }\n",
            )
            .await
            .unwrap();
        let b = &out.datasets["default"][0];
        let k: Vec<i64> = b.column(0).as_primitive::<Int64Type>().values().to_vec();
        let v: Vec<f64> = b.column(1).as_primitive::<Float64Type>().values().to_vec();
        // median of 1,3,2,100,2.5 = 2.5 fills k=2; 100 is an outlier; k=1
        // keeps its last row (v=3).
        assert_eq!(k, [2, 1, 3, 5]);
        assert_eq!(v, [2.5, 3.0, 2.0, 2.5]);
        assert_eq!(out.output.metrics.rows_filtered, 2);
    }

    /// Batches with many exact and keyed duplicates, spread over batches.
    fn duplicated(seed: u64) -> Vec<RecordBatch> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
            Field::new("q", DataType::Int64, true),
        ]));
        (0..5)
            .map(|_| {
                let n = rng.usize(1..3000);
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter((0..n).map(|_| Some(rng.i64(0..400))))),
                        Arc::new(StringArray::from_iter((0..n).map(|_| match rng.u8(0..8) {
                            0 => None,
                            v => Some(format!("v{v}")),
                        }))),
                        Arc::new(Int64Array::from_iter((0..n).map(|_| Some(rng.i64(-3..3))))),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn spilled_dedupe_equals_the_in_memory_one() {
        for (seed, dedupe) in [
            (1, "dedupe = true"),
            (2, "dedupe = { on = [\"k\", \"v\"] }"),
            (3, "dedupe = { on = [\"k\"], keep = \"last\" }"),
        ] {
            let mut outs = Vec::new();
            for memory in ["", "dedupe_memory = \"1KB\"\n", "dedupe_memory = \"40KB\"\n"] {
                let mut h = Harness::new("clean");
                h.input("x", &duplicated(seed));
                let config = format!("{memory}filter = [\"q <> 0\"]\n{dedupe}\n");
                let out = h.run(&KIND, &config).await.unwrap();
                assert!(
                    !h.path().join(".dedupe-spill").exists()
                        && std::fs::read_dir(h.cx.artifact_dir()).unwrap().all(|e| !e
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with(".dedupe")),
                    "the spill files are removed"
                );
                assert_eq!(
                    out.log.contains("spilling row hashes"),
                    !memory.is_empty(),
                    "{}",
                    out.log
                );
                let rows: Vec<RecordBatch> = out.datasets["default"].clone();
                let all = arrow::compute::concat_batches(&rows[0].schema(), &rows).unwrap();
                outs.push((
                    all,
                    out.output.metrics.extra["duplicates"].clone(),
                    out.output.metrics.rows_filtered,
                ));
            }
            assert!(outs[0].1.as_u64().unwrap() > 100, "{dedupe}: the data has duplicates");
            assert_eq!(outs[0], outs[1], "{dedupe}: 1KB budget (spilled)");
            assert_eq!(outs[0], outs[2], "{dedupe}: 40KB budget (spilled)");
        }
    }

    #[tokio::test]
    async fn errors_name_the_column_or_expression() {
        let mut h = Harness::new("clean");
        h.input("x", &[orders()]);
        let err = h
            .run(&KIND, "filter = [\"Quantiy > 0\"]")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("Quantity"), "{err}");
        let err = h
            .run(&KIND, "rename = { Invoice = \"x\" }")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did you mean `InvoiceNo`"), "{err}");
        let err = h
            .run(&KIND, "cast = { InvoiceDate = \"timestamp\" }")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("rows were rejected"), "{err}");
    }

    #[test]
    fn validation_catches_bad_expressions_and_options() {
        let cfg: CleanConfig = toml::from_str(
            "filter = [\"Quantity >\"]\nselect = [\"a\"]\ndrop = [\"b\"]\noutliers = { x = { min = 5, max = 1 } }",
        )
        .unwrap();
        let problems: Vec<String> = cfg
            .check()
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("filter[0]"));
    }
}
