//! The command line: argument parsing (clap) and one module per command
//! family. Everything a command does goes through the library; these modules
//! only read arguments and print.

mod backfill;
mod graph;
mod history;
mod locate;
mod normalize;
mod pii;
mod preview;
mod run;
mod schedule;
mod sfn;
mod step;
mod table;
mod ui;
mod validate;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "nightjar",
    version,
    about = "Batch ETL orchestrator: TOML DAGs of declarative jobs"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// The project folder (default: found from the DAG path or the current
    /// directory).
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check DAG files, job files and nightjar.toml: every problem, with
    /// file:line:column and a hint.
    Validate {
        /// Files or folders (default: the project's dags/ and nightjar.toml).
        paths: Vec<PathBuf>,
    },
    /// Run (or resume) one logical date of a DAG.
    Run(run::RunArgs),
    /// List runs, newest first.
    Runs {
        /// Only this DAG's runs.
        dag: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 30)]
        limit: usize,
    },
    /// Show one run: its tasks, attempts, rows and errors.
    Show {
        /// A run id, as printed by `run` and `runs` (e.g. `retail@2010-12-01`).
        run: String,
    },
    /// Print the log of one task of a run.
    Logs { run: String, task: String },
    /// Show the schema and first rows of a task's output (running it and
    /// its upstream tasks for the date first when needed).
    Preview(preview::PreviewArgs),
    /// List the step kinds, or print a complete example job of one.
    Kinds {
        /// A step kind, e.g. `transform.clean`.
        kind: Option<String>,
    },
    /// Find PII in data (`scan`), or read tokens back (`detokenize`).
    #[command(subcommand)]
    Pii(pii::PiiCommand),
    /// One run per logical date of a range: planned against the history,
    /// resumable (the same command continues), polite to the scheduler.
    Backfill(backfill::BackfillArgs),
    /// The scheduler daemon: fires each DAG on its cron in its time zone
    /// (or `schedule preview DAG` to see the fire times).
    Schedule(schedule::ScheduleArgs),
    /// Clear a task (and with --downstream everything after it) in the
    /// latest run of a date, so that the next run of the date runs it again.
    Clear(ui::ClearArgs),
    /// Serve the web UI (DAGs, run grid, graph, task logs, actions).
    Ui(ui::UiArgs),
    /// Stop the scheduler from firing a DAG (runs in flight finish).
    Pause { dag: String },
    /// Let the scheduler fire a DAG again; missed intervals follow the
    /// DAG's catch-up rule.
    Unpause { dag: String },
    /// Draw a DAG.
    Graph {
        /// A DAG file, or the name of a DAG in the project's dags/ folder.
        dag: String,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Normalization tools: DDL for a normalize job, dependency discovery.
    #[command(subcommand)]
    Normalize(normalize::NormalizeCommand),
    /// AWS Step Functions: compile a DAG to a state machine, deploy it.
    #[command(subcommand)]
    Sfn(sfn::SfnCommand),
    /// Run one task of one run in this process, against the env's artifact
    /// store (the entry point of containers and Lambda functions).
    Step(step::StepArgs),
    /// Take tasks from an SQS queue (Step Functions `.waitForTaskToken`),
    /// run them, answer with their task tokens.
    Worker(worker::WorkerArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Entry point of the `nightjar` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Validate { ref paths } => validate::validate(&cli, paths),
        Command::Run(ref args) => run::run(&cli, args),
        Command::Runs { ref dag, limit } => history::runs(&cli, dag.as_deref(), limit),
        Command::Show { ref run } => history::show(&cli, run),
        Command::Logs { ref run, ref task } => history::logs(&cli, run, task),
        Command::Graph { ref dag, format } => graph::graph(&cli, dag, format),
        Command::Preview(ref args) => preview::preview(&cli, args),
        Command::Kinds { ref kind } => kinds(kind.as_deref()),
        Command::Normalize(ref cmd) => normalize::normalize(&cli, cmd),
        Command::Pii(ref cmd) => pii::pii(&cli, cmd),
        Command::Backfill(ref args) => backfill::backfill(&cli, args),
        Command::Schedule(ref args) => schedule::schedule(&cli, args),
        Command::Clear(ref args) => ui::clear(&cli, args),
        Command::Ui(ref args) => ui::ui(&cli, args),
        Command::Pause { ref dag } => schedule::pause(&cli, dag, true),
        Command::Unpause { ref dag } => schedule::pause(&cli, dag, false),
        Command::Sfn(ref cmd) => sfn::sfn(&cli, cmd),
        Command::Step(ref args) => step::step(&cli, args),
        Command::Worker(ref args) => worker::worker(&cli, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn kinds(kind: Option<&str>) -> anyhow::Result<ExitCode> {
    let registry = crate::steps::Registry::builtin();
    match kind {
        None => {
            let rows: Vec<Vec<String>> = registry
                .kinds()
                .map(|k| vec![k.name.to_string(), k.summary.to_string()])
                .collect();
            table::print(&["KIND", "WHAT IT DOES"], &rows);
            println!("\n`nightjar kinds KIND` prints a complete example job.");
        }
        Some(name) => match registry.get(name) {
            Some(k) => print!("{}", k.example),
            None => anyhow::bail!(
                "unknown step kind `{name}` ({})",
                crate::spec::diagnostic::unknown_name_hint(name, &registry.names())
            ),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NIGHTJAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
