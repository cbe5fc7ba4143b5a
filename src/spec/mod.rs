//! The files users write: DAG files, job files and `nightjar.toml`.
//!
//! Everything here turns text into validated structures, and every problem
//! into a [`Diagnostic`] with file, line, column and a hint.

pub mod dag;
pub mod diagnostic;
pub mod doc;
pub mod duration;
pub mod fields;
pub mod project;
pub mod schedule;
pub mod source;
pub mod template;

pub use dag::{Dag, Task, TaskPolicy};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use project::{Connection, Environment, Project};
