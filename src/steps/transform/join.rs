//! `transform.join`: joins two or more inputs on keys into one dataset
//! (standardizing many sources into one: sales from a CSV, products from
//! PostgreSQL, customers from an API).
//!
//! See [`JoinConfig`] for every setting. The inputs are the task's input
//! names (by need id, or as named with `inputs = { ... }` on the task):
//!
//! ```toml
//! [[task]]
//! id = "sales"
//! kind = "transform.join"
//! needs = ["orders", "customers", "products"]
//! left = "orders"
//!
//! [[task.join]]
//! input = "customers"
//! on = ["CustomerID"]
//! how = "left"
//!
//! [[task.join]]
//! input = "products"
//! on = { StockCode = "product_code" }
//! ```
//!
//! How it runs: a hash join per `[[join]]`. Each right input is read whole
//! into memory and indexed by its key; the left input is streamed batch by
//! batch through the joins in order (the output of one join is the left
//! side of the next, batch by batch, never materialized), and written out
//! as it comes. Memory is therefore about the size of all the right inputs
//! together plus a few batches, whatever the size of the left input: put
//! the largest dataset (the facts, e.g. order lines) on the left and the
//! smaller ones (dimensions) in `[[join]]`.
//!
//! Row order: left rows in input order, each followed by its matches in
//! the right input's order; with `how = "full"`, the right rows that never
//! matched come last, in the right input's order.
//!
//! Row accounting (`conserves_rows` does not hold: a key matching several
//! right rows fans a left row out): `rows_in` = rows of the left input,
//! `rows_out` = rows written, `rows_filtered` = left-side rows dropped by
//! inner joins for want of a match. `extra.joins` holds one entry per
//! `[[join]]`: `input`, `how`, `left_rows`, `right_rows`,
//! `matched_right_rows` (right rows that matched at least once),
//! `unmatched_left`, `unmatched_right` (rows with a null key count as
//! unmatched) and `rows_out`. Each join also logs a line with these counts.

use std::collections::BTreeSet;
use std::collections::hash_map::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use arrow::array::{Array, ArrayRef, RecordBatchReader, UInt32Array, new_null_array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use async_trait::async_trait;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::data::DatasetRef;
use crate::data::artifact::{DatasetWriter, open, read_all};
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::spec::diagnostic::unknown_name_hint;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<JoinConfig>(
    "transform.join",
    "joins several inputs on key columns (inner, left or full)",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "transform.join"
left = "orders"

[[join]]
input = "customers"
on = ["CustomerID"]
how = "left"

[[join]]
input = "products"
on = { StockCode = "product_code" }
how = "inner"
columns = ["description", "category", "price"]
suffix = "_product"
"#;

/// Joins the task's inputs into one dataset: `left` is the driving input,
/// and each `[[join]]` table adds one more input, in order.
///
/// ```toml
/// kind = "transform.join"
/// left = "orders"
///
/// [[join]]
/// input = "customers"
/// on = ["CustomerID"]
/// how = "left"
///
/// [[join]]
/// input = "products"
/// on = { StockCode = "product_code" }
/// ```
///
/// Each join matches the rows built so far (the left input, plus the
/// columns of the joins before it) with the rows of its `input` whose key
/// columns are all equal. A null key never matches anything, as in SQL.
/// Key columns must have the same type on both sides (integers of any
/// width match each other, decimals of the same scale too); cast one side
/// in a `transform.clean` step first otherwise. Float keys match only
/// when exactly equal: prefer integer, string or decimal keys.
///
/// Output columns: every left column, then the columns each join brings.
/// A key column appears once, under its left name; with `how = "full"`, it
/// holds the right row's key on rows that only the right side has. The
/// right input's key columns are not repeated (list them in `columns` to
/// keep them anyway).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// The driving input, by its name in the task's inputs (the need's id,
    /// `task.output`, or a name given in the task's `inputs = { ... }`).
    /// Streamed, so it may be much larger than memory.
    pub left: String,
    /// The inputs to join, in order: one `[[join]]` table each (or
    /// `join = [{ input = "customers", on = ["CustomerID"] }, ...]`).
    #[serde(default)]
    pub join: Vec<JoinSpec>,
}

/// One join: which input, on which keys, how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// The input to join, by its name in the task's inputs. It is read
    /// whole into memory.
    pub input: String,
    /// The key columns: a name or list of names both sides share
    /// (`on = ["Country", "CustomerID"]`), or a table of left column =
    /// right column when the names differ (`on = { StockCode =
    /// "product_code" }`). Left columns may come from an earlier join.
    pub on: On,
    /// `inner` (default): only rows with a match on both sides; `left`:
    /// every left row, with nulls where the input has no match; `full`:
    /// also the input's rows that matched nothing, with nulls on the left.
    #[serde(default)]
    pub how: How,
    /// The input's columns to bring (default: all but its key columns).
    pub columns: Option<Vec<String>>,
    /// Added to the name of a column this input brings when the name is
    /// already taken (default: `_` and the input's name, e.g.
    /// `Country_customers`; characters other than letters, digits and `_`
    /// become `_`).
    pub suffix: Option<String>,
}

/// How a join keeps rows without a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    #[default]
    Inner,
    Left,
    Full,
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Inner => "inner",
            Self::Left => "left",
            Self::Full => "full",
        })
    }
}

