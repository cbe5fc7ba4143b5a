//! `nightjar validate`: every problem in every file, in one pass.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::{Cli, locate};
use crate::spec::diagnostic::Diagnostic;
use crate::spec::doc::Doc;
use crate::spec::project::PROJECT_FILE;
use crate::spec::source::{Origin, SourceFile};
use crate::spec::{Project, dag};
use crate::steps::Registry;

enum FileKind {
    Project,
    Dag,
    Job,
}

pub fn validate(cli: &Cli, paths: &[PathBuf]) -> Result<ExitCode> {
    let registry = Registry::builtin();
    let files = collect(cli, paths)?;
    let mut diags: Vec<Diagnostic> = Vec::new();
    // DAG name -> where the first DAG with it declares it.
    let mut dag_names: HashMap<String, Origin> = HashMap::new();
    let mut dags_ok = 0usize;
    for file in &files {
        let project = project_for(cli, Some(file), &mut diags)?;
        match classify(file) {
            FileKind::Project => {
                if let Err(d) = Project::load(file.parent().unwrap_or(&project.root)) {
                    diags.extend(d.0);
                }
            }
            FileKind::Job => diags.extend(dag::check_job_file(file, &project, &registry)),
            FileKind::Dag => match dag::load(file, &project, &registry) {
                Ok((d, warnings)) => {
                    diags.extend(warnings);
                    diags.extend(crate::pii::lint::warnings(&d));
                    // Point at the `name` line of both files, not at 1:1.
                    let here = name_origin(file);
                    if let Some(first) = dag_names.get(&d.name) {
                        diags.push(
                            Diagnostic::error(here, format!("DAG name `{}` is also used by {first}", d.name))
                                .with_hint("DAG names key runs and artifacts: make them unique"),
                        );
                    } else {
                        dag_names.insert(d.name.clone(), here);
                        dags_ok += 1;
                    }
                }
                Err(d) => diags.extend(d.0),
            },
        }
    }
    // The same problem reached through two files (a job file used by two
    // DAGs) is reported once.
    let mut seen = BTreeSet::new();
    diags.retain(|d| seen.insert((d.origin.to_string(), d.message.clone())));
    diags.sort_by(|a, b| {
        (a.origin.file.as_ref(), a.origin.line, a.origin.col).cmp(&(
            b.origin.file.as_ref(),
            b.origin.line,
            b.origin.col,
        ))
    });
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "files": files.len(), "errors": errors, "warnings": warnings, "diagnostics": diags
            }))?
        );
    } else {
        for d in &diags {
            eprintln!("{d}");
        }
        let summary = format!(
            "{} file(s) checked ({dags_ok} DAG(s) valid): {errors} error(s), {warnings} warning(s)",
            files.len()
        );
        if errors > 0 {
            eprintln!("{summary}")
        } else {
            println!("{summary}")
        }
    }
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The project `near` belongs to. A broken `nightjar.toml` does not stop
/// validation: its problems are reported (once; duplicates are dropped in
/// `validate`) and files are still checked against the embedded defaults,
/// so that one run shows every problem.
fn project_for(cli: &Cli, near: Option<&Path>, diags: &mut Vec<Diagnostic>) -> Result<Project> {
    let root = locate::project_root(cli, near)?;
    Ok(Project::load(&root).unwrap_or_else(|d| {
        diags.extend(d.0);
        Project::embedded(&root)
    }))
}

/// Where a DAG file sets its `name`.
fn name_origin(file: &Path) -> Origin {
    match SourceFile::read(file) {
        Ok(src) => Doc::parse(src).0.value_origin("name"),
        Err(_) => Origin::file_only(file),
    }
}

fn collect(cli: &Cli, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if paths.is_empty() {
        // Only the folder here: loading `nightjar.toml` (and reporting its
        // problems) is `validate`'s job, not a reason to stop.
        let root = locate::project_root(cli, None)?;
        let p = root.join(PROJECT_FILE);
        if p.is_file() {
            files.push(p);
        }
        files.extend(locate::dag_files(&root.join("dags")));
        if files.is_empty() {
            anyhow::bail!(
                "nothing to validate in {}: no nightjar.toml and no dags/*.toml",
                root.display()
            );
        }
        return Ok(files);
    }
    for p in paths {
        if p.is_dir() {
            files.extend(locate::dag_files(p));
        } else if p.exists() {
            files.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(files)
}

fn classify(path: &Path) -> FileKind {
    if path.file_name().is_some_and(|n| n == PROJECT_FILE) {
        return FileKind::Project;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return FileKind::Dag; // the DAG loader reports why it cannot be read
    };
    // Recovering from syntax errors, so that a job file with a typo is still
    // checked as a job file (and not reported as a DAG without a name).
    let (root, _) = toml::de::DeTable::parse_recoverable(&text);
    let has = |key: &str| root.get_ref().keys().any(|k| k.get_ref() == key);
    if has("kind") && !has("task") && !has("name") {
        FileKind::Job
    } else {
        FileKind::Dag
    }
}
