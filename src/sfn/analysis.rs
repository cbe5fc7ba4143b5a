//! What a compiled definition makes each task wait for, read back from the
//! Amazon States Language itself (not from the compiler's intermediate
//! shape), so a test can hold the output to the DAG: on the success path, a
//! task state starts once every task state before it in its list, and every
//! task of every earlier parallel group, has finished.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// For every `Task` state (by name), the `Task` states that must finish
/// before it starts.
pub fn task_waits(definition: &Value) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    walk_list(definition, &BTreeSet::new(), &mut out)?;
    Ok(out)
}

/// Follows one state list along its success path; returns the task states
/// finished at its end.
fn walk_list(
    list: &Value,
    before: &BTreeSet<String>,
    out: &mut BTreeMap<String, BTreeSet<String>>,
) -> Result<BTreeSet<String>> {
    let states = list["States"].as_object().ok_or_else(|| anyhow!("no States"))?;
    let mut done = before.clone();
    let mut at = list["StartAt"]
        .as_str()
        .ok_or_else(|| anyhow!("no StartAt"))?
        .to_string();
    let mut seen = BTreeSet::new();
    loop {
        if !seen.insert(at.clone()) {
            bail!("state `{at}` is reached twice: a loop");
        }
        let s = states.get(&at).ok_or_else(|| anyhow!("no state `{at}`"))?;
        match s["Type"].as_str() {
            Some("Task") => {
                if out.insert(at.clone(), done.clone()).is_some() {
                    bail!("task state `{at}` appears twice");
                }
                done.insert(at.clone());
            }
            Some("Parallel") => {
                let mut after = done.clone();
                for b in s["Branches"]
                    .as_array()
                    .ok_or_else(|| anyhow!("`{at}` has no Branches"))?
                {
                    after.extend(walk_list(b, &done, out)?);
                }
                done = after;
            }
            Some("Choice") => {
                let next = s["Default"].as_str().ok_or_else(|| anyhow!("`{at}` has no Default"))?;
                at = next.to_string();
                continue;
            }
            Some("Succeed") | Some("Fail") => return Ok(done),
            Some("Pass") => {}
            other => bail!("state `{at}` has unexpected type {other:?}"),
        }
        if s["End"].as_bool() == Some(true) {
            return Ok(done);
        }
        at = s["Next"]
            .as_str()
            .ok_or_else(|| anyhow!("state `{at}` has neither Next nor End"))?
            .to_string();
    }
}