/// Key column pairs: (left column, right column).
#[derive(Debug, Clone, PartialEq)]
pub struct On(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for On {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = On;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name, a list of column names, or a table of left_column = \"right_column\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<On, E> {
                Ok(On(vec![(v.to_string(), v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<On, A::Error> {
                let mut pairs = Vec::new();
                while let Some(c) = seq.next_element::<String>()? {
                    pairs.push((c.clone(), c));
                }
                Ok(On(pairs))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<On, A::Error> {
                let mut pairs = Vec::new();
                while let Some((l, r)) = map.next_entry::<String, String>()? {
                    pairs.push((l, r));
                }
                Ok(On(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

impl JoinSpec {
    /// The suffix for clashing column names.
    fn suffix(&self) -> String {
        match &self.suffix {
            Some(s) => s.clone(),
            None => {
                let clean: String = self
                    .input
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
                    .collect();
                format!("_{clean}")
            }
        }
    }
}

impl StepConfig for JoinConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.left.trim().is_empty() {
            p.push(
                ConfigProblem::new("left", "`left` is empty").hint("name the driving input, e.g. `left = \"orders\"`"),
            );
        }
        if self.join.is_empty() {
            p.push(
                ConfigProblem::new("join", "nothing to join: add at least one `[[join]]`")
                    .hint("e.g. `join = [{ input = \"customers\", on = [\"CustomerID\"], how = \"left\" }]`"),
            );
        }
        for (i, j) in self.join.iter().enumerate() {
            let at = |k: &str| format!("join[{i}].{k}");
            if j.input.trim().is_empty() {
                p.push(
                    ConfigProblem::new(at("input"), "`input` is empty")
                        .hint("name one of the task's inputs, e.g. `input = \"customers\"`"),
                );
            }
            if j.on.0.is_empty() {
                p.push(ConfigProblem::new(at("on"), "no key columns").hint(
                    "e.g. `on = [\"CustomerID\"]`, or `on = { StockCode = \"product_code\" }` when the names differ",
                ));
            }
            let mut lefts = BTreeSet::new();
            let mut rights = BTreeSet::new();
            for (l, r) in &j.on.0 {
                if l.is_empty() || r.is_empty() {
                    p.push(ConfigProblem::new(at("on"), "a key column name is empty"));
                    continue;
                }
                if !lefts.insert(l.as_str()) {
                    p.push(ConfigProblem::new(
                        at("on"),
                        format!("key column `{l}` is listed twice"),
                    ));
                } else if !rights.insert(r.as_str()) {
                    p.push(
                        ConfigProblem::new(
                            at("on"),
                            format!("right key column `{r}` is paired with two left columns"),
                        )
                        .hint("each right column can match one left column"),
                    );
                }
            }
            if let Some(cols) = &j.columns {
                let mut seen = BTreeSet::new();
                for c in cols {
                    if c.is_empty() {
                        p.push(ConfigProblem::new(at("columns"), "a column name is empty"));
                    } else if !seen.insert(c.as_str()) {
                        p.push(ConfigProblem::new(
                            at("columns"),
                            format!("column `{c}` is listed twice"),
                        ));
                    }
                }
            }
            if j.suffix.as_deref() == Some("") {
                p.push(
                    ConfigProblem::new(at("suffix"), "`suffix` is empty")
                        .hint("leave it out for the default (`_<input>`), or give one such as `_customer`"),
                );
            }
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Join { config: self }))
    }
}

struct Join {
    config: JoinConfig,
}

#[async_trait]
impl Step for Join {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.config.clone();
        cx.blocking(move |cx| execute(&cfg, &cx, DEFAULT_BATCH_ROWS)).await
    }
}

/// Runs the joins, writing output batches of at most `batch_rows` rows
/// (one left row's matches are never split across calls, so a batch may
/// exceed it by that many).
fn execute(cfg: &JoinConfig, cx: &StepContext, batch_rows: usize) -> Result<StepOutput> {
    let left_ref = input(cx, &cfg.left, "left")?;
    let right_refs = cfg
        .join
        .iter()
        .enumerate()
        .map(|(i, j)| input(cx, &j.input, &format!("join[{i}].input")))
        .collect::<Result<Vec<_>>>()?;

    // Plan every join from the schemas alone, so that a wrong key or type
    // fails before any data is read.
    let left_reader = open(left_ref, batch_rows)?;
    let mut schema = left_reader.schema();
    let mut label = cfg.left.clone();
    let mut plans = Vec::new();
    for (spec, r) in cfg.join.iter().zip(&right_refs) {
        let right_schema = open(r, 1)?.schema();
        let plan = Plan::new(spec, &label, &schema, &right_schema)?;
        schema = plan.out_schema.clone();
        label = format!("{label} + {}", spec.input);
        plans.push(plan);
    }

    let mut joiners = Vec::new();
    for (plan, r) in plans.into_iter().zip(&right_refs) {
        cx.check_cancelled()?;
        joiners.push(Joiner::build(plan, r, batch_rows)?);
    }

    let mut writer = DatasetWriter::create(&cx.artifact_dir(), &cx.task, "default", schema)?;
    let mut progress = cx.progress("join");
    let mut rows_in = 0u64;
    {
        let mut sink = |b: RecordBatch| writer.write(&b);
        for batch in left_reader {
            cx.check_cancelled()?;
            let batch = batch.with_context(|| format!("reading input `{}`", cfg.left))?;
            rows_in += batch.num_rows() as u64;
            progress.add(batch.num_rows() as u64, batch.get_array_memory_size() as u64);
            feed(&mut joiners, batch, &mut sink)?;
        }
        // Right rows no left row matched (full joins), each flowing through
        // the joins after its own.
        for k in 0..joiners.len() {
            cx.check_cancelled()?;
            let (cur, rest) = joiners[k..].split_first_mut().expect("k < len");
            cur.unmatched_right(&mut |b| feed(&mut *rest, b, &mut sink))?;
        }
    }
    progress.finish();
    let dataset = writer.finish()?;

    let mut metrics = Metrics {
        rows_in,
        rows_out: dataset.rows.unwrap_or(0),
        ..Default::default()
    };
    let mut report = Vec::new();
    for j in &joiners {
        let s = &j.stats;
        if j.plan.how == How::Inner {
            metrics.rows_filtered += s.unmatched_left;
        }
        cx.log.note(&format!(
            "join `{}` ({}) on {}: {} left rows, {} right rows; {} right rows matched, {} left and {} right rows unmatched; {} rows out",
            j.plan.input,
            j.plan.how,
            j.plan.on_text,
            s.left_rows,
            s.right_rows,
            s.matched_right_rows,
            s.unmatched_left,
            s.unmatched_right,
            s.rows_out
        ));
        report.push(serde_json::json!({
            "input": j.plan.input,
            "how": j.plan.how.to_string(),
            "left_rows": s.left_rows,
            "right_rows": s.right_rows,
            "matched_right_rows": s.matched_right_rows,
            "unmatched_left": s.unmatched_left,
            "unmatched_right": s.unmatched_right,
            "rows_out": s.rows_out,
        }));
    }
    metrics.extra.insert("joins".into(), report.into());
    Ok(StepOutput {
        datasets: vec![dataset],
        metrics,
    })
}

/// The dataset of one of the task's inputs, or an error listing them.
fn input<'a>(cx: &'a StepContext, name: &str, key: &str) -> Result<&'a DatasetRef> {
    if let Some(d) = cx.inputs.get(name) {
        return Ok(d);
    }
    let names: Vec<&str> = cx.inputs.keys().map(String::as_str).collect();
    if names.is_empty() {
        bail!(
            "`{key}`: task `{}` has no input `{name}`: it has no inputs at all; add the tasks it joins to `needs`",
            cx.task
        );
    }
    bail!(
        "`{key}`: task `{}` has no input `{name}` ({}); its inputs are: {} (inputs are named after the tasks in `needs`, or by the task's `inputs = {{ name = \"task\" }}`)",
        cx.task,
        unknown_name_hint(name, &names),
        names.join(", ")
    )
}

/// Hands `batch` to the first join, whose output goes to the next, and so
/// on; the last join's output goes to `sink`.
fn feed(joins: &mut [Joiner], batch: RecordBatch, sink: &mut dyn FnMut(RecordBatch) -> Result<()>) -> Result<()> {
    match joins.split_first_mut() {
        None => sink(batch),
        Some((first, rest)) => first.probe(&batch, &mut |out| feed(&mut *rest, out, &mut *sink)),
    }
}

/// One join resolved against the schemas of its two sides.
struct Plan {
    input: String,
    how: How,
    /// `CustomerID` or `StockCode = product_code, ...`, for the log.
    on_text: String,
    /// Key columns: index in the left schema, index in the right schema,
    /// and the type both are compared (and output) as.
    keys: Vec<(usize, usize, DataType)>,
    /// Right columns brought into the output, by index in the right schema.
    right_cols: Vec<usize>,
    out_schema: SchemaRef,
}

impl Plan {
    fn new(spec: &JoinSpec, left_label: &str, left: &Schema, right: &Schema) -> Result<Self> {
        let what = format!("join with `{}`", spec.input);
        let (left_names, right_names) = (column_names(left), column_names(right));
        let find = |schema: &Schema, col: &str, side: &str, all: &[&str]| -> Result<usize> {
            schema.index_of(col).map_err(|_| {
                anyhow!(
                    "{what}: no column `{col}` in `{side}` ({})",
                    unknown_name_hint(col, all)
                )
            })
        };
        let mut keys = Vec::new();
        for (l, r) in &spec.on.0 {
            let li = find(left, l, left_label, &left_names)?;
            let ri = find(right, r, &spec.input, &right_names)?;
            let (lt, rt) = (left.field(li).data_type(), right.field(ri).data_type());
            let Some(t) = key_type(lt, rt) else {
                bail!(
                    "{what}: key `{l}` is {} in `{left_label}` but `{r}` is {} in `{}`: key columns must have the same type; cast one of them in a `transform.clean` step before the join",
                    type_name(lt),
                    type_name(rt),
                    spec.input
                );
            };
            if !RowConverter::supports_fields(&[SortField::new(t.clone())]) {
                bail!("{what}: cannot join on `{l}`: {} columns cannot be keys", type_name(&t));
            }
            keys.push((li, ri, t));
        }

        let right_cols: Vec<usize> = match &spec.columns {
            Some(cols) => cols
                .iter()
                .map(|c| find(right, c, &spec.input, &right_names))
                .collect::<Result<_>>()?,
            None => (0..right.fields().len())
                .filter(|i| !keys.iter().any(|k| k.1 == *i))
                .collect(),
        };

        let full = spec.how == How::Full;
        let mut fields: Vec<Field> = left
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let nullable = f.is_nullable() || full;
                match keys.iter().find(|k| k.0 == i) {
                    Some((_, _, t)) if t != f.data_type() => Field::new(f.name(), t.clone(), nullable),
                    _ => f.as_ref().clone().with_nullable(nullable),
                }
            })
            .collect();
        let mut taken: BTreeSet<String> = left_names.iter().map(|s| s.to_string()).collect();
        let suffix = spec.suffix();
        for &i in &right_cols {
            let f = right.field(i);
            let mut name = f.name().clone();
            if taken.contains(&name) {
                name = format!("{name}{suffix}");
                if taken.contains(&name) {
                    bail!(
                        "{what}: column `{}` of `{}` clashes with an existing column, and so does `{name}`: set another `suffix`, or choose the columns to bring with `columns`",
                        f.name(),
                        spec.input
                    );
                }
            }
            taken.insert(name.clone());
            fields.push(Field::new(
                name,
                f.data_type().clone(),
                f.is_nullable() || spec.how != How::Inner,
            ));
        }

        let on_text = spec
            .on
            .0
            .iter()
            .map(|(l, r)| if l == r { l.clone() } else { format!("{l} = {r}") })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self {
            input: spec.input.clone(),
            how: spec.how,
            on_text,
            keys,
            right_cols,
            out_schema: Arc::new(Schema::new(fields)),
        })
    }
}

fn column_names(s: &Schema) -> Vec<&str> {
    s.fields().iter().map(|f| f.name().as_str()).collect()
}

/// The type two key columns are compared as, if they can be: the same
/// type, integers of any width (as int64), any string encoding, decimals
/// of one scale, timestamps that both have a zone or both have none.
fn key_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    fn norm(t: &DataType) -> DataType {
        match t {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => Int64,
            Utf8 | LargeUtf8 | Utf8View => Utf8,
            Binary | LargeBinary | BinaryView => Binary,
            Float32 | Float64 => Float64,
            Dictionary(_, v) => norm(v),
            other => other.clone(),
        }
    }
    fn rank(u: &TimeUnit) -> u8 {
        match u {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 1,
            TimeUnit::Microsecond => 2,
            TimeUnit::Nanosecond => 3,
        }
    }
    let (a, b) = (norm(a), norm(b));
    if a == b {
        return Some(a);
    }
    match (&a, &b) {
        (Decimal128(p1, s1), Decimal128(p2, s2)) if s1 == s2 => Some(Decimal128(*p1.max(p2), *s1)),
        (Timestamp(u1, z1), Timestamp(u2, z2)) if z1.is_some() == z2.is_some() => {
            let u = if rank(u1) >= rank(u2) { *u1 } else { *u2 };
            Some(Timestamp(u, z1.clone()))
        }
        _ => None,
    }
}

