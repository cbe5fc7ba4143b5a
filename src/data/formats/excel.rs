//! Spreadsheets (XLSX/XLSM, XLS, ODS; calamine) as rows.
//!
//! One sheet is read: the first, or one chosen by name or 0-based index
//! (`sheet = "Returns"`, `sheet = 1`). The sheet's used range starts at its
//! first non-empty row and column. That first row names the columns (a
//! blank name becomes `column_N`), unless `csv = { header = false }`: then
//! columns are named after `[columns]` in order, else `column_1`, ... as
//! for CSV files. Rows are numbered as the spreadsheet numbers them (the
//! header is usually row 1), so the quarantine's line is the row a user
//! sees. Completely empty rows are skipped.
//!
//! Cells become text for the typing layer:
//!
//! - integers exactly; floats rounded to the 15 significant digits Excel
//!   keeps, written in their shortest form (`2.55`, not
//!   `2.5500000000000003`); a whole float is written without a fraction
//!   (`17850`, not `17850.0`: Excel stores every number as a float, so
//!   whole ones are what users typed as integers);
//! - dates as `YYYY-MM-DD` and date-times as `YYYY-MM-DD HH:MM:SS` (with
//!   `.mmm` when there are milliseconds): a column whose date cells all
//!   fall at midnight is a date column, otherwise every date in it is
//!   written with its time, so one column never mixes both forms; a time
//!   of day without a date as `HH:MM:SS`; durations as `H:MM:SS`;
//! - booleans as `true` / `false`;
//! - an empty cell (or empty string) is a missing value;
//! - an error cell (`#N/A`, `#DIV/0!`, ...) makes its row a bad row
//!   (quarantined, the reason naming the cell, e.g. `D5`, and the error).

use std::io::{Cursor, Read};

use anyhow::{Context, Result, anyhow, bail};
use calamine::{Data, Ods, Range, Reader, Sheets, Xls, Xlsx, open_workbook_auto_from_rs, open_workbook_from_rs};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::json::float_text;
use super::{BadSourceRow, Format, Next, Row, RowSource};

/// Which sheet to read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sheet<'a> {
    First,
    Index(usize),
    Name(&'a str),
}

/// One sheet of a workbook as rows: see the module docs.
pub struct SheetSource {
    range: Range<Data>,
    columns: Vec<String>,
    /// Absolute (0-based) row and column of the range's top-left cell.
    top: u32,
    left: u32,
    /// Relative index of the next row to read.
    next: usize,
    /// Per column: whether its dates carry a time.
    with_time: Vec<bool>,
    cells: Vec<Option<String>>,
}

impl SheetSource {
    /// Reads one sheet of a workbook. `header`: the first row names the
    /// columns; else `names` (then `column_N`) do.
    pub fn new(
        mut input: Box<dyn Read + Send>,
        format: Format,
        sheet: Sheet<'_>,
        header: bool,
        names: &[String],
    ) -> Result<Self> {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).context("reading the workbook")?;
        let range = {
            let mut wb = open(&bytes, format)?;
            let sheets = wb.sheet_names();
            let list = || {
                sheets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("{i}: `{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let name = match sheet {
                Sheet::First => sheets.first().cloned().context("the workbook has no sheets")?,
                Sheet::Index(i) => sheets.get(i).cloned().with_context(|| {
                    format!(
                        "`sheet = {i}` is out of range: the workbook has {} sheet(s) ({}; indexes start at 0)",
                        sheets.len(),
                        list()
                    )
                })?,
                Sheet::Name(n) => match sheets.iter().find(|s| s.as_str() == n) {
                    Some(s) => s.clone(),
                    None => bail!("the workbook has no sheet named `{n}` (it has {})", list()),
                },
            };
            wb.worksheet_range(&name)
                .map_err(|e| anyhow!("reading sheet `{name}`: {e}"))?
        };
        let (top, left) = range.start().unwrap_or((0, 0));
        let (height, width) = range.get_size();
        let first_data = usize::from(header);
        let with_time = (0..width)
            .map(|c| {
                (first_data..height).any(|r| {
                    range
                        .get((r, c))
                        .and_then(datetime)
                        .is_some_and(|t| t.time() != NaiveTime::MIN)
                })
            })
            .collect::<Vec<_>>();
        let columns = if height == 0 {
            Vec::new()
        } else if header {
            (0..width)
                .map(|c| {
                    let name = range
                        .get((0, c))
                        .and_then(|d| text(d, with_time[c]))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default();
                    if name.is_empty() {
                        format!("column_{}", c + 1)
                    } else {
                        name
                    }
                })
                .collect()
        } else {
            (0..width)
                .map(|c| names.get(c).cloned().unwrap_or_else(|| format!("column_{}", c + 1)))
                .collect()
        };
        Ok(Self {
            range,
            columns,
            top,
            left,
            next: first_data,
            with_time,
            cells: Vec::new(),
        })
    }
}

