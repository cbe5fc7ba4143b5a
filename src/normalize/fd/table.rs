//! A table as dense codes: each column's distinct values numbered 0, 1, ...
//! in order of appearance. Only equality matters to FD discovery, so this
//! is all it needs; NULL (and, in CSV, the empty field) is one value.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Distinct values of one column -> code.
type Dictionary = HashMap<Box<[u8]>, u32, Xxh3DefaultBuilder>;

pub struct Encoded {
    pub names: Vec<String>,
    /// `codes[column][row]`.
    pub codes: Vec<Vec<u32>>,
    /// Distinct values per column.
    pub cardinality: Vec<u32>,
    pub rows: usize,
}

fn code(dict: &mut Dictionary, value: &[u8]) -> u32 {
    if let Some(c) = dict.get(value) {
        return *c;
    }
    let c = dict.len() as u32;
    dict.insert(value.into(), c);
    c
}

impl Encoded {
    fn new(names: Vec<String>) -> Self {
        let n = names.len();
        Self {
            names,
            codes: vec![Vec::new(); n],
            cardinality: vec![0; n],
            rows: 0,
        }
    }

    /// Reads a CSV file with a header (`.gz` allowed), every field as text.
    pub fn from_csv(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let reader = crate::data::formats::decompress(&path.to_string_lossy(), Box::new(file));
        let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let names: Vec<String> = csv.headers()?.iter().map(str::to_string).collect();
        if names.len() > 64 {
            bail!(
                "{}: {} columns; FD discovery handles at most 64",
                path.display(),
                names.len()
            );
        }
        let mut t = Self::new(names);
        let mut dicts: Vec<Dictionary> = (0..t.names.len()).map(|_| Dictionary::default()).collect();
        let mut rec = csv::ByteRecord::new();
        while csv
            .read_byte_record(&mut rec)
            .with_context(|| format!("{}: line {}", path.display(), t.rows + 2))?
        {
            if rec.len() != t.names.len() {
                bail!(
                    "{}: line {} has {} fields, the header {}",
                    path.display(),
                    t.rows + 2,
                    rec.len(),
                    t.names.len()
                );
            }
            for (i, f) in rec.iter().enumerate() {
                let c = code(&mut dicts[i], f);
                t.codes[i].push(c);
            }
            t.rows += 1;
        }
        t.cardinality = dicts.iter().map(|d| d.len() as u32).collect();
        Ok(t)
    }

    /// Encodes Arrow batches (Parquet artifacts): values compare by their
    /// Arrow row encoding, NULLs equal to each other.
    pub fn from_batches(schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> Result<Self> {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if names.len() > 64 {
            bail!("{} columns; FD discovery handles at most 64", names.len());
        }
        let mut t = Self::new(names);
        let mut dicts: Vec<Dictionary> = (0..t.names.len()).map(|_| Dictionary::default()).collect();
        let converters = schema
            .fields()
            .iter()
            .map(|f| RowConverter::new(vec![SortField::new(f.data_type().clone())]))
            .collect::<Result<Vec<_>, _>>()?;
        for b in batches {
            for (i, conv) in converters.iter().enumerate() {
                let rows = conv.convert_columns(&[b.column(i).clone()])?;
                for r in rows.iter() {
                    let c = code(&mut dicts[i], r.as_ref());
                    t.codes[i].push(c);
                }
            }
            t.rows += b.num_rows();
        }
        t.cardinality = dicts.iter().map(|d| d.len() as u32).collect();
        Ok(t)
    }

    /// A table from rows of small integers (tests).
    pub fn from_rows(names: &[&str], rows: &[Vec<u32>]) -> Self {
        let mut t = Self::new(names.iter().map(|s| s.to_string()).collect());
        let mut dicts: Vec<Dictionary> = (0..names.len()).map(|_| Dictionary::default()).collect();
        for r in rows {
            for (i, v) in r.iter().enumerate() {
                let c = code(&mut dicts[i], &v.to_le_bytes());
                t.codes[i].push(c);
            }
        }
        t.rows = rows.len();
        t.cardinality = dicts.iter().map(|d| d.len() as u32).collect();
        t
    }

    pub fn width(&self) -> usize {
        self.names.len()
    }
}
