//! `COPY ... FROM 's3://...' FORMAT AS PARQUET [MANIFEST]`, emulated: the
//! manifest and the Parquet files are read from the S3 emulator and their
//! rows copied into the PostgreSQL table (text COPY FROM STDIN, one COPY
//! per file so that PostgreSQL's "line N" is the row of that file).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatchReader;
use bytes::Bytes;
use futures_util::SinkExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use regex::Regex;

use super::dialect::S3Copy;

/// One rejected row, as Redshift records it in SYS_LOAD_ERROR_DETAIL.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub file: String,
    pub line: i64,
    pub column: String,
    pub column_type: String,
    pub reason: String,
    pub raw_value: String,
}

/// Why a COPY failed.
#[derive(Debug)]
pub enum CopyFailure {
    /// A row was rejected (recorded in SYS_LOAD_ERROR_DETAIL).
    Row(Box<LoadError>),
    /// Anything else (missing file, bad manifest, ...).
    Other(String),
}

impl CopyFailure {
    /// The statement's error, worded like Redshift's.
    pub fn message(&self, table: &str) -> String {
        match self {
            CopyFailure::Row(_) => {
                format!("Load into table '{table}' failed. Check 'sys_load_error_detail' system table for details.")
            }
            CopyFailure::Other(m) => m.clone(),
        }
    }
}

fn other(m: impl Into<String>) -> CopyFailure {
    CopyFailure::Other(m.into())
}

/// Splits `s3://bucket/key` into (bucket, key).
fn split_url(url: &str) -> Result<(String, String), CopyFailure> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| other(format!("not an S3 URL: {url}")))?;
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((b.to_string(), k.to_string()))
}

async fn get(s3: &aws_sdk_s3::Client, url: &str) -> Result<Bytes, CopyFailure> {
    let (bucket, key) = split_url(url)?;
    let obj = s3.get_object().bucket(&bucket).key(&key).send().await.map_err(|e| {
        other(format!(
            "S3ServiceException: cannot read {url}: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ))
    })?;
    obj.body
        .collect()
        .await
        .map(|b| b.into_bytes())
        .map_err(|e| other(format!("reading {url}: {e}")))
}

/// The files a COPY reads, with the length the manifest claims.
async fn files(s3: &aws_sdk_s3::Client, copy: &S3Copy) -> Result<Vec<(String, Option<i64>)>, CopyFailure> {
    if copy.manifest {
        let text = get(s3, &copy.from).await?;
        let manifest: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| other(format!("Manifest file {} is not valid JSON: {e}", copy.from)))?;
        let entries = manifest["entries"]
            .as_array()
            .ok_or_else(|| other(format!("Manifest file {} has no \"entries\" array", copy.from)))?;
        let mut out = Vec::new();
        for e in entries {
            let url = e["url"]
                .as_str()
                .ok_or_else(|| other("manifest entry without \"url\""))?
                .to_string();
            let len = e["meta"]["content_length"].as_i64();
            if copy.parquet && len.is_none() {
                return Err(other(format!(
                    "content_length meta is required in the manifest for Parquet files: {url}"
                )));
            }
            out.push((url, len));
        }
        Ok(out)
    } else {
        let (bucket, prefix) = split_url(&copy.from)?;
        let list = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .send()
            .await
            .map_err(|e| other(format!("listing {}: {e}", copy.from)))?;
        let files: Vec<_> = list
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| (format!("s3://{bucket}/{k}"), None))
            .collect();
        if files.is_empty() {
            return Err(other(format!("The specified S3 prefix '{prefix}' does not exist")));
        }
        Ok(files)
    }
}

/// The target's columns (name, type) in table order, or those of the
/// column list.
async fn target_columns(db: &tokio_postgres::Client, copy: &S3Copy) -> Result<Vec<(String, String)>, CopyFailure> {
    let rows = db
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&copy.table],
        )
        .await
        .map_err(|e| other(format!("relation \"{}\" does not exist ({e})", copy.table)))?;
    let all: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if copy.columns.is_empty() {
        return Ok(all);
    }
    copy.columns
        .iter()
        .map(|c| {
            all.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(c.trim_matches('"')))
                .cloned()
                .ok_or_else(|| other(format!("column \"{c}\" of relation \"{}\" does not exist", copy.table)))
        })
        .collect()
}

