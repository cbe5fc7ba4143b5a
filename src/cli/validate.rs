//! `nightjar validate`: every problem in every file, in one pass.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::{Cli, locate};
use crate::spec::diagnostic::Diagnostic;
use crate::spec::project::PROJECT_FILE;
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
    let mut dag_names: HashMap<String, PathBuf> = HashMap::new();
    let mut dags_ok = 0usize;
    for file in &files {
        let project = match locate::project(cli, Some(file)) {
            Ok(p) => p,
            Err(e) => {
                diags.push(Diagnostic::error(
                    crate::spec::source::Origin::file_only(file),
                    format!("{e:#}"),
                ));
                continue;
            }
        };
        match classify(file) {
            FileKind::Project => {
                if let Err(d) = Project::load(&project.root) {
                    diags.extend(d.0);
                }
            }
            FileKind::Job => diags.extend(dag::check_job_file(file, &project, &registry)),
            FileKind::Dag => match dag::load(file, &project, &registry) {
                Ok((d, warnings)) => {
                    dags_ok += 1;
                    diags.extend(warnings);
                    if let Some(other) = dag_names.insert(d.name.clone(), file.clone()) {
                        diags.push(
                            Diagnostic::error(
                                crate::spec::source::Origin::file_only(file),
                                format!("DAG name `{}` is also used by {}", d.name, other.display()),
                            )
                            .with_hint("DAG names key runs and artifacts: make them unique"),
                        );
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

fn collect(cli: &Cli, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if paths.is_empty() {
        let project = locate::project(cli, None)?;
        let p = project.root.join(PROJECT_FILE);
        if p.is_file() {
            files.push(p);
        }
        files.extend(locate::dag_files(&project.root.join("dags")));
        if files.is_empty() {
            anyhow::bail!(
                "nothing to validate in {}: no nightjar.toml and no dags/*.toml",
                project.root.display()
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
    let table = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok());
    match table {
        Some(t) if t.contains_key("kind") && !t.contains_key("task") && !t.contains_key("name") => FileKind::Job,
        _ => FileKind::Dag,
    }
}
