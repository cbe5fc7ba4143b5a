//! CSV and TSV files (the `csv` crate), streamed record by record.

use std::io::Read;

use anyhow::{Context, Result};
use csv::{ByteRecord, ReaderBuilder, StringRecord};
use serde::Deserialize;

use super::{BadSourceRow, Encoding, EncodingErrors, Next, Row, RowSource};

/// CSV dialect settings of `extract.*` steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The first line names the columns (default true). Without a header,
    /// columns are named after `[columns]` in order, else `column_1`, ...
    #[serde(default = "yes")]
    pub header: bool,
    /// Field separator, one character (default `,`; `\t` for TSV).
    pub delimiter: Option<char>,
    /// Quote character (default `"`).
    #[serde(default = "dquote")]
    pub quote: char,
    /// Escape character inside quotes (default: quotes are doubled).
    pub escape: Option<char>,
    /// Lines starting with this character are skipped.
    pub comment: Option<char>,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub encoding_errors: EncodingErrors,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            header: true,
            delimiter: None,
            quote: '"',
            escape: None,
            comment: None,
            encoding: Encoding::Utf8,
            encoding_errors: EncodingErrors::Quarantine,
        }
    }
}

fn yes() -> bool {
    true
}
fn dquote() -> char {
    '"'
}

fn byte(c: char, what: &str) -> Result<u8> {
    u8::try_from(c as u32)
        .ok()
        .filter(u8::is_ascii)
        .with_context(|| format!("{what} `{c}` must be a single ASCII character"))
}

/// A CSV file as rows.
pub struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Vec<String>,
    /// The current record. Read as bytes, then checked once for UTF-8 by
    /// `StringRecord::from_byte_record` (all-ASCII records in one pass), so
    /// fields are handed out as `&str` without checking them again.
    record: StringRecord,
    cells: Vec<Option<String>>,
    opts: CsvOptions,
    /// The first record, read to count columns when there is no header.
    pending_first: bool,
    /// That first record when it is not valid UTF-8.
    pending_bad: Option<ByteRecord>,
}

impl CsvSource {
    /// Opens a CSV stream. `tsv` selects tab as the default delimiter;
    /// `names` names the columns when the file has no header.
    pub fn new(input: Box<dyn Read + Send>, opts: &CsvOptions, tsv: bool, names: &[String]) -> Result<Self> {
        let delimiter = opts.delimiter.unwrap_or(if tsv { '\t' } else { ',' });
        let mut b = ReaderBuilder::new();
        b.has_headers(false)
            .flexible(true)
            .delimiter(byte(delimiter, "delimiter")?)
            .quote(byte(opts.quote, "quote")?)
            .buffer_capacity(256 * 1024);
        if let Some(e) = opts.escape {
            b.escape(Some(byte(e, "escape")?)).double_quote(false);
        }
        if let Some(c) = opts.comment {
            b.comment(Some(byte(c, "comment")?));
        }
        let mut reader = b.from_reader(input);
        let mut record = ByteRecord::new();
        let mut columns = Vec::new();
        let mut pending_first = false;
        if opts.header {
            if reader.read_byte_record(&mut record)? {
                columns = record
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let name = String::from_utf8_lossy(f);
                        // A UTF-8 byte order mark sticks to the first name.
                        let name = name.trim_start_matches('\u{feff}').trim();
                        if name.is_empty() {
                            format!("column_{}", i + 1)
                        } else {
                            name.to_string()
                        }
                    })
                    .collect();
            }
        } else if reader.read_byte_record(&mut record)? {
            pending_first = true;
            columns = (0..record.len())
                .map(|i| names.get(i).cloned().unwrap_or_else(|| format!("column_{}", i + 1)))
                .collect();
        }
        // A first record that is not UTF-8 is kept as bytes and reported
        // by `next_row`.
        let (record, pending_bad) = match StringRecord::from_byte_record(record) {
            Ok(r) => (r, None),
            Err(e) => {
                let bytes = e.into_byte_record();
                (StringRecord::new(), Some(bytes))
            }
        };
        Ok(Self {
            reader,
            columns,
            record,
            pending_bad,
            cells: Vec::new(),
            opts: opts.clone(),
            pending_first,
        })
    }
}

