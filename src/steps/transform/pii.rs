//! `transform.pii`: drop, mask, pseudonymize, tokenize, generalize, split
//! and redact PII, one action per column, so that nothing downstream (an
//! artifact, a log line, the warehouse) holds the raw values.
//!
//! Every action reads the step's input columns as they arrived, so the
//! order of `[columns]` does not matter: `order_id` can be pseudonymized
//! from `timestamp` and `total` even when another entry changes `total`.
//! Output columns keep the input's order; a `split` column is replaced in
//! place by its parts; new columns (`pseudonymize` with `from`) come last.
//!
//! Row accounting: a row whose value cannot be generalized (a date that is
//! not a date) goes to the quarantine, with every column this step acts on
//! written as `<redacted>` and a reason naming the column, never the value.
//!
//! After its output is complete the step deletes the input artifact it read
//! (`purge_input`, default true): the raw values existed on disk only
//! between the upstream task and this one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use serde::{Deserialize, Deserializer};

use crate::data::artifact::{DatasetWriter, open};
use crate::data::ops::{filter, row_values};
use crate::data::quarantine::BadRowLimit;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::pii::columns::{as_text, map_text};
use crate::pii::detect::Kind;
use crate::pii::generalize::{self, DatePart};
use crate::pii::key::KeySource;
use crate::pii::mask::Mask;
use crate::pii::pseudonym::{self, Encoding, Pseudonymizer};
use crate::pii::redact_text::{Redactor, Replace};
use crate::pii::tokenize::Tokenizer;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<PiiConfig>(
    "transform.pii",
    "drops, masks, pseudonymizes, tokenizes, generalizes or redacts PII columns",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "transform.pii"
# The key for pseudonyms and tokens: never in this file. For production use
# key = { env = "NIGHTJAR_PII_KEY" }; this file key is made on first use.
key = { file = ".nightjar/pii.key", generate = true }

[columns]
customer_name = "drop"
card = { action = "split", into = ["card_type", "card_number"], then = { card_number = { action = "mask", keep_last = 4 } } }
email = { action = "pseudonymize", length = 16 }
order_id = { action = "pseudonymize", from = ["timestamp", "branch", "total"] }
iban = { action = "tokenize" }
notes = { action = "redact_text", kinds = ["email", "phone", "card"] }
birth_date = { action = "generalize", to = "year" }
postcode = { action = "generalize", to = "district" }
age = { action = "generalize", bucket = 10 }
"#;

/// `replace` of `redact_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplaceWith {
    /// `[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`, `[IP]`, `[NI]`, `[SSN]`.
    #[default]
    Label,
    /// `[EMAIL:<pseudonym>]`: the same address reads the same everywhere.
    Pseudonym,
}

/// `to` of `generalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneralizeTo {
    /// A date or timestamp -> `YYYY-MM`.
    Month,
    /// A date or timestamp -> `YYYY`.
    Year,
    /// A postcode -> its district (`SW1A 1AA` -> `SW1A`).
    District,
}

