//! `nightjar normalize ddl` (CREATE TABLE for a normalize job's entities)
//! and `nightjar normalize infer` (functional dependencies -> proposed 3NF).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{Cli, locate};
use crate::data::artifact::{open_path, read_all};
use crate::data::{DatasetRef, rows::DEFAULT_BATCH_ROWS};
use crate::normalize::ddl::{Dialect, TableInfo, generate, table_info};
use crate::normalize::model::Plan;
use crate::normalize::split::{SplitOptions, split};
use crate::steps::transform::normalize::NormalizeConfig;
use crate::store::model::TaskState;

#[derive(Subcommand, Debug)]
pub enum NormalizeCommand {
    /// Write CREATE TABLE statements (keys, types, Redshift distribution)
    /// for the entities of a `transform.normalize` job, under sql/.
    Ddl(DdlArgs),
    /// Discover the functional dependencies of a table (TANE, exact or
    /// approximate), its candidate keys, and a proposed 3NF schema with a
    /// ready job file.
    Infer(InferArgs),
}

#[derive(Args, Debug)]
pub struct InferArgs {
    /// A CSV (header, `.gz` allowed) or Parquet file, or DAG.TASK for the
    /// latest successful output of a task.
    source: String,
    /// The largest share of rows an FD may break (g3 error) and still be
    /// reported, as approximate: 0.01 = 1%. Default 0: exact FDs only.
    #[arg(long, default_value_t = 0.0)]
    error: f64,
    /// The largest left side, in columns (default: no limit).
    #[arg(long)]
    max_lhs: Option<usize>,
    /// With DAG.TASK: which output of the task (default: its first).
    #[arg(long)]
    output: Option<String>,
}

#[derive(Args, Debug)]
pub struct DdlArgs {
    /// The normalize job file (e.g. jobs/retail/normalize.toml).
    job: PathBuf,
    #[arg(long, value_enum)]
    dialect: Dialect,
    /// Where the column types come from: a Parquet file of the flat input
    /// (split in memory). Default: the latest successful outputs of the
    /// DAG task that runs this job (see --from).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// The task whose latest successful outputs give types and sizes, as
    /// DAG.TASK (default: the task of the project's DAGs using JOB).
    #[arg(long, value_name = "DAG.TASK")]
    from: Option<String>,
    /// Output file (default sql/<job path under jobs/>.<dialect>.sql; `-`
    /// prints).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn normalize(cli: &Cli, cmd: &NormalizeCommand) -> Result<ExitCode> {
    match cmd {
        NormalizeCommand::Ddl(a) => ddl(cli, a),
        NormalizeCommand::Infer(a) => infer(cli, a),
    }
}

fn infer(cli: &Cli, a: &InferArgs) -> Result<ExitCode> {
    use crate::normalize::fd::{proposal::propose, table::Encoded, tane};
    if !(0.0..1.0).contains(&a.error) {
        bail!(
            "--error is a share of rows between 0 and 1 (0.01 = 1%), not {}",
            a.error
        );
    }
    let path = PathBuf::from(&a.source);
    let started = std::time::Instant::now();
    let table = if path.is_file() {
        let name = path.to_string_lossy().to_lowercase();
        if name.ends_with(".parquet") {
            let reader = open_path(&path, DEFAULT_BATCH_ROWS)?;
            let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
            let batches = reader.collect::<Result<Vec<_>, _>>()?;
            Encoded::from_batches(&schema, &batches)?
        } else {
            Encoded::from_csv(&path)?
        }
    } else if let Some((dag, task)) = a.source.split_once('.').filter(|_| !a.source.contains('/')) {
        let outputs = latest_outputs(cli, dag, task)?;
        let d = match &a.output {
            Some(o) => outputs
                .iter()
                .find(|d| &d.name == o)
                .with_context(|| format!("task `{task}` has no output `{o}`"))?,
            None => &outputs[0],
        };
        let (schema, batches) = read_all(d)?;
        Encoded::from_batches(&schema, &batches)?
    } else {
        bail!("{}: no such file, and not DAG.TASK", a.source);
    };
    let read = started.elapsed();
    let fds = tane::discover(
        &table,
        tane::Options {
            max_error: a.error,
            max_lhs: a.max_lhs,
        },
    );
    let p = propose(&table, &fds);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", p.text());
    }
    eprintln!(
        "read {:.3}s, discovery and synthesis {:.3}s",
        read.as_secs_f64(),
        (started.elapsed() - read).as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a normalize job file.
pub fn load_job(path: &Path) -> Result<NormalizeConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut t: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match t.remove("kind").as_ref().and_then(|k| k.as_str()) {
        Some("transform.normalize") => {}
        other => bail!(
            "{}: kind is {:?}, not \"transform.normalize\"",
            path.display(),
            other.unwrap_or("missing")
        ),
    }
    crate::spec::doc::deserialize_at(toml::Value::Table(t))
        .map_err(|(p, m)| anyhow::anyhow!("{}: at `{p}`: {m}", path.display()))
}