/// How a type reads in messages: `int64`, `string`, `decimal(10,2)`.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Boolean => "bool".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(tz)) => format!("timestamp ({tz})"),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Dictionary(_, v) => type_name(v),
        other => other.to_string().to_lowercase(),
    }
}

/// Counts of one join.
#[derive(Debug, Default)]
struct Stats {
    left_rows: u64,
    right_rows: u64,
    matched_right_rows: u64,
    unmatched_left: u64,
    unmatched_right: u64,
    rows_out: u64,
}

/// Hashes are already xxh3: the map uses them as they are.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// End of a chain in [`Joiner::next`].
const NONE: u32 = u32::MAX;

/// One join at run time: the right input in memory, indexed by key.
struct Joiner {
    plan: Plan,
    right: RecordBatch,
    /// The right key columns, cast to the key types.
    right_keys: Vec<ArrayRef>,
    converter: RowConverter,
    right_rows: Rows,
    /// Key hash -> the first right row with that hash; `next` chains the
    /// others, in right-input order (rows of different keys may share a
    /// chain when their hashes collide: probes compare the key bytes).
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    next: Vec<u32>,
    matched: Vec<bool>,
    stats: Stats,
    batch_rows: usize,
}

impl Joiner {
    fn build(plan: Plan, dataset: &DatasetRef, batch_rows: usize) -> Result<Self> {
        let (schema, batches) = read_all(dataset)?;
        let right = concat_batches(&schema, &batches)?;
        drop(batches);
        let n = right.num_rows();
        if n >= NONE as usize {
            bail!(
                "input `{}` has {n} rows: a join's right side holds fewer than 2^32",
                plan.input
            );
        }
        let right_keys = cast_keys(&right, plan.keys.iter().map(|k| (k.1, &k.2)))?;
        let converter = RowConverter::new(plan.keys.iter().map(|k| SortField::new(k.2.clone())).collect())?;
        let right_rows = converter.convert_columns(&right_keys)?;
        let mut heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>> = HashMap::default();
        heads.reserve(n);
        let mut next = vec![NONE; n];
        // Backwards, so that each chain lists rows in input order.
        for i in (0..n).rev() {
            if right_keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            let h = xxhash_rust::xxh3::xxh3_64(right_rows.row(i).as_ref());
            if let Some(prev) = heads.insert(h, i as u32) {
                next[i] = prev;
            }
        }
        Ok(Self {
            stats: Stats {
                right_rows: n as u64,
                ..Default::default()
            },
            plan,
            right,
            right_keys,
            converter,
            right_rows,
            heads,
            next,
            matched: vec![false; n],
            batch_rows: batch_rows.max(1),
        })
    }

