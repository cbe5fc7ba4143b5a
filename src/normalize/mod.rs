//! Normalization: splitting one flat table into entities (3NF tables with
//! keys), checking the functional dependencies the split relies on, stable
//! surrogate keys, DDL for the resulting tables, and discovering functional
//! dependencies to propose a schema.
//!
//! - [`model`]: declared entities and the plan derived from them (output
//!   columns, foreign keys detected from other entities' keys);
//! - [`split`]: the split itself, in memory, with violation policies;
//! - [`surrogate`]: deterministic surrogate keys;
//! - [`mask`]: which columns' values are masked in reports (PII);
//! - [`report`]: violation and foreign-key reports for metrics and `show`;
//! - [`ddl`]: CREATE TABLE statements per SQL dialect;
//! - [`fd`]: functional dependency discovery (TANE) and 3NF synthesis.

pub mod ddl;
pub mod fd;
pub mod mask;
pub mod model;
pub mod report;
pub mod split;
pub mod surrogate;
