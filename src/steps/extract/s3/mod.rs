//! `extract.s3`: objects in S3 (one object, a prefix or a glob) into a
//! dataset, with every format and setting of `extract.file` (see
//! [`FilesConfig`]), plus a sensor (`wait_for`) and raw archiving
//! (`archive`).
//!
//! Text formats (CSV, TSV, JSON, NDJSON) are streamed: the body flows from
//! the network through a bounded channel into the same readers as local
//! files, so an object of any size is read in bounded memory. Parquet is
//! spooled to a temporary file under the task's artifact folder first (its
//! reader needs to seek), and spreadsheets are read whole (calamine needs
//! the whole workbook).
//!
//! ```toml
//! [[task]]
//! id = "orders"
//! kind = "extract.s3"
//! uri = "s3://retail-raw/by-day/{{ ds }}/*.csv.gz"
//! wait_for = "30m"
//! archive = "s3://retail-archive/raw/{{ ds }}/"
//! ```

mod objects;
#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use serde::Deserialize;

use self::objects::{Object, ObjectReader, S3Uri, Selector};
use super::files::{FilesConfig, IfMissing, Source, read_sources};
use crate::aws::AwsOptions;
use crate::steps::{ConfigProblem, Skipped, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<S3Extract>(
    "extract.s3",
    "reads CSV, JSON, XLSX or Parquet objects from S3 (object, prefix or glob)",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "extract.s3"
uri = "s3://retail-raw/by-day/{{ ds }}.csv.gz"
format = "csv"
wait_for = "30m"
archive = "s3://retail-archive/raw/{{ ds }}/"
max_bad_rows = "0.1%"

[columns]
InvoiceNo = "string"
Quantity = "int64"
InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S" }
UnitPrice = "decimal(10,2)"
"#;

/// First and longest pause between two looks for a missing object.
const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(60);

/// `extract.s3`'s config: the shared [`FilesConfig`] with `uri` (and
/// optionally `connection`, `wait_for`, `archive`).
///
/// The connection (kind `s3`) may set `region`, `endpoint_url` (an
/// emulator or VPC endpoint; switches to path-style addressing) and
/// `emulator = true` (dummy credentials, for moto or LocalStack only).
/// Credentials otherwise come from the standard AWS chain (environment,
/// profile, instance or task role), never from the project files.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct S3Extract(pub FilesConfig);

impl StepConfig for S3Extract {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = self.0.check_common("uri");
        for (key, value) in [("uri", &self.0.uri), ("archive", &self.0.archive)] {
            if let Some(v) = value
                && !v.starts_with("s3://")
            {
                p.push(
                    ConfigProblem::new(key, format!("`{v}` is not an S3 URI"))
                        .hint("write it as s3://bucket/key (for local files use `extract.file` and `path`)"),
                );
            }
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for S3Extract {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.0.clone();
        let uri = S3Uri::parse(cfg.uri.as_deref().unwrap_or_default())?;
        let sel = Selector::of(&uri.key)?;
        let client = crate::aws::s3_client(&aws_options(cx, cfg.connection.as_deref())?).await;

        let mut near = Vec::new();
        let mut objects = objects::find(&client, &uri.bucket, &sel, &mut near).await?;
        if objects.is_empty()
            && let Some(wait) = cfg.wait_for
        {
            objects = wait_for(cx, &client, &uri, &sel, wait.0).await?;
        }
        if objects.is_empty() {
            let mut what = format!("nothing in S3 matches `{uri}`");
            if let Some(w) = cfg.wait_for {
                what += &format!(" after waiting {w}");
            }
            match cfg.if_missing {
                IfMissing::Fail => {
                    let hint = match near.first() {
                        Some(k) => format!(
                            " (there is s3://{}/{k}: is it a folder? end the URI with `/`)",
                            uri.bucket
                        ),
                        None => {
                            " (set `if_missing = \"skip\"` if that can happen, or `wait_for = \"30m\"` to wait)".into()
                        }
                    };
                    bail!("{what}{hint}");
                }
                IfMissing::Skip => return Err(Skipped(what).into()),
                IfMissing::Empty => {}
            }
        }
        if let Some(archive) = &cfg.archive {
            archive_objects(cx, &client, &uri, &sel, &objects, archive).await?;
        }

        let rt = tokio::runtime::Handle::current();
        let bytes: u64 = objects.iter().map(|o| o.size).sum();
        let count = objects.len();
        let sources = objects
            .into_iter()
            .map(|o| {
                let obj = S3Uri {
                    bucket: uri.bucket.clone(),
                    key: o.key,
                };
                let (rt, client, cancel) = (rt.clone(), client.clone(), cx.cancel.clone());
                Source {
                    name: obj.to_string(),
                    open: Box::new(move || -> Result<Box<dyn std::io::Read + Send>> {
                        Ok(Box::new(ObjectReader::open(&rt, client, &obj, cancel)?))
                    }),
                }
            })
            .collect();
        let mut out = cx.blocking(move |cx| read_sources(&cfg, sources, &cx)).await?;
        out.metrics.extra.insert("objects".into(), count.into());
        out.metrics.extra.insert("bytes".into(), bytes.into());
        Ok(out)
    }
}

/// The AWS options of the step's connection: the one it names, else the
/// one named `s3`, else the standard AWS environment.
fn aws_options(cx: &StepContext, name: Option<&str>) -> Result<AwsOptions> {
    let conn = match name {
        Some(n) => Some(cx.connections.get(n).ok_or_else(|| {
            anyhow!(
                "no connection named `{n}` in env `{}` (it has: {}): add `[env.{}.connections.{n}]` with `kind = \"s3\"` to nightjar.toml",
                cx.env,
                cx.connections.keys().cloned().collect::<Vec<_>>().join(", "),
                cx.env
            )
        })?),
        None => cx.connections.get("s3"),
    };
    let Some(conn) = conn else {
        return Ok(AwsOptions::default());
    };
    if conn.kind != "s3" {
        bail!(
            "connection `{}` is of kind `{}`: extract.s3 needs one of kind `s3`",
            conn.name,
            conn.kind
        );
    }
    let mut opts = AwsOptions::from_settings(&conn.settings);
    if conn.settings.get("emulator").and_then(|v| v.as_bool()) == Some(true) {
        // moto and LocalStack accept any key; real AWS never sees these.
        opts.static_credentials = Some(("testing".into(), "testing".into()));
    }
    Ok(opts)
}

/// The sensor: looks again, with growing pauses, until something matches
/// or `wait` has passed. Cancellation (timeout, Ctrl-C) stops it at once.
async fn wait_for(
    cx: &StepContext,
    client: &aws_sdk_s3::Client,
    uri: &S3Uri,
    sel: &Selector,
    wait: Duration,
) -> Result<Vec<Object>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = POLL_FIRST;
    cx.log.note(&format!(
        "nothing matches {uri} yet: waiting up to {}",
        humantime::format_duration(wait)
    ));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(Vec::new());
        }
        tokio::select! {
            _ = cx.cancel.cancelled() => bail!("cancelled while waiting for {uri}"),
            _ = tokio::time::sleep(pause.min(left)) => {}
        }
        let found = objects::find(client, &uri.bucket, sel, &mut Vec::new()).await?;
        if !found.is_empty() {
            cx.log.note(&format!("{uri}: {} object(s) appeared", found.len()));
            return Ok(found);
        }
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// Copies each object, server-side, under the archive prefix, keeping its
/// key relative to the folder the URI names.
async fn archive_objects(
    cx: &StepContext,
    client: &aws_sdk_s3::Client,
    uri: &S3Uri,
    sel: &Selector,
    objects: &[Object],
    archive: &str,
) -> Result<()> {
    let mut to = S3Uri::parse(archive)?;
    if !to.key.is_empty() && !to.key.ends_with('/') {
        to.key.push('/');
    }
    for o in objects {
        let rel = o.key.strip_prefix(sel.base_dir()).unwrap_or(&o.key);
        let from = S3Uri {
            bucket: uri.bucket.clone(),
            key: o.key.clone(),
        };
        let dest = S3Uri {
            bucket: to.bucket.clone(),
            key: format!("{}{rel}", to.key),
        };
        objects::copy(client, &from, &dest).await?;
        cx.log.note(&format!("archived {from} to {dest}"));
    }
    Ok(())
}