    /// Joins one batch of left rows, handing output batches to `emit`.
    fn probe(&mut self, left: &RecordBatch, emit: &mut dyn FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        let n = left.num_rows();
        self.stats.left_rows += n as u64;
        let keys = cast_keys(left, self.plan.keys.iter().map(|k| (k.0, &k.2)))?;
        let rows = self.converter.convert_columns(&keys)?;
        let keep_unmatched = self.plan.how != How::Inner;
        let mut li: Vec<u32> = Vec::new();
        let mut ri: Vec<Option<u32>> = Vec::new();
        for j in 0..n {
            let mut found = false;
            if !keys.iter().any(|k| k.is_null(j)) {
                let row = rows.row(j);
                let mut i = self
                    .heads
                    .get(&xxhash_rust::xxh3::xxh3_64(row.as_ref()))
                    .copied()
                    .unwrap_or(NONE);
                while i != NONE {
                    if self.right_rows.row(i as usize) == row {
                        found = true;
                        li.push(j as u32);
                        ri.push(Some(i));
                        if !self.matched[i as usize] {
                            self.matched[i as usize] = true;
                            self.stats.matched_right_rows += 1;
                        }
                    }
                    i = self.next[i as usize];
                }
            }
            if !found {
                self.stats.unmatched_left += 1;
                if keep_unmatched {
                    li.push(j as u32);
                    ri.push(None);
                }
            }
            if li.len() >= self.batch_rows {
                let out = self.assemble(left, &keys, &li, &ri)?;
                emit(out)?;
                li.clear();
                ri.clear();
            }
        }
        if !li.is_empty() {
            let out = self.assemble(left, &keys, &li, &ri)?;
            emit(out)?;
        }
        Ok(())
    }

