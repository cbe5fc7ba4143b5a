//! Finding the project and the DAG a command names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::spec::diagnostic::unknown_name_hint;
use crate::spec::{Dag, Project, dag};
use crate::steps::Registry;
use crate::store::Store;

use super::Cli;

/// The folder of the project `near` (or the current directory) belongs
/// to; `--project` wins.
pub fn project_root(cli: &Cli, near: Option<&Path>) -> Result<PathBuf> {
    Ok(match (&cli.project, near) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => Project::discover(p),
        (None, None) => Project::discover(&std::env::current_dir()?),
    })
}

/// The project of the current directory (or `--project`).
pub fn project(cli: &Cli, near: Option<&Path>) -> Result<Project> {
    Project::load(&project_root(cli, near)?).map_err(|d| anyhow::anyhow!("{d}"))
}

/// Opens the project's run history.
pub fn store(project: &Project) -> Result<Arc<Store>> {
    Ok(Arc::new(Store::open(&project.state_dir().join("state.db"))?))
}

/// A DAG given as a file path or as a name from the project's `dags/`.
pub fn dag_path(cli: &Cli, arg: &str) -> Result<PathBuf> {
    let p = PathBuf::from(arg);
    if p.is_file() {
        return Ok(p);
    }
    let project_root = project_root(cli, None)?;
    let dags = project_root.join("dags");
    let mut names = Vec::new();
    for f in dag_files(&dags) {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if stem == arg {
            return Ok(f);
        }
        // A DAG may be named differently from its file.
        if let Ok(text) = std::fs::read_to_string(&f)
            && let Ok(t) = text.parse::<toml::Table>()
            && t.get("name").and_then(|n| n.as_str()) == Some(arg)
        {
            return Ok(f);
        }
        names.push(stem);
    }
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    bail!(
        "no DAG file or DAG named `{arg}` (looked in {}; {})",
        dags.display(),
        unknown_name_hint(arg, &known)
    )
}

/// `*.toml` files under a folder, sorted.
pub fn dag_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dag_files(&p));
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Loads a DAG (named or by path) and its project; errors print every
/// problem.
pub fn load_dag(cli: &Cli, arg: &str) -> Result<(Project, Dag)> {
    let path = dag_path(cli, arg)?;
    let project = project(cli, Some(&path))?;
    let (dag, warnings) =
        dag::load(&path, &project, &Registry::builtin()).map_err(|d| anyhow::anyhow!("invalid DAG:\n{d}"))?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok((project, dag))
}

/// The run history of the current project, for commands that take a run id.
pub fn history(cli: &Cli) -> Result<(Project, Arc<Store>)> {
    let project = project(cli, None)?;
    let db = project.state_dir().join("state.db");
    if !db.exists() {
        bail!(
            "no run history in {} (nothing has run in this project yet)",
            project.root.display()
        );
    }
    let store = store(&project).context("opening run history")?;
    Ok((project, store))
}
