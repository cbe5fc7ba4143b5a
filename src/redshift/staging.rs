//! Staging a load in S3: the input, converted to the target's columns, as
//! Parquet files and a manifest for `COPY ... FORMAT AS PARQUET MANIFEST`.
//!
//! File count and size follow AWS's COPY guidance: a multiple of the
//! cluster's slices, so that every slice reads the same amount, and files
//! of 1 MB to 1 GB after compression (the target size is configurable,
//! 128 MB by default). An input smaller than one megabyte per slice gets
//! fewer, 1 MB-or-larger files instead: tiny files cost more to open than
//! the parallelism saves. The manifest carries each file's
//! `meta.content_length`, which COPY requires for Parquet.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tokio::task::JoinSet;

use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::steps::StepContext;
use crate::warehouse::modes::InputRules;
use crate::warehouse::schema::Mapping;

const MB: u64 = 1024 * 1024;
/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 4;

/// How many files, and how many rows each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub files: u64,
    pub rows_per_file: u64,
}

/// Plans `rows` rows of about `bytes` compressed bytes into files of about
/// `file_bytes`, a multiple of `slices` of them.
pub fn plan(rows: u64, bytes: u64, slices: u32, file_bytes: u64) -> Plan {
    let slices = u64::from(slices.max(1));
    let by_size = bytes.div_ceil(file_bytes.max(MB)).max(1);
    let files = if bytes < slices * MB {
        // Too small to give every slice a 1 MB file.
        (bytes / MB).clamp(1, slices)
    } else {
        by_size.div_ceil(slices) * slices
    };
    let files = files.min(rows.max(1));
    Plan {
        files,
        rows_per_file: rows.div_ceil(files).max(1),
    }
}

/// What was staged.
#[derive(Debug, Clone)]
pub struct Staged {
    pub bucket: String,
    /// Key prefix of this load's files (ends with `/`).
    pub prefix: String,
    /// Data file keys, then the manifest's.
    pub keys: Vec<String>,
    pub manifest_url: String,
    pub bytes: u64,
    pub rows: u64,
}

