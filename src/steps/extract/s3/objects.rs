//! S3 plumbing for `extract.s3`: URIs, listing what a URI names, streaming
//! an object's body to a blocking reader, server-side copies.

use std::io::Read;

use anyhow::{Result, anyhow, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl S3Uri {
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow!("`{uri}` is not an S3 URI: write it as s3://bucket/key"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("`{uri}` has no bucket: write it as s3://bucket/key");
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What a URI names: one object, everything under a prefix, or the keys a
/// glob matches.
#[derive(Debug, Clone)]
pub enum Selector {
    Object(String),
    Prefix(String),
    Glob { pattern: glob::Pattern, prefix: String },
}

impl Selector {
    pub fn of(key: &str) -> Result<Self> {
        if let Some(at) = key.find(['*', '?', '[']) {
            let pattern = glob::Pattern::new(key).map_err(|e| anyhow!("bad glob `{key}`: {e}"))?;
            Ok(Selector::Glob {
                pattern,
                prefix: key[..at].to_string(),
            })
        } else if key.is_empty() || key.ends_with('/') {
            Ok(Selector::Prefix(key.to_string()))
        } else {
            Ok(Selector::Object(key.to_string()))
        }
    }

    /// The literal prefix to list.
    pub fn list_prefix(&self) -> &str {
        match self {
            Selector::Object(k) | Selector::Prefix(k) => k,
            Selector::Glob { prefix, .. } => prefix,
        }
    }

    /// The folder part of the listed prefix: archived copies keep the key
    /// relative to it.
    pub fn base_dir(&self) -> &str {
        let p = self.list_prefix();
        &p[..p.rfind('/').map_or(0, |i| i + 1)]
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Selector::Object(k) => key == k,
            // Zero-byte "folder" markers are not data.
            Selector::Prefix(p) => key.starts_with(p.as_str()) && !key.ends_with('/'),
            Selector::Glob { pattern, .. } => pattern.matches_with(
                key,
                glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                },
            ),
        }
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
}

/// The objects `sel` names in `bucket`, in key order (all pages of the
/// listing). For a single object that is missing, `near` gets the first
/// few keys that start with it (a folder named without its `/`), for the
/// error message.
pub async fn find(client: &Client, bucket: &str, sel: &Selector, near: &mut Vec<String>) -> Result<Vec<Object>> {
    find_paged(client, bucket, sel, near, 1000).await
}

/// [`find`] with `page` keys per listing request.
pub async fn find_paged(
    client: &Client,
    bucket: &str,
    sel: &Selector,
    near: &mut Vec<String>,
    page: i32,
) -> Result<Vec<Object>> {
    let prefix = sel.list_prefix();
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(page)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| anyhow!("listing s3://{bucket}/{prefix}: {}", DisplayErrorContext(&e)))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if sel.matches(key) {
                out.push(Object {
                    key: key.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                });
            } else if near.len() < 3 && matches!(sel, Selector::Object(_)) {
                near.push(key.to_string());
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Copies an object server-side (CopyObject: objects up to 5 GB).
pub async fn copy(client: &Client, from: &S3Uri, to: &S3Uri) -> Result<()> {
    client
        .copy_object()
        .copy_source(format!("{}/{}", from.bucket, encode_key(&from.key)))
        .bucket(&to.bucket)
        .key(&to.key)
        .send()
        .await
        .map_err(|e| anyhow!("archiving {from} to {to}: {}", DisplayErrorContext(&e)))?;
    Ok(())
}

/// Percent-encodes a key for `x-amz-copy-source` (slashes stay).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Chunks of the body in flight between the network and the reader: the
/// SDK hands out chunks of at most a few hundred KB, so this bounds the
/// memory a read holds whatever the object's size.
const CHUNKS_IN_FLIGHT: usize = 16;

/// A blocking reader over an object's body, fed by an async task through a
/// bounded channel: the object is never held whole in memory. Must be
/// opened outside the async runtime (on the blocking pool).
pub struct ObjectReader {
    rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl ObjectReader {
    pub fn open(rt: &tokio::runtime::Handle, client: Client, uri: &S3Uri, cancel: CancellationToken) -> Result<Self> {
        let resp = rt
            .block_on(client.get_object().bucket(&uri.bucket).key(&uri.key).send())
            .map_err(|e| anyhow!("reading {uri}: {}", DisplayErrorContext(&e)))?;
        let mut body = resp.body;
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let name = uri.to_string();
        rt.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => Some(Err(std::io::Error::other("cancelled"))),
                    n = body.next() => n.map(|r| r.map_err(|e| std::io::Error::other(format!("reading {name}: {e}")))),
                };
                let Some(item) = next else { break };
                let stop = item.is_err();
                // The reader was dropped (an error downstream): stop pulling.
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Self {
            rx,
            chunk: bytes::Bytes::new(),
        })
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Reads a whole (small) object (tests).
#[cfg(test)]
pub async fn read_all(client: &Client, uri: &S3Uri) -> Result<Vec<u8>> {
    let resp = client
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .send()
        .await
        .map_err(|e| anyhow!("reading {uri}: {}", DisplayErrorContext(&e)))?;
    Ok(resp
        .body
        .collect()
        .await
        .map_err(|e| anyhow!("reading {uri}: {e}"))?
        .into_bytes()
        .to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_selectors() {
        let u = S3Uri::parse("s3://b/raw/2010-12-01/*.csv.gz").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("b", "raw/2010-12-01/*.csv.gz"));
        assert!(S3Uri::parse("b/raw").is_err());
        assert!(S3Uri::parse("s3:///raw").is_err());
        let g = Selector::of(&u.key).unwrap();
        assert_eq!(g.list_prefix(), "raw/2010-12-01/");
        assert!(g.matches("raw/2010-12-01/a.csv.gz"));
        assert!(!g.matches("raw/2010-12-01/sub/a.csv.gz"), "* stays within a folder");
        let g = Selector::of("raw/2010-12-*.csv").unwrap();
        assert_eq!(g.base_dir(), "raw/");
        let p = Selector::of("raw/").unwrap();
        assert!(p.matches("raw/a/b.csv") && !p.matches("raw/a/"));
        assert_eq!(Selector::of("raw/x.csv").unwrap().base_dir(), "raw/");
        assert_eq!(Selector::of("x.csv").unwrap().base_dir(), "");
        assert_eq!(encode_key("raw/a b+é.csv"), "raw/a%20b%2B%C3%A9.csv");
    }
}
