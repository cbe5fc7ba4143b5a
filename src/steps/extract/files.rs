//! Reading files of any supported format into one typed dataset: the
//! config and the reader shared by `extract.file` and `extract.s3`.

use std::io::Read;

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::Deserialize;

use crate::data::formats::csv::CsvOptions;
use crate::data::formats::excel::Sheet;
use crate::data::formats::json::DISCOVER_LINES;
use crate::data::formats::parquet::ParquetIngest;
use crate::data::formats::{Format, RowSource, SourceOptions, decompress, row_source};
use crate::data::ingest::{Ingest, TextSource, TypingOptions};
use crate::data::quarantine::BadRowLimit;
use crate::data::types::ColumnSpec;
use crate::steps::{ConfigProblem, Metrics, StepContext, StepOutput};

/// What to do when nothing matches for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfMissing {
    /// The task fails (default): a missing input is usually an incident.
    #[default]
    Fail,
    /// The task and everything downstream of it are skipped (days without
    /// an export, weekends).
    Skip,
    /// The task outputs an empty dataset and downstream runs on it.
    Empty,
}

/// A spreadsheet's sheet: by name or by 0-based index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SheetRef {
    Index(usize),
    Name(String),
}

/// Reads files (CSV, TSV, JSON, NDJSON, XLSX/XLS/ODS, Parquet; `.gz`
/// transparently) into one dataset.
///
/// ```toml
/// kind = "extract.file"
/// path = "data/by-day/{{ ds }}.csv"
/// max_bad_rows = "0.1%"
/// [columns]
/// InvoiceNo = "string"
/// Quantity = "int64"
/// InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S" }
/// UnitPrice = "decimal(10,2)"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// A file, or a glob (`data/*.csv`), relative to the project folder;
    /// templates allowed (`data/{{ ds }}.csv`). Files matched by a glob are
    /// read in name order. An `s3://` URI (object, prefix or glob) is read
    /// as `extract.s3` reads `uri`, so a `{{ vars.input }}` folder can be an
    /// S3 prefix in another env. (`extract.file`)
    pub path: Option<String>,
    /// An object, a prefix ending in `/`, or a glob
    /// (`s3://bucket/raw/{{ ds }}/*.csv.gz`). (`extract.s3`)
    pub uri: Option<String>,
    /// csv, tsv, json, ndjson, xlsx, xls, ods or parquet (default: from
    /// the file extension).
    pub format: Option<Format>,
    /// Column types: `Name = "int64"` or `Name = { type = "timestamp",
    /// format = "%d/%m/%Y %H:%M", timezone = "Europe/London" }`. Types:
    /// string, int64, float64, bool, date, timestamp, decimal(p,s).
    /// For files without a header (`csv = { header = false }`) these are
    /// also the names of the columns, in the order written here.
    #[serde(default)]
    pub columns: IndexMap<String, ColumnSpec>,
    /// Guess the types of undeclared columns from the first rows (default
    /// true; false reads them as strings).
    pub infer: Option<bool>,
    /// Rows sampled to guess types (default 10000).
    pub infer_rows: Option<usize>,
    /// Keep only the columns declared in `[columns]`.
    #[serde(default)]
    pub columns_only: bool,
    /// Add a column holding each row's source file.
    pub source_column: Option<String>,
    /// Texts that mean "missing" besides the empty string (`["NA", "None"]`).
    #[serde(default)]
    pub null_values: Vec<String>,
    /// Rows that cannot be read or typed go to the quarantine; past this
    /// many (a count, or a share such as "0.5%") the task fails. Default 0.
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
    /// When nothing matches: "fail" (default), "skip" (this task and its
    /// downstream are skipped) or "empty" (an empty dataset).
    #[serde(default)]
    pub if_missing: IfMissing,
    /// CSV dialect: `{ delimiter = ";", header = false, quote = "'",
    /// escape = "\\", comment = "#", encoding = "latin1",
    /// encoding_errors = "replace" }`.
    #[serde(default)]
    pub csv: CsvOptions,
    /// Spreadsheets: the sheet, by name or 0-based index (default: first).
    pub sheet: Option<SheetRef>,
    /// JSON: where the rows are, as a path such as `$.data.items` (default:
    /// the document is an array of rows, or one object).
    pub records: Option<String>,
    /// The connection (kind `s3`) giving `region` and `endpoint_url`
    /// (default: the connection named `s3` if there is one, else the
    /// standard AWS environment). (`extract.s3`)
    pub connection: Option<String>,
    /// A sensor: when nothing matches yet, poll (with backoff) until it
    /// appears or this long has passed, e.g. `"30m"`. (`extract.s3`)
    pub wait_for: Option<crate::spec::duration::HumanDuration>,
    /// The raw zone: a copy of each file read, as received, under this
    /// folder or prefix (`"s3://archive/raw/{{ ds }}/"`, or with
    /// `extract.file` a local folder such as `"archive/{{ ds }}/"`),
    /// keeping its name, made before the file is parsed (a file that fails
    /// to parse is still archived). On S3 the copy is server-side; locally
    /// the folder and files are owner-only (0700 / 0600), since raw files
    /// may hold PII. The archive is on the same side as the input: S3 to
    /// S3, local to local. Retention is the archive's own (an S3 lifecycle
    /// rule; a task that deletes old local folders).
    pub archive: Option<String>,
}

