//! JSON documents and NDJSON (JSON Lines) files as rows.
//!
//! Both formats turn each record (a JSON object) into one row the same way:
//!
//! - nested objects are flattened to dotted column names:
//!   `{"customer": {"address": {"city": "Leeds"}}}` gives the column
//!   `customer.address.city`;
//! - arrays (of anything, nested or not) become their compact JSON text
//!   (`[1,2]`, `[{"sku":"A"}]`), keys in their original order;
//! - numbers and booleans become their text (`17850`, `2.55`, `true`) and
//!   the typing layer parses them again: integers are written exactly (up
//!   to the 64-bit range; larger ones are read by serde_json as floats),
//!   floats in their shortest form that reads back to the same value
//!   (`0.1`, `1e300`);
//! - `null` (or an absent key) is a missing value; an empty nested object
//!   adds nothing.
//!
//! Columns are the union of the records' keys in first-seen order. A key
//! that appears twice in one record (`{"a.b": 1, "a": {"b": 2}}` flattens
//! to two `a.b`) makes the record a bad row rather than losing one value.
//!
//! A JSON document ([`JsonSource`]) is read whole: an array of objects, a
//! single object (one row), or the array or object found at a `records`
//! path such as `$.data.items` (`$` is the document; `.key`, `[index]` and
//! `['key with dots']` steps). Its rows are numbered by their position in
//! the array (1-based), which is the "line" the quarantine reports.
//!
//! An NDJSON file ([`NdjsonSource`]) is streamed line by line; blank lines
//! are skipped; rows are numbered by physical line. A line that is not
//! valid JSON (or not UTF-8, or not an object) is a bad row with its line
//! number and reason, never a failed task. Since a source must name its
//! columns before its rows, the first lines (at least [`DISCOVER_LINES`],
//! or `infer_rows` if larger) are read ahead to discover the keys. A key
//! first seen after those lines is not silently dropped: its row goes to
//! the quarantine, whole, with a reason naming the new key(s) (their
//! values appear under `column_N` names after the known columns); raise
//! `infer_rows` to look further ahead.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result, bail};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{BadSourceRow, Next, Row, RowSource};

/// Lines an NDJSON source reads ahead, at least, to discover its columns.
pub const DISCOVER_LINES: usize = 10_000;

/// The shortest text of a float that parses back to the same value.
pub fn float_text(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
}

/// Column names in first-seen order, and the record being flattened.
#[derive(Default)]
struct Flattener {
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// New keys become columns (while discovering); otherwise they are
    /// collected in `late`.
    grow: bool,
    /// The dotted name of the value being read.
    path: String,
    /// The current record, by column index.
    cells: Vec<Option<String>>,
    present: Vec<bool>,
    late: Vec<(String, Option<String>)>,
    dup: Option<String>,
}

impl Flattener {
    /// Forgets the columns first seen in a record that turned out bad.
    fn forget_from(&mut self, known: usize) {
        for name in self.names.drain(known..) {
            self.index.remove(&name);
        }
    }

    fn begin(&mut self) {
        let n = self.names.len();
        self.path.clear();
        self.cells.clear();
        self.cells.resize(n, None);
        self.present.clear();
        self.present.resize(n, false);
        self.late.clear();
        self.dup = None;
    }

    fn set(&mut self, v: Option<String>) {
        if let Some(&i) = self.index.get(self.path.as_str()) {
            if self.present[i] {
                self.dup.get_or_insert_with(|| self.path.clone());
            } else {
                self.present[i] = true;
                self.cells[i] = v;
            }
        } else if self.grow {
            self.index.insert(self.path.clone(), self.names.len());
            self.names.push(self.path.clone());
            self.cells.push(v);
            self.present.push(true);
        } else if self.late.iter().any(|(k, _)| *k == self.path) {
            self.dup.get_or_insert_with(|| self.path.clone());
        } else {
            self.late.push((self.path.clone(), v));
        }
    }