/// Opens a workbook as the format its name says, else as whatever it is
/// (an `.xls` file that is really XLSX is common).
fn open(bytes: &[u8], format: Format) -> Result<Sheets<Cursor<&[u8]>>> {
    let c = Cursor::new(bytes);
    let (kind, first) = match format {
        Format::Xls => (
            "XLS",
            open_workbook_from_rs::<Xls<_>, _>(c.clone())
                .map(Sheets::Xls)
                .map_err(|e| e.to_string()),
        ),
        Format::Ods => (
            "ODS",
            open_workbook_from_rs::<Ods<_>, _>(c.clone())
                .map(Sheets::Ods)
                .map_err(|e| e.to_string()),
        ),
        _ => (
            "XLSX",
            open_workbook_from_rs::<Xlsx<_>, _>(c.clone())
                .map(Sheets::Xlsx)
                .map_err(|e| e.to_string()),
        ),
    };
    match first {
        Ok(wb) => Ok(wb),
        Err(e) => open_workbook_auto_from_rs(c).map_err(|_| anyhow!("not a readable {kind} workbook: {e}")),
    }
}

/// The date-time of a date cell (not of durations).
fn datetime(d: &Data) -> Option<NaiveDateTime> {
    match d {
        Data::DateTime(dt) if dt.is_datetime() => dt.as_datetime(),
        Data::DateTimeIso(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .map(|d| d.and_time(NaiveTime::MIN))
            }),
        _ => None,
    }
}

fn time_text(t: NaiveTime) -> String {
    if t.nanosecond() == 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M:%S%.3f").to_string()
    }
}

/// A number as Excel keeps it: 15 significant digits, whole ones without
/// a fraction.
fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let f: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        (f as i64).to_string()
    } else {
        float_text(f)
    }
}

/// A cell's text (None: missing). Error cells are handled by the caller.
fn text(d: &Data, with_time: bool) -> Option<String> {
    match d {
        Data::Empty => None,
        Data::String(s) if s.is_empty() => None,
        Data::String(s) => Some(s.clone()),
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) => Some(number_text(*f)),
        Data::Bool(b) => Some(b.to_string()),
        Data::DateTime(dt) if dt.is_duration() => dt.as_duration().map(|d| {
            let ms = d.num_milliseconds();
            let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
            let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            if frac == 0 {
                format!("{sign}{h}:{m:02}:{s:02}")
            } else {
                format!("{sign}{h}:{m:02}:{s:02}.{frac:03}")
            }
        }),
        // A time of day without a date (serial value below 1).
        Data::DateTime(dt) if (0.0..1.0).contains(&dt.as_f64()) => dt.as_datetime().map(|t| time_text(t.time())),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) => Some(datetime_text(t, with_time)),
            None => Some(number_text(dt.as_f64())),
        },
        Data::DateTimeIso(s) => match datetime(d) {
            Some(t) => Some(datetime_text(t, with_time)),
            None => Some(s.clone()),
        },
        Data::DurationIso(s) => Some(s.clone()),
        Data::Error(e) => Some(e.to_string()),
    }
}

