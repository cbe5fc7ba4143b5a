//! What never reaches a page: secrets and PII values.
//!
//! - A task's config is shown as rendered for its run, but `env.X` renders
//!   as `<env:X>` (never the value), values under secret-looking keys
//!   (`password`, `token`, `secret`, `api_key`, ...) and under the DAG's PII
//!   columns are masked, URL passwords are masked, and strings that look
//!   like PII by themselves ([`crate::pii::looks_like_pii`]) are withheld.
//! - Every text shown (logs, errors, config) is scrubbed of the values of
//!   secret-looking environment variables of the UI process, of the access
//!   token, and of the secret settings of the project's connections.
//! - Quarantine rows get the same treatment as the quarantine file itself:
//!   PII-declared columns and PII-looking values become `<redacted>`.

use serde_json::Value as Json;

use crate::spec::Project;

/// What a masked value is shown as.
pub const MASK: &str = "••••••";

/// Whether a key (config key, variable name) names a secret.
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "credential",
        "private_key",
        "access_key",
        "auth",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// `scheme://user:password@host` with the password masked.
pub fn mask_url_password(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let at = rest.find('@')?;
    let userinfo = &rest[..at];
    if userinfo.contains('/') {
        return None;
    }
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:{MASK}{}", &rest[at..]))
}

/// Literal secret values to scrub from any text shown.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The secrets of this process and project: secret-looking environment
    /// variables, the access token, connection passwords and URL passwords.
    pub fn from_process(project: &Project, token: Option<&str>) -> Self {
        let mut values: Vec<String> = std::env::vars()
            .filter(|(k, _)| secret_key(k) || k.ends_with("_KEY") || k == super::TOKEN_VAR)
            .map(|(_, v)| v)
            .collect();
        values.extend(token.map(str::to_string));
        for env in project.envs.values() {
            for c in env.connections.values() {
                collect_settings(&toml::Value::Table(c.settings.clone()), false, &mut values);
            }
        }
        Self::new(values)
    }

    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        // Short values would mask ordinary words; longest first so that a
        // secret containing another goes whole.
        let mut values: Vec<String> = values.into_iter().filter(|v| v.trim().len() >= 6).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// `text` with every secret value replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }
}

fn collect_settings(v: &toml::Value, secret: bool, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => {
            if secret {
                out.push(s.clone());
            } else {
                // The password part of a URL.
                out.extend(url_password(s));
            }
        }
        toml::Value::Table(t) => t
            .iter()
            .for_each(|(k, v)| collect_settings(v, secret || secret_key(k), out)),
        toml::Value::Array(a) => a.iter().for_each(|v| collect_settings(v, secret, out)),
        _ => {}
    }
}

fn url_password(s: &str) -> Option<String> {
    let rest = s.split_once("://")?.1;
    let userinfo = &rest[..rest.find('@')?];
    if userinfo.contains('/') {
        return None;
    }
    Some(userinfo.split_once(':')?.1.to_string())
}

/// A task's config (rendered or not) as JSON with secrets and PII masked.
pub fn mask_config(v: &toml::Value, pii: &[String], secrets: &Secrets) -> Json {
    mask_value(v, false, pii, secrets)
}

fn mask_value(v: &toml::Value, hide: bool, pii: &[String], secrets: &Secrets) -> Json {
    match v {
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| {
                    let hide = hide || secret_key(k) || pii.iter().any(|p| p.eq_ignore_ascii_case(k));
                    (k.clone(), mask_value(v, hide, pii, secrets))
                })
                .collect(),
        ),
        toml::Value::Array(a) => Json::Array(a.iter().map(|v| mask_value(v, hide, pii, secrets)).collect()),
        _ if hide => Json::String(MASK.into()),
        toml::Value::String(s) => {
            let s = mask_url_password(s).unwrap_or_else(|| s.clone());
            // Templates and their renderings are code, not data; a value
            // that looks like PII by itself (an e-mail, a card) is not.
            if !pii.is_empty() && !s.contains("<env:") && crate::pii::looks_like_pii(&s) {
                Json::String("<redacted>".into())
            } else {
                Json::String(secrets.scrub(&s))
            }
        }
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => Json::from(*f),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
    }
}

/// One quarantine row with PII masked: declared columns, and (once the
/// DAG declares any) values that look like PII in any column, as the
/// quarantine file itself does.
pub fn mask_quarantine_row(mut row: Json, pii: &[String], secrets: &Secrets) -> Json {
    if let Some(values) = row.get_mut("row").and_then(Json::as_object_mut) {
        for (k, v) in values.iter_mut() {
            if let Json::String(s) = v {
                let declared = pii.iter().any(|p| p.eq_ignore_ascii_case(k));
                if declared || (!pii.is_empty() && crate::pii::looks_like_pii(s)) {
                    *v = Json::String("<redacted>".into());
                } else {
                    *v = Json::String(secrets.scrub(s));
                }
            }
        }
    }
    if let Some(Json::String(r)) = row.get_mut("reason") {
        *r = secrets.scrub(r);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_and_url_passwords_are_masked() {
        let cfg: toml::Value = toml::from_str(
            r#"
            url = "postgres://app:hunter2-pass@db:5432/x"
            password = "plain"
            query = "select 1"
            [auth]
            header = "x"
            "#,
        )
        .unwrap();
        let m = mask_config(&cfg, &[], &Secrets::default());
        assert_eq!(m["url"], format!("postgres://app:{MASK}@db:5432/x"));
        assert_eq!(m["password"], MASK);
        assert_eq!(m["auth"]["header"], MASK);
        assert_eq!(m["query"], "select 1");
    }

    #[test]
    fn pii_columns_and_values_are_masked() {
        let cfg: toml::Value = toml::from_str(
            r#"
            where = "email = 'ann@example.com'"
            [defaults]
            email = "nobody@example.com"
            "#,
        )
        .unwrap();
        let m = mask_config(&cfg, &["email".into()], &Secrets::default());
        assert_eq!(m["defaults"]["email"], MASK);
        assert_eq!(m["where"], "<redacted>");
    }

    #[test]
    fn secrets_are_scrubbed_from_text() {
        let s = Secrets::new(["tok-123456".to_string(), "abc".to_string()]);
        assert_eq!(s.scrub("auth tok-123456 abc"), format!("auth {MASK} abc"));
    }

    #[test]
    fn quarantine_rows_hide_pii() {
        let row = serde_json::json!({"reason": "bad", "row": {"email": "a@b.co", "n": "x1"}});
        let m = mask_quarantine_row(row, &["email".into()], &Secrets::default());
        assert_eq!(m["row"]["email"], "<redacted>");
        assert_eq!(m["row"]["n"], "x1");
    }
}