    /// Checks the record just flattened: a duplicate or late key makes it
    /// a bad row (with every value kept: known columns, then new keys).
    fn check(&mut self, line: u64, discovered: usize) -> Option<BadSourceRow> {
        if let Some(k) = self.dup.take() {
            return Some(BadSourceRow {
                line,
                reason: format!("key `{k}` appears twice in this record (after flattening nested objects)"),
                cells: std::mem::take(&mut self.cells),
            });
        }
        if self.late.is_empty() {
            return None;
        }
        let n = self.names.len();
        let keys: Vec<String> = self
            .late
            .iter()
            .enumerate()
            .map(|(i, (k, _))| format!("`{k}` (kept as column_{})", n + i + 1))
            .collect();
        let mut cells = std::mem::take(&mut self.cells);
        cells.extend(self.late.drain(..).map(|(_, v)| v));
        Some(BadSourceRow {
            line,
            reason: format!(
                "new key(s) {} first seen after the {discovered} lines read to discover the columns (raise `infer_rows` to read further ahead)",
                keys.join(", ")
            ),
            cells,
        })
    }
}

/// What a record turned out to be.
enum Kind {
    Object,
    Other(&'static str),
}

/// Reads one record: an object is flattened into the [`Flattener`];
/// anything else is skipped and named.
struct RecordSeed<'a>(&'a mut Flattener);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        self.0.begin();
        flatten_map(self.0, map)?;
        Ok(Kind::Object)
    }
}

fn flatten_map<'de, A: MapAccess<'de>>(f: &mut Flattener, mut map: A) -> Result<(), A::Error> {
    let base = f.path.len();
    loop {
        if base > 0 {
            f.path.push('.');
        }
        if map.next_key_seed(KeySeed(&mut f.path))?.is_none() {
            f.path.truncate(base);
            return Ok(());
        }
        map.next_value_seed(ValueSeed(f))?;
        f.path.truncate(base);
    }
}

/// Appends a key to the current path, without allocating.
struct KeySeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