    /// Output rows from left rows `li` and right rows `ri` (`None`: no
    /// match, nulls). `keys` are the left batch's key columns, cast.
    fn assemble(
        &mut self,
        left: &RecordBatch,
        keys: &[ArrayRef],
        li: &[u32],
        ri: &[Option<u32>],
    ) -> Result<RecordBatch> {
        let li = UInt32Array::from(li.to_vec());
        let ri = UInt32Array::from(ri.to_vec());
        let mut cols = Vec::with_capacity(self.plan.out_schema.fields().len());
        for (c, col) in left.columns().iter().enumerate() {
            let col = match self.plan.keys.iter().position(|k| k.0 == c) {
                Some(k) => &keys[k],
                None => col,
            };
            cols.push(take(col.as_ref(), &li, None)?);
        }
        for &c in &self.plan.right_cols {
            cols.push(take(self.right.column(c).as_ref(), &ri, None)?);
        }
        self.stats.rows_out += li.len() as u64;
        Ok(RecordBatch::try_new(self.plan.out_schema.clone(), cols)?)
    }

    /// Counts the right rows that matched nothing and, for a full join,
    /// hands them to `emit` with nulls on the left side (the key columns
    /// hold the right row's key).
    fn unmatched_right(&mut self, emit: &mut dyn FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        let unmatched: Vec<u32> = (0..self.matched.len() as u32)
            .filter(|&i| !self.matched[i as usize])
            .collect();
        self.stats.unmatched_right = unmatched.len() as u64;
        if self.plan.how != How::Full {
            return Ok(());
        }
        let left_fields = self.plan.out_schema.fields().len() - self.plan.right_cols.len();
        for chunk in unmatched.chunks(self.batch_rows) {
            let idx = UInt32Array::from(chunk.to_vec());
            let mut cols = Vec::with_capacity(self.plan.out_schema.fields().len());
            for (c, f) in self.plan.out_schema.fields()[..left_fields].iter().enumerate() {
                cols.push(match self.plan.keys.iter().position(|k| k.0 == c) {
                    Some(k) => take(self.right_keys[k].as_ref(), &idx, None)?,
                    None => new_null_array(f.data_type(), chunk.len()),
                });
            }
            for &c in &self.plan.right_cols {
                cols.push(take(self.right.column(c).as_ref(), &idx, None)?);
            }
            self.stats.rows_out += chunk.len() as u64;
            emit(RecordBatch::try_new(self.plan.out_schema.clone(), cols)?)?;
        }
        Ok(())
    }
}