fn datetime_text(t: NaiveDateTime, with_time: bool) -> String {
    if with_time {
        format!("{} {}", t.date().format("%Y-%m-%d"), time_text(t.time()))
    } else {
        t.date().format("%Y-%m-%d").to_string()
    }
}

/// `A`, `B`, ..., `Z`, `AA`, ... for a 0-based column.
fn column_letters(col: u32) -> String {
    let mut c = col as u64 + 1;
    let mut out = Vec::new();
    while c > 0 {
        c -= 1;
        out.push(b'A' + (c % 26) as u8);
        c /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

impl RowSource for SheetSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self) -> Result<Next<'_>> {
        let (height, width) = self.range.get_size();
        loop {
            if self.next >= height {
                return Ok(Next::End);
            }
            let r = self.next;
            self.next += 1;
            let line = u64::from(self.top) + r as u64 + 1;
            self.cells.clear();
            let mut errors = Vec::new();
            for c in 0..width {
                let cell = self.range.get((r, c)).unwrap_or(&Data::Empty);
                if let Data::Error(e) = cell {
                    let at = format!("{}{line}", column_letters(self.left + c as u32));
                    errors.push(format!("{at} (column `{}`) holds the error {e}", self.columns[c]));
                }
                self.cells.push(text(cell, self.with_time[c]));
            }
            if !errors.is_empty() {
                let reason = if errors.len() == 1 {
                    format!("cell {}", errors[0])
                } else {
                    format!("cells {}", errors.join("; "))
                };
                return Ok(Next::Bad(BadSourceRow {
                    line,
                    reason,
                    cells: self.cells.clone(),
                }));
            }
            if self.cells.iter().all(Option::is_none) {
                continue;
            }
            return Ok(Next::Row(line, Row::Cells(&self.cells)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};

    fn dt(v: f64) -> Data {
        Data::DateTime(ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false))
    }

    #[test]
    fn cells_as_text() {
        assert_eq!(text(&Data::Float(17850.0), false).as_deref(), Some("17850"));
        assert_eq!(text(&Data::Float(2.5500000000000003), false).as_deref(), Some("2.55"));
        assert_eq!(text(&Data::Float(0.1), false).as_deref(), Some("0.1"));
        assert_eq!(text(&Data::Float(-3.25e-7), false).as_deref(), Some("-3.25e-7"));
        assert_eq!(text(&Data::Int(-7), false).as_deref(), Some("-7"));
        assert_eq!(text(&Data::Bool(true), false).as_deref(), Some("true"));
        assert_eq!(text(&Data::String(String::new()), false), None);
        assert_eq!(text(&Data::Empty, false), None);
        // 2010-12-01 and 2010-12-01 08:26.
        assert_eq!(text(&dt(40513.0), false).as_deref(), Some("2010-12-01"));
        assert_eq!(text(&dt(40513.0), true).as_deref(), Some("2010-12-01 00:00:00"));
        let t = 40513.0 + (8.0 * 60.0 + 26.0) / 1440.0;
        assert_eq!(text(&dt(t), true).as_deref(), Some("2010-12-01 08:26:00"));
        assert_eq!(text(&dt(0.5), false).as_deref(), Some("12:00:00"));
        let d = Data::DateTime(ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false));
        assert_eq!(text(&d, false).as_deref(), Some("36:00:00"));
        assert_eq!(
            text(&Data::DateTimeIso("2010-12-01T08:26:00".into()), true).as_deref(),
            Some("2010-12-01 08:26:00")
        );
        assert_eq!(
            text(&Data::Error(CellErrorType::Div0), false).as_deref(),
            Some("#DIV/0!")
        );
    }

    #[test]
    fn column_names() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }
}
