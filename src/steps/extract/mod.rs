//! Extract steps: data in from files, object stores, APIs and databases.
//!
//! `extract.file` and `extract.s3` share one config ([`files::FilesConfig`])
//! and one reader: they differ only in where the bytes come from.

pub mod file;
pub mod files;
pub mod http;
pub mod s3;
pub mod sql;
