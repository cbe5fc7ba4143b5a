//! Shared by the integration tests that need it (`mod support;`).
#![allow(dead_code)]

pub mod api_server;
pub mod project;
pub mod redshift_data_api;
pub mod step;
pub mod views;

use std::sync::Once;

/// Makes the AWS credential chain find the dummy credentials the emulators
/// accept, for steps that build their clients from a connection (which
/// never holds keys). Set once, before the first client reads them.
pub fn emulator_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")] {
            if std::env::var_os(k).is_none() {
                // SAFETY: std serialises its own environment access; the
                // only readers are the AWS credential providers, and every
                // test calls this before building a client.
                unsafe { std::env::set_var(k, v) };
            }
        }
    });
}

/// A fresh S3 bucket on the emulator, named after `name`.
pub async fn bucket(name: &str) -> (aws_sdk_s3::Client, String) {
    let s3 = nightjar::aws::s3_client(&nightjar::testenv::aws_options()).await;
    let bucket = format!("nj-{}-{}", name.replace('_', "-"), std::process::id());
    let _ = s3.create_bucket().bucket(&bucket).send().await;
    (s3, bucket)
}

/// The keys in `bucket` under `prefix`.
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let list = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list objects");
    list.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Every file below `dir`, recursively (for "no PII / no secret anywhere
/// under `.nightjar/`" checks).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
