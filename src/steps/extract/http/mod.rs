//! `extract.http`: JSON APIs into a dataset. Pages are fetched (with auth,
//! pagination, a rate limit and retries), spooled to the task's artifact
//! folder, and read by the JSON reader of `extract.file`, which flattens
//! nested objects to dotted columns (`customer.address.city`) and keeps
//! arrays as JSON text.
//!
//! ```toml
//! kind = "extract.http"
//! url = "{{ vars.api }}/customers"
//! auth = { bearer_env = "SHOP_API_TOKEN" }
//! records = "$.data.items"
//! pagination = { style = "cursor", param = "cursor", next = "$.meta.next" }
//! rate_limit = 5
//! ```

mod fetch;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use serde::Deserialize;

use super::files::{FilesConfig, IfMissing, Source, read_sources};
use crate::data::formats::Format;
use crate::data::quarantine::BadRowLimit;
use crate::data::types::ColumnSpec;
use crate::spec::duration::HumanDuration;
use crate::steps::{ConfigProblem, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<HttpExtract>(
    "extract.http",
    "reads a JSON API: auth, pagination, rate limit, retries",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "extract.http"
url = "https://api.example.com/v1/customers"
query = { updated_since = "{{ ds }}" }
auth = { bearer_env = "SHOP_API_TOKEN" }
records = "$.data.items"
pagination = { style = "page", param = "page", size_param = "per_page", size = 100 }
rate_limit = 5
retries = 5
timeout = "30s"

[columns]
id = "int64"
"#;

/// GET or POST.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
}

/// Credentials, always by reference to an environment variable: `{
/// bearer_env = "TOKEN" }`, `{ basic_user = "u", basic_password_env = "PW"
/// }` or `{ header = "X-API-Key", value_env = "KEY" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub bearer_env: Option<String>,
    pub basic_user: Option<String>,
    pub basic_password_env: Option<String>,
    pub header: Option<String>,
    pub value_env: Option<String>,
}

/// How to get the next page.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// `?page=1`, `?page=2`, ... until a page has no records (or fewer
    /// than `size`).
    Page {
        #[serde(default = "page_param")]
        param: String,
        #[serde(default = "one")]
        start: u64,
        size_param: Option<String>,
        size: Option<u64>,
    },
    /// `?offset=0&limit=100`, `?offset=100&limit=100`, ... until a page has
    /// fewer than `limit` records.
    Offset {
        #[serde(default = "offset_param")]
        param: String,
        #[serde(default = "limit_param")]
        limit_param: String,
        limit: u64,
    },
    /// `?cursor=<the value at path `next` of the last page>` until it is
    /// missing, null or empty.
    Cursor { param: String, next: String },
    /// The `Link: <...>; rel="next"` header, until there is none.
    Link,
}

fn page_param() -> String {
    "page".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn one() -> u64 {
    1
}

/// Reads a JSON API (GET, or POST with a JSON body) into a dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExtract {
    /// The endpoint; templates allowed (`{{ vars.api }}/customers`).
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: Method,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, toml::Value>,
    /// Extra request headers (no secrets here: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON body of a POST, written as TOML.
    pub body: Option<toml::Value>,
    /// Credentials, from environment variables.
    pub auth: Option<Auth>,
    /// Where the rows are in each page, e.g. `$.data.items` (default: the
    /// page is an array of rows, or one object).
    pub records: Option<String>,
    /// Pagination: `{ style = "page" | "offset" | "cursor" | "link", ... }`
    /// (default: one request).
    pub pagination: Option<Pagination>,
    /// Stop with an error past this many pages (default 10000).
    pub max_pages: Option<u64>,
    /// Requests per second at most (default: no limit).
    pub rate_limit: Option<f64>,
    /// Retries of a request that fails with 429, a 5xx status or a network
    /// error (default 5), waiting what `Retry-After` says, else 0.5 s,
    /// 1 s, 2 s, ... (at most 30 s).
    pub retries: Option<u32>,
    /// Time limit of one request (default 30s).
    pub timeout: Option<HumanDuration>,
    /// Column types, as for `extract.file`.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSpec>,
    /// Guess the types of undeclared columns (default true).
    pub infer: Option<bool>,
    /// Rows that cannot be typed go to the quarantine; past this many the
    /// task fails (default 0).
    #[serde(default)]
    pub max_bad_rows: BadRowLimit,
    /// Texts that mean "missing" besides null and "".
    #[serde(default)]
    pub null_values: Vec<String>,
}