impl FilesConfig {
    /// Checks shared by the extract kinds. `location` is "path" or "uri":
    /// the key this kind reads its location from.
    pub fn check_common(&self, location: &str) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let (given, other) = match location {
            "path" => (&self.path, ("uri", &self.uri)),
            _ => (&self.uri, ("path", &self.path)),
        };
        if given.is_none() {
            p.push(
                ConfigProblem::new(location, format!("`{location}` is required"))
                    .hint(format!("e.g. `{location} = \"data/{{{{ ds }}}}.csv\"`")),
            );
        }
        if other.1.is_some() {
            p.push(
                ConfigProblem::new(other.0, format!("this step reads `{location}`, not `{}`", other.0))
                    .hint(format!("rename `{}` to `{location}`", other.0)),
            );
        }
        if location == "path" {
            for (key, set) in [
                ("connection", self.connection.is_some()),
                ("wait_for", self.wait_for.is_some()),
            ] {
                if set {
                    p.push(ConfigProblem::new(key, format!("`{key}` is for `extract.s3` only")).hint("remove it"));
                }
            }
        }
        for (name, spec) in &self.columns {
            if spec.formats.iter().any(|f| f.trim().is_empty()) {
                p.push(ConfigProblem::new(format!("columns.{name}"), "empty date format"));
            }
        }
        if self.infer_rows == Some(0) {
            p.push(ConfigProblem::new("infer_rows", "`infer_rows` must be at least 1").hint("or set `infer = false`"));
        }
        p
    }

    fn typing(&self) -> TypingOptions {
        TypingOptions {
            declared: self.columns.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            infer: self.infer.unwrap_or(true),
            infer_rows: self.infer_rows.unwrap_or(10_000),
            declared_only: self.columns_only,
            source_column: self.source_column.clone(),
            null_values: self.null_values.clone(),
        }
    }

    /// The names to give columns of files without a header: the declared
    /// columns in the order the job writes them (not sorted by name).
    fn header_names(&self) -> Vec<String> {
        self.columns.keys().cloned().collect()
    }
}

/// One file to read: a display name (path or URI) and its bytes.
pub struct Source {
    pub name: String,
    pub open: Box<dyn FnOnce() -> Result<Box<dyn Read + Send>> + Send>,
}

/// How a text or spreadsheet source of `cfg` is read.
fn source_options<'a>(cfg: &'a FilesConfig, names: &'a [String]) -> SourceOptions<'a> {
    SourceOptions {
        csv: &cfg.csv,
        names,
        records: cfg.records.as_deref(),
        discover: cfg.infer_rows.unwrap_or(0).max(DISCOVER_LINES),
        sheet: match &cfg.sheet {
            None => Sheet::First,
            Some(SheetRef::Index(i)) => Sheet::Index(*i),
            Some(SheetRef::Name(n)) => Sheet::Name(n),
        },
    }
}