/// What to do with one column. Write `"drop"` alone, or a table with
/// `action` and the action's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Remove the column.
    Drop,
    /// Replace characters with `char`, keeping the first `keep_first` and
    /// the last `keep_last` (default 4): `4891633226863` -> `*********6863`.
    /// `keep_separators` leaves spaces and dashes in place.
    Mask {
        #[serde(default)]
        keep_first: usize,
        #[serde(default = "four")]
        keep_last: usize,
        #[serde(default = "star", rename = "char")]
        mask_char: char,
        #[serde(default)]
        keep_separators: bool,
    },
    /// Keyed HMAC-SHA256 of the value (needs `key`): deterministic, so joins
    /// on the pseudonym work across tables and days; `encoding` hex
    /// (default) or base64, cut to `length` characters (default 16, at
    /// least 8). With `from = ["a", "b"]` the column is new, computed from
    /// those columns together (e.g. a stable order id).
    Pseudonymize {
        #[serde(default)]
        from: Vec<String>,
        #[serde(default)]
        encoding: Encoding,
        length: Option<usize>,
        /// Standardize the value first (one column, not `from`): `"trim"`
        /// or `"lower"` (trimmed and lower-cased, so ` Ann@X.com` and
        /// `ann@x.com` get one pseudonym).
        #[serde(default)]
        normalize: Normalize,
    },
    /// A reversible deterministic token (AES-SIV, needs `key`):
    /// `tok_...`; `nightjar pii detokenize` reads it back with the key.
    /// `context` binds tokens to a domain (they only decrypt with it).
    Tokenize {
        #[serde(default)]
        context: String,
        /// Standardize the value first: `"trim"` or `"lower"` (trimmed and
        /// lower-cased: emails). Detokenizing gives the standardized value.
        #[serde(default)]
        normalize: Normalize,
    },
    /// Find PII inside free text and replace it: `kinds` (default all of
    /// email, card, iban, ipv4, ipv6, uk_ni, us_ssn, phone), `replace` =
    /// "label" (`[EMAIL]`) or "pseudonym" (`[EMAIL:3f9a...]`, needs `key`).
    RedactText {
        #[serde(default)]
        kinds: Vec<Kind>,
        #[serde(default)]
        replace: ReplaceWith,
    },
    /// Keep a coarser value: `to = "month" | "year"` for dates, `to =
    /// "district"` for postcodes, or `bucket = 10` for numbers (`37` ->
    /// `30-39`). A value that does not parse sends its row to the quarantine.
    Generalize {
        to: Option<GeneralizeTo>,
        bucket: Option<f64>,
    },
    /// Split a combined value (`"visa16,4924515776335673"`) at `sep`
    /// (default `,`) into the columns `into`, then apply `then` to the
    /// parts. `None`, `null` and empty values give null parts.
    Split {
        #[serde(default = "comma")]
        sep: String,
        into: Vec<String>,
        #[serde(default)]
        then: BTreeMap<String, ColumnAction>,
    },
}

/// How a value is standardized before it is pseudonymized or tokenized:
/// the step that protects a column is the last to see its raw value, so it
/// is also where a case-insensitive value (an email) is made canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// The value as it is (default).
    #[default]
    None,
    /// Leading and trailing white space removed.
    Trim,
    /// Trimmed and lower-cased.
    Lower,
}

impl Normalize {
    fn apply<'a>(self, v: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Normalize::None => v.into(),
            Normalize::Trim => v.trim().into(),
            Normalize::Lower => v.trim().to_lowercase().into(),
        }
    }
}

fn four() -> usize {
    4
}
fn star() -> char {
    '*'
}
fn comma() -> String {
    ",".into()
}

/// An [`Action`], written as `"drop"` or as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnAction(pub Action);

impl<'de> Deserialize<'de> for ColumnAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        let v = match v {
            toml::Value::String(s) => {
                let mut t = toml::Table::new();
                t.insert("action".into(), toml::Value::String(s));
                toml::Value::Table(t)
            }
            other => other,
        };
        v.try_into::<Action>()
            .map(ColumnAction)
            .map_err(serde::de::Error::custom)
    }
}

/// Protects the PII columns of one dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Where the key of `pseudonymize`, `tokenize` and pseudonym
    /// replacements comes from: `{ env = "NIGHTJAR_PII_KEY" }` (validate
    /// fails when the variable is not set) or `{ file = "...", generate =
    /// true }`. Never the key itself.
    pub key: Option<KeySource>,
    /// One action per column: `{ card = { action = "mask" } }`.
    pub columns: BTreeMap<String, ColumnAction>,
    /// Delete the input artifact (the raw values) once this step's output
    /// is complete. Default true.
    #[serde(default = "yes")]
    pub purge_input: bool,
    /// Rows whose value cannot be generalized go to the quarantine; past
    /// this many (a count or "0.5%") the task fails. Default 0.
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
}

fn yes() -> bool {
    true
}

impl Action {
    fn needs_key(&self) -> bool {
        match self {
            Action::Pseudonymize { .. } | Action::Tokenize { .. } => true,
            Action::RedactText { replace, .. } => *replace == ReplaceWith::Pseudonym,
            Action::Split { then, .. } => then.values().any(|a| a.0.needs_key()),
            _ => false,
        }
    }