impl StepConfig for HttpExtract {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://") || self.url.contains("{{")) {
            p.push(ConfigProblem::new(
                "url",
                format!("`{}` is not an http(s) URL", self.url),
            ));
        }
        if self.body.is_some() && self.method == Method::Get {
            p.push(ConfigProblem::new("body", "a body needs `method = \"POST\"`"));
        }
        if let Some(a) = &self.auth {
            let kinds = [a.bearer_env.is_some(), a.basic_user.is_some(), a.header.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                p.push(
                    ConfigProblem::new("auth", "give one of `bearer_env`, `basic_user` or `header`")
                        .hint("e.g. `auth = { bearer_env = \"API_TOKEN\" }`"),
                );
            }
            if a.header.is_some() != a.value_env.is_some() {
                p.push(ConfigProblem::new("auth", "`header` goes with `value_env`"));
            }
        }
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("authorization") && !v.contains("{{") {
                p.push(
                    ConfigProblem::new(format!("headers.{k}"), "credentials do not belong in the job file")
                        .hint("use `auth = { bearer_env = \"API_TOKEN\" }`"),
                );
            }
        }
        if self.rate_limit.is_some_and(|r| r <= 0.0) {
            p.push(ConfigProblem::new(
                "rate_limit",
                "`rate_limit` is requests per second and must be above 0",
            ));
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for HttpExtract {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let pages = fetch::fetch_pages(self, cx).await?;
        let count = pages.len();
        let requests: u64 = pages.iter().map(|p| p.requests).sum();
        let cfg = self.files_config();
        let sources = pages
            .into_iter()
            .map(|p| {
                let path = p.path.clone();
                Source {
                    name: p.name,
                    open: Box::new(move || -> Result<Box<dyn std::io::Read + Send>> {
                        Ok(Box::new(std::fs::File::open(&path)?))
                    }),
                }
            })
            .collect();
        let dir = cx.artifact_dir();
        let result = cx.blocking(move |cx| read_sources(&cfg, sources, &cx)).await;
        fetch::remove_spool(&dir);
        let mut out = result?;
        out.metrics.extra.insert("pages".into(), count.into());
        out.metrics.extra.insert("requests".into(), requests.into());
        Ok(out)
    }
}

impl HttpExtract {
    /// The JSON reading part, as `extract.file` would do it.
    fn files_config(&self) -> FilesConfig {
        FilesConfig {
            path: None,
            uri: None,
            format: Some(Format::Json),
            columns: self.columns.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            infer: self.infer,
            infer_rows: None,
            columns_only: false,
            source_column: None,
            null_values: self.null_values.clone(),
            max_bad_rows: self.max_bad_rows,
            if_missing: IfMissing::Empty,
            csv: Default::default(),
            sheet: None,
            records: self.records.clone(),
            connection: None,
            wait_for: None,
            archive: None,
        }
    }
}

/// The value at `$.a.b` of a JSON document (`$` alone: the document).
pub(crate) fn at_path<'a>(doc: &'a serde_json::Value, path: &str) -> Result<&'a serde_json::Value> {
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| anyhow!("path `{path}` must start with `$`"))?;
    let mut v = doc;
    for key in rest.split('.').filter(|k| !k.is_empty()) {
        v = match v {
            serde_json::Value::Object(m) => m.get(key).unwrap_or(&serde_json::Value::Null),
            serde_json::Value::Null => return Ok(v),
            _ => bail!("`{key}` of path `{path}` is not inside an object"),
        };
    }
    Ok(v)
}