/// Reads one value at the current path into the record.
struct ValueSeed<'a>(&'a mut Flattener);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.set(Some(v.to_string()));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.set(Some(v.to_string()));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.set(Some(v.to_string()));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.set(Some(float_text(v)));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.set(Some(v.to_string()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.set(Some(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.set(None);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.set(None);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let mut text = String::new();
        write_seq(&mut text, seq)?;
        self.0.set(Some(text));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        flatten_map(self.0, map)
    }
}

/// Writes a value as compact JSON, keys in their original order.
struct TextSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

fn write_seq<'de, A: SeqAccess<'de>>(out: &mut String, mut seq: A) -> Result<(), A::Error> {
    out.push('[');
    let mut first = true;
    loop {
        let mark = out.len();
        if !first {
            out.push(',');
        }
        if seq.next_element_seed(TextSeed(&mut *out))?.is_none() {
            out.truncate(mark);
            break;
        }
        first = false;
    }
    out.push(']');
    Ok(())
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push_str(&float_text(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        write_str(self.0, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        write_seq(self.0, seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push('{');
        let mut first = true;
        while let Some(k) = map.next_key::<String>()? {
            if !first {
                self.0.push(',');
            }
            first = false;
            write_str(self.0, &k);
            self.0.push(':');
            map.next_value_seed(TextSeed(&mut *self.0))?;
        }
        self.0.push('}');
        Ok(())
    }
}

/// A step of a `records` path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `$.data.items`, `$.data[0].items`, `data.items`, `$['a.b']`.
fn parse_path(path: &str) -> Result<Vec<Step>> {
    let p = path.trim();
    let owned;
    let mut rest = match p.strip_prefix('$') {
        Some(r) => r,
        None => {
            owned = format!(".{p}");
            &owned
        }
    };
    let bad = |why: &str| {
        anyhow::anyhow!("`records = \"{path}\"`: {why} (write a path such as `$.data.items` or `$.data[0].items`)")
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty key"));
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let inner = r.trim_start();
            if let Some(q) = inner.chars().next().filter(|c| *c == '\'' || *c == '"') {
                let body = &inner[1..];
                let end = body.find(q).ok_or_else(|| bad("unclosed quote"))?;
                steps.push(Step::Key(body[..end].to_string()));
                rest = body[end + 1..]
                    .trim_start()
                    .strip_prefix(']')
                    .ok_or_else(|| bad("expected `]`"))?;
            } else {
                let end = r.find(']').ok_or_else(|| bad("expected `]`"))?;
                let i = r[..end]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("an index must be a number"))?;
                steps.push(Step::Index(i));
                rest = &r[end + 1..];
            }
        } else {
            return Err(bad("expected `.key` or `[index]`"));
        }
    }
    Ok(steps)
}

/// A record of a document or a read-ahead NDJSON line.
enum Rec {
    Row(u64, Vec<Option<String>>),
    Bad(BadSourceRow),
}

/// Walks a `records` path, then reads the records found there.
struct DocSeed<'a> {
    steps: &'a [Step],
    at: String,
    f: &'a mut Flattener,
    out: &'a mut Vec<Rec>,
}

impl DocSeed<'_> {
    fn push_record(&mut self, n: u64, kind: Kind) {
        match kind {
            Kind::Object => match self.f.check(n, 0) {
                Some(bad) => self.out.push(Rec::Bad(bad)),
                None => self.out.push(Rec::Row(n, std::mem::take(&mut self.f.cells))),
            },
            Kind::Other(what) => self.out.push(Rec::Bad(BadSourceRow {
                line: n,
                reason: format!("record {n} is {what}, not a JSON object"),
                cells: Vec::new(),
            })),
        }
    }

    fn wrong<E: de::Error>(&self, found: &str) -> E {
        match self.steps.first() {
            Some(Step::Key(k)) => E::custom(format!("`{}` is {found}, not an object with the key `{k}`", self.at)),
            Some(Step::Index(i)) => E::custom(format!("`{}` is {found}, not an array with an item [{i}]", self.at)),
            None => E::custom(format!(
                "`{}` is {found}: the records must be an array of objects or one object",
                self.at
            )),
        }
    }
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects or an object")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.wrong("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.wrong("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.steps.is_empty() {
            // `"items": null`: no records.
            return Ok(());
        }
        Err(self.wrong("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        match self.steps.first() {
            None => {
                let mut n = 0u64;
                while let Some(kind) = seq.next_element_seed(RecordSeed(&mut *self.f))? {
                    n += 1;
                    self.push_record(n, kind);
                }
                Ok(())
            }
            Some(Step::Index(i)) => {
                let i = *i;
                for k in 0..i {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        return Err(de::Error::custom(format!(
                            "`{}` has {k} items: there is no item [{i}]",
                            self.at
                        )));
                    }
                }
                let next = DocSeed {
                    steps: &self.steps[1..],
                    at: format!("{}[{i}]", self.at),
                    f: &mut *self.f,
                    out: &mut *self.out,
                };
                if seq.next_element_seed(next)?.is_none() {
                    return Err(de::Error::custom(format!(
                        "`{}` has {i} items: there is no item [{i}]",
                        self.at
                    )));
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(())
            }
            Some(Step::Key(_)) => Err(self.wrong("an array")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        match self.steps.first() {
            None => {
                // One object: one record.
                self.f.begin();
                flatten_map(self.f, map)?;
                self.push_record(1, Kind::Object);
                Ok(())
            }
            Some(Step::Key(key)) => {
                let mut found = false;
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if !found && k == *key {
                        found = true;
                        let next = DocSeed {
                            steps: &self.steps[1..],
                            at: format!("{}.{k}", self.at),
                            f: &mut *self.f,
                            out: &mut *self.out,
                        };
                        map.next_value_seed(next)?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        if keys.len() < 20 {
                            keys.push(k);
                        }
                    }
                }
                if !found {
                    return Err(de::Error::custom(format!(
                        "`{}` has no key `{key}` (it has: {})",
                        self.at,
                        if keys.is_empty() {
                            "no keys".to_string()
                        } else {
                            keys.join(", ")
                        }
                    )));
                }
                Ok(())
            }
            Some(Step::Index(_)) => Err(self.wrong("an object")),
        }
    }
}

/// A JSON document as rows: see the module docs.
pub struct JsonSource {
    columns: Vec<String>,
    records: std::vec::IntoIter<Rec>,
    cells: Vec<Option<String>>,
}

impl JsonSource {
    /// Reads the whole document. `records` is the path of the rows
    /// (default: the document itself).
    pub fn new(mut input: Box<dyn Read + Send>, records: Option<&str>) -> Result<Self> {
        let steps = match records {
            Some(p) => parse_path(p)?,
            None => Vec::new(),
        };
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).context("reading the JSON document")?;
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        let mut f = Flattener {
            grow: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(text);
        let seed = DocSeed {
            steps: &steps,
            at: "$".into(),
            f: &mut f,
            out: &mut out,
        };
        let read = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Err(e) = read {
            match records {
                Some(p) if !e.is_syntax() && !e.is_eof() && !e.is_io() => bail!("`records = \"{p}\"`: {e}"),
                _ => bail!("not a valid JSON document: {e}"),
            }
        }
        Ok(Self {
            columns: f.names,
            records: out.into_iter(),
            cells: Vec::new(),
        })
    }
}

impl RowSource for JsonSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self) -> Result<Next<'_>> {
        match self.records.next() {
            None => Ok(Next::End),
            Some(Rec::Bad(b)) => Ok(Next::Bad(b)),
            Some(Rec::Row(line, mut cells)) => {
                cells.resize(self.columns.len(), None);
                self.cells = cells;
                Ok(Next::Row(line, Row::Cells(&self.cells)))
            }
        }
    }
}

