//! `nightjar sfn compile|deploy DAG`: a DAG as an AWS Step Functions state
//! machine.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::{Cli, locate};
use crate::sfn::{self, ResourceKind, SfnSettings};

#[derive(Subcommand, Debug)]
pub enum SfnCommand {
    /// Print the Amazon States Language definition of a DAG (stdout); what
    /// lost concurrency, if anything, goes to stderr.
    Compile(SfnArgs),
    /// Create or update the DAG's state machine (idempotent: unchanged
    /// definitions are left alone; tagged with the definition's hash).
    Deploy(SfnArgs),
}

#[derive(Args, Debug)]
pub struct SfnArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    dag: String,
    /// The environment whose `sfn` settings to use (default: NIGHTJAR_ENV,
    /// else nightjar.toml's default_env).
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// compile: pretty-print the definition.
    #[arg(long)]
    pretty: bool,
}

pub fn sfn(cli: &Cli, cmd: &SfnCommand) -> Result<ExitCode> {
    match cmd {
        SfnCommand::Compile(args) => compile(cli, args),
        SfnCommand::Deploy(args) => deploy(cli, args),
    }
}

/// The env's settings; `compile` alone accepts their absence (with a
/// placeholder queue), so that a DAG can be looked at before AWS is set up.
fn settings(project: &crate::spec::Project, env: Option<&str>, compile_only: bool) -> Result<SfnSettings> {
    let env = project.select_env(env)?;
    match &env.sfn {
        Some(s) => Ok(s.clone()),
        None if compile_only => {
            eprintln!(
                "note: env `{}` has no `sfn` settings; compiling for an SQS queue placeholder (see docs/stepfunctions.md)",
                env.name
            );
            let mut s = SfnSettings::new(ResourceKind::Sqs);
            s.queue = Some("https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE".into());
            Ok(s)
        }
        None => bail!(
            "env `{}` has no `sfn` settings: add `sfn = {{ resource = \"sqs\", queue = \"...\", role_arn = \"...\" }}` \
             under [env.{}] in nightjar.toml (see docs/stepfunctions.md)",
            env.name,
            env.name
        ),
    }
}

fn compile(cli: &Cli, args: &SfnArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let settings = settings(&project, args.env.as_deref(), true)?;
    let started = std::time::Instant::now();
    let compiled = sfn::compile(&dag, &settings)?;
    let took = started.elapsed();
    if args.pretty {
        println!("{}", serde_json::to_string_pretty(&compiled.definition)?);
    } else {
        println!("{}", compiled.text);
    }
    report_lost(&compiled);
    eprintln!(
        "{}: {} tasks, {} bytes ({:.1}% of the 1 MB limit), compiled in {:.1} ms",
        dag.name,
        dag.tasks.len(),
        compiled.text.len(),
        compiled.text.len() as f64 * 100.0 / sfn::MAX_DEFINITION_BYTES as f64,
        took.as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}

fn report_lost(compiled: &sfn::Compiled) {
    if compiled.lost.is_empty() {
        eprintln!(
            "{}: full concurrency (every task waits only for its upstream tasks)",
            compiled.dag
        );
    } else {
        eprintln!(
            "{}: the DAG is not series-parallel; to fit Step Functions' nested Parallel states, {} task(s) lost concurrency:",
            compiled.dag,
            compiled.lost.len()
        );
        eprint!("{}", compiled.lost_report());
    }
}

fn deploy(cli: &Cli, args: &SfnArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let settings = settings(&project, args.env.as_deref(), false)?;
    let compiled = sfn::compile(&dag, &settings)?;
    report_lost(&compiled);
    let rt = tokio::runtime::Runtime::new()?;
    let deployed = rt.block_on(sfn::deploy::deploy(&settings, &compiled))?;
    println!("{} {} ({})", deployed.action.as_str(), deployed.name, deployed.arn);
    Ok(ExitCode::SUCCESS)
}
