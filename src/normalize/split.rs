//! The split: one flat batch into one deduplicated batch per entity.
//!
//! For each entity, rows are grouped by a 128-bit hash of the key columns
//! (as `dedupe` does); within a key, each distinct combination of attribute
//! values is a *variant*, with its row count and its first and last row.
//! A key with more than one variant breaks key -> attributes; the entity's
//! `on_violation` decides which variant survives (or fails the task, or
//! quarantines the key's rows). Entity rows come out in the order their
//! key first appears in the input.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::mask::PiiColumns;
use super::model::{EntityPlan, OnViolation, Plan};
use super::surrogate::SurrogateKeys;
use crate::data::ops::dedupe::{row_hashes, value_hashes};

/// Settings of one split.
#[derive(Debug, Clone, Default)]
pub struct SplitOptions {
    /// Seeds every surrogate key (see [`super::surrogate`]).
    pub surrogate_salt: String,
    /// Violating keys (and orphans) shown as examples per entity.
    pub examples: usize,
    pub pii: PiiColumns,
}

/// One entity's output.
#[derive(Debug)]
pub struct EntityOutput {
    pub name: String,
    pub batch: RecordBatch,
    /// Rows (not quarantined) with a NULL in a key column.
    pub null_keys: u64,
    /// Rows folded into an earlier row of the same key.
    pub folded: u64,
}

/// The keys of one entity that carry several attribute values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    pub entity: String,
    pub policy: &'static str,
    /// Keys with more than one set of attribute values.
    pub keys: u64,
    /// Input rows of those keys.
    pub rows: u64,
    /// Rows whose values lost to the kept ones (first, last, most_frequent).
    pub rows_overridden: u64,
    /// `{ key: {...}, values: [{ values: {...}, rows: n }, ...] }`, PII masked.
    pub examples: Vec<serde_json::Value>,
}

/// A foreign key checked against the referenced entity's keys.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForeignKeyCheck {
    pub entity: String,
    pub columns: Vec<String>,
    pub references: String,
    pub orphans: u64,
    pub examples: Vec<serde_json::Value>,
}

/// What a split produced.
#[derive(Debug)]
pub struct Split {
    pub entities: Vec<EntityOutput>,
    /// Quarantined input rows (0-based index in the flat input) with reasons.
    pub quarantine: Vec<(usize, String)>,
    pub violations: Vec<Violation>,
    pub foreign_keys: Vec<ForeignKeyCheck>,
    /// Input rows that were not quarantined.
    pub rows_used: u64,
}

const NONE: u32 = u32::MAX;

/// Keys here are already xxh3-128 hashes: hashing them again (SipHash)
/// would only cost time.
#[derive(Default)]
struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type ByHash<V> = HashMap<u128, V, std::hash::BuildHasherDefault<PreHashed>>;

struct Variant {
    attrs: u128,
    count: u32,
    first: u32,
    last: u32,
}

struct Group {
    key: u128,
    variants: Vec<Variant>,
}

impl Group {
    fn rows(&self) -> u64 {
        self.variants.iter().map(|v| v.count as u64).sum()
    }
}

/// The rows of one entity grouped by key.
struct Grouping {
    /// The group of each input row (NONE: NULL in the key).
    row_group: Vec<u32>,
    groups: Vec<Group>,
    null_keys: u64,
}

/// The value hashes of every column an entity's key or attributes read,
/// computed once per split: a column shared by several entities (InvoiceNo
/// keys invoices and groups invoice lines) is hashed once, and a foreign
/// key's hashes are the referencing rows' own. The normalize step computes
/// them while it reads its input (see [`split_with`]).
pub struct ColumnHashes(HashMap<String, Vec<u128>>);

