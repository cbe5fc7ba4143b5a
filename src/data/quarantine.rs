//! The quarantine: rows a step could not take, kept with the reason.
//!
//! One NDJSON file per task and run (`<artifacts>/<task>/quarantine.ndjson`),
//! each line: the source, the line number, the column, the reason and the
//! row's values. Values of PII-declared columns are written as `<redacted>`
//! (and scrubbed from the reason); once any column is declared, values of
//! other columns that look like PII by themselves are withheld too.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// One rejected row.
#[derive(Debug, Serialize)]
pub struct BadRow<'a> {
    pub source: &'a str,
    /// 1-based line (or row) number in the source.
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'a str>,
    pub reason: &'a str,
    /// The row as read: column name -> text.
    pub row: serde_json::Map<String, serde_json::Value>,
}

/// Collects rejected rows of one task.
pub struct Quarantine {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    count: u64,
    redact: HashSet<String>,
}

impl Quarantine {
    /// A quarantine writing to `path` (created on the first bad row).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            out: None,
            count: 0,
            redact: HashSet::new(),
        }
    }

    /// Columns whose values are never written (PII).
    pub fn redacting(mut self, columns: impl IntoIterator<Item = String>) -> Self {
        self.redact.extend(columns);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records a bad row. `values` are (column, text) pairs of the row.
    pub fn add<'a>(
        &mut self,
        source: &str,
        line: u64,
        column: Option<&str>,
        reason: &str,
        values: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> std::io::Result<()> {
        // Raw values of redacted columns, to scrub from the reason too
        // (cast errors quote the value they could not read).
        let mut withheld: Vec<&str> = Vec::new();
        let row = values
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    None => serde_json::Value::Null,
                    // Once a DAG declares PII, values that look like PII
                    // are withheld in any column: a malformed row shifts
                    // values out of their declared columns.
                    Some(t)
                        if self.redact.contains(k) || (!self.redact.is_empty() && crate::pii::looks_like_pii(t)) =>
                    {
                        withheld.push(t);
                        "<redacted>".into()
                    }
                    Some(t) => t.into(),
                };
                (k.to_string(), v)
            })
            .collect();
        let reason = scrub(reason, &withheld);
        let rec = BadRow {
            source,
            line,
            column,
            reason: &reason,
            row,
        };
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.out = Some(BufWriter::new(File::create(&self.path)?));
        }
        let out = self.out.as_mut().expect("opened above");
        serde_json::to_writer(&mut *out, &rec)?;
        out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Flushes the file. Returns its path when any row was quarantined.
    pub fn finish(mut self) -> std::io::Result<Option<PathBuf>> {
        match self.out.take() {
            Some(mut f) => {
                f.flush()?;
                Ok(Some(self.path))
            }
            None => Ok(None),
        }
    }
}

/// `text` with every occurrence of the `withheld` values replaced by
/// `<redacted>` (longest first, so a value containing another goes whole).
fn scrub(text: &str, withheld: &[&str]) -> String {
    let mut vals: Vec<&str> = withheld.iter().copied().filter(|v| !v.trim().is_empty()).collect();
    vals.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in vals {
        if out.contains(v) {
            out = out.replace(v, "<redacted>");
        }
    }
    out
}

/// `max_bad_rows`: how many rejected rows a task tolerates, as a count
/// (`100`) or a share of the rows read (`"0.5%"`). Default 0: any bad row
/// fails the task (after the whole input is read, so the quarantine holds
/// every bad row to look at).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum BadRowLimit {
    #[default]
    None,
    Count(u64),
    Percent(f64),
}

impl BadRowLimit {
    /// Fails when `bad` rows out of `total` exceed the limit.
    pub fn check(&self, bad: u64, total: u64, quarantine: &Path) -> Result<(), String> {
        let over = match *self {
            Self::None => bad > 0,
            Self::Count(n) => bad > n,
            Self::Percent(p) => total > 0 && (bad as f64) * 100.0 > p * total as f64,
        };
        if !over {
            return Ok(());
        }
        let limit = match *self {
            Self::None => "0".to_string(),
            Self::Count(n) => n.to_string(),
            Self::Percent(p) => format!("{p}%"),
        };
        Err(format!(
            "{bad} of {total} rows were rejected, more than max_bad_rows = {limit}; see {} (raise `max_bad_rows` to accept them)",
            quarantine.display()
        ))
    }
}

impl<'de> Deserialize<'de> for BadRowLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self::Count(n)),
            Raw::S(s) => {
                let p = s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "max_bad_rows `{s}`: write a count (100) or a percentage (\"0.5%\")"
                        ))
                    })?;
                Ok(Self::Percent(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let q = Path::new("q.ndjson");
        assert!(BadRowLimit::None.check(0, 10, q).is_ok());
        assert!(BadRowLimit::None.check(1, 10, q).is_err());
        assert!(BadRowLimit::Count(2).check(2, 10, q).is_ok());
        assert!(BadRowLimit::Percent(10.0).check(1, 10, q).is_ok());
        assert!(BadRowLimit::Percent(10.0).check(2, 10, q).is_err());
    }

    #[test]
    fn redacted_values_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Quarantine::new(dir.path().join("q.ndjson")).redacting(["email".to_string()]);
        q.add(
            "f.csv",
            3,
            Some("age"),
            "bad",
            [("email", Some("a@b.c")), ("age", Some("x"))],
        )
        .unwrap();
        // A reason that quotes a PII value (as cast errors do) is scrubbed.
        q.add(
            "f.csv",
            4,
            Some("email"),
            "`not-an@email` is not a valid email",
            [("email", Some("not-an@email")), ("age", Some("7"))],
        )
        .unwrap();
        // A value shifted out of its declared column by a malformed row.
        q.add(
            "f.csv",
            5,
            None,
            "row has 3 fields, the header has 2",
            [
                ("email", Some("x")),
                ("age", Some("7")),
                ("column_3", Some("4539578763621486")),
            ],
        )
        .unwrap();
        let path = q.finish().unwrap().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("4539578763621486"), "{text}");
        assert!(!text.contains("a@b.c"));
        assert!(!text.contains("not-an@email"), "{text}");
        assert!(text.contains("`<redacted>` is not a valid email"), "{text}");
        assert!(text.contains("\"line\":3"));
        assert!(text.contains("\"age\":\"7\""), "other columns are kept");
    }
}