impl RowSource for CsvSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self) -> Result<Next<'_>> {
        let bytes = if self.pending_first {
            self.pending_first = false;
            match self.pending_bad.take() {
                Some(b) => b,
                None => std::mem::take(&mut self.record).into_byte_record(),
            }
        } else {
            // Reuses the record's buffers.
            let mut bytes = std::mem::take(&mut self.record).into_byte_record();
            if !self.reader.read_byte_record(&mut bytes)? {
                return Ok(Next::End);
            }
            bytes
        };
        let line = bytes.position().map_or(0, |p| p.line());
        if self.opts.encoding == Encoding::Latin1 {
            self.cells.clear();
            self.cells
                .extend(bytes.iter().map(|f| Some(f.iter().map(|&b| b as char).collect())));
            // Hand the buffers back for the next read.
            self.record = StringRecord::from_byte_record(bytes).unwrap_or_default();
            return Ok(Next::Row(line, Row::Cells(&self.cells)));
        }
        let bytes = match StringRecord::from_byte_record(bytes) {
            Ok(r) => {
                self.record = r;
                return Ok(Next::Row(line, Row::Csv(&self.record)));
            }
            Err(e) => e.into_byte_record(),
        };
        let lossy: Vec<Option<String>> = bytes
            .iter()
            .map(|f| Some(String::from_utf8_lossy(f).into_owned()))
            .collect();
        match self.opts.encoding_errors {
            EncodingErrors::Replace => {
                self.cells = lossy;
                Ok(Next::Row(line, Row::Cells(&self.cells)))
            }
            EncodingErrors::Quarantine => {
                let col = bytes
                    .iter()
                    .position(|f| std::str::from_utf8(f).is_err())
                    .and_then(|i| self.columns.get(i).cloned())
                    .unwrap_or_default();
                Ok(Next::Bad(BadSourceRow {
                    line,
                    reason: format!(
                        "invalid UTF-8 in column `{col}` (set `encoding = \"latin1\"` or `encoding_errors = \"replace\"`)"
                    ),
                    cells: lossy,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::OwnedRow;

    fn rows(text: &'static [u8], opts: &CsvOptions) -> (Vec<String>, Vec<OwnedRow>, usize) {
        let mut s = CsvSource::new(Box::new(text), opts, false, &[]).unwrap();
        let cols = s.columns().to_vec();
        let mut out = Vec::new();
        let mut bad = 0;
        loop {
            match s.next_row().unwrap() {
                Next::Row(line, r) => out.push(OwnedRow::of(line, &r)),
                Next::Bad(_) => bad += 1,
                Next::End => break,
            }
        }
        (cols, out, bad)
    }

    #[test]
    fn header_bom_quotes_and_lines() {
        let (cols, rows, _) = rows(
            b"\xef\xbb\xbfa,b\n1,\"x,y\"\n2,\"multi\nline\"\n3,z\n",
            &CsvOptions::default(),
        );
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(rows[0].cells[1].as_deref(), Some("x,y"));
        assert_eq!(rows[2].line, 5, "line numbers count physical lines");
    }

    #[test]
    fn bad_utf8_is_quarantined_or_replaced() {
        let (_, ok, bad) = rows(b"a\n\xff\nfine\n", &CsvOptions::default());
        assert_eq!((ok.len(), bad), (1, 1));
        let opts = CsvOptions {
            encoding_errors: EncodingErrors::Replace,
            ..Default::default()
        };
        let (_, ok, bad) = rows(b"a\n\xff\n", &opts);
        assert_eq!((ok.len(), bad), (1, 0));
        let opts = CsvOptions {
            encoding: Encoding::Latin1,
            ..Default::default()
        };
        let (_, ok, _) = rows(b"a\ncaf\xe9\n", &opts);
        assert_eq!(ok[0].cells[0].as_deref(), Some("café"));
    }

    #[test]
    fn no_header_uses_given_names() {
        let opts = CsvOptions {
            header: false,
            ..Default::default()
        };
        let mut s = CsvSource::new(Box::new(&b"1,2\n3,4\n"[..]), &opts, false, &["x".into()]).unwrap();
        assert_eq!(s.columns(), ["x", "column_2"]);
        let mut n = 0;
        while let Next::Row(..) = s.next_row().unwrap() {
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
