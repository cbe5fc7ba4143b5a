//! Fetching an API's pages: requests with auth, the rate limit, retries
//! (429 and 5xx, honouring `Retry-After`), and pagination. Each page is
//! spooled to a file for the JSON reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{HttpExtract, Method, Pagination, at_path};
use crate::steps::StepContext;

const SPOOL_PREFIX: &str = ".http-page-";

/// One fetched page, spooled.
pub struct Page {
    /// "page N (URL)": names the page in errors and the quarantine.
    pub name: String,
    pub path: PathBuf,
    /// Requests it took (retries included).
    pub requests: u64,
}

/// Removes the spooled pages.
pub fn remove_spool(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(SPOOL_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn env_secret(var: &str, what: &str) -> Result<String> {
    crate::secrets::var(var).ok_or_else(|| {
        anyhow!("environment variable `{var}` ({what}) is not set (export it, or declare it under [env.NAME.secrets])")
    })
}

fn headers(cfg: &HttpExtract) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
    for (k, v) in &cfg.headers {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).with_context(|| format!("header name `{k}`"))?,
            HeaderValue::from_str(v).with_context(|| format!("header `{k}`"))?,
        );
    }
    if let Some(a) = &cfg.auth {
        let secret = |v: String| -> Result<HeaderValue> {
            let mut v =
                HeaderValue::from_str(&v).map_err(|_| anyhow!("the credential holds characters a header cannot"))?;
            v.set_sensitive(true);
            Ok(v)
        };
        if let Some(var) = &a.bearer_env {
            let t = env_secret(var, "bearer token")?;
            h.insert(reqwest::header::AUTHORIZATION, secret(format!("Bearer {t}"))?);
        } else if let Some(user) = &a.basic_user {
            use base64_lite as b64;
            let pw = match &a.basic_password_env {
                Some(var) => env_secret(var, "basic auth password")?,
                None => String::new(),
            };
            h.insert(
                reqwest::header::AUTHORIZATION,
                secret(format!("Basic {}", b64::encode(format!("{user}:{pw}").as_bytes())))?,
            );
        } else if let (Some(name), Some(var)) = (&a.header, &a.value_env) {
            let v = env_secret(var, "API key")?;
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).with_context(|| format!("header name `{name}`"))?,
                secret(v)?,
            );
        }
    }
    Ok(h)
}

/// Fetches every page.
pub async fn fetch_pages(cfg: &HttpExtract, cx: &StepContext) -> Result<Vec<Page>> {
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout.map_or(Duration::from_secs(30), |t| t.0))
        .default_headers(headers(cfg)?)
        .build()?;
    let dir = cx.artifact_dir();
    std::fs::create_dir_all(&dir)?;
    let mut limiter = Limiter::new(cfg.rate_limit);
    let max_pages = cfg.max_pages.unwrap_or(10_000);
    let base: Vec<(String, String)> = cfg
        .query
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    toml::Value::String(s) => s.clone(),
                    o => o.to_string(),
                },
            )
        })
        .collect();
    let mut pages = Vec::new();
    // What the next request adds to the query, or the next URL (Link).
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut next_url: Option<String> = None;
    match &cfg.pagination {
        Some(Pagination::Page {
            param,
            start,
            size_param,
            size,
        }) => {
            extra.push((param.clone(), start.to_string()));
            if let (Some(p), Some(s)) = (size_param, size) {
                extra.push((p.clone(), s.to_string()));
            }
        }
        Some(Pagination::Offset {
            param,
            limit_param,
            limit,
        }) => {
            extra.push((param.clone(), "0".into()));
            extra.push((limit_param.clone(), limit.to_string()));
        }
        _ => {}
    }
    loop {
        let n = pages.len() as u64 + 1;
        if n > max_pages {
            bail!("more than {max_pages} pages: raise `max_pages` if that is expected");
        }
        let mut url = match &next_url {
            Some(u) => reqwest::Url::parse(u).with_context(|| format!("the next page's URL `{u}`"))?,
            None => reqwest::Url::parse(&cfg.url).with_context(|| format!("`{}` is not a URL", cfg.url))?,
        };
        if next_url.is_none() {
            url.query_pairs_mut().extend_pairs(base.iter().chain(extra.iter()));
        }
        let name = format!("page {n} ({url})");
        let (status_ok, body, link, requests) = send(&client, cfg, &url, &mut limiter, cx, &name).await?;
        debug_assert!(status_ok);
        let path = dir.join(format!("{SPOOL_PREFIX}{n:06}.json"));
        std::fs::write(&path, &body).with_context(|| format!("spooling {name}"))?;
        pages.push(Page {
            name: name.clone(),
            path,
            requests,
        });
        let Some(pag) = &cfg.pagination else { break };
        // The page's records and cursor, to decide whether to go on.
        let doc: serde_json::Value = match pag {
            Pagination::Link => serde_json::Value::Null,
            _ => serde_json::from_slice(&body).map_err(|e| anyhow!("{name} is not valid JSON: {e}"))?,
        };
        let count = || -> Result<u64> {
            let recs = at_path(&doc, cfg.records.as_deref().unwrap_or("$"))?;
            Ok(match recs {
                serde_json::Value::Array(a) => a.len() as u64,
                serde_json::Value::Null => 0,
                _ => 1,
            })
        };
        match pag {
            Pagination::Page { param, size, .. } => {
                let c = count().with_context(|| name.clone())?;
                if c == 0 || size.is_some_and(|s| c < s) {
                    break;
                }
                bump(&mut extra, param, 1);
            }
            Pagination::Offset { param, limit, .. } => {
                let c = count().with_context(|| name.clone())?;
                if c < *limit {
                    break;
                }
                bump(&mut extra, param, *limit);
            }
            Pagination::Cursor { param, next } => {
                let cursor = match at_path(&doc, next).with_context(|| name.clone())? {
                    serde_json::Value::Null => break,
                    serde_json::Value::String(s) if s.is_empty() => break,
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                extra.retain(|(k, _)| k != param);
                extra.push((param.clone(), cursor));
            }
            Pagination::Link => match link {
                Some(next) => {
                    let resolved = url.join(&next).with_context(|| format!("the Link header of {name}"))?;
                    next_url = Some(resolved.to_string());
                }
                None => break,
            },
        }
    }
    Ok(pages)
}

