//! Addresses of the real servers the tests run against.
//!
//! `bash scripts/test` starts PostgreSQL (with TLS), MariaDB and the moto AWS emulator on
//! loopback (`scripts/services.sh`) and exports their addresses. A test that
//! needs one calls these functions: without the server it fails with a
//! message saying how to start it, rather than passing without checking
//! anything.

/// The PostgreSQL connection URL (`NIGHTJAR_TEST_PG`).
pub fn postgres_url() -> String {
    required("NIGHTJAR_TEST_PG", "PostgreSQL")
}

/// The MySQL-compatible test server's URL (`NIGHTJAR_TEST_MYSQL`; MariaDB
/// from Debian, started by `scripts/services.sh` on 127.0.0.1:53306).
pub fn mysql_url() -> String {
    required("NIGHTJAR_TEST_MYSQL", "MySQL (MariaDB)")
}

/// The CA certificate (PEM) that signed the test PostgreSQL server's TLS
/// certificate (`NIGHTJAR_TEST_PG_CA`), for `sslmode = "verify-full"`.
pub fn postgres_ca() -> String {
    required("NIGHTJAR_TEST_PG_CA", "PostgreSQL with TLS")
}

/// The moto server's endpoint URL (`NIGHTJAR_TEST_AWS`), for S3, SQS,
/// CloudWatch Logs and Step Functions.
pub fn aws_endpoint() -> String {
    required("NIGHTJAR_TEST_AWS", "the moto AWS emulator")
}

fn required(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test needs {what}. Run the suite with `bash scripts/test`, \
             or start the servers with `bash scripts/services.sh` and `set -a; . target/services.env`"
        )
    })
}

/// AWS options pointing every client at the moto server, with the dummy
/// credentials moto accepts.
pub fn aws_options() -> crate::aws::AwsOptions {
    crate::aws::AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(aws_endpoint()),
        static_credentials: Some(("testing".into(), "testing".into())),
    }
}
