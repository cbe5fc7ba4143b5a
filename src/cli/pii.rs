//! `nightjar pii scan FILE | DAG TASK` and `nightjar pii detokenize`.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use clap::{Args, Subcommand};

use super::preview::{PreviewArgs, task_outputs};
use super::{Cli, table};
use crate::data::artifact::{open, open_path};
use crate::data::formats::csv::CsvOptions;
use crate::data::formats::excel::Sheet;
use crate::data::formats::{Format, Next, SourceOptions, decompress, row_source};
use crate::pii::columns::as_text;
use crate::pii::key::KeySource;
use crate::pii::scan::{ColumnReport, scan_column};
use crate::pii::tokenize::Tokenizer;

#[derive(Subcommand, Debug)]
pub enum PiiCommand {
    /// Which columns of a file (CSV, TSV, JSON, NDJSON, XLSX/XLS/ODS,
    /// Parquet; .gz too) or of a task's output
    /// hold PII, how sure that is, masked examples, and a suggested
    /// transform.pii job.
    Scan(ScanArgs),
    /// Turn `tok_...` tokens (from `action = "tokenize"`) back into values.
    /// Needs the key the tokens were made with. Tokens come from the
    /// arguments, else one per line on standard input.
    Detokenize(DetokenizeArgs),
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// A data file, or a DAG (file or name) followed by one of its tasks.
    target: String,
    /// With a DAG: the task whose output to scan (it runs first for the
    /// date if it has not succeeded).
    task: Option<String>,
    /// Rows sampled (from the start of the data).
    #[arg(long, default_value_t = 10_000)]
    rows: usize,
    /// The CSV/TSV file or sheet has no header line (columns are named
    /// column_1, ...).
    #[arg(long)]
    no_header: bool,
    /// With a DAG: the logical date.
    #[arg(long)]
    date: Option<String>,
    /// With a DAG: override a variable (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
}

#[derive(Args, Debug)]
pub struct DetokenizeArgs {
    /// Tokens (`tok_...`); none: read them from standard input.
    tokens: Vec<String>,
    /// The environment variable holding the key.
    #[arg(long, default_value = "NIGHTJAR_PII_KEY", conflicts_with = "key_file")]
    key_env: String,
    /// A file holding the key instead (e.g. `.nightjar/pii.key`).
    #[arg(long)]
    key_file: Option<String>,
    /// The `context` the tokenize action used, if any.
    #[arg(long, default_value = "")]
    context: String,
}

pub fn pii(cli: &Cli, cmd: &PiiCommand) -> Result<ExitCode> {
    match cmd {
        PiiCommand::Scan(a) => scan(cli, a),
        PiiCommand::Detokenize(a) => detokenize(cli, a),
    }
}

fn scan(cli: &Cli, a: &ScanArgs) -> Result<ExitCode> {
    let batches = match &a.task {
        None => read_file(Path::new(&a.target), a.rows, !a.no_header)?,
        Some(task) => {
            let args = PreviewArgs {
                dag: a.target.clone(),
                task: task.clone(),
                date: a.date.clone(),
                rows: a.rows,
                vars: a.vars.clone(),
                env: a.env.clone(),
            };
            let Some((_, _, outputs)) = task_outputs(cli, &args)? else {
                return Ok(ExitCode::SUCCESS);
            };
            let d = outputs.first().context("the task has no output")?;
            take_rows(open(d, 8192)?, a.rows)?
        }
    };
    let reports = scan_batches(&batches)?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "columns": reports, "suggested_job": suggested_job(&reports)
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.column.clone(),
                r.kind.map_or("-".into(), |k| k.to_string()),
                if r.is_pii() && r.evidence != "name" {
                    format!("{:.0}% of {}", r.rate * 100.0, r.sampled)
                } else {
                    format!("- of {}", r.sampled)
                },
                if r.evidence.is_empty() {
                    "-".into()
                } else {
                    r.evidence.clone()
                },
                r.examples.join(" | "),
            ]
        })
        .collect();
    table::print(&["COLUMN", "PII", "MATCH RATE", "EVIDENCE", "EXAMPLES (MASKED)"], &rows);
    match suggested_job(&reports) {
        Some(job) => println!("\nSuggested job (jobs/<name>/pii.toml):\n\n{job}"),
        None => println!(
            "\nNo PII found in {} sampled rows.",
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Scans every column of the sampled batches.
pub fn scan_batches(batches: &[RecordBatch]) -> Result<Vec<ColumnReport>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let mut out = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let cols = batches
            .iter()
            .map(|b| as_text(b.column(i)))
            .collect::<Result<Vec<_>>>()?;
        out.push(scan_column(f.name(), cols.iter().flat_map(|c| c.iter())));
    }
    Ok(out)
}

/// A transform.pii job for the columns found.
pub fn suggested_job(reports: &[ColumnReport]) -> Option<String> {
    let actions: Vec<(String, String)> = reports
        .iter()
        .filter_map(|r| r.suggested_action().map(|a| (r.column.clone(), a)))
        .collect();
    if actions.is_empty() {
        return None;
    }
    let mut job = String::from("kind = \"transform.pii\"\n");
    if actions
        .iter()
        .any(|(_, a)| a.contains("pseudonymize") || a.contains("tokenize"))
    {
        job.push_str("key = { env = \"NIGHTJAR_PII_KEY\" }\n");
    }
    job.push_str("\n[columns]\n");
    for (c, a) in actions {
        let key = if c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            c
        } else {
            format!("{c:?}")
        };
        job.push_str(&format!("{key} = {a}\n"));
    }
    Some(job)
}

