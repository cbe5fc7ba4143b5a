//! Secrets by reference: AWS Secrets Manager and SSM Parameter Store.
//!
//! Every option that takes a secret names an environment variable
//! (`password_env`, `bearer_env`, `key = { env = ... }`, ...). An
//! environment in `nightjar.toml` may say where such a variable's value
//! lives instead of the process environment:
//!
//! ```toml
//! [env.aws.secrets]
//! NIGHTJAR_PII_KEY = { aws_secret = "nightjar/pii", field = "key" }  # Secrets Manager; `field` of a JSON secret
//! SHOP_API_TOKEN   = { ssm = "/nightjar/shop-api-token" }            # SSM parameter (SecureString decrypted)
//! DW_PASSWORD      = { aws_secret = "arn:aws:secretsmanager:...:secret:dw" }
//! ```
//!
//! When a run (or a Step Functions step, or a worker) starts in that
//! environment, nightjar fetches every reference once and keeps the values
//! in this process's memory only: they are never written to the run
//! history, an artifact, a log line or a child process's environment. A
//! declared reference wins over a variable of the same name in the process
//! environment, so a shell left with a developer's value cannot leak into a
//! production run. A reference that cannot be fetched fails the run before
//! any task starts, naming the variable and the reference (never a value).
//!
//! The AWS settings (`region`, `endpoint_url`) are the standard ones
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles, instance roles), or
//! `region` / `endpoint_url` beside the reference.

use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, RwLock};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::aws::AwsOptions;

/// Where one secret's value lives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// A Secrets Manager secret: its name or ARN.
    pub aws_secret: Option<String>,
    /// With `aws_secret`: the key to read when the secret is a JSON object
    /// (`{"key": "..."}`); without it the whole secret string is the value.
    pub field: Option<String>,
    /// An SSM Parameter Store parameter name (`/team/app/token`);
    /// SecureString parameters are decrypted.
    pub ssm: Option<String>,
    /// The region, when not the standard AWS one.
    pub region: Option<String>,
    /// An endpoint override (a VPC endpoint, or an emulator in tests).
    pub endpoint_url: Option<String>,
}

impl SecretRef {
    /// Problems `validate` reports: exactly one of `aws_secret` and `ssm`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        match (&self.aws_secret, &self.ssm) {
            (Some(_), Some(_)) | (None, None) => p.push((
                "give exactly one of `aws_secret` and `ssm`".into(),
                "NAME = { aws_secret = \"team/app\" } or NAME = { ssm = \"/team/app/token\" }".into(),
            )),
            (None, Some(_)) if self.field.is_some() => p.push((
                "`field` applies to `aws_secret` only".into(),
                "remove `field`, or store the value as a JSON secret in Secrets Manager".into(),
            )),
            _ => {}
        }
        p
    }

    /// What the reference points at, for error messages (no value).
    pub fn describe(&self) -> String {
        match (&self.aws_secret, &self.ssm, &self.field) {
            (Some(s), _, Some(f)) => format!("Secrets Manager secret `{s}` field `{f}`"),
            (Some(s), _, None) => format!("Secrets Manager secret `{s}`"),
            (None, Some(p), _) => format!("SSM parameter `{p}`"),
            (None, None, _) => "an empty reference".into(),
        }
    }

    /// `base` with this reference's own `region` / `endpoint_url`.
    fn aws_options(&self, base: &AwsOptions) -> AwsOptions {
        AwsOptions {
            region: self.region.clone().or_else(|| base.region.clone()),
            endpoint_url: self.endpoint_url.clone().or_else(|| base.endpoint_url.clone()),
            static_credentials: base.static_credentials.clone(),
        }
    }

    /// Fetches the value (`base`: the AWS settings when the reference has
    /// none of its own; the default is the standard AWS environment).
    pub async fn fetch(&self, base: &AwsOptions) -> Result<String> {
        let conf = crate::aws::sdk_config(&self.aws_options(base)).await;
        if let Some(id) = &self.aws_secret {
            let client = aws_sdk_secretsmanager::Client::new(&conf);
            let out = client
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
            let text = match (out.secret_string(), out.secret_binary()) {
                (Some(s), _) => s.to_string(),
                (None, Some(b)) => String::from_utf8(b.as_ref().to_vec())
                    .context("the secret is binary and not UTF-8; store it as text (hex: or base64: for keys)")?,
                (None, None) => bail!("the secret has no value"),
            };
            return match &self.field {
                None => Ok(text),
                Some(field) => field_of(&text, field),
            };
        }
        if let Some(name) = &self.ssm {
            let client = aws_sdk_ssm::Client::new(&conf);
            let out = client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
            return out
                .parameter()
                .and_then(|p| p.value())
                .map(str::to_string)
                .context("the parameter has no value");
        }
        bail!("give `aws_secret` or `ssm`")
    }
}