fn bump(extra: &mut [(String, String)], param: &str, by: u64) {
    if let Some((_, v)) = extra.iter_mut().find(|(k, _)| k == param) {
        *v = (v.parse::<u64>().unwrap_or(0) + by).to_string();
    }
}

/// Sends one request, retrying 429, 5xx and network errors. Returns the
/// body, the `rel="next"` link, and the number of requests made.
async fn send(
    client: &reqwest::Client,
    cfg: &HttpExtract,
    url: &reqwest::Url,
    limiter: &mut Limiter,
    cx: &StepContext,
    name: &str,
) -> Result<(bool, Vec<u8>, Option<String>, u64)> {
    let retries = cfg.retries.unwrap_or(5);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        limiter.wait(cx).await?;
        let mut req = match cfg.method {
            Method::Get => client.get(url.clone()),
            Method::Post => client.post(url.clone()),
        };
        if let Some(b) = &cfg.body {
            req = req.json(&serde_json::to_value(b)?);
        }
        let outcome = tokio::select! {
            _ = cx.cancel.cancelled() => bail!("cancelled"),
            r = req.send() => r,
        };
        let (wait, why) = match outcome {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    let link = next_link(resp.headers());
                    let body = resp.bytes().await.with_context(|| format!("reading {name}"))?;
                    return Ok((true, body.to_vec(), link, attempt as u64));
                }
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let text = resp.text().await.unwrap_or_default();
                let snippet: String = text.chars().take(200).collect();
                if !(status.as_u16() == 429 || status.is_server_error()) {
                    bail!("{name}: HTTP {status}: {snippet}");
                }
                (retry_after, format!("HTTP {status}"))
            }
            // Error texts of reqwest name the URL, never the headers.
            Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => (None, format!("{e}")),
            Err(e) => bail!("{name}: {e}"),
        };
        if attempt > retries {
            bail!("{name}: {why}, still after {retries} retries");
        }
        let backoff = Duration::from_millis(500) * 2u32.pow((attempt - 1).min(6));
        let pause = wait.unwrap_or(backoff).min(Duration::from_secs(300));
        cx.log.note(&format!(
            "{name}: {why}; retry {attempt} of {retries} in {}",
            humantime::format_duration(pause)
        ));
        tokio::select! {
            _ = cx.cancel.cancelled() => bail!("cancelled"),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let d = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(d.to_std().unwrap_or(Duration::ZERO))
}

/// The `rel="next"` target of a `Link` header.
fn next_link(h: &HeaderMap) -> Option<String> {
    for v in h.get_all(reqwest::header::LINK) {
        for part in v.to_str().ok()?.split(',') {
            let mut bits = part.split(';');
            let target = bits.next()?.trim();
            if bits.any(|b| {
                let b = b.trim().replace(' ', "");
                b == "rel=\"next\"" || b == "rel=next"
            }) {
                return Some(target.trim_start_matches('<').trim_end_matches('>').to_string());
            }
        }
    }
    None
}

/// At most `rate` request starts per second.
struct Limiter {
    gap: Option<Duration>,
    last: Option<tokio::time::Instant>,
}

impl Limiter {
    fn new(rate: Option<f64>) -> Self {
        Self {
            gap: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            last: None,
        }
    }

    async fn wait(&mut self, cx: &StepContext) -> Result<()> {
        if let (Some(gap), Some(last)) = (self.gap, self.last) {
            tokio::select! {
                _ = cx.cancel.cancelled() => bail!("cancelled"),
                _ = tokio::time::sleep_until(last + gap) => {}
            }
        }
        self.last = Some(tokio::time::Instant::now());
        Ok(())
    }
}

/// Base64 for basic auth (no dependency for 10 lines).
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(b: &[u8]) -> String {
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            base64_lite::encode(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64_lite::encode(b"ab"), "YWI=");
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=3>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://x/a?page=3"));
    }
}
