//! Input formats: each turns a byte stream into rows (text formats) or
//! record batches (Parquet).

pub mod csv;
pub mod excel;
pub mod json;
pub mod parquet;

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

/// The formats `extract.*` steps read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Ndjson,
    Xlsx,
    Xls,
    Ods,
    Parquet,
}

impl Format {
    /// The format a file name implies (`.gz` is looked through).
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let base = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = Path::new(base).extension()?.to_str()?;
        Some(match ext {
            "csv" | "txt" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "xlsx" | "xlsm" => Format::Xlsx,
            "xls" => Format::Xls,
            "ods" => Format::Ods,
            "parquet" | "pq" => Format::Parquet,
            _ => return None,
        })
    }

    pub fn is_text(self) -> bool {
        matches!(self, Format::Csv | Format::Tsv | Format::Json | Format::Ndjson)
    }
}

/// One row of a text source: its fields by source column.
pub enum Row<'a> {
    /// A CSV record, checked once for UTF-8.
    Csv(&'a ::csv::StringRecord),
    /// Fields already decoded (JSON, spreadsheets, transcoded CSV).
    Cells(&'a [Option<String>]),
}

impl Row<'_> {
    pub fn get(&self, i: usize) -> Option<&str> {
        match self {
            Row::Csv(r) => r.get(i),
            Row::Cells(c) => c.get(i).and_then(|v| v.as_deref()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Row::Csv(r) => r.len(),
            Row::Cells(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A row copied out of its source (for samples and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRow {
    pub line: u64,
    pub cells: Vec<Option<String>>,
}

impl OwnedRow {
    pub fn of(line: u64, row: &Row<'_>) -> Self {
        Self {
            line,
            cells: (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect(),
        }
    }
}

/// A row a source could not decode (bad encoding, broken JSON line): kept
/// for the quarantine with what could be read of it.
pub struct BadSourceRow {
    pub line: u64,
    pub reason: String,
    pub cells: Vec<Option<String>>,
}

/// The next thing a text source yields.
pub enum Next<'a> {
    Row(u64, Row<'a>),
    Bad(BadSourceRow),
    End,
}

/// A source of text rows: a CSV file, a JSON document, a spreadsheet.
pub trait RowSource {
    /// Column names, in source order.
    fn columns(&self) -> &[String];
    /// The next row (a lending iterator: the row borrows the source).
    fn next_row(&mut self) -> Result<Next<'_>>;
}

/// How to read a text or spreadsheet source (the `extract.*` options that
/// apply before typing).
pub struct SourceOptions<'a> {
    pub csv: &'a csv::CsvOptions,
    /// Column names for files without a header.
    pub names: &'a [String],
    /// JSON: the path to the array of records (`$.data.items`).
    pub records: Option<&'a str>,
    /// NDJSON: lines read to discover the columns.
    pub discover: usize,
    pub sheet: excel::Sheet<'a>,
}

/// The row source for a text or spreadsheet `format` (not Parquet, which
/// is read as batches).
pub fn row_source(format: Format, input: Box<dyn Read + Send>, opts: &SourceOptions<'_>) -> Result<Box<dyn RowSource>> {
    Ok(match format {
        Format::Csv | Format::Tsv => Box::new(csv::CsvSource::new(input, opts.csv, format == Format::Tsv, opts.names)?),
        Format::Json => Box::new(json::JsonSource::new(input, opts.records)?),
        Format::Ndjson => Box::new(json::NdjsonSource::new(input, opts.discover)?),
        Format::Xlsx | Format::Xls | Format::Ods => Box::new(excel::SheetSource::new(
            input,
            format,
            opts.sheet,
            opts.csv.header,
            opts.names,
        )?),
        Format::Parquet => anyhow::bail!("Parquet is read as record batches, not rows"),
    })
}

/// Wraps a reader with gzip decompression when the name ends in `.gz`.
pub fn decompress(name: &str, r: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    if name.to_ascii_lowercase().ends_with(".gz") {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(r),
        ))
    } else {
        r
    }
}

/// How to treat bytes that are not valid in the declared encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingErrors {
    /// The row goes to the quarantine (default).
    #[default]
    Quarantine,
    /// Bad bytes become U+FFFD and the row is kept.
    Replace,
}

/// Text encodings of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    #[default]
    #[serde(alias = "utf8")]
    Utf8,
    /// ISO-8859-1: every byte is a character; never an encoding error.
    #[serde(alias = "iso-8859-1")]
    Latin1,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        assert_eq!(Format::from_name("a/2010-12-01.csv.gz"), Some(Format::Csv));
        assert_eq!(Format::from_name("x.JSONL"), Some(Format::Ndjson));
        assert_eq!(Format::from_name("x.bin"), None);
    }
}