/// `field` of a JSON object secret; errors name the keys, not the values.
fn field_of(text: &str, field: &str) -> Result<String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        anyhow::anyhow!("`field = \"{field}\"` needs a JSON object secret, and this secret is not JSON")
    })?;
    let obj = json
        .as_object()
        .with_context(|| format!("`field = \"{field}\"` needs a JSON object secret"))?;
    match obj.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => {
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            bail!("the secret has no field `{field}` (its fields: {})", keys.join(", "))
        }
        Some(other) => Ok(other.to_string()),
    }
}

/// The values fetched in this process, by variable name.
fn table() -> &'static RwLock<HashMap<String, String>> {
    static TABLE: OnceLock<RwLock<HashMap<String, String>>> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Fetches every reference of an environment (concurrently) and keeps the
/// values for [`var`]. A name already fetched by this process is not
/// fetched again (a backfill of a thousand dates asks AWS once). Fails
/// naming the first variable that could not be fetched; nothing is
/// installed then.
pub async fn install(secrets: &BTreeMap<String, SecretRef>, base: &AwsOptions) -> Result<()> {
    let todo: Vec<(&String, &SecretRef)> = {
        let t = table().read().unwrap_or_else(|e| e.into_inner());
        secrets.iter().filter(|(name, _)| !t.contains_key(*name)).collect()
    };
    if todo.is_empty() {
        return Ok(());
    }
    let fetches = todo.into_iter().map(|(name, r)| async move {
        let value = r
            .fetch(base)
            .await
            .with_context(|| format!("secret `{name}` from {}", r.describe()))?;
        Ok::<_, anyhow::Error>((name.clone(), value))
    });
    let values = futures_util::future::try_join_all(fetches).await?;
    let mut t = table().write().unwrap_or_else(|e| e.into_inner());
    t.extend(values);
    Ok(())
}

/// The value of a secret-holding variable: a fetched reference first, then
/// the process environment.
pub fn var(name: &str) -> Option<String> {
    if let Some(v) = table().read().unwrap_or_else(|e| e.into_inner()).get(name) {
        return Some(v.clone());
    }
    std::env::var(name).ok()
}

/// Sets a variable as if fetched (unit tests: no `std::env::set_var` in a
/// threaded test binary).
#[cfg(test)]
pub(crate) fn set_for_test(name: &str, value: &str) {
    table()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string(), value.to_string());
}

/// Names that an environment of the loaded project declares under
/// `secrets` (names only: values are fetched when a run starts).
fn declared() -> &'static RwLock<HashSet<String>> {
    static DECLARED: OnceLock<RwLock<HashSet<String>>> = OnceLock::new();
    DECLARED.get_or_init(|| RwLock::new(HashSet::new()))
}

/// Records the names a project's environments declare, so that `validate`
/// does not call a secret that only exists by reference missing.
pub fn declare<'a>(names: impl IntoIterator<Item = &'a String>) {
    declared()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .extend(names.into_iter().cloned());
}

