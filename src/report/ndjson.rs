//! Events appended to a local NDJSON file, one JSON document per line.
//!
//! Each batch is one `write` of whole lines to a file opened for appending,
//! so concurrent writers (two runs at once) never interleave inside a line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use async_trait::async_trait;

use super::{EventDoc, Sink, short_hash};

pub struct NdjsonSink {
    path: PathBuf,
}

impl NdjsonSink {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl Sink for NdjsonSink {
    fn name(&self) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("ndjson-{stem}-{}", short_hash(&self.path.to_string_lossy()))
    }

    fn batch_size(&self) -> usize {
        256
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        let mut text = String::new();
        for doc in batch {
            text.push_str(&doc.to_json());
            text.push('\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        })
        .await?
    }
}