/// The latest successful outputs of `dag`'s `task`.
pub fn latest_outputs(cli: &Cli, dag: &str, task: &str) -> Result<Vec<DatasetRef>> {
    let (_, store) = locate::history(cli)?;
    for run in store.runs(Some(dag), 10_000)? {
        if let Some(t) = store
            .tasks(&run.run_id)?
            .into_iter()
            .find(|t| t.task_id == task && t.state == TaskState::Success && !t.outputs.is_empty())
        {
            return Ok(t.outputs);
        }
    }
    bail!("no successful run of task `{task}` in DAG `{dag}` has outputs; run it first (`nightjar run {dag}`)")
}

/// The DAG task (DAG, TASK) that runs `job`.
fn task_using(cli: &Cli, job: &Path) -> Result<(String, String)> {
    let root = locate::project_root(cli, Some(job))?;
    let want = job
        .canonicalize()
        .with_context(|| format!("reading {}", job.display()))?;
    for f in locate::dag_files(&root.join("dags")) {
        let Ok((_, dag)) = locate::load_dag(cli, &f.to_string_lossy()) else {
            continue;
        };
        for t in &dag.tasks {
            if t.job_file.as_ref().and_then(|p| p.canonicalize().ok()).as_ref() == Some(&want) {
                return Ok((dag.name.clone(), t.id.clone()));
            }
        }
    }
    bail!(
        "no DAG in {} runs {}: give --from DAG.TASK or --input FILE.parquet",
        root.join("dags").display(),
        job.display()
    )
}

fn ddl(cli: &Cli, a: &DdlArgs) -> Result<ExitCode> {
    let cfg = load_job(&a.job)?;
    let plan = Plan::new(&cfg.entity);
    let mut tables: BTreeMap<String, TableInfo> = BTreeMap::new();
    if let Some(input) = &a.input {
        let reader = open_path(input, DEFAULT_BATCH_ROWS)?;
        let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        let flat = arrow::compute::concat_batches(&schema, &batches)?;
        let opts = SplitOptions {
            surrogate_salt: cfg.surrogate_salt.clone(),
            examples: 0,
            ..Default::default()
        };
        for e in split(&plan, &flat, &opts)?.entities {
            tables.insert(
                e.name.clone(),
                table_info(std::slice::from_ref(&e.batch), &e.batch.schema()),
            );
        }
    } else {
        let (dag, task) = match &a.from {
            Some(f) => match f.split_once('.') {
                Some((d, t)) => (d.to_string(), t.to_string()),
                None => bail!("--from takes DAG.TASK, e.g. retail_nightly.normalize"),
            },
            None => task_using(cli, &a.job)?,
        };
        for d in latest_outputs(cli, &dag, &task)? {
            let (schema, batches) = read_all(&d)?;
            tables.insert(d.name.clone(), table_info(&batches, &schema));
        }
    }
    let sql = generate(&plan, &tables, a.dialect)?;
    let out = match &a.out {
        Some(p) if p.as_os_str() == "-" => {
            print!("{sql}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(p) => p.clone(),
        None => {
            let root = locate::project_root(cli, Some(&a.job))?;
            let abs = a.job.canonicalize()?;
            let rel = abs
                .strip_prefix(root.canonicalize()?.join("jobs"))
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| PathBuf::from(abs.file_name().expect("a file")));
            root.join("sql")
                .join(rel.with_extension(format!("{}.sql", a.dialect.name())))
        }
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &sql).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