/// Whether `name` can be had: fetched or in the process environment now,
/// or declared by reference (fetched when a run starts).
pub fn known(name: &str) -> bool {
    var(name).is_some() || declared().read().unwrap_or_else(|e| e.into_inner()).contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> SecretRef {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn references_need_exactly_one_place() {
        assert!(reference("ssm = \"/a\"").problems().is_empty());
        assert!(reference("aws_secret = \"a\"\nfield = \"k\"").problems().is_empty());
        assert_eq!(reference("aws_secret = \"a\"\nssm = \"/a\"").problems().len(), 1);
        assert_eq!(reference("field = \"k\"").problems().len(), 1);
        assert_eq!(reference("ssm = \"/a\"\nfield = \"k\"").problems().len(), 1);
        assert!(toml::from_str::<SecretRef>("arn = \"x\"").is_err());
    }

    #[test]
    fn json_fields_and_errors_without_values() {
        assert_eq!(field_of(r#"{"key":"s3cr3t","n":5}"#, "key").unwrap(), "s3cr3t");
        assert_eq!(field_of(r#"{"key":"s3cr3t","n":5}"#, "n").unwrap(), "5");
        let e = field_of(r#"{"key":"s3cr3t"}"#, "token").unwrap_err().to_string();
        assert!(e.contains("token") && e.contains("key") && !e.contains("s3cr3t"), "{e}");
        let e = field_of("s3cr3t", "key").unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    /// Both stores on the moto server: values fetched, a declared reference
    /// wins over the process environment, a missing secret fails naming
    /// the variable and the reference.
    #[tokio::test]
    async fn fetches_from_secrets_manager_and_ssm_on_the_emulator() {
        let aws = crate::testenv::aws_options();
        let conf = crate::aws::sdk_config(&aws).await;
        let sm = aws_sdk_secretsmanager::Client::new(&conf);
        let ssm = aws_sdk_ssm::Client::new(&conf);
        let suffix = format!("{}-{}", std::process::id(), fastrand::u32(..));
        let secret = format!("nightjar-test/{suffix}");
        sm.create_secret()
            .name(&secret)
            .secret_string(r#"{"key":"hex:00112233445566778899aabbccddeeff"}"#)
            .send()
            .await
            .unwrap();
        let param = format!("/nightjar-test/{suffix}/token");
        ssm.put_parameter()
            .name(&param)
            .value("tok-123")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();

        let key_var = format!("NIGHTJAR_TEST_SECRET_KEY_{}", fastrand::u32(..));
        let tok_var = format!("NIGHTJAR_TEST_SECRET_TOK_{}", fastrand::u32(..));
        let refs = BTreeMap::from([
            (
                key_var.clone(),
                reference(&format!("aws_secret = \"{secret}\"\nfield = \"key\"")),
            ),
            (tok_var.clone(), reference(&format!("ssm = \"{param}\""))),
        ]);
        install(&refs, &aws).await.unwrap();
        assert_eq!(var(&key_var).as_deref(), Some("hex:00112233445566778899aabbccddeeff"));
        assert_eq!(var(&tok_var).as_deref(), Some("tok-123"));
        assert!(known(&tok_var));
        assert!(!known("NIGHTJAR_TEST_NEVER_DECLARED"));
        declare([&"NIGHTJAR_TEST_NEVER_DECLARED".to_string()]);
        assert!(known("NIGHTJAR_TEST_NEVER_DECLARED"));

        // A declared reference wins over the process environment.
        install(
            &BTreeMap::from([("HOME".to_string(), reference(&format!("ssm = \"{param}\"")))]),
            &aws,
        )
        .await
        .unwrap();
        assert_eq!(var("HOME").as_deref(), Some("tok-123"));

        let missing = BTreeMap::from([(
            "NIGHTJAR_TEST_MISSING".to_string(),
            reference("ssm = \"/nightjar-test/never-created\""),
        )]);
        let e = format!("{:#}", install(&missing, &aws).await.unwrap_err());
        assert!(
            e.contains("NIGHTJAR_TEST_MISSING") && e.contains("/nightjar-test/never-created"),
            "{e}"
        );
        assert!(var("NIGHTJAR_TEST_MISSING").is_none());
    }
}
