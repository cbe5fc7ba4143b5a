//! nightjar: a batch ETL orchestrator.
//!
//! Pipelines are TOML DAG files (see `DESIGN.md` and the README). The crate is
//! layered the way data flows through it:
//!
//! - [`spec`] reads DAG files, job files and `nightjar.toml`, renders their
//!   templates and reports every problem with file, line and column;
//! - [`graph`] turns a DAG's tasks into a petgraph graph (order, cycles,
//!   sub-graphs, rendering);
//! - [`engine`] executes a run: plans which tasks to run, runs them
//!   concurrently with retries and timeouts, and records every transition in
//!   the [`store`];
//! - [`dispatch`] decides where a task runs (in process for now);
//! - [`steps`] holds one module per step kind and the registry of kinds.
//!
//! The binary (`src/main.rs`) is a thin clap layer over [`cli`].

pub mod alloc;
pub mod aws;
pub mod cli;
pub mod control;
pub mod data;
pub mod dispatch;
pub mod engine;
pub mod graph;
pub mod normalize;
pub mod pii;
pub mod redshift;
pub mod report;
pub mod schedule;
pub mod secrets;
pub mod sfn;
pub mod spec;
pub mod steps;
pub mod store;
#[doc(hidden)]
pub mod testenv;
pub mod ui;
pub mod warehouse;
