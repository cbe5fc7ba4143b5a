//! Amazon Redshift through the Data API: the connection settings, the
//! statement client ([`data_api`]), Parquet staging in S3 ([`staging`])
//! and the load error tables ([`load_errors`]).

pub mod data_api;
pub mod load_errors;
pub mod staging;

use anyhow::{Result, bail};

use crate::aws::AwsOptions;
use crate::spec::project::Connection;

/// A `kind = "redshift"` connection from `nightjar.toml`:
///
/// ```toml
/// [env.aws.connections.warehouse]
/// kind = "redshift"
/// workgroup = "analytics"        # Serverless; or cluster = "..." with db_user or secret_arn
/// database = "dev"
/// iam_role = "arn:aws:iam::123456789012:role/redshift-copy"
/// staging = "s3://my-staging/nightjar/"
/// # optional: region, endpoint_url (every AWS service), data_api_endpoint_url
/// # (the Data API only: a VPC endpoint or a test server), slices (default 4)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RedshiftConnection {
    pub name: String,
    pub workgroup: Option<String>,
    pub cluster: Option<String>,
    pub db_user: Option<String>,
    pub secret_arn: Option<String>,
    pub database: String,
    pub iam_role: Option<String>,
    /// `s3://bucket/prefix/` where loads stage their files.
    pub staging: Option<String>,
    pub aws: AwsOptions,
    pub data_api_endpoint_url: Option<String>,
    /// Slices of the cluster: staged files come in multiples of it.
    pub slices: Option<u32>,
}

const KEYS: &[&str] = &[
    "workgroup",
    "cluster",
    "db_user",
    "secret_arn",
    "database",
    "iam_role",
    "staging",
    "region",
    "endpoint_url",
    "data_api_endpoint_url",
    "slices",
];

impl RedshiftConnection {
    pub fn from_connection(c: &Connection) -> Result<Self> {
        let s = &c.settings;
        for k in s.keys() {
            if !KEYS.contains(&k.as_str()) {
                bail!(
                    "connection `{}`: unknown setting `{k}` for a redshift connection (known: {})",
                    c.name,
                    KEYS.join(", ")
                );
            }
        }
        let text = |k: &str| s.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let me = Self {
            name: c.name.clone(),
            workgroup: text("workgroup"),
            cluster: text("cluster"),
            db_user: text("db_user"),
            secret_arn: text("secret_arn"),
            database: text("database").unwrap_or_default(),
            iam_role: text("iam_role"),
            staging: text("staging"),
            aws: AwsOptions::from_settings(s),
            data_api_endpoint_url: text("data_api_endpoint_url"),
            slices: s.get("slices").and_then(|v| v.as_integer()).map(|n| n.max(1) as u32),
        };
        let name = &c.name;
        match (&me.workgroup, &me.cluster) {
            (Some(_), Some(_)) => bail!("connection `{name}`: set `workgroup` (Serverless) or `cluster`, not both"),
            (None, None) => bail!(
                "connection `{name}`: a redshift connection needs `workgroup = \"...\"` (Serverless) or `cluster = \"...\"` (provisioned)"
            ),
            (None, Some(_)) if me.db_user.is_none() && me.secret_arn.is_none() => bail!(
                "connection `{name}`: a provisioned cluster needs `db_user` (temporary credentials) or `secret_arn` (Secrets Manager)"
            ),
            _ => {}
        }
        if me.database.is_empty() {
            bail!("connection `{name}`: `database` is missing, e.g. `database = \"dev\"`");
        }
        if let Some(st) = &me.staging
            && !st.starts_with("s3://")
        {
            bail!("connection `{name}`: `staging` must be an s3:// prefix, e.g. \"s3://my-staging/nightjar/\"");
        }
        Ok(me)
    }

    /// `workgroup analytics, database dev` (for messages).
    pub fn describe(&self) -> String {
        let target = match (&self.workgroup, &self.cluster) {
            (Some(w), _) => format!("workgroup `{w}`"),
            (_, Some(c)) => format!("cluster `{c}`"),
            _ => String::new(),
        };
        format!("{target}, database `{}` (connection `{}`)", self.database, self.name)
    }

    /// Whether this is a provisioned cluster (which also has STL tables).
    pub fn provisioned(&self) -> bool {
        self.cluster.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(toml_text: &str) -> Result<RedshiftConnection> {
        RedshiftConnection::from_connection(&Connection {
            name: "wh".into(),
            kind: "redshift".into(),
            settings: toml::from_str(toml_text).unwrap(),
        })
    }

    #[test]
    fn settings_are_checked() {
        let ok = conn("workgroup = \"wg\"\ndatabase = \"dev\"\nstaging = \"s3://b/p/\"\nslices = 8").unwrap();
        assert_eq!(ok.slices, Some(8));
        assert!(!ok.provisioned());
        let err = conn("cluster = \"c\"\ndatabase = \"dev\"").unwrap_err().to_string();
        assert!(err.contains("db_user"), "{err}");
        let err = conn("database = \"dev\"").unwrap_err().to_string();
        assert!(err.contains("workgroup"), "{err}");
        let err = conn("workgroup = \"w\"\ndatabase = \"dev\"\nstagin = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting `stagin`"), "{err}");
        let err = conn("workgroup = \"w\"\ndatabase = \"dev\"\nstaging = \"/tmp\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://"), "{err}");
    }
}
