//! The artifact store of a task that runs on its own (`nightjar step`, a
//! worker, a container): a local folder, or an S3 prefix
//! (`[env.NAME] artifacts = "s3://bucket/prefix/"`).
//!
//! Steps only ever read and write local Parquet files. With S3, a task's
//! input artifacts are downloaded into a cache folder before the step runs
//! (`.nightjar/cache/artifacts/<dag>/<run>/<task>/`) and everything the step
//! wrote in its folder is uploaded after it, under
//! `<prefix><dag>/<run>/<task>/`. Then a manifest (`_done.json`: state,
//! attempt, metrics, outputs) marks the task done: downstream tasks find
//! their inputs through it, and a task delivered twice (a retried message,
//! a resumed run) finds it and does not run again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::data::{ArtifactStore, DatasetRef};
use crate::spec::{Environment, Project};
use crate::steps::Metrics;

/// The manifest file in a task's artifact folder.
pub const MANIFEST: &str = "_done.json";
/// The task's log, copied next to its artifacts.
pub const LOG: &str = "_task.log";

/// What a finished task left for its downstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub task: String,
    pub attempt: u32,
    /// `success` or `skipped`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub metrics: Metrics,
    pub outputs: Vec<DatasetRef>,
}

enum Location {
    Local,
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

/// Where a run's artifacts live, seen from one machine.
pub struct RemoteArtifacts {
    location: Location,
    /// Where steps read and write files on this machine.
    local_root: PathBuf,
}

/// `s3://bucket/prefix/` -> (bucket, `prefix/`).
pub fn parse_s3_uri(uri: &str) -> Result<(String, String)> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow!("`{uri}` is not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("`{uri}` names no bucket: write it as s3://BUCKET/PREFIX/");
    }
    let mut prefix = prefix.to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok((bucket.to_string(), prefix))
}

impl RemoteArtifacts {
    /// The artifact store of `env`: S3 when its `artifacts` is an `s3://`
    /// URI, else the project's local folder (or the folder it names).
    pub async fn for_env(project: &Project, env: &Environment) -> Result<Self> {
        match env.artifacts.as_deref() {
            Some(uri) if uri.starts_with("s3://") => {
                let (bucket, prefix) = parse_s3_uri(uri)?;
                let opts = env.sfn.as_ref().map(|s| s.aws_options()).unwrap_or_default();
                Ok(Self {
                    location: Location::S3 {
                        client: crate::aws::s3_client(&opts).await,
                        bucket,
                        prefix,
                    },
                    local_root: project.state_dir().join("cache").join("artifacts"),
                })
            }
            Some(folder) => Ok(Self {
                location: Location::Local,
                local_root: project.root.join(folder),
            }),
            None => Ok(Self {
                location: Location::Local,
                local_root: project.state_dir().join("artifacts"),
            }),
        }
    }

    /// Where steps write (and read downloaded inputs) on this machine.
    pub fn local_store(&self) -> ArtifactStore {
        ArtifactStore::new(&self.local_root)
    }

    fn key(prefix: &str, dag: &str, run: &str, task: &str, file: &str) -> String {
        format!("{prefix}{dag}/{run}/{task}/{file}")
    }

    async fn get(&self, dag: &str, run: &str, task: &str, file: &str) -> Result<Option<Vec<u8>>> {
        match &self.location {
            Location::Local => {
                let path = self.local_store().task_dir(dag, run, task).join(file);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
                }
            }
            Location::S3 { client, bucket, prefix } => {
                let key = Self::key(prefix, dag, run, task, file);
                match client.get_object().bucket(bucket).key(&key).send().await {
                    Ok(o) => Ok(Some(o.body.collect().await?.into_bytes().to_vec())),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                    Err(e) => Err(anyhow!(
                        "reading s3://{bucket}/{key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )),
                }
            }
        }
    }

    /// The manifest of a finished task, if it finished.
    pub async fn manifest(&self, dag: &str, run: &str, task: &str) -> Result<Option<Manifest>> {
        match self.get(dag, run, task, MANIFEST).await? {
            None => Ok(None),
            Some(b) => {
                Ok(Some(serde_json::from_slice(&b).with_context(|| {
                    format!("bad manifest of task `{task}` in run {run}")
                })?))
            }
        }
    }

    /// Makes datasets readable here: S3 objects are downloaded into the
    /// cache folder (once), and their URIs point at the local copies.
    pub async fn fetch(&self, datasets: &[DatasetRef]) -> Result<Vec<DatasetRef>> {
        let mut out = Vec::with_capacity(datasets.len());
        for d in datasets {
            let Some(rest) = d.uri.strip_prefix("s3://") else {
                out.push(d.clone());
                continue;
            };
            let Location::S3 { client, .. } = &self.location else {
                bail!(
                    "input `{}` of task `{}` is in S3 ({}), but this env's artifact store is local",
                    d.name,
                    d.task,
                    d.uri
                );
            };
            let (bucket, key) = rest.split_once('/').ok_or_else(|| anyhow!("bad S3 URI {}", d.uri))?;
            let local = self.local_root.join(key.replace('/', std::path::MAIN_SEPARATOR_STR));
            if !local.exists() {
                let o = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| anyhow!("downloading {}: {}", d.uri, aws_sdk_s3::error::DisplayErrorContext(e)))?;
                let bytes = o.body.collect().await?.into_bytes();
                if let Some(dir) = local.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = local.with_extension("download");
                std::fs::write(&tmp, &bytes)?;
                std::fs::rename(&tmp, &local)?;
            }
            let mut copy = d.clone();
            copy.uri = local.to_string_lossy().into_owned();
            out.push(copy);
        }
        Ok(out)
    }

