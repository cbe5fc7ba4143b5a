//! `shell`: runs a command, the escape hatch for anything nightjar has no
//! step kind for.
//!
//! ```toml
//! [[task]]
//! id = "notify"
//! kind = "shell"
//! command = "echo loaded {{ ds }}"
//! ```
//!
//! The command runs under `/bin/sh -c` in its own process group, with the
//! run's identity in `NIGHTJAR_DAG`, `NIGHTJAR_RUN_ID`, `NIGHTJAR_TASK`,
//! `NIGHTJAR_DS` and `NIGHTJAR_ATTEMPT`. Every line it prints goes to the
//! task log. A non-zero exit fails the task; a timeout or Ctrl-C kills the
//! whole process group, so no orphan keeps running.

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::{Context, bail};
use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::{ConfigProblem, Step, StepConfig, StepContext, StepKind, StepOutput};
use crate::engine::log::TaskLog;

pub const KIND: StepKind = StepKind::of::<ShellConfig>("shell", "runs a command with /bin/sh", EXAMPLE);

const EXAMPLE: &str = r#"kind = "shell"
command = "echo loaded {{ ds }} >> .nightjar/loaded.txt"
env = { GREETING = "hello" }
workdir = "."
"#;

/// Runs a command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellConfig {
    /// The command line, run by `/bin/sh -c` after its templates are
    /// rendered.
    pub command: String,
    /// Extra environment variables for the command (values may be
    /// templates, e.g. `{ TOKEN = "{{ env.API_TOKEN }}" }`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the project folder (default: the
    /// project folder).
    pub workdir: Option<String>,
}

impl StepConfig for ShellConfig {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.command.trim().is_empty() {
            problems.push(
                ConfigProblem::new("command", "`command` is empty")
                    .hint("write the command to run, e.g. `command = \"echo {{ ds }}\"`"),
            );
        }
        problems
    }

    fn build(self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(Shell { config: self }))
    }
}

struct Shell {
    config: ShellConfig,
}

#[async_trait]
impl Step for Shell {
    async fn run(&self, cx: &StepContext) -> anyhow::Result<StepOutput> {
        let workdir = match &self.config.workdir {
            Some(w) => cx.resolve(w),
            None => cx.project_dir.clone(),
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&self.config.command)
            .current_dir(&workdir)
            .envs(&self.config.env)
            .env("NIGHTJAR_DAG", &cx.dag)
            .env("NIGHTJAR_RUN_ID", &cx.run_id)
            .env("NIGHTJAR_TASK", &cx.task)
            .env("NIGHTJAR_DS", &cx.ds)
            .env("NIGHTJAR_ATTEMPT", cx.attempt.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // If nightjar itself dies (kill -9), the kernel kills the command
        // too, so a resumed run does not overlap a leftover of the old one.
        // (`sh -c` execs a single command, which keeps the setting; further
        // children of a compound command do not get it.) The kernel ties it
        // to the spawning thread: this runs on a tokio worker thread, which
        // lives as long as the runtime, never on a short-lived blocking one.
        // SAFETY: prctl is async-signal-safe and touches only this child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start /bin/sh in {}", workdir.display()))?;
        // Kills the whole group if this future is dropped (timeout, Ctrl-C)
        // before the command exits: `kill_on_drop` alone reaches only `sh`.
        let mut guard = GroupKill(child.id());
        let out = pump(child.stdout.take(), cx.log.clone(), "stdout");
        let err = pump(child.stderr.take(), cx.log.clone(), "stderr");
        let (status, _, stderr_tail) = tokio::join!(child.wait(), out, err);
        let status = status.context("waiting for the command")?;
        guard.0 = None; // exited by itself: nothing to kill
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
            let tail = if stderr_tail.is_empty() {
                String::new()
            } else {
                format!(": {}", stderr_tail.join(" | "))
            };
            bail!("command exited with {code}{tail}");
        }
        Ok(StepOutput::default())
    }
}

/// Copies a child's stream into the task log, line by line; returns the
/// last few lines for the error message.
async fn pump(stream: Option<impl AsyncRead + Unpin>, log: TaskLog, name: &str) -> Vec<String> {
    let Some(stream) = stream else { return Vec::new() };
    let mut lines = BufReader::new(stream).lines();
    let mut tail = std::collections::VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        log.line(name, &line);
        if tail.len() == 3 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    tail.into()
}

struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) with a negative pid signals the process group
            // this command leads (process_group(0) made it the leader).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}