/// The key columns `(index, type)` of `batch`, cast to their key types.
fn cast_keys<'a>(batch: &RecordBatch, keys: impl Iterator<Item = (usize, &'a DataType)>) -> Result<Vec<ArrayRef>> {
    keys.map(|(i, t)| {
        let col = batch.column(i);
        Ok(if col.data_type() == t {
            col.clone()
        } else {
            cast(col.as_ref(), t)?
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::{Harness, Outcome};
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::util::display::{ArrayFormatter, FormatOptions};

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn strs(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter_with_nullable(cols.into_iter().map(|(n, a)| (n, a, true))).unwrap()
    }

    /// A harness for task `sales` with the given inputs.
    fn harness(inputs: Vec<(&str, RecordBatch)>) -> Harness {
        let mut h = Harness::new("sales");
        h.conserves_rows = false;
        for (name, b) in inputs {
            h.input(name, &[b]);
        }
        h
    }

    /// The output's column names, and its rows as `a|b|c` (nulls as `null`).
    fn table(batches: &[RecordBatch]) -> (Vec<String>, Vec<String>) {
        let opts = FormatOptions::default().with_null("null");
        let header = batches
            .first()
            .map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
            .unwrap_or_default();
        let mut rows = Vec::new();
        for b in batches {
            let fmts: Vec<_> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
                .collect();
            for i in 0..b.num_rows() {
                rows.push(
                    fmts.iter()
                        .map(|f| f.value(i).to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                );
            }
        }
        (header, rows)
    }

    fn output(out: &Outcome) -> (Vec<String>, Vec<String>) {
        table(&out.datasets["default"])
    }

    fn join_stats(out: &Outcome, k: usize) -> &serde_json::Value {
        &out.output.metrics.extra["joins"][k]
    }

    fn orders() -> RecordBatch {
        batch(vec![
            (
                "InvoiceNo",
                strs(&[Some("1"), Some("2"), Some("3"), Some("4"), Some("5")]),
            ),
            ("CustomerID", ints(&[Some(10), Some(20), Some(20), Some(30), None])),
            (
                "StockCode",
                strs(&[Some("A"), Some("B"), Some("Z"), Some("A"), Some("B")]),
            ),
        ])
    }

    fn customers() -> RecordBatch {
        batch(vec![
            ("CustomerID", ints(&[Some(10), Some(20), Some(40), None])),
            (
                "Country",
                strs(&[Some("UK"), Some("France"), Some("Spain"), Some("Nowhere")]),
            ),
        ])
    }

    fn products() -> RecordBatch {
        batch(vec![
            ("product_code", strs(&[Some("A"), Some("B"), Some("C")])),
            ("description", strs(&[Some("mug"), Some("lamp"), Some("vase")])),
        ])
    }

    fn one_join(how: &str) -> String {
        format!("left = \"orders\"\n[[join]]\ninput = \"customers\"\non = [\"CustomerID\"]\nhow = \"{how}\"\n")
    }

    #[tokio::test]
    async fn inner_join_keeps_matched_rows_and_counts_the_rest() {
        let h = harness(vec![("orders", orders()), ("customers", customers())]);
        let out = h.run(&KIND, &one_join("inner")).await.unwrap();
        let (header, rows) = output(&out);
        assert_eq!(header, ["InvoiceNo", "CustomerID", "StockCode", "Country"]);
        assert_eq!(rows, ["1|10|A|UK", "2|20|B|France", "3|20|Z|France"]);
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out, m.rows_filtered), (5, 3, 2));
        let s = join_stats(&out, 0);
        assert_eq!(s["input"], "customers");
        assert_eq!(s["how"], "inner");
        assert_eq!(s["left_rows"], 5);
        assert_eq!(s["right_rows"], 4);
        assert_eq!(s["matched_right_rows"], 2);
        assert_eq!(s["unmatched_left"], 2);
        assert_eq!(s["unmatched_right"], 2);
        assert_eq!(s["rows_out"], 3);
        assert!(
            out.log.contains(
                "join `customers` (inner) on CustomerID: 5 left rows, 4 right rows; 2 right rows matched, \
                 2 left and 2 right rows unmatched; 3 rows out"
            ),
            "{}",
            out.log
        );
    }

    #[tokio::test]
    async fn left_join_keeps_every_left_row() {
        let h = harness(vec![("orders", orders()), ("customers", customers())]);
        let out = h.run(&KIND, &one_join("left")).await.unwrap();
        let (_, rows) = output(&out);
        assert_eq!(
            rows,
            [
                "1|10|A|UK",
                "2|20|B|France",
                "3|20|Z|France",
                "4|30|A|null",
                "5|null|B|null"
            ]
        );
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out, m.rows_filtered), (5, 5, 0));
        let s = join_stats(&out, 0);
        assert_eq!(
            (s["unmatched_left"].as_u64(), s["unmatched_right"].as_u64()),
            (Some(2), Some(2))
        );
        let schema = out.datasets["default"][0].schema();
        assert!(schema.field_with_name("Country").unwrap().is_nullable());
    }

    #[tokio::test]
    async fn full_join_adds_unmatched_right_rows_with_their_keys_at_the_end() {
        let h = harness(vec![("orders", orders()), ("customers", customers())]);
        let out = h.run(&KIND, &one_join("full")).await.unwrap();
        let (_, rows) = output(&out);
        assert_eq!(
            rows,
            [
                "1|10|A|UK",
                "2|20|B|France",
                "3|20|Z|France",
                "4|30|A|null",
                "5|null|B|null",
                "null|40|null|Spain",
                "null|null|null|Nowhere",
            ]
        );
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out), (5, 7));
        let s = join_stats(&out, 0);
        assert_eq!(s["matched_right_rows"], 2);
        assert_eq!(s["unmatched_left"], 2);
        assert_eq!(s["unmatched_right"], 2);
        assert_eq!(s["rows_out"], 7);
    }

    #[tokio::test]
    async fn multi_column_keys_match_on_every_column() {
        let left = batch(vec![
            ("country", strs(&[Some("UK"), Some("UK"), Some("FR"), Some("FR")])),
            ("code", ints(&[Some(1), Some(2), Some(1), None])),
            ("v", strs(&[Some("a"), Some("b"), Some("c"), Some("d")])),
        ]);
        let right = batch(vec![
            ("code", ints(&[Some(1), Some(2), None, Some(1)])),
            ("country", strs(&[Some("UK"), Some("FR"), Some("FR"), Some("FR")])),
            ("w", strs(&[Some("x"), Some("y"), Some("z"), Some("q")])),
        ]);
        let h = harness(vec![("l", left), ("r", right)]);
        let cfg = "left = \"l\"\njoin = [{ input = \"r\", on = [\"country\", \"code\"], how = \"left\" }]\n";
        let out = h.run(&KIND, cfg).await.unwrap();
        let (header, rows) = output(&out);
        assert_eq!(header, ["country", "code", "v", "w"]);
        assert_eq!(rows, ["UK|1|a|x", "UK|2|b|null", "FR|1|c|q", "FR|null|d|null"]);
        let s = join_stats(&out, 0);
        assert_eq!(s["matched_right_rows"], 2);
        assert_eq!(s["unmatched_left"], 2);
        assert_eq!(s["unmatched_right"], 2);
    }

    #[tokio::test]
    async fn differently_named_keys_keep_the_left_name_and_merge_on_full_joins() {
        let h = harness(vec![("orders", orders()), ("products", products())]);
        let cfg = "left = \"orders\"\n[[join]]\ninput = \"products\"\non = { StockCode = \"product_code\" }\nhow = \"full\"\n";
        let out = h.run(&KIND, cfg).await.unwrap();
        let (header, rows) = output(&out);
        assert_eq!(header, ["InvoiceNo", "CustomerID", "StockCode", "description"]);
        assert_eq!(
            rows,
            [
                "1|10|A|mug",
                "2|20|B|lamp",
                "3|20|Z|null",
                "4|30|A|mug",
                "5|null|B|lamp",
                "null|null|C|vase",
            ]
        );
        assert!(out.log.contains("on StockCode = product_code"), "{}", out.log);
        let s = join_stats(&out, 0);
        assert_eq!(
            (s["matched_right_rows"].as_u64(), s["unmatched_right"].as_u64()),
            (Some(2), Some(1))
        );
    }

    #[tokio::test]
    async fn one_to_many_fans_out_in_right_input_order() {
        let left = batch(vec![
            ("k", ints(&[Some(1), Some(2), Some(3)])),
            ("a", strs(&[Some("p"), Some("q"), Some("r")])),
        ]);
        let right = batch(vec![
            ("k", ints(&[Some(1), Some(2), Some(1), Some(1)])),
            ("b", strs(&[Some("x"), Some("y"), Some("z"), Some("w")])),
        ]);
        let h = harness(vec![("l", left), ("r", right)]);
        let out = h
            .run(&KIND, "left = \"l\"\njoin = [{ input = \"r\", on = \"k\" }]\n")
            .await
            .unwrap();
        let (_, rows) = output(&out);
        assert_eq!(rows, ["1|p|x", "1|p|z", "1|p|w", "2|q|y"]);
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out, m.rows_filtered), (3, 4, 1));
        let s = join_stats(&out, 0);
        assert_eq!(s["matched_right_rows"], 4);
        assert_eq!(s["unmatched_right"], 0);
        assert_eq!(s["unmatched_left"], 1);
    }

    #[tokio::test]
    async fn null_keys_never_match_not_even_each_other() {
        let left = batch(vec![
            ("k", ints(&[None, Some(1)])),
            ("a", strs(&[Some("l0"), Some("l1")])),
        ]);
        let right = batch(vec![
            ("k", ints(&[None, Some(1)])),
            ("b", strs(&[Some("r0"), Some("r1")])),
        ]);
        let h = harness(vec![("l", left), ("r", right)]);
        let out = h
            .run(
                &KIND,
                "left = \"l\"\njoin = [{ input = \"r\", on = [\"k\"], how = \"full\" }]\n",
            )
            .await
            .unwrap();
        let (_, rows) = output(&out);
        assert_eq!(rows, ["null|l0|null", "1|l1|r1", "null|null|r0"]);
        let s = join_stats(&out, 0);
        assert_eq!(
            (s["unmatched_left"].as_u64(), s["unmatched_right"].as_u64()),
            (Some(1), Some(1))
        );
    }

    #[tokio::test]
    async fn three_inputs_chain_and_full_join_leftovers_flow_into_the_next_join() {
        let h = harness(vec![
            ("orders", orders()),
            ("customers", customers()),
            ("products", products()),
        ]);
        let cfg = r#"
left = "orders"

[[join]]
input = "customers"
on = ["CustomerID"]
how = "full"

[[join]]
input = "products"
on = { StockCode = "product_code" }
how = "left"
"#;
        let out = h.run(&KIND, cfg).await.unwrap();
        let (header, rows) = output(&out);
        assert_eq!(
            header,
            ["InvoiceNo", "CustomerID", "StockCode", "Country", "description"]
        );
        assert_eq!(
            rows,
            [
                "1|10|A|UK|mug",
                "2|20|B|France|lamp",
                "3|20|Z|France|null",
                "4|30|A|null|mug",
                "5|null|B|null|lamp",
                "null|40|null|Spain|null",
                "null|null|null|Nowhere|null",
            ]
        );
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out), (5, 7));
        let s = join_stats(&out, 1);
        assert_eq!(s["input"], "products");
        assert_eq!(s["left_rows"], 7);
        assert_eq!(s["right_rows"], 3);
        assert_eq!(s["matched_right_rows"], 2);
        assert_eq!(s["unmatched_left"], 3);
        assert_eq!(s["unmatched_right"], 1);
        assert_eq!(s["rows_out"], 7);
        assert_eq!(out.log.matches("join `").count(), 2, "{}", out.log);
    }

    #[tokio::test]
    async fn a_later_join_can_key_on_a_column_an_earlier_one_brought() {
        let regions = batch(vec![
            ("Country", strs(&[Some("UK"), Some("France")])),
            ("region", strs(&[Some("north"), Some("west")])),
        ]);
        let h = harness(vec![
            ("orders", orders()),
            ("customers", customers()),
            ("regions", regions),
        ]);
        let cfg = r#"
left = "orders"
join = [
  { input = "customers", on = ["CustomerID"] },
  { input = "regions", on = ["Country"], how = "inner", columns = ["region"] },
]
"#;
        let out = h.run(&KIND, cfg).await.unwrap();
        let (header, rows) = output(&out);
        assert_eq!(header, ["InvoiceNo", "CustomerID", "StockCode", "Country", "region"]);
        assert_eq!(rows, ["1|10|A|UK|north", "2|20|B|France|west", "3|20|Z|France|west"]);
    }

    #[tokio::test]
    async fn clashing_column_names_get_a_suffix() {
        let left = batch(vec![("id", ints(&[Some(1)])), ("name", strs(&[Some("order one")]))]);
        let right = batch(vec![("id", ints(&[Some(1)])), ("name", strs(&[Some("Ann")]))]);
        let h = harness(vec![
            ("orders", left.clone()),
            ("load_customers.customers", right.clone()),
        ]);
        let out = h
            .run(
                &KIND,
                "left = \"orders\"\njoin = [{ input = \"load_customers.customers\", on = [\"id\"] }]\n",
            )
            .await
            .unwrap();
        assert_eq!(output(&out).0, ["id", "name", "name_load_customers_customers"]);
        assert_eq!(output(&out).1, ["1|order one|Ann"]);

        let h = harness(vec![("orders", left), ("customers", right)]);
        let cfg = "left = \"orders\"\njoin = [{ input = \"customers\", on = [\"id\"], suffix = \"_customer\" }]\n";
        let out = h.run(&KIND, cfg).await.unwrap();
        assert_eq!(output(&out).0, ["id", "name", "name_customer"]);

        // The right key column, brought on purpose, clashes too.
        let cfg =
            "left = \"orders\"\njoin = [{ input = \"customers\", on = [\"id\"], columns = [\"id\", \"name\"] }]\n";
        let out = h.run(&KIND, cfg).await.unwrap();
        assert_eq!(output(&out).0, ["id", "name", "id_customers", "name_customers"]);
    }

    #[tokio::test]
    async fn a_suffix_that_still_clashes_is_an_error() {
        let left = batch(vec![
            ("id", ints(&[Some(1)])),
            ("name", strs(&[Some("x")])),
            ("name_c", strs(&[Some("y")])),
        ]);
        let right = batch(vec![("id", ints(&[Some(1)])), ("name", strs(&[Some("Ann")]))]);
        let h = harness(vec![("orders", left), ("customers", right)]);
        let cfg = "left = \"orders\"\njoin = [{ input = \"customers\", on = [\"id\"], suffix = \"_c\" }]\n";
        let err = h.run(&KIND, cfg).await.err().unwrap().to_string();
        assert!(err.contains("column `name` of `customers` clashes"), "{err}");
        assert!(err.contains("`name_c`"), "{err}");
        assert!(err.contains("suffix"), "{err}");
    }

    #[tokio::test]
    async fn mismatched_key_types_are_an_error_pointing_to_transform_clean() {
        let right = batch(vec![
            ("CustomerID", strs(&[Some("10")])),
            ("Country", strs(&[Some("UK")])),
        ]);
        let h = harness(vec![("orders", orders()), ("customers", right)]);
        let err = h.run(&KIND, &one_join("inner")).await.err().unwrap().to_string();
        assert!(
            err.contains("key `CustomerID` is int64 in `orders` but `CustomerID` is string in `customers`"),
            "{err}"
        );
        assert!(err.contains("transform.clean"), "{err}");
        assert!(!h.cx.artifact_dir().join("default.parquet").exists());
    }

    #[tokio::test]
    async fn integer_keys_of_different_widths_match() {
        let right = batch(vec![
            ("CustomerID", Arc::new(Int32Array::from(vec![10, 20])) as ArrayRef),
            ("Country", strs(&[Some("UK"), Some("France")])),
        ]);
        let h = harness(vec![("orders", orders()), ("customers", right)]);
        let out = h.run(&KIND, &one_join("full")).await.unwrap();
        assert_eq!(output(&out).1.len(), 5);
        let schema = out.datasets["default"][0].schema();
        assert_eq!(
            schema.field_with_name("CustomerID").unwrap().data_type(),
            &DataType::Int64
        );
    }

    #[tokio::test]
    async fn unknown_inputs_are_listed_with_a_hint() {
        let h = harness(vec![("orders", orders()), ("customers", customers())]);
        let err = h
            .run(
                &KIND,
                &one_join("inner").replace("left = \"orders\"", "left = \"order\""),
            )
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("task `sales` has no input `order`"), "{err}");
        assert!(err.contains("did you mean `orders`?"), "{err}");
        assert!(err.contains("its inputs are: customers, orders"), "{err}");

        let err = h
            .run(
                &KIND,
                &one_join("inner").replace("input = \"customers\"", "input = \"custmers\""),
            )
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`join[0].input`"), "{err}");
        assert!(err.contains("did you mean `customers`?"), "{err}");

        let lonely = harness(vec![]);
        let err = lonely.run(&KIND, &one_join("inner")).await.err().unwrap().to_string();
        assert!(err.contains("no inputs at all"), "{err}");
    }

    #[tokio::test]
    async fn unknown_key_columns_get_a_did_you_mean() {
        let h = harness(vec![("orders", orders()), ("customers", customers())]);
        let err = h
            .run(
                &KIND,
                &one_join("inner").replace("[\"CustomerID\"]", "[\"CustomerId\"]"),
            )
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("join with `customers`: no column `CustomerId` in `orders`"),
            "{err}"
        );
        assert!(err.contains("did you mean `CustomerID`?"), "{err}");

        let err = h
            .run(
                &KIND,
                &one_join("inner").replace("[\"CustomerID\"]", "{ CustomerID = \"customer_id\" }"),
            )
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no column `customer_id` in `customers`"), "{err}");
        assert!(err.contains("expected one of `CustomerID`, `Country`"), "{err}");

        let err = h
            .run(&KIND, &format!("{}columns = [\"country\"]\n", one_join("inner")))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did you mean `Country`?"), "{err}");
    }

    #[tokio::test]
    async fn output_batches_are_cut_at_batch_rows() {
        let left = batch(vec![("k", ints(&[Some(1), Some(2), Some(1)]))]);
        let right = batch(vec![
            ("k", ints(&[Some(1), Some(1), Some(3)])),
            ("b", strs(&[Some("x"), Some("y"), Some("z")])),
        ]);
        let h = harness(vec![("l", left.clone()), ("r", right.clone())]);
        let cfg: JoinConfig =
            toml::from_str("left = \"l\"\njoin = [{ input = \"r\", on = [\"k\"], how = \"full\" }]\n").unwrap();

        // Batches end after the left row that reaches `batch_rows`.
        let plan = Plan::new(&cfg.join[0], "l", &left.schema(), &right.schema()).unwrap();
        let mut j = Joiner::build(plan, &h.cx.inputs["r"], 2).unwrap();
        let mut sizes = Vec::new();
        j.probe(&left, &mut |b| {
            sizes.push(b.num_rows());
            Ok(())
        })
        .unwrap();
        j.unmatched_right(&mut |b| {
            sizes.push(b.num_rows());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [2, 3, 1]);

        let out = execute(&cfg, &h.cx, 2).unwrap();
        let (_, batches) = read_all(&out.datasets[0]).unwrap();
        let (_, rows) = table(&batches);
        assert_eq!(rows, ["1|x", "1|y", "2|null", "1|x", "1|y", "3|z"]);
        assert_eq!(out.metrics.rows_out, 6);
    }

    fn problems(config: &str) -> Vec<String> {
        let value = toml::Value::Table(toml::from_str(config).unwrap());
        match KIND.check(value) {
            Ok(p) => p.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect(),
            Err((path, msg)) => vec![format!("{path}: {msg}")],
        }
    }

    #[test]
    fn config_is_checked_before_anything_runs() {
        assert!(problems(EXAMPLE.trim_start_matches("kind = \"transform.join\"\n")).is_empty());
        assert_eq!(
            problems("left = \"orders\""),
            ["join: nothing to join: add at least one `[[join]]`"]
        );
        let p = problems(
            "left = \"\"\njoin = [{ input = \"c\", on = [] }, { input = \"p\", on = [\"a\", \"a\"], suffix = \"\" }, \
             { input = \"q\", on = { a = \"x\", b = \"x\" }, columns = [\"y\", \"y\"] }]",
        );
        assert_eq!(
            p,
            [
                "left: `left` is empty",
                "join[0].on: no key columns",
                "join[1].on: key column `a` is listed twice",
                "join[1].suffix: `suffix` is empty",
                "join[2].on: right key column `x` is paired with two left columns",
                "join[2].columns: column `y` is listed twice",
            ]
        );
        let p = problems("left = \"o\"\njoin = [{ input = \"c\", on = [\"k\"], how = \"right\" }]");
        assert!(p[0].starts_with("join[0].how: unknown variant `right`"), "{p:?}");
        let p = problems("left = \"o\"\njoin = [{ input = \"c\", on = 5 }]");
        assert!(p[0].contains("a list of column names"), "{p:?}");
        let p = problems("left = \"o\"\njoin = [{ input = \"c\", on = [\"k\"], using = [\"k\"] }]");
        assert!(p[0].contains("unknown field `using`"), "{p:?}");
    }
}