    /// Deletes from S3 the inputs a step deleted here (`transform.pii`'s
    /// `purge_input`): `fetched` pairs each input as published (an S3 URI)
    /// with its local copy. Without this the raw values a pii task purged
    /// would live on in the artifact store.
    pub async fn purge_consumed(&self, fetched: &[(DatasetRef, DatasetRef)]) -> Result<Vec<String>> {
        let Location::S3 { client, .. } = &self.location else {
            return Ok(Vec::new());
        };
        let mut purged = Vec::new();
        for (published, local) in fetched {
            let Some((bucket, key)) = published.uri.strip_prefix("s3://").and_then(|r| r.split_once('/')) else {
                continue;
            };
            if local.uri.contains("://") || Path::new(&local.uri).exists() {
                continue;
            }
            client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "deleting {}: {}",
                        published.uri,
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
            purged.push(published.uri.clone());
        }
        Ok(purged)
    }

    /// Publishes a finished task: uploads its folder (S3), rewrites its
    /// outputs' URIs to where they now live, and writes the manifest last.
    pub async fn publish(&self, dag: &str, run: &str, mut manifest: Manifest, log: Option<&Path>) -> Result<Manifest> {
        let task = manifest.task.clone();
        let dir = self.local_store().task_dir(dag, run, &task);
        if let Location::S3 { client, bucket, prefix } = &self.location {
            let mut files: Vec<PathBuf> = Vec::new();
            if dir.is_dir() {
                for e in std::fs::read_dir(&dir)? {
                    let p = e?.path();
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                    if p.is_file() && !name.ends_with(".tmp") && name != MANIFEST {
                        files.push(p);
                    }
                }
            }
            for p in &files {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let key = Self::key(prefix, dag, run, &task, name);
                self.put(client, bucket, &key, std::fs::read(p)?).await?;
            }
            if let Some(log) = log.filter(|l| l.exists()) {
                let key = Self::key(prefix, dag, run, &task, LOG);
                self.put(client, bucket, &key, std::fs::read(log)?).await?;
            }
            for d in &mut manifest.outputs {
                let name = Path::new(&d.uri)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                d.uri = format!("s3://{bucket}/{}", Self::key(prefix, dag, run, &task, name));
            }
            let key = Self::key(prefix, dag, run, &task, MANIFEST);
            self.put(client, bucket, &key, serde_json::to_vec_pretty(&manifest)?)
                .await?;
        } else {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!("{MANIFEST}.tmp"));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?)?;
            std::fs::rename(&tmp, dir.join(MANIFEST))?;
        }
        Ok(manifest)
    }

    async fn put(&self, client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "uploading s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }

    /// Uploads the task's log alone (after a failed attempt).
    pub async fn publish_log(&self, dag: &str, run: &str, task: &str, log: &Path) -> Result<()> {
        if let Location::S3 { client, bucket, prefix } = &self.location
            && log.exists()
        {
            let key = Self::key(prefix, dag, run, task, LOG);
            self.put(client, bucket, &key, std::fs::read(log)?).await?;
        }
        Ok(())
    }

    /// Copies the task's log from the store (S3) to `to`; false when there
    /// is none.
    pub async fn fetch_log(&self, dag: &str, run: &str, task: &str, to: &Path) -> Result<bool> {
        if matches!(self.location, Location::Local) {
            return Ok(false);
        }
        match self.get(dag, run, task, LOG).await? {
            None => Ok(false),
            Some(b) => {
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(to, b)?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(parse_s3_uri("s3://b/p").unwrap(), ("b".into(), "p/".into()));
        assert_eq!(parse_s3_uri("s3://b/").unwrap(), ("b".into(), "".into()));
        assert!(parse_s3_uri("s3:///x").is_err());
    }
}