impl ColumnHashes {
    /// The columns a split of `plan` hashes: keys, the attributes whose
    /// variants are counted (not a line entity's), and foreign keys.
    pub fn needed(plan: &Plan) -> Vec<String> {
        let mut names: Vec<String> = plan
            .entities
            .iter()
            .flat_map(|e| {
                let attrs = e.spec.line_number.is_none().then_some(&e.spec.attributes);
                let others = attrs
                    .into_iter()
                    .flatten()
                    .chain(e.foreign_keys.iter().flat_map(|fk| &fk.columns));
                grouping_key(e).into_iter().chain(others.cloned())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Hashes computed elsewhere: [`value_hashes`] of each named column.
    pub fn from_columns(columns: impl IntoIterator<Item = (String, Vec<u128>)>) -> Self {
        Self(columns.into_iter().collect())
    }

    /// Whether these are the hashes of every column of `plan` over `rows` rows.
    fn cover(&self, plan: &Plan, rows: usize) -> bool {
        Self::needed(plan)
            .iter()
            .all(|c| self.0.get(c).is_some_and(|h| h.len() == rows))
    }

    /// Computes the hashes, a thread per column.
    fn of(plan: &Plan, flat: &RecordBatch) -> Result<Self> {
        std::thread::scope(|s| {
            let handles: Vec<_> = Self::needed(plan)
                .into_iter()
                .map(|name| {
                    s.spawn(move || {
                        let col = flat.column_by_name(&name).expect("checked");
                        value_hashes(col.as_ref()).map(|h| (name, h))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a column hasher panicked"))
                .collect::<Result<_>>()
                .map(Self)
        })
    }

    /// Each row's hash over `cols` (in this order); `None` for no columns.
    fn rows(&self, cols: &[String]) -> Option<Cow<'_, [u128]>> {
        match cols {
            [] => None,
            [one] => Some(Cow::Borrowed(&self.0[one])),
            many => {
                let cols: Vec<&[u128]> = many.iter().map(|c| self.0[c].as_slice()).collect();
                Some(Cow::Owned(row_hashes(&cols)))
            }
        }
    }
}

/// The columns an entity's rows are grouped by: its key without a
/// generated line number.
fn grouping_key(e: &EntityPlan) -> Vec<String> {
    e.spec
        .key
        .iter()
        .filter(|c| Some(*c) != e.spec.line_number.as_ref())
        .cloned()
        .collect()
}

fn group(e: &EntityPlan, flat: &RecordBatch, hashes: &ColumnHashes) -> Result<Grouping> {
    let n = flat.num_rows();
    let key_cols = grouping_key(e);
    let key_h = hashes.rows(&key_cols).unwrap_or_else(|| Cow::Owned(vec![0; n]));
    // A line entity's rows are all kept: its attributes are not compared.
    let attr_h = match e.spec.line_number {
        None => hashes.rows(&e.spec.attributes),
        Some(_) => None,
    };
    let attrs_of = |row: usize| attr_h.as_ref().map_or(0, |h| h[row]);
    // Only the key columns that have NULLs are looked at row by row.
    let key_arrays: Vec<&ArrayRef> = key_cols
        .iter()
        .map(|c| flat.column_by_name(c).expect("checked"))
        .filter(|a| a.null_count() > 0)
        .collect();
    let mut index: ByHash<u32> = ByHash::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut row_group = vec![NONE; n];
    let mut null_keys = 0;
    for row in 0..n {
        if key_arrays.iter().any(|a| a.is_null(row)) {
            null_keys += 1;
            continue;
        }
        let g = *index.entry(key_h[row]).or_insert_with(|| {
            groups.push(Group {
                key: key_h[row],
                variants: Vec::new(),
            });
            (groups.len() - 1) as u32
        });
        row_group[row] = g;
        let grp = &mut groups[g as usize];
        let r = row as u32;
        let attrs = attrs_of(row);
        match grp.variants.iter_mut().find(|v| v.attrs == attrs) {
            Some(v) => {
                v.count += 1;
                v.last = r;
            }
            None => grp.variants.push(Variant {
                attrs,
                count: 1,
                first: r,
                last: r,
            }),
        }
    }
    Ok(Grouping {
        row_group,
        groups,
        null_keys,
    })
}

fn text(col: &ArrayRef, row: usize) -> Option<String> {
    if col.is_null(row) {
        return None;
    }
    ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())
        .ok()
        .map(|f| f.value(row).to_string())
}

fn values_json(flat: &RecordBatch, cols: &[String], row: usize, pii: &PiiColumns) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for c in cols {
        let col = flat.column_by_name(c).expect("checked");
        m.insert(c.clone(), pii.show(c, text(col, row)));
    }
    serde_json::Value::Object(m)
}

fn describe_key(flat: &RecordBatch, cols: &[String], row: usize, pii: &PiiColumns) -> String {
    cols.iter()
        .map(|c| {
            let v = pii.show(c, text(flat.column_by_name(c).expect("checked"), row));
            format!("{c}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn violations_of(e: &EntityPlan, g: &Grouping, flat: &RecordBatch, opts: &SplitOptions) -> Option<Violation> {
    if e.spec.line_number.is_some() {
        return None;
    }
    let bad: Vec<&Group> = g.groups.iter().filter(|g| g.variants.len() > 1).collect();
    if bad.is_empty() {
        return None;
    }
    let mut v = Violation {
        entity: e.name.clone(),
        policy: e.spec.on_violation.name(),
        keys: bad.len() as u64,
        rows: bad.iter().map(|g| g.rows()).sum(),
        rows_overridden: 0,
        examples: Vec::new(),
    };
    if matches!(
        e.spec.on_violation,
        OnViolation::First | OnViolation::Last | OnViolation::MostFrequent
    ) {
        v.rows_overridden = bad
            .iter()
            .map(|g| g.rows() - g.variants[choose(g, e.spec.on_violation).0].count as u64)
            .sum();
    }
    for g in bad.iter().take(opts.examples) {
        let mut variants: Vec<&Variant> = g.variants.iter().collect();
        variants.sort_by_key(|v| (std::cmp::Reverse(v.count), v.first));
        v.examples.push(serde_json::json!({
            "key": values_json(flat, &e.spec.key, g.variants[0].first as usize, &opts.pii),
            "values": variants.iter().map(|x| serde_json::json!({
                "values": values_json(flat, &e.spec.attributes, x.first as usize, &opts.pii),
                "rows": x.count,
            })).collect::<Vec<_>>(),
        }));
    }
    Some(v)
}

/// The surviving variant of a group and the row that represents it.
fn choose(g: &Group, policy: OnViolation) -> (usize, u32) {
    let pick = match policy {
        OnViolation::Last => (0..g.variants.len()).max_by_key(|&i| g.variants[i].last),
        OnViolation::MostFrequent => {
            (0..g.variants.len()).max_by_key(|&i| (g.variants[i].count, std::cmp::Reverse(g.variants[i].first)))
        }
        _ => (0..g.variants.len()).min_by_key(|&i| g.variants[i].first),
    }
    .expect("a group has a variant");
    let v = &g.variants[pick];
    (pick, if policy == OnViolation::Last { v.last } else { v.first })
}

/// Checks that every entity's columns exist in the input.
fn check_columns(plan: &Plan, schema: &Schema) -> Result<()> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for e in &plan.entities {
        for c in e.input_columns() {
            if !names.contains(&c.as_str()) {
                bail!(
                    "entity `{}`: no column `{c}` in the input ({})",
                    e.name,
                    crate::spec::diagnostic::unknown_name_hint(&c, &names)
                );
            }
        }
        for c in e.spec.surrogate_key.iter().chain(&e.spec.line_number) {
            if names.contains(&c.as_str()) {
                bail!(
                    "entity `{}`: `{c}` is generated but the input already has a column `{c}`; rename one",
                    e.name
                );
            }
        }
    }
    Ok(())
}

/// Splits `flat` into the plan's entities.
pub fn split(plan: &Plan, flat: &RecordBatch, opts: &SplitOptions) -> Result<Split> {
    split_with(plan, flat, None, opts, |_, _| Ok(())).map(|(split, _)| split)
}

/// [`split`], handing each entity's table to `sink` (with the entity's
/// name) on a thread of its own as soon as it is built; returns the sink's
/// results in entity order. The caller writes tables there, overlapping
/// the rest of the split. `hashes`, when the caller has them, are the
/// [`ColumnHashes::needed`] columns' [`value_hashes`] over `flat`.
pub fn split_with<T: Send>(
    plan: &Plan,
    flat: &RecordBatch,
    hashes: Option<ColumnHashes>,
    opts: &SplitOptions,
    sink: impl Fn(&str, &RecordBatch) -> Result<T> + Sync,
) -> Result<(Split, Vec<T>)> {
    check_columns(plan, flat.schema_ref())?;
    let (mut groupings, mut hashes) = group_all(plan, flat, hashes)?;
    let violations: Vec<Violation> = plan
        .entities
        .iter()
        .zip(&groupings)
        .filter_map(|(e, g)| violations_of(e, g, flat, opts))
        .collect();
    if let Some(v) = violations.iter().find(|v| v.policy == "fail") {
        bail!(
            "entity `{}`: {} keys have several values of their attributes ({} rows), e.g. {}; \
             choose `on_violation = \"first\" | \"last\" | \"most_frequent\" | \"quarantine\"`, \
             or move the varying columns to another entity",
            v.entity,
            v.keys,
            v.rows,
            v.examples.first().map(|x| x.to_string()).unwrap_or_default()
        );
    }

    // Quarantine: every row of a violating key leaves the input, then the
    // remaining rows are grouped again.
    let mut quarantine: Vec<(usize, String)> = Vec::new();
    let mut out_of: Vec<bool> = vec![false; flat.num_rows()];
    for (e, g) in plan.entities.iter().zip(&groupings) {
        if e.spec.on_violation != OnViolation::Quarantine || e.spec.line_number.is_some() {
            continue;
        }
        for (row, &gi) in g.row_group.iter().enumerate() {
            if gi != NONE && g.groups[gi as usize].variants.len() > 1 && !out_of[row] {
                out_of[row] = true;
                quarantine.push((
                    row,
                    format!(
                        "entity `{}`: key {} has {} different values of {}",
                        e.name,
                        describe_key(flat, &e.spec.key, row, &opts.pii),
                        g.groups[gi as usize].variants.len(),
                        e.spec.attributes.join(", ")
                    ),
                ));
            }
        }
    }
    quarantine.sort_by_key(|(r, _)| *r);
    let kept;
    let flat = if quarantine.is_empty() {
        flat
    } else {
        let mask: BooleanArray = out_of.iter().map(|q| Some(!q)).collect();
        kept = arrow::compute::filter_record_batch(flat, &mask)?;
        (groupings, hashes) = group_all(plan, &kept, None)?;
        &kept
    };

    // Each entity's table is built on a thread of its own, handed to the
    // main thread (the foreign key checks need every entity's rows), then
    // given to `sink` on that thread: a table's Parquet write overlaps the
    // other tables' builds and the foreign key checks.
    let (tx, built) = std::sync::mpsc::channel::<(usize, Option<(Vec<u32>, RecordBatch)>)>();
    let (tables, sunk, foreign_keys) = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .entities
            .iter()
            .zip(&groupings)
            .enumerate()
            .map(|(i, (e, g))| {
                let (hashes, groupings, tx, sink) = (&hashes, groupings.as_slice(), tx.clone(), &sink);
                s.spawn(move || -> Result<Option<T>> {
                    let (rows, line_numbers) = representative_rows(e, g);
                    let batch = match build(e, plan, groupings, flat, hashes, &rows, line_numbers, opts) {
                        Ok(b) => b,
                        Err(err) => {
                            let _ = tx.send((i, None));
                            return Err(err);
                        }
                    };
                    let _ = tx.send((i, Some((rows, batch.clone()))));
                    sink(&e.name, &batch).map(Some)
                })
            })
            .collect();
        drop(tx);
        let mut tables: Vec<Option<(Vec<u32>, RecordBatch)>> = vec![None; plan.entities.len()];
        for (i, table) in built {
            tables[i] = table;
        }
        let foreign_keys = tables.iter().all(Option::is_some).then(|| {
            let rows_of: HashMap<&str, &[u32]> = plan
                .entities
                .iter()
                .zip(&tables)
                .map(|(e, t)| (e.name.as_str(), t.as_ref().expect("built").0.as_slice()))
                .collect();
            check_foreign_keys(plan, flat, &groupings, &hashes, &rows_of, opts)
        });
        let sunk: Result<Vec<Option<T>>> = handles
            .into_iter()
            .map(|h| h.join().expect("an entity builder panicked"))
            .collect();
        (tables, sunk, foreign_keys)
    });
    let sunk = sunk?.into_iter().map(|t| t.expect("every table was built")).collect();
    let entities = plan
        .entities
        .iter()
        .zip(&groupings)
        .zip(tables)
        .map(|((e, g), t)| {
            let (_, batch) = t.expect("every table was built");
            let used = flat.num_rows() as u64 - g.null_keys;
            EntityOutput {
                name: e.name.clone(),
                folded: used - batch.num_rows() as u64,
                batch,
                null_keys: g.null_keys,
            }
        })
        .collect();
    Ok((
        Split {
            entities,
            quarantine,
            violations,
            foreign_keys: foreign_keys.expect("every table was built"),
            rows_used: flat.num_rows() as u64,
        },
        sunk,
    ))
}

/// Every entity's grouping of `flat`, one thread per entity (they only
/// read the batch), and the column hashes they used.
fn group_all(plan: &Plan, flat: &RecordBatch, known: Option<ColumnHashes>) -> Result<(Vec<Grouping>, ColumnHashes)> {
    let hashes = match known {
        Some(h) if h.cover(plan, flat.num_rows()) => h,
        _ => ColumnHashes::of(plan, flat)?,
    };
    // A line entity grouped like another entity (invoice lines by their
    // invoice) takes that entity's groups: it only numbers its rows within
    // them, so it needs their rows, not their attribute variants.
    let twin_of = |e: &EntityPlan| {
        e.spec.line_number.as_ref()?;
        let key = grouping_key(e);
        plan.entities
            .iter()
            .position(|o| o.spec.line_number.is_none() && grouping_key(o) == key)
    };
    let twins: Vec<Option<usize>> = plan.entities.iter().map(twin_of).collect();
    let mut groupings: Vec<Option<Grouping>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .entities
            .iter()
            .zip(&twins)
            .map(|(e, twin)| {
                let hashes = &hashes;
                s.spawn(move || twin.is_none().then(|| group(e, flat, hashes)).transpose())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an entity grouping panicked"))
            .collect::<Result<_>>()
    })?;
    for (i, twin) in twins.iter().enumerate() {
        if let Some(t) = *twin {
            let g = groupings[t].as_ref().expect("a twin is grouped itself");
            groupings[i] = Some(Grouping {
                row_group: g.row_group.clone(),
                groups: g
                    .groups
                    .iter()
                    .map(|x| Group {
                        key: x.key,
                        variants: Vec::new(),
                    })
                    .collect(),
                null_keys: g.null_keys,
            });
        }
    }
    let groupings = groupings
        .into_iter()
        .map(|g| g.expect("every entity grouped"))
        .collect();
    Ok((groupings, hashes))
}

/// The input row behind each entity row, and line numbers for line entities.
fn representative_rows(e: &EntityPlan, g: &Grouping) -> (Vec<u32>, Option<Vec<i64>>) {
    if e.spec.line_number.is_some() {
        let mut next = vec![0i64; g.groups.len()];
        let mut rows = Vec::new();
        let mut numbers = Vec::new();
        for (row, &gi) in g.row_group.iter().enumerate() {
            if gi != NONE {
                next[gi as usize] += 1;
                rows.push(row as u32);
                numbers.push(next[gi as usize]);
            }
        }
        return (rows, Some(numbers));
    }
    let rows = g.groups.iter().map(|grp| choose(grp, e.spec.on_violation).1).collect();
    (rows, None)
}

/// Assembles an entity's output columns from its representative rows.
#[allow(clippy::too_many_arguments)]
fn build(
    e: &EntityPlan,
    plan: &Plan,
    groupings: &[Grouping],
    flat: &RecordBatch,
    hashes: &ColumnHashes,
    rows: &[u32],
    line_numbers: Option<Vec<i64>>,
    opts: &SplitOptions,
) -> Result<RecordBatch> {
    // A line entity keeps every row in input order: its columns are the
    // input's, shared, not copied.
    let every_row = rows.len() == flat.num_rows() && rows.iter().enumerate().all(|(i, &r)| r as usize == i);
    let idx = UInt32Array::from(if every_row { Vec::new() } else { rows.to_vec() });
    let taken = |c: &str| -> Result<ArrayRef> {
        let col = flat.column_by_name(c).expect("checked");
        Ok(if every_row {
            col.clone()
        } else {
            take(col.as_ref(), &idx, None)?
        })
    };
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for name in e.output_columns() {
        let (field, array) = if Some(&name) == e.spec.surrogate_key.as_ref() {
            let natural = e.spec.key.iter().map(|c| taken(c)).collect::<Result<Vec<_>>>()?;
            let arr = SurrogateKeys::new(&opts.surrogate_salt).column(&e.name, &natural)?;
            (Field::new(&name, DataType::Int64, false), Arc::new(arr) as ArrayRef)
        } else if Some(&name) == e.spec.line_number.as_ref() {
            let nums = Int64Array::from(line_numbers.clone().unwrap_or_default());
            (Field::new(&name, DataType::Int64, false), Arc::new(nums) as ArrayRef)
        } else if let Some(fk) = e.foreign_keys.iter().find(|f| f.surrogate.as_ref() == Some(&name)) {
            let natural: Vec<ArrayRef> = fk
                .columns
                .iter()
                .map(|c| flat.column_by_name(c).expect("checked").clone())
                .collect();
            let fk_hashes = hashes.rows(&fk.columns).expect("a foreign key has columns");
            let keys = SurrogateKeys::new(&opts.surrogate_salt);
            // One surrogate per distinct foreign key (lines repeat
            // products): kept per group of the referenced entity when it is
            // grouped by these very columns (an index, no hash lookup per
            // row), else per hash.
            let referenced = plan
                .entities
                .iter()
                .position(|x| x.name == fk.references && grouping_key(x) == fk.columns)
                .map(|i| &groupings[i]);
            let mut by_group: Vec<Option<i64>> = vec![None; referenced.map_or(0, |g| g.groups.len())];
            let mut by_hash: ByHash<Option<i64>> = ByHash::default();
            let mut out = Vec::with_capacity(rows.len());
            for &row in rows {
                let row = row as usize;
                if natural.iter().any(|a| a.null_count() > 0 && a.is_null(row)) {
                    out.push(None);
                    continue;
                }
                let slot = match referenced.map(|g| g.row_group[row]) {
                    Some(g) if g != NONE => &mut by_group[g as usize],
                    _ => by_hash.entry(fk_hashes[row]).or_insert(None),
                };
                let k = match *slot {
                    Some(k) => k,
                    None => *slot.insert(keys.key_of(&SurrogateKeys::encode(&natural, row)?)),
                };
                out.push(Some(k));
            }
            (
                Field::new(&name, DataType::Int64, true),
                Arc::new(Int64Array::from(out)) as ArrayRef,
            )
        } else {
            let f = flat.schema().field_with_name(&name)?.clone();
            let key = e.spec.key.contains(&name);
            (f.with_nullable(!key), taken(&name)?)
        };
        fields.push(field);
        cols.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).with_context(|| format!("assembling entity `{}`", e.name))
}

fn check_foreign_keys(
    plan: &Plan,
    flat: &RecordBatch,
    groupings: &[Grouping],
    hashes: &ColumnHashes,
    rows_of: &HashMap<&str, &[u32]>,
    opts: &SplitOptions,
) -> Vec<ForeignKeyCheck> {
    let mut out = Vec::new();
    for e in &plan.entities {
        for fk in &e.foreign_keys {
            let ri = plan
                .entities
                .iter()
                .position(|x| x.name == fk.references)
                .expect("references an entity");
            let known: HashSet<u128, std::hash::BuildHasherDefault<PreHashed>> =
                groupings[ri].groups.iter().map(|g| g.key).collect();
            // The entity's rows are input rows: their foreign keys' hashes
            // are the input's.
            let rows = rows_of[e.name.as_str()];
            let all = hashes.rows(&fk.columns).expect("a foreign key has columns");
            let cols: Vec<&ArrayRef> = fk
                .columns
                .iter()
                .map(|c| flat.column_by_name(c).expect("checked"))
                .collect();
            let orphan_rows = orphans(rows.iter().map(|&r| all[r as usize]), &known, |i| {
                cols.iter().any(|a| a.is_null(rows[i] as usize))
            });
            out.push(ForeignKeyCheck {
                entity: e.name.clone(),
                columns: fk.columns.clone(),
                references: fk.references.clone(),
                orphans: orphan_rows.len() as u64,
                examples: orphan_rows
                    .iter()
                    .take(opts.examples)
                    .map(|&i| values_json(flat, &fk.columns, rows[i] as usize, &opts.pii))
                    .collect(),
            });
        }
    }
    out
}

/// Rows (positions in `hashes`) whose foreign key hash is not among the
/// referenced keys (rows with a NULL in the foreign key are not orphans).
pub fn orphans<S: std::hash::BuildHasher>(
    hashes: impl Iterator<Item = u128>,
    known: &HashSet<u128, S>,
    is_null: impl Fn(usize) -> bool,
) -> Vec<usize> {
    hashes
        .enumerate()
        .filter(|&(r, h)| !known.contains(&h) && !is_null(r))
        .map(|(r, _)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_skip_nulls_and_known_keys() {
        let known: HashSet<u128> = [1, 2].into_iter().collect();
        assert_eq!(orphans([1, 3, 2, 4].into_iter(), &known, |r| r == 3), vec![1]);
    }
}
