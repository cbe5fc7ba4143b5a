//! Which upstream outputs a task reads.
//!
//! Without `input`/`inputs`, a task reads every output of its `needs`: a
//! need with one output is named after the need (`extract`), a need with
//! several gives one input per output (`extract.orders`). `input = "x"`
//! names the single input; `inputs = { orders = "x", c = "y.customers" }`
//! names several.

use std::collections::{BTreeMap, HashMap};

use crate::data::DatasetRef;
use crate::spec::Task;

pub fn resolve(
    task: &Task,
    outputs: &HashMap<String, Vec<DatasetRef>>,
) -> Result<BTreeMap<String, DatasetRef>, String> {
    let lookup = |r: &str| -> Result<DatasetRef, String> {
        let (up, name) = match r.split_once('.') {
            Some((u, n)) => (u, Some(n)),
            None => (r, None),
        };
        let outs = outputs.get(up).map(Vec::as_slice).unwrap_or_default();
        match name {
            Some(n) => outs.iter().find(|d| d.name == n).cloned().ok_or_else(|| {
                let names: Vec<&str> = outs.iter().map(|d| d.name.as_str()).collect();
                format!("task `{up}` has no output `{n}` (it has: {})", list(&names))
            }),
            None => match outs {
                [one] => Ok(one.clone()),
                [] => Err(format!("task `{up}` produced no output")),
                many => {
                    let names: Vec<&str> = many.iter().map(|d| d.name.as_str()).collect();
                    Err(format!(
                        "task `{up}` has several outputs ({}): name one, e.g. `{up}.{}`",
                        list(&names),
                        names[0]
                    ))
                }
            },
        }
    };
    let mut inputs = BTreeMap::new();
    if !task.inputs.is_empty() {
        for (local, r) in &task.inputs {
            inputs.insert(local.clone(), lookup(r)?);
        }
    } else if let Some(r) = &task.input {
        inputs.insert(r.clone(), lookup(r)?);
    } else {
        for need in &task.needs {
            let outs = outputs.get(need).map(Vec::as_slice).unwrap_or_default();
            if let [one] = outs {
                inputs.insert(need.clone(), one.clone());
            } else {
                for d in outs {
                    inputs.insert(format!("{need}.{}", d.name), d.clone());
                }
            }
        }
    }
    Ok(inputs)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