    fn check(&self, path: &str, p: &mut Vec<ConfigProblem>) {
        match self {
            Action::Pseudonymize { encoding, length, .. } => {
                let max = Pseudonymizer::max_length(*encoding);
                if let Some(n) = length
                    && !(pseudonym::MIN_LENGTH..=max).contains(n)
                {
                    p.push(
                        ConfigProblem::new(format!("{path}.length"), format!("length {n} is out of range")).hint(
                            format!(
                                "{} to {max} characters; shorter pseudonyms collide",
                                pseudonym::MIN_LENGTH
                            ),
                        ),
                    );
                }
            }
            Action::Generalize { to, bucket } => match (to, bucket) {
                (None, None) | (Some(_), Some(_)) => p.push(
                    ConfigProblem::new(path, "give `to` (month, year, district) or `bucket`, one of them")
                        .hint("e.g. { action = \"generalize\", to = \"month\" }"),
                ),
                (None, Some(b)) if !(*b > 0.0 && b.is_finite()) => p.push(ConfigProblem::new(
                    format!("{path}.bucket"),
                    "`bucket` must be positive",
                )),
                _ => {}
            },
            Action::Split { sep, into, then } => {
                if sep.is_empty() {
                    p.push(ConfigProblem::new(format!("{path}.sep"), "`sep` is empty"));
                }
                if into.len() < 2 {
                    p.push(
                        ConfigProblem::new(format!("{path}.into"), "`into` names at least two columns")
                            .hint("into = [\"card_type\", \"card_number\"]"),
                    );
                }
                for (col, a) in then {
                    let at = format!("{path}.then.{col}");
                    if !into.contains(col) {
                        p.push(
                            ConfigProblem::new(at.clone(), format!("`{col}` is not one of `into`")).hint(
                                crate::spec::diagnostic::unknown_name_hint(
                                    col,
                                    &into.iter().map(String::as_str).collect::<Vec<_>>(),
                                ),
                            ),
                        );
                    }
                    match &a.0 {
                        Action::Split { .. } => p.push(ConfigProblem::new(at, "a split part cannot be split again")),
                        Action::Pseudonymize { from, .. } if !from.is_empty() => {
                            p.push(ConfigProblem::new(at, "`from` is not allowed on a split part"))
                        }
                        other => other.check(&at, p),
                    }
                }
            }
            Action::Mask { .. } | Action::Drop | Action::Tokenize { .. } | Action::RedactText { .. } => {}
        }
    }
}

impl StepConfig for PiiConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.columns.is_empty() {
            p.push(ConfigProblem::new("columns", "no columns to protect").hint("columns = { email = \"drop\" }"));
        }
        for (col, a) in &self.columns {
            a.0.check(&format!("columns.{col}"), &mut p);
        }
        let needs_key = self.columns.values().any(|a| a.0.needs_key());
        match &self.key {
            None if needs_key => p.push(
                ConfigProblem::new("key", "pseudonymize, tokenize and pseudonym replacements need a key")
                    .hint("key = { env = \"NIGHTJAR_PII_KEY\" } (the key itself never goes in a file of the project)"),
            ),
            Some(k) => {
                for (msg, hint) in k.problems() {
                    p.push(ConfigProblem::new("key", msg).hint(hint));
                }
            }
            None => {}
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Pii { cfg: Arc::new(self) }))
    }
}

struct Pii {
    cfg: Arc<PiiConfig>,
}

/// The key-dependent parts, made once per run.
struct Keys {
    master: Option<Vec<u8>>,
}

impl Keys {
    fn master(&self) -> &[u8] {
        self.master.as_deref().expect("checked: a key-needing action has a key")
    }
}

/// What applying the actions to one batch gave.
struct Applied {
    batch: RecordBatch,
    /// Rows to quarantine: (row, column, reason).
    bad: Vec<(usize, String, String)>,
    spans: u64,
}