impl Staged {
    /// `s3://bucket/prefix/`
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Splits `s3://bucket/prefix` into (bucket, prefix ending with `/` or empty).
pub fn split_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("`{url}` is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut prefix = prefix.to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok((bucket.to_string(), prefix))
}

/// A key-safe form of a name (run ids hold `@` and `:`).
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The folder of one load attempt under the connection's staging prefix:
/// unique per attempt, so that its files and load errors are its own.
pub fn attempt_prefix(cx: &StepContext, base: &str) -> String {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!(
        "{base}{}/{}/{}/attempt-{}-{nonce}/",
        safe(&cx.dag),
        safe(&cx.run_id),
        safe(&cx.task),
        cx.attempt
    )
}

/// Writes the input (converted by `mapping`, checked by `rules`) as
/// Parquet files under `staging` (an `s3://` prefix) and uploads them with
/// a manifest. Encoding runs on the blocking pool while earlier files
/// upload.
pub async fn stage(
    cx: &StepContext,
    s3: &aws_sdk_s3::Client,
    staging: &str,
    mapping: Mapping,
    mut rules: InputRules,
    plan: Plan,
) -> Result<Staged> {
    let (bucket, prefix) = split_s3_url(staging)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Bytes)>(2);
    let producer = cx.blocking(move |cx| {
        let reader = crate::data::artifact::open(cx.single_input()?, DEFAULT_BATCH_ROWS)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(DEFAULT_BATCH_ROWS * 16))
            .build();
        let schema = mapping.schema.clone();
        let new_writer = || ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()));
        let mut writer = new_writer()?;
        let mut in_file = 0u64;
        let mut index = 0u64;
        let mut offset = 0u64;
        let mut progress = cx.progress("staging");
        let flush = |writer: ArrowWriter<Vec<u8>>, index: &mut u64| -> Result<()> {
            let bytes = writer.into_inner()?;
            tx.blocking_send((*index, Bytes::from(bytes)))
                .map_err(|_| anyhow::anyhow!("the upload stopped"))?;
            *index += 1;
            Ok(())
        };
        for batch in reader {
            cx.check_cancelled()?;
            let batch = batch.context("reading the input dataset")?;
            rules.check(&batch)?;
            let converted: RecordBatch = mapping.convert(&batch, offset)?;
            offset += batch.num_rows() as u64;
            progress.add(batch.num_rows() as u64, batch.get_array_memory_size() as u64);
            let mut start = 0usize;
            while start < converted.num_rows() {
                let room = (plan.rows_per_file - in_file) as usize;
                let take = room.min(converted.num_rows() - start);
                writer.write(&converted.slice(start, take))?;
                in_file += take as u64;
                start += take;
                if in_file == plan.rows_per_file {
                    flush(std::mem::replace(&mut writer, new_writer()?), &mut index)?;
                    in_file = 0;
                }
            }
        }
        if in_file > 0 || index == 0 {
            flush(writer, &mut index)?;
        }
        progress.finish();
        Ok(offset)
    });

    let upload = async {
        let mut uploads = JoinSet::new();
        let mut files: Vec<(u64, String, u64)> = Vec::new();
        while let Some((i, body)) = rx.recv().await {
            while uploads.len() >= PARALLEL_UPLOADS {
                files.push(uploads.join_next().await.expect("not empty")??);
            }
            let key = format!("{prefix}part-{i:05}.parquet");
            let s3 = s3.clone();
            let bucket = bucket.clone();
            uploads.spawn(async move {
                let len = body.len() as u64;
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(body.into())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                    .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
                anyhow::Ok((i, key, len))
            });
        }
        while let Some(done) = uploads.join_next().await {
            files.push(done??);
        }
        files.sort();
        anyhow::Ok(files)
    };
    let (rows, files) = tokio::join!(producer, upload);
    let (rows, files) = (rows?, files?);

    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|(_, key, len)| {
            serde_json::json!({
                "url": format!("s3://{bucket}/{key}"),
                "mandatory": true,
                "meta": { "content_length": len },
            })
        })
        .collect();
    let manifest_key = format!("{prefix}manifest.json");
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({ "entries": entries }))?;
    s3.put_object()
        .bucket(&bucket)
        .key(&manifest_key)
        .body(manifest.into())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
        .with_context(|| format!("uploading the manifest s3://{bucket}/{manifest_key}"))?;
    let bytes = files.iter().map(|f| f.2).sum();
    let mut keys: Vec<String> = files.into_iter().map(|f| f.1).collect();
    keys.push(manifest_key.clone());
    Ok(Staged {
        manifest_url: format!("s3://{bucket}/{manifest_key}"),
        bucket,
        prefix,
        keys,
        bytes,
        rows,
    })
}

/// Deletes the staged files.
pub async fn clean(s3: &aws_sdk_s3::Client, staged: &Staged) -> Result<()> {
    let mut deletes = JoinSet::new();
    for key in staged.keys.clone() {
        let s3 = s3.clone();
        let bucket = staged.bucket.clone();
        deletes.spawn(async move {
            s3.delete_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                .with_context(|| format!("deleting s3://{bucket}/{key}"))
        });
    }
    while let Some(d) = deletes.join_next().await {
        d??;
    }
    Ok(())
}

/// The S3 client for a connection.
pub async fn s3(conn: &super::RedshiftConnection) -> Arc<aws_sdk_s3::Client> {
    Arc::new(crate::aws::s3_client(&conn.aws).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_a_multiple_of_the_slices_and_sized() {
        // 1 GB over 4 slices at 128 MB: 8 files.
        assert_eq!(plan(8_000_000, 1024 * MB, 4, 128 * MB).files, 8);
        // 300 MB over 4 slices at 128 MB: 3 by size, rounded up to 4.
        let p = plan(1_000_000, 300 * MB, 4, 128 * MB);
        assert_eq!((p.files, p.rows_per_file), (4, 250_000));
        // 2.5 MB over 4 slices: 2 files of >= 1 MB rather than 4 tiny ones.
        assert_eq!(plan(1000, 5 * MB / 2, 4, 128 * MB).files, 2);
        // Tiny input: one file; never more files than rows.
        assert_eq!(
            plan(3, 100, 16, 128 * MB),
            Plan {
                files: 1,
                rows_per_file: 3
            }
        );
        assert_eq!(plan(0, 0, 4, 128 * MB).files, 1);
    }

    #[test]
    fn s3_urls() {
        assert_eq!(split_s3_url("s3://b/p").unwrap(), ("b".into(), "p/".into()));
        assert_eq!(split_s3_url("s3://b").unwrap(), ("b".into(), String::new()));
        assert!(split_s3_url("/tmp/x").is_err());
    }
}