/// Runs the COPY on `db` (inside the caller's transaction). Returns the
/// rows loaded.
pub async fn run(db: &tokio_postgres::Client, s3: &aws_sdk_s3::Client, copy: &S3Copy) -> Result<u64, CopyFailure> {
    if !copy.parquet {
        return Err(other(
            "the Data API test server emulates COPY from S3 only with FORMAT AS PARQUET",
        ));
    }
    if copy.iam_role.is_none() {
        return Err(other("COPY from S3 needs IAM_ROLE (or CREDENTIALS)"));
    }
    let columns = target_columns(db, copy).await?;
    let list: Vec<String> = columns.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let statement = format!("COPY {} ({}) FROM STDIN", copy.table, list.join(", "));
    let mut total = 0u64;
    for (url, claimed) in files(s3, copy).await? {
        let bytes = get(s3, &url).await?;
        if let Some(len) = claimed
            && len != bytes.len() as i64
        {
            return Err(other(format!(
                "content_length {len} in the manifest does not match the size of {url} ({} bytes)",
                bytes.len()
            )));
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| other(format!("Spectrum Scan Error: {url} is not a Parquet file: {e}")))?;
        let width = reader.schema().fields().len();
        if width != columns.len() {
            return Err(other(format!(
                "Spectrum Scan Error: Unmatched number of columns between table and file. Table columns: {}, Data columns detected: {width}, File name: {url}",
                columns.len()
            )));
        }
        let mut text = Vec::new();
        let mut rows = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| other(format!("reading {url}: {e}")))?;
            let cols: Vec<Arc<dyn Array>> = batch
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    DataType::Utf8 => Ok(c.clone()),
                    _ => arrow::compute::cast(c, &DataType::Utf8).map_err(|e| other(format!("{url}: {e}"))),
                })
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        text.push(b'\t');
                    }
                    if c.is_null(row) {
                        text.extend_from_slice(b"\\N");
                    } else {
                        escape_into(&mut text, c.as_string::<i32>().value(row));
                    }
                }
                text.push(b'\n');
            }
            rows += batch.num_rows() as u64;
        }
        let sink = db
            .copy_in::<_, Bytes>(statement.as_str())
            .await
            .map_err(|e| other(e.as_db_error().map_or(e.to_string(), |d| d.message().to_string())))?;
        futures_util::pin_mut!(sink);
        let sent = sink.send(Bytes::from(text)).await;
        let done = match sent {
            Ok(()) => sink.finish().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            return Err(row_error(&e, &url, &columns));
        }
        total += rows;
    }
    Ok(total)
}

/// COPY's text format: backslash escapes for the separators.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// PostgreSQL's COPY error context: `COPY t, line 3, column qty: "x"`.
static CONTEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"COPY [^,]+, line (\d+)(?:, column ([^:]+)(?:: "(.*)")?)?"#).expect("valid"));

fn row_error(e: &tokio_postgres::Error, url: &str, columns: &[(String, String)]) -> CopyFailure {
    let Some(db) = e.as_db_error() else {
        return other(format!("COPY of {url} failed: {e}"));
    };
    let Some(c) = db.where_().and_then(|w| CONTEXT.captures(w)) else {
        return other(db.message().to_string());
    };
    let column = c.get(2).map_or(String::new(), |m| m.as_str().to_string());
    CopyFailure::Row(Box::new(LoadError {
        file: url.to_string(),
        line: c[1].parse().unwrap_or(0),
        column_type: columns
            .iter()
            .find(|(n, _)| *n == column)
            .map_or(String::new(), |(_, t)| t.clone()),
        column,
        reason: db.message().to_string(),
        raw_value: c.get(3).map_or(String::new(), |m| m.as_str().to_string()),
    }))
}