impl Pii {
    /// The columns whose values must never be written raw: every column
    /// this step acts on, every `from` source, and the DAG's declaration.
    fn protected(&self, cx: &StepContext) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = cx.pii.iter().cloned().collect();
        for (col, a) in &self.cfg.columns {
            match &a.0 {
                Action::Pseudonymize { from, .. } if !from.is_empty() => s.extend(from.iter().cloned()),
                _ => {
                    s.insert(col.clone());
                }
            }
        }
        s
    }

    fn run_blocking(&self, cx: &StepContext) -> Result<StepOutput> {
        let input = cx.single_input()?.clone();
        let keys = Keys {
            master: match &self.cfg.key {
                Some(k) if self.cfg.columns.values().any(|a| a.0.needs_key()) => Some(k.load(&cx.project_dir)?),
                _ => None,
            },
        };
        let mut quarantine = cx.quarantine().redacting(self.protected(cx));
        let source = format!("{}.{}", input.task, input.name);
        let dir = cx.artifact_dir();
        let mut writer: Option<DatasetWriter> = None;
        let (mut rows_in, mut spans, mut first_row) = (0u64, 0u64, 0u64);
        let mut progress = cx.progress("pii");
        let reader = open(&input, DEFAULT_BATCH_ROWS)?;
        let in_schema = arrow::record_batch::RecordBatchReader::schema(&reader);
        for b in reader {
            cx.check_cancelled()?;
            let b = b?;
            rows_in += b.num_rows() as u64;
            let applied = self.apply(&b, &keys)?;
            spans += applied.spans;
            let mut keep = vec![true; b.num_rows()];
            for (row, col, reason) in &applied.bad {
                if !keep[*row] {
                    continue;
                }
                keep[*row] = false;
                let values = row_values(&b, *row);
                quarantine.add(
                    &source,
                    first_row + *row as u64 + 1,
                    Some(col),
                    reason,
                    values.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                )?;
            }
            let out = if applied.bad.is_empty() {
                applied.batch
            } else {
                filter(&applied.batch, &BooleanArray::from(keep))?
            };
            if writer.is_none() {
                writer = Some(DatasetWriter::create(&dir, &cx.task, "default", out.schema())?);
            }
            writer.as_mut().expect("created").write(&out)?;
            progress.add(b.num_rows() as u64, 0);
            first_row += b.num_rows() as u64;
        }
        progress.finish();
        let dataset = match writer {
            Some(w) => w.finish()?,
            None => {
                // No rows at all: the output still has the redacted schema.
                let schema = self.apply(&RecordBatch::new_empty(in_schema), &keys)?.batch.schema();
                DatasetWriter::create(&dir, &cx.task, "default", schema)?.finish()?
            }
        };
        let bad = quarantine.count();
        let qpath = quarantine.path().to_path_buf();
        quarantine.finish()?;
        let mut metrics = Metrics {
            rows_in,
            rows_out: dataset.rows.unwrap_or(0),
            rows_quarantined: bad,
            ..Default::default()
        };
        metrics.extra.insert("redact_text.spans".into(), spans.into());
        metrics.extra.insert("columns".into(), self.cfg.columns.len().into());
        // Column names and counts only: never a value.
        cx.log.note(&format!(
            "{rows_in} rows in: {} out, {bad} quarantined; protected columns: {}; {spans} PII spans redacted in text",
            metrics.rows_out,
            self.cfg.columns.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        self.cfg
            .max_bad_rows
            .check(bad, rows_in, &qpath)
            .map_err(anyhow::Error::msg)?;
        if self.cfg.purge_input {
            purge(cx, &input);
        }
        Ok(StepOutput {
            datasets: vec![dataset],
            metrics,
        })
    }

    /// Applies every action to one batch.
    fn apply(&self, b: &RecordBatch, keys: &Keys) -> Result<Applied> {
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut bad = Vec::new();
        let mut spans = 0u64;
        // Column name -> replacement columns (empty: dropped).
        let mut replaced: BTreeMap<String, Vec<(Field, ArrayRef)>> = BTreeMap::new();
        let mut added: Vec<(Field, ArrayRef)> = Vec::new();
        for (col, a) in &self.cfg.columns {
            if let Action::Pseudonymize {
                from, encoding, length, ..
            } = &a.0
                && !from.is_empty()
            {
                let p = Pseudonymizer::new(keys.master(), *encoding, length.unwrap_or(pseudonym::DEFAULT_LENGTH));
                let sources = from
                    .iter()
                    .map(|c| as_text(column(b, c, &names, &format!("columns.{col}.from"))?))
                    .collect::<Result<Vec<StringArray>>>()?;
                added.push((Field::new(col, DataType::Utf8, true), pseudonym_of_parts(&p, &sources)));
                continue;
            }
            let input = column(b, col, &names, &format!("columns.{col}"))?;
            let parts = match &a.0 {
                Action::Split { sep, into, then } => {
                    let mut parts = split(input, sep, into)?;
                    for (name, arr) in parts.iter_mut() {
                        if let Some(act) = then.get(name) {
                            match apply_one(&act.0, name, arr, keys, &mut bad, &mut spans)? {
                                Some(a) => *arr = a,
                                None => arr.clear_marker(),
                            }
                        }
                    }
                    parts
                        .into_iter()
                        .filter(|(_, a)| !a.is_dropped())
                        .map(|(n, a)| (Field::new(n, a.array().data_type().clone(), true), a.array().clone()))
                        .collect()
                }
                act => match apply_one(act, col, &Part::Kept(input.clone()), keys, &mut bad, &mut spans)? {
                    None => Vec::new(),
                    Some(Part::Kept(arr)) => vec![(Field::new(col, arr.data_type().clone(), true), arr)],
                    Some(Part::Dropped) => Vec::new(),
                },
            };
            replaced.insert(col.clone(), parts);
        }
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for (f, c) in schema.fields().iter().zip(b.columns()) {
            match replaced.remove(f.name()) {
                Some(parts) => {
                    for (pf, pc) in parts {
                        fields.push(pf);
                        cols.push(pc);
                    }
                }
                None => {
                    if added.iter().any(|(af, _)| af.name() == f.name()) {
                        continue; // replaced by a new column of the same name
                    }
                    fields.push(f.as_ref().clone());
                    cols.push(c.clone());
                }
            }
        }
        for (f, c) in added {
            fields.push(f);
            cols.push(c);
        }
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            cols,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )?;
        Ok(Applied { batch, bad, spans })
    }
}

