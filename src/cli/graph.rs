//! `nightjar graph`: a DAG as Graphviz dot or Mermaid.

use std::process::ExitCode;

use anyhow::Result;

use super::{Cli, GraphFormat, locate};
use crate::graph::DagGraph;

pub fn graph(cli: &Cli, dag_arg: &str, format: GraphFormat) -> Result<ExitCode> {
    let (_, dag) = locate::load_dag(cli, dag_arg)?;
    let g = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let kind = |id: &str| {
        dag.tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.kind.clone())
            .unwrap_or_default()
    };
    let out = match format {
        GraphFormat::Dot => g.to_dot(&dag.name, kind),
        GraphFormat::Mermaid => g.to_mermaid(kind),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
