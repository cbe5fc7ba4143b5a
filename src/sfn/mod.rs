//! AWS Step Functions: DAGs compiled to Amazon States Language, deployed as
//! state machines, and runs dispatched through them (see
//! `docs/stepfunctions.md`).
//!
//! - [`decompose`] turns the DAG into nested sequences and parallel groups
//!   (exact for series-parallel DAGs; elsewhere the fewest added waits,
//!   reported as lost concurrency);
//! - [`states`] writes the states (tasks with Retry/Catch/timeouts,
//!   parallel groups, failure exits);
//! - [`settings`] is the `sfn = { ... }` table of an environment;
//! - [`deploy`] creates or updates the state machine;
//! - [`history`] mirrors an execution into the local run history.

pub mod analysis;
pub mod bitset;
pub mod decompose;
pub mod deploy;
pub mod history;
pub mod names;
pub mod settings;
pub mod states;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;

pub use settings::{ResourceKind, SfnSettings};

use crate::graph::DagGraph;
use crate::spec::Dag;

/// Step Functions' limit on a state machine definition.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// A DAG compiled to a state machine definition.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub dag: String,
    pub definition: serde_json::Value,
    /// The definition as deployed (compact JSON).
    pub text: String,
    /// State names by task id.
    pub state_names: BTreeMap<String, String>,
    /// Tasks made to wait for tasks they do not need (the DAG is not
    /// series-parallel there).
    pub lost: Vec<LostConcurrency>,
    /// A hash of the definition: equal hashes, equal state machines.
    pub content_hash: String,
}

/// A task that waits, in the compiled machine, for tasks it does not need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostConcurrency {
    pub task: String,
    pub waits_for: Vec<String>,
}

impl Compiled {
    /// State name -> task id.
    pub fn tasks_by_state(&self) -> BTreeMap<String, String> {
        self.state_names.iter().map(|(t, s)| (s.clone(), t.clone())).collect()
    }

    /// One line per task that lost concurrency (empty when none did).
    pub fn lost_report(&self) -> String {
        let mut s = String::new();
        for l in &self.lost {
            let shown: Vec<&str> = l.waits_for.iter().take(5).map(String::as_str).collect();
            let more = l.waits_for.len().saturating_sub(shown.len());
            s += &format!(
                "  {} also waits for {}{}\n",
                l.task,
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        s
    }
}

/// Compiles a DAG for the given settings.
pub fn compile(dag: &Dag, settings: &SfnSettings) -> Result<Compiled> {
    let graph = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let Some(order) = graph.topological_order() else {
        bail!("DAG {} has a cycle: {:?}", dag.name, graph.cycles());
    };
    let needs: BTreeMap<&str, &[String]> = dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())).collect();
    let ordered = decompose::Ordered::new(&order, |id| needs[id]);
    let root = decompose::decompose(&ordered);

    let waits = decompose::waits(&root, ordered.len());
    let mut lost = Vec::new();
    for (t, w) in waits.iter().enumerate() {
        let extra: Vec<String> = w
            .iter()
            .filter(|u| !ordered.ancestors[t].contains(*u))
            .map(|u| ordered.ids[u].clone())
            .collect();
        if !extra.is_empty() {
            lost.push(LostConcurrency {
                task: ordered.ids[t].clone(),
                waits_for: extra,
            });
        }
    }

    let state_names = names::task_state_names(ordered.ids.iter().map(String::as_str));
    let comment = format!(
        "nightjar DAG {} ({} tasks); input: {{\"run_id\": ..., \"date\": ..., \"vars\": {{...}}}}",
        dag.name,
        dag.tasks.len()
    );
    let definition = states::Builder::new(dag, &ordered, settings, &state_names).definition(&root, comment);
    let text = serde_json::to_string(&definition)?;
    if text.len() > MAX_DEFINITION_BYTES {
        bail!(
            "the state machine of DAG {} would be {} bytes, over Step Functions' limit of {} bytes (1 MB): \
             split the DAG into smaller DAGs (e.g. one per source), or run it with `dispatch = \"local\"`",
            dag.name,
            text.len(),
            MAX_DEFINITION_BYTES
        );
    }
    let content_hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()));
    Ok(Compiled {
        dag: dag.name.clone(),
        definition,
        text,
        state_names,
        lost,
        content_hash,
    })
}

/// The execution input of a run: its ids, and the `--var` overrides (the
/// only values that travel; everything else is in the DAG and the artifact
/// store).
pub fn execution_input(
    dag: &str,
    run_id: &str,
    date: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> String {
    serde_json::json!({ "dag": dag, "run_id": run_id, "date": date, "vars": vars }).to_string()
}