/// An NDJSON file as rows, streamed: see the module docs.
pub struct NdjsonSource {
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    line: u64,
    f: Flattener,
    /// Lines read ahead to discover the columns.
    ahead: VecDeque<Rec>,
    /// How many lines were read ahead (for the late-key reason).
    discovered: usize,
    cells: Vec<Option<String>>,
}

/// One parsed line: a row (its cells are in the flattener) or a bad row.
enum Line {
    Row,
    Bad(BadSourceRow),
}

impl NdjsonSource {
    /// Opens an NDJSON stream, reading up to `discover` non-blank lines
    /// ahead to learn the columns.
    pub fn new(input: Box<dyn Read + Send>, discover: usize) -> Result<Self> {
        let mut s = Self {
            reader: BufReader::with_capacity(256 * 1024, input),
            buf: Vec::new(),
            line: 0,
            f: Flattener {
                grow: true,
                ..Default::default()
            },
            ahead: VecDeque::new(),
            discovered: 0,
            cells: Vec::new(),
        };
        while s.ahead.len() < discover.max(1) {
            match s.read_line()? {
                None => break,
                Some(Line::Row) => {
                    let cells = std::mem::take(&mut s.f.cells);
                    s.ahead.push_back(Rec::Row(s.line, cells));
                }
                Some(Line::Bad(b)) => s.ahead.push_back(Rec::Bad(b)),
            }
        }
        s.discovered = s.ahead.len();
        s.f.grow = false;
        Ok(s)
    }