/// A split part, or a column, as an action leaves it.
enum Part {
    Kept(ArrayRef),
    Dropped,
}

impl Part {
    fn array(&self) -> &ArrayRef {
        match self {
            Part::Kept(a) => a,
            Part::Dropped => unreachable!("dropped parts are filtered out first"),
        }
    }
    fn is_dropped(&self) -> bool {
        matches!(self, Part::Dropped)
    }
    fn clear_marker(&mut self) {
        *self = Part::Dropped;
    }
}

/// Applies a single-column action; `None` means the column is dropped.
fn apply_one(
    action: &Action,
    col: &str,
    input: &Part,
    keys: &Keys,
    bad: &mut Vec<(usize, String, String)>,
    spans: &mut u64,
) -> Result<Option<Part>> {
    let arr = input.array();
    let out = match action {
        Action::Drop => return Ok(None),
        Action::Mask {
            keep_first,
            keep_last,
            mask_char,
            keep_separators,
        } => {
            let m = Mask {
                keep_first: *keep_first,
                keep_last: *keep_last,
                ch: *mask_char,
                keep_separators: *keep_separators,
            };
            map_text(arr, |v, out| {
                m.write(v, out);
                true
            })?
        }
        Action::Pseudonymize {
            encoding,
            length,
            normalize,
            ..
        } => {
            let p = Pseudonymizer::new(keys.master(), *encoding, length.unwrap_or(pseudonym::DEFAULT_LENGTH));
            let mut memo = pseudonym::Memo::new(&p);
            map_text(arr, |v, out| {
                memo.write(normalize.apply(v).as_bytes(), out);
                true
            })?
        }
        Action::Tokenize { context, normalize } => {
            let mut t = Tokenizer::from_master(keys.master(), context);
            map_text(arr, |v, out| {
                out.push_str(&t.token(&normalize.apply(v)));
                true
            })?
        }
        Action::RedactText { kinds, replace } => {
            let kinds: Vec<Kind> = if kinds.is_empty() {
                Kind::TEXT.to_vec()
            } else {
                kinds.clone()
            };
            let replace = match replace {
                ReplaceWith::Label => Replace::Label,
                ReplaceWith::Pseudonym => Replace::Pseudonym(Pseudonymizer::new(keys.master(), Encoding::Hex, 16)),
            };
            let r = Redactor::new(&kinds, replace);
            map_text(arr, |v, out| {
                *spans += r.redact_into(v, out) as u64;
                true
            })?
        }
        Action::Generalize { to, bucket } => generalize_column(arr, col, *to, *bucket, bad)?,
        Action::Split { .. } => bail!("column `{col}`: a split part cannot be split again"),
    };
    Ok(Some(Part::Kept(out)))
}