/// The first `rows` rows of a data file of any format `extract.file` reads
/// (CSV, TSV, JSON, NDJSON, XLSX/XLS/ODS: all columns as text; Parquet:
/// as typed), gzip looked through.
pub fn read_file(path: &Path, rows: usize, header: bool) -> Result<Vec<RecordBatch>> {
    let name = path.to_string_lossy().to_string();
    let format = Format::from_name(&name).with_context(|| {
        format!(
            "cannot tell the format of {name} from its name (csv, tsv, json, ndjson, xlsx, xls, ods, parquet, optionally .gz)"
        )
    })?;
    if format == Format::Parquet {
        return take_rows(open_path(path, 8192)?, rows);
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let csv = CsvOptions {
        header,
        ..CsvOptions::default()
    };
    let opts = SourceOptions {
        csv: &csv,
        names: &[],
        records: None,
        discover: rows.max(1),
        sheet: Sheet::First,
    };
    let mut source = row_source(format, decompress(&name, Box::new(file)), &opts)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut cells: Vec<Vec<Option<String>>> = Vec::new();
    let mut n = 0;
    while n < rows {
        match source
            .next_row()
            .with_context(|| format!("reading {}", path.display()))?
        {
            Next::End => break,
            // A malformed line is not PII evidence either way: skip it.
            Next::Bad(_) => continue,
            Next::Row(_, row) => {
                cells.resize(cells.len().max(row.len()), Vec::new());
                for (i, c) in cells.iter_mut().enumerate() {
                    c.resize(n, None);
                    c.push(row.get(i).filter(|s| !s.is_empty()).map(str::to_string));
                }
                n += 1;
            }
        }
    }
    let mut names: Vec<String> = source.columns().to_vec();
    cells.resize(cells.len().max(names.len()), Vec::new());
    while names.len() < cells.len() {
        names.push(format!("column_{}", names.len() + 1));
    }
    let fields: Vec<arrow::datatypes::Field> = names
        .iter()
        .map(|n| arrow::datatypes::Field::new(n, arrow::datatypes::DataType::Utf8, true))
        .collect();
    let arrays: Vec<arrow::array::ArrayRef> = cells
        .into_iter()
        .map(|mut c| {
            c.resize(n, None);
            std::sync::Arc::new(arrow::array::StringArray::from(c)) as arrow::array::ArrayRef
        })
        .collect();
    if fields.is_empty() {
        bail!("{} has no columns", path.display());
    }
    Ok(vec![RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        arrays,
    )?])
}

fn take_rows(
    reader: impl Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>,
    rows: usize,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut n = 0;
    for b in reader {
        if n >= rows {
            break;
        }
        let b = b?;
        let take = b.num_rows().min(rows - n);
        n += take;
        out.push(b.slice(0, take));
    }
    Ok(out)
}

fn detokenize(cli: &Cli, a: &DetokenizeArgs) -> Result<ExitCode> {
    let source = KeySource {
        env: a.key_file.is_none().then(|| a.key_env.clone()),
        file: a.key_file.clone(),
        generate: false,
    };
    let root = super::locate::project_root(cli, None)?;
    let key = source.load(&root)?;
    let mut t = Tokenizer::from_master(&key, &a.context);
    let mut failed = 0usize;
    let mut one = |tok: &str| {
        let tok = tok.trim();
        if tok.is_empty() {
            return;
        }
        match t.detokenize(tok) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                failed += 1;
                eprintln!("{tok}: {e}");
            }
        }
    };
    if a.tokens.is_empty() {
        for line in std::io::stdin().lock().lines() {
            one(&line?);
        }
    } else {
        for tok in &a.tokens {
            one(tok);
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::detect::Kind;

    /// The same people in every text format: the contact column is found
    /// by its values whatever the format, and examples are masked.
    #[test]
    fn scan_reads_every_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let people = [
            ("1", "ann.lee@example.com"),
            ("2", "bob.ray@example.org"),
            ("3", "cy@example.net"),
        ];
        let csv: String = std::iter::once("id,contact\n".to_string())
            .chain(people.iter().map(|(i, e)| format!("{i},{e}\n")))
            .collect();
        let ndjson: String = people
            .iter()
            .map(|(i, e)| format!("{{\"id\": {i}, \"contact\": \"{e}\"}}\n"))
            .collect();
        let json = format!(
            "[{}]",
            people
                .iter()
                .map(|(i, e)| format!("{{\"id\": {i}, \"contact\": \"{e}\"}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let files = [
            ("people.csv", csv.clone()),
            ("people.tsv", csv.replace(',', "\t")),
            ("people.ndjson", ndjson),
            ("people.json", json),
        ];
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let batches = read_file(&path, 100, true).unwrap();
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3, "{name}");
            let reports = scan_batches(&batches).unwrap();
            let contact = reports.iter().find(|r| r.column == "contact").unwrap();
            assert_eq!(contact.kind, Some(Kind::Email), "{name}: {contact:?}");
            assert!(
                !contact.examples.iter().any(|e| e.contains("ann.lee")),
                "{name}: masked"
            );
            let id = reports.iter().find(|r| r.column == "id").unwrap();
            assert_eq!(id.kind, None, "{name}");
        }
        // Rows are sampled from the start; a name with no known format is
        // refused with the list of formats.
        let path = dir.path().join("people.csv");
        assert_eq!(read_file(&path, 2, true).unwrap()[0].num_rows(), 2);
        let e = read_file(&dir.path().join("people.dat"), 2, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("people.dat") && e.contains("ndjson"), "{e}");
    }

    #[test]
    fn scan_reads_spreadsheets() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats/orders.xlsx");
        let batches = read_file(&path, 100, true).unwrap();
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[0], "InvoiceNo");
        assert!(names.contains(&"CustomerID"));
        assert!(batches[0].num_rows() >= 3);
    }
}