    /// Reads and parses the next non-blank line.
    fn read_line(&mut self) -> Result<Option<Line>> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("reading line {}", self.line + 1))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.line;
            let mut bytes = &self.buf[..];
            if line == 1 {
                bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Some(Line::Bad(BadSourceRow {
                        line,
                        reason: format!("line is not valid UTF-8 (bad byte at column {})", e.valid_up_to() + 1),
                        cells: Vec::new(),
                    })));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let known = self.f.names.len();
            let mut de = serde_json::Deserializer::from_str(text);
            let kind = RecordSeed(&mut self.f)
                .deserialize(&mut de)
                .and_then(|k| de.end().map(|()| k));
            if !matches!(kind, Ok(Kind::Object)) {
                self.f.forget_from(known);
            }
            let bad = |reason: String| {
                Ok(Some(Line::Bad(BadSourceRow {
                    line,
                    reason,
                    cells: Vec::new(),
                })))
            };
            return match kind {
                Err(e) => {
                    let msg = e.to_string();
                    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
                    bad(format!("line is not valid JSON: {msg} (column {})", e.column()))
                }
                Ok(Kind::Other(what)) => bad(format!("line is {what}, not a JSON object")),
                Ok(Kind::Object) => match self.f.check(line, self.discovered) {
                    Some(b) => Ok(Some(Line::Bad(b))),
                    None => Ok(Some(Line::Row)),
                },
            };
        }
    }
}

impl RowSource for NdjsonSource {
    fn columns(&self) -> &[String] {
        &self.f.names
    }