fn generalize_column(
    arr: &ArrayRef,
    col: &str,
    to: Option<GeneralizeTo>,
    bucket: Option<f64>,
    bad: &mut Vec<(usize, String, String)>,
) -> Result<ArrayRef> {
    let mut row = 0usize;
    let mut failed = Vec::new();
    let out = match (to, bucket) {
        (Some(GeneralizeTo::District), _) => map_text(arr, |v, out| {
            out.push_str(&generalize::postcode_district(v));
            true
        })?,
        (Some(t), _) => {
            let part = if t == GeneralizeTo::Month {
                DatePart::Month
            } else {
                DatePart::Year
            };
            let dates = match arr.data_type() {
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
                    Some(arrow::compute::cast(arr, &DataType::Date32)?)
                }
                _ => None,
            };
            match dates {
                Some(d) => {
                    let d = d.as_primitive::<arrow::datatypes::Date32Type>();
                    let s: StringArray = (0..d.len())
                        .map(|i| {
                            d.value_as_date(i)
                                .filter(|_| d.is_valid(i))
                                .map(|x| generalize::date(x, part))
                        })
                        .collect();
                    Arc::new(s)
                }
                None => map_text(arr, |v, out| {
                    let r = row;
                    row += 1;
                    match generalize::parse_date_text(v) {
                        Some(d) => out.push_str(&generalize::date(d, part)),
                        None => failed.push(r),
                    }
                    true
                })?,
            }
        }
        (None, Some(width)) => {
            let integral = matches!(
                arr.data_type(),
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
                    | DataType::UInt64
            );
            map_text(arr, |v, out| {
                let r = row;
                row += 1;
                match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => out.push_str(&generalize::bucket(x, width, integral)),
                    _ => failed.push(r),
                }
                true
            })?
        }
        (None, None) => bail!("column `{col}`: generalize needs `to` or `bucket`"),
    };
    // `map_text` skips nulls, so `row` counted non-null values only: map
    // them back to row positions.
    if !failed.is_empty() {
        let positions: Vec<usize> = (0..arr.len()).filter(|&i| arr.is_valid(i)).collect();
        let what = if bucket.is_some() { "a number" } else { "a date" };
        for r in failed {
            bad.push((
                positions[r],
                col.to_string(),
                format!("column `{col}` is not {what} (value withheld: PII)"),
            ));
        }
    }
    Ok(out)
}

/// A column by name, with a did-you-mean naming the config key.
fn column<'b>(b: &'b RecordBatch, name: &str, names: &[&str], key: &str) -> Result<&'b ArrayRef> {
    b.column_by_name(name).with_context(|| {
        format!(
            "`{key}`: the input has no column `{name}` ({})",
            crate::spec::diagnostic::unknown_name_hint(name, names)
        )
    })
}

/// Splits a text column at `sep` into `into.len()` parts (the last part
/// keeps any further separators). `None`/`null`/empty give null parts.
fn split(arr: &ArrayRef, sep: &str, into: &[String]) -> Result<Vec<(String, Part)>> {
    let text = as_text(arr)?;
    let n = into.len();
    let mut parts: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(text.len()); n];
    for v in text.iter() {
        let v = v
            .map(str::trim)
            .filter(|v| !(v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("null")));
        let mut it = v.map(|v| v.splitn(n, sep));
        for p in parts.iter_mut() {
            p.push(it.as_mut().and_then(|i| i.next()).map(str::trim));
        }
    }
    Ok(into
        .iter()
        .zip(parts)
        .map(|(name, vals)| (name.clone(), Part::Kept(Arc::new(StringArray::from(vals)) as ArrayRef)))
        .collect())
}

/// The pseudonym of several columns read together, row by row (null when
/// every part is null).
fn pseudonym_of_parts(p: &Pseudonymizer, sources: &[StringArray]) -> ArrayRef {
    let rows = sources.first().map_or(0, |s| s.len());
    let mut out = arrow::array::StringBuilder::with_capacity(rows, rows * 16);
    let mut buf = String::new();
    for i in 0..rows {
        if sources.iter().all(|s| s.is_null(i)) {
            out.append_null();
            continue;
        }
        let mac = p.mac_parts(
            sources
                .iter()
                .map(|s| if s.is_null(i) { &b""[..] } else { s.value(i).as_bytes() }),
        );
        buf.clear();
        p.encode(&mac, &mut buf);
        out.append_value(&buf);
    }
    Arc::new(out.finish())
}

/// Deletes the raw input artifact once the redacted output exists.
fn purge(cx: &StepContext, input: &crate::data::DatasetRef) {
    if input.uri.contains("://") {
        cx.log.note(&format!(
            "input `{}` of task `{}` is not a local file: not purged",
            input.name, input.task
        ));
        return;
    }
    match std::fs::remove_file(&input.uri) {
        Ok(()) => cx.log.note(&format!(
            "purged the raw input `{}.{}` (re-run `{}` to read it again)",
            input.task, input.name, input.task
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => cx
            .log
            .note(&format!("could not purge input `{}.{}`: {e}", input.task, input.name)),
    }
}

#[async_trait]
impl Step for Pii {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let me = Pii { cfg: self.cfg.clone() };
        cx.blocking(move |cx| me.run_blocking(&cx)).await
    }
}

#[cfg(test)]
#[path = "pii_tests.rs"]
mod tests;
