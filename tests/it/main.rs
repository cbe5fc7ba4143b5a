//! nightjar's integration tests, as one test binary: each file of this
//! folder is a module (one area of the contract), `support` and
//! `report_support` are shared helpers. One binary links the library and
//! the AWS SDKs once instead of once per file, which saves gigabytes of
//! disk and minutes of CI. Run one area with `cargo test --test it backfill::`.
//!
//! The tests need the services of `scripts/services.sh` (PostgreSQL,
//! MariaDB, moto, Chromium); `bash scripts/test` starts them and runs all.

#[path = "../support/mod.rs"]
mod support;

#[path = "../report_support/mod.rs"]
mod report_support;

mod backfill;
mod crash;
mod engine;
mod extract_s3;
mod extract_sql;
mod load_postgres;
mod multi_source;
mod normalize_ddl;
mod normalize_fd;
mod pii_cafe;
mod pipeline_cafe;
mod pipeline_customer_ingest;
mod pipeline_retail;
mod pipeline_views_postgres;
mod pipelines_aws;
mod redshift_data_api;
mod redshift_load;
mod report_alerts;
mod report_cloudwatch;
mod report_events;
mod report_sqs;
mod retail_day;
mod schedule_crash;
mod schedule_daemon;
mod schedule_fire_times;
mod secrets_by_reference;
mod sfn_compile;
mod sfn_e2e;
mod sql_step;
mod ui_api;
mod ui_e2e;
mod validate;