    fn next_row(&mut self) -> Result<Next<'_>> {
        if let Some(rec) = self.ahead.pop_front() {
            return Ok(match rec {
                Rec::Bad(b) => Next::Bad(b),
                Rec::Row(line, mut cells) => {
                    cells.resize(self.f.names.len(), None);
                    self.cells = cells;
                    Next::Row(line, Row::Cells(&self.cells))
                }
            });
        }
        Ok(match self.read_line()? {
            None => Next::End,
            Some(Line::Bad(b)) => Next::Bad(b),
            Some(Line::Row) => Next::Row(self.line, Row::Cells(&self.f.cells)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::OwnedRow;

    fn drain(s: &mut dyn RowSource) -> (Vec<OwnedRow>, Vec<BadSourceRow>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        loop {
            match s.next_row().unwrap() {
                Next::Row(line, r) => ok.push(OwnedRow::of(line, &r)),
                Next::Bad(b) => bad.push(b),
                Next::End => break,
            }
        }
        (ok, bad)
    }

    fn doc(text: &'static str, records: Option<&str>) -> Result<(Vec<String>, Vec<OwnedRow>, Vec<BadSourceRow>)> {
        let mut s = JsonSource::new(Box::new(text.as_bytes()), records)?;
        let cols = s.columns().to_vec();
        let (ok, bad) = drain(&mut s);
        Ok((cols, ok, bad))
    }

    fn cell(r: &OwnedRow, i: usize) -> Option<&str> {
        r.cells[i].as_deref()
    }

    #[test]
    fn nested_objects_flatten_and_arrays_become_text() {
        let (cols, rows, bad) = doc(
            r#"[{"id": 1, "customer": {"name": "Ann", "address": {"city": "Leeds"}}, "tags": ["a", {"z": 1, "b": [2.5, null]}]},
                {"id": 18446744073709551615, "price": 0.1, "big": 1e300, "ok": true, "customer": {"name": null}, "extra": {}}]"#,
            None,
        )
        .unwrap();
        assert!(bad.is_empty());
        assert_eq!(
            cols,
            [
                "id",
                "customer.name",
                "customer.address.city",
                "tags",
                "price",
                "big",
                "ok"
            ]
        );
        assert_eq!(cell(&rows[0], 2), Some("Leeds"));
        assert_eq!(cell(&rows[0], 3), Some(r#"["a",{"z":1,"b":[2.5,null]}]"#));
        assert_eq!(cell(&rows[1], 0), Some("18446744073709551615"));
        assert_eq!(cell(&rows[1], 1), None);
        assert_eq!(cell(&rows[1], 4), Some("0.1"));
        assert_eq!(cell(&rows[1], 5).unwrap().parse::<f64>().unwrap(), 1e300);
        assert_eq!(cell(&rows[1], 6), Some("true"));
        assert_eq!(rows[1].cells.len(), 7, "rows are padded to every column");
        assert_eq!((rows[0].line, rows[1].line), (1, 2));
    }

    #[test]
    fn records_paths_single_objects_and_bad_records() {
        let text = r#"{"meta": {"n": 2}, "data": {"items": [{"a": 1}, 7, {"a": 2, "a": 3}, {"b": "x"}]}}"#;
        let (cols, rows, bad) = doc(text, Some("$.data.items")).unwrap();
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 4);
        assert_eq!(bad.len(), 2);
        assert!(bad[0].reason.contains("record 2 is a number"), "{}", bad[0].reason);
        assert!(bad[1].reason.contains("key `a` appears twice"), "{}", bad[1].reason);

        let (cols, rows, _) = doc(text, Some("meta")).unwrap();
        assert_eq!((cols, rows.len()), (vec!["n".to_string()], 1));
        let (_, rows, _) = doc(
            r#"{"d": [{"x": [{"k": 1}]}, {"x": [{"k": 2}, {"k": 3}]}]}"#,
            Some("$.d[1].x"),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(cell(&rows[1], 0), Some("3"));
        let (_, rows, _) = doc(r#"{"a.b": {"c": [{"v": 1}]}}"#, Some("$['a.b'].c")).unwrap();
        assert_eq!(rows.len(), 1);

        let err = doc(text, Some("$.data.itemz")).err().unwrap().to_string();
        assert!(err.contains("`$.data` has no key `itemz` (it has: items)"), "{err}");
        let err = doc(text, Some("$.meta.n")).err().unwrap().to_string();
        assert!(err.contains("`$.meta.n` is a number"), "{err}");
        let err = doc(text, Some("$.data..x")).err().unwrap().to_string();
        assert!(err.contains("empty key"), "{err}");
        assert!(
            doc("[{\"a\": 1}", None)
                .err()
                .unwrap()
                .to_string()
                .contains("not a valid JSON")
        );
        let (cols, rows, _) = doc(r#"{"items": null}"#, Some("$.items")).unwrap();
        assert!(cols.is_empty() && rows.is_empty());
    }

    #[test]
    fn ndjson_bad_lines_are_rows_with_line_numbers() {
        let text =
            b"{\"a\": 1, \"n\": {\"x\": true}}\n\n{\"zz\": 2,\n[1]\n{\"b\": \"\\u00e9\"}\r\n\xff\n{\"a\": 3} x\n";
        let mut s = NdjsonSource::new(Box::new(&text[..]), 100).unwrap();
        assert_eq!(s.columns(), ["a", "n.x", "b"], "keys of bad lines are no columns");
        let (ok, bad) = drain(&mut s);
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(ok[0].cells, [Some("1".into()), Some("true".into()), None]);
        assert_eq!(cell(&ok[1], 2), Some("é"));
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 4, 6, 7]);
        assert!(
            bad[0].reason.contains("not valid JSON: EOF while parsing"),
            "{}",
            bad[0].reason
        );
        assert!(bad[1].reason.contains("an array, not a JSON object"));
        assert!(bad[2].reason.contains("UTF-8"));
        assert!(bad[3].reason.contains("trailing characters"), "{}", bad[3].reason);
    }

    #[test]
    fn ndjson_keys_after_the_read_ahead_are_quarantined_not_dropped() {
        let text = "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3, \"late\": \"v\", \"n\": {\"m\": 1}}\n{\"a\": 4}\n";
        let mut s = NdjsonSource::new(Box::new(text.as_bytes()), 2).unwrap();
        assert_eq!(s.columns(), ["a"]);
        let (ok, bad) = drain(&mut s);
        assert_eq!(ok.len(), 3);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert!(
            bad[0]
                .reason
                .contains("`late` (kept as column_2), `n.m` (kept as column_3)"),
            "{}",
            bad[0].reason
        );
        assert_eq!(bad[0].cells, [Some("3".into()), Some("v".into()), Some("1".into())]);
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("$.data[0].items").unwrap(),
            [Step::Key("data".into()), Step::Index(0), Step::Key("items".into())]
        );
        assert_eq!(parse_path("data.items").unwrap().len(), 2);
        assert!(parse_path("$").unwrap().is_empty());
        assert!(parse_path("$.a[x]").is_err());
    }
}