/// Reads every source into the task's `default` output, quarantining bad
/// rows; enforces `max_bad_rows`. Blocking: run it on the blocking pool.
pub fn read_sources(cfg: &FilesConfig, sources: Vec<Source>, cx: &StepContext) -> Result<StepOutput> {
    let mut ingest = Ingest::new(
        &cx.artifact_dir(),
        &cx.task,
        "default",
        cfg.typing(),
        cx.quarantine(),
        cx.progress("read"),
    );
    let files = sources.len();
    // Parquet files are typed: their batches skip the text rows.
    let mut parquet: Option<ParquetIngest> = None;
    let mut text_files = 0usize;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let format_of = |name: &str| match cfg.format.or_else(|| Format::from_name(name)) {
        Some(f) => Ok(f),
        None => Err(anyhow::anyhow!(
            "cannot tell the format of {name} from its name: set `format = \"csv\"` (or json, ndjson, xlsx, parquet, ...)"
        )),
    };
    let mixed = |name: &str, format: Format| {
        anyhow::anyhow!(
            "{name} is {format:?} but other files of this task are not: Parquet and text or spreadsheet files cannot be read into one dataset (split them into two tasks)"
        )
    };
    let names = cfg.header_names();
    let mut sources = sources.into_iter();
    while let Some(src) = sources.next() {
        cx.check_cancelled()?;
        // Once a text file fixed the columns, the other files (a glob of
        // daily exports) are read side by side, a thread each, their rows
        // kept in file order.
        if ingest.columns_fixed() && threads > 1 && sources.len() > 0 {
            let rest: Vec<Source> = std::iter::once(src).chain(sources.by_ref()).collect();
            if let Some(p) = rest.iter().find(|s| format_of(&s.name).ok() == Some(Format::Parquet)) {
                return Err(mixed(&p.name, Format::Parquet));
            }
            let read: Vec<String> = rest.iter().map(|s| s.name.clone()).collect();
            let names = &names;
            let text = rest
                .into_iter()
                .map(|src| {
                    let format = format_of(&src.name)?;
                    let (name, open) = (src.name, src.open);
                    Ok(TextSource {
                        name: name.clone(),
                        open: Box::new(move || {
                            cx.check_cancelled()?;
                            let input = decompress(&name, open().with_context(|| format!("opening {name}"))?);
                            row_source(format, input, &source_options(cfg, names))
                        }),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            ingest.add_sources_in_parallel(text, threads)?;
            for name in read {
                cx.log.note(&format!("read {name}"));
            }
            break;
        }
        let format = format_of(&src.name)?;
        let input = decompress(
            &src.name,
            (src.open)().with_context(|| format!("opening {}", src.name))?,
        );
        let mut rows: Box<dyn RowSource> = match format {
            Format::Parquet => {
                if text_files > 0 {
                    return Err(mixed(&src.name, format));
                }
                parquet
                    .get_or_insert_with(|| ParquetIngest::new(&cx.artifact_dir(), &cx.task, "default", &cfg.typing()))
                    .add_source(&src.name, input, &mut ingest)
                    .with_context(|| format!("reading {}", src.name))?;
                cx.log.note(&format!("read {}", src.name));
                continue;
            }
            _ if parquet.is_some() => return Err(mixed(&src.name, format)),
            _ => row_source(format, input, &source_options(cfg, &names))
                .with_context(|| format!("reading {}", src.name))?,
        };
        text_files += 1;
        ingest
            .add_source(&src.name, rows.as_mut())
            .with_context(|| format!("reading {}", src.name))?;
        cx.log.note(&format!("read {}", src.name));
    }
    let rows_in = ingest.rows_in;
    let (dataset, quarantine) = match parquet {
        Some(p) => p.finish(ingest)?,
        None => ingest.finish()?,
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
    metrics.extra.insert("files".into(), files.into());
    if bad > 0 {
        cx.log.note(&format!("{bad} row(s) quarantined in {}", qpath.display()));
    }
    cfg.max_bad_rows
        .check(bad, rows_in, &qpath)
        .map_err(anyhow::Error::msg)?;
    Ok(StepOutput {
        datasets: vec![dataset],
        metrics,
    })
}
