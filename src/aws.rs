//! One way to reach AWS for every part of nightjar (S3 extract and staging,
//! SQS and CloudWatch reporting, Step Functions, the Redshift Data API).
//!
//! Settings come from the connection in `nightjar.toml` first, then from the
//! standard AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles,
//! instance roles). An endpoint override (an emulator such as moto, or a
//! VPC endpoint) also switches S3 to path-style addressing, which emulators
//! need and AWS accepts.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

/// Where and as whom to call AWS. Every field is optional: unset fields fall
/// back to the standard AWS environment and credential chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Region, e.g. `eu-west-2`.
    pub region: Option<String>,
    /// Endpoint override for every service (an emulator or a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Static access key id and secret, for emulators in tests. Production
    /// uses the credential chain (environment, profile, instance role).
    pub static_credentials: Option<(String, String)>,
}

impl AwsOptions {
    /// Options read from a connection's settings (`region`, `endpoint_url`).
    pub fn from_settings(settings: &toml::Table) -> Self {
        let text = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Self {
            region: text("region"),
            endpoint_url: text("endpoint_url"),
            static_credentials: None,
        }
    }

    /// The endpoint override in effect: the option, else `AWS_ENDPOINT_URL`.
    pub fn effective_endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|s| !s.is_empty()))
    }
}

/// Loads the shared SDK configuration for `opts`.
pub async fn sdk_config(opts: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    } else if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        // Without any region the SDK refuses to build a client; emulators
        // do not care which, and on AWS a region is always configured.
        loader = loader.region(Region::new("us-east-1"));
    }
    if let Some(endpoint) = &opts.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some((id, secret)) = &opts.static_credentials {
        loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "nightjar-static"));
    }
    loader.load().await
}

/// An S3 client for `opts` (path-style when an endpoint override is set).
pub async fn s3_client(opts: &AwsOptions) -> aws_sdk_s3::Client {
    let conf = sdk_config(opts).await;
    let path_style = opts.effective_endpoint().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(path_style)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reaches_the_emulator() {
        let opts = crate::testenv::aws_options();
        let s3 = s3_client(&opts).await;
        let bucket = format!("nightjar-aws-{}", std::process::id());
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket on moto");
        s3.put_object()
            .bucket(&bucket)
            .key("a/b.txt")
            .body(b"hello".to_vec().into())
            .send()
            .await
            .unwrap();
        let got = s3.get_object().bucket(&bucket).key("a/b.txt").send().await.unwrap();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], b"hello");
        s3.delete_object().bucket(&bucket).key("a/b.txt").send().await.unwrap();
        s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    }
}
