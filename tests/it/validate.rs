//! `nightjar validate`, end to end: the real binary on small projects in
//! temporary folders. Every kind of problem is reported with the place it
//! is written (`file:line:column`, from the TOML spans), a message and a
//! hint, all of them in one run, and the exit code says whether there was
//! any error.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// A throwaway project folder.
struct Project {
    dir: TempDir,
}

impl Project {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (creating folders), returning `self` for chaining.
    fn file(&self, rel: &str, text: &str) -> &Self {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        self
    }

    /// `nightjar --project <root> validate ARGS...`, run from the project folder.
    fn validate(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nightjar"));
        cmd.arg("--project").arg(self.root()).arg("validate");
        self.run(cmd, args)
    }

    /// `nightjar validate ARGS...` from the project folder, without
    /// `--project` (the project is found from the paths or the folder).
    fn validate_here(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nightjar"));
        cmd.arg("validate");
        self.run(cmd, args)
    }

    fn run(&self, mut cmd: Command, args: &[&str]) -> Outcome {
        let out = cmd
            .args(args)
            .current_dir(self.root())
            .env_remove("NIGHTJAR_ENV")
            .env_remove("NIGHTJAR_LOG")
            .output()
            .expect("run nightjar");
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// One diagnostic as printed: `LOCATION: error: MESSAGE` and an optional
/// `  hint: HINT` line under it.
#[derive(Debug, Clone)]
struct Diag {
    location: String,
    severity: String,
    message: String,
    hint: Option<String>,
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn diags(&self) -> Vec<Diag> {
        let mut out: Vec<Diag> = Vec::new();
        for line in self.stderr.lines() {
            if let Some(h) = line.strip_prefix("  hint: ") {
                let last = out
                    .last_mut()
                    .unwrap_or_else(|| panic!("hint without a diagnostic:\n{self}"));
                last.hint = Some(h.to_string());
                continue;
            }
            for severity in ["error", "warning"] {
                if let Some((loc, msg)) = line.split_once(&format!(": {severity}: ")) {
                    out.push(Diag {
                        location: loc.to_string(),
                        severity: severity.to_string(),
                        message: msg.to_string(),
                        hint: None,
                    });
                    break;
                }
            }
        }
        out
    }

    fn errors(&self) -> Vec<Diag> {
        self.diags().into_iter().filter(|d| d.severity == "error").collect()
    }

    /// Asserts a non-zero exit.
    fn failed(&self) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit code 1\n{self}");
        self
    }

    /// Asserts a clean exit with no error.
    fn succeeded(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected exit code 0\n{self}");
        assert!(self.errors().is_empty(), "{self}");
        self
    }

    /// The one error at `location` (a suffix such as `dags/bad.toml:7:1`:
    /// paths may be absolute) whose message contains `message`; asserts its
    /// hint contains `hint` (or that it has no hint, for `None`).
    fn error_at(&self, location: &str, message: &str, hint: Option<&str>) -> Diag {
        let found: Vec<Diag> = self
            .errors()
            .into_iter()
            .filter(|d| ends_with_path(&d.location, location) && d.message.contains(message))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one error at `{location}` containing `{message}`\n{self}"
        );
        let d = found[0].clone();
        match hint {
            Some(h) => assert!(
                d.hint.as_deref().is_some_and(|dh| dh.contains(h)),
                "expected hint containing `{h}` on {d:?}\n{self}"
            ),
            None => assert!(d.hint.is_none(), "unexpected hint on {d:?}"),
        }
        d
    }

    /// How many errors mention `needle` in their message.
    fn count(&self, needle: &str) -> usize {
        self.errors().iter().filter(|d| d.message.contains(needle)).count()
    }

    /// The summary line's error count (`...: N error(s), ...`).
    fn summary_errors(&self) -> usize {
        let text = format!("{}{}", self.stdout, self.stderr);
        let line = text
            .lines()
            .find(|l| l.contains("file(s) checked"))
            .unwrap_or_else(|| panic!("no summary line\n{self}"));
        let (_, rest) = line.split_once("): ").unwrap();
        rest.split(' ').next().unwrap().parse().unwrap()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit: {:?}\n--- stdout:\n{}--- stderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `path` ends with `suffix` on a path-component boundary (`xbad.toml:1:1`
/// does not end with `bad.toml:1:1`).
fn ends_with_path(path: &str, suffix: &str) -> bool {
    path == suffix || path.ends_with(&format!("/{suffix}"))
}

// ---------------------------------------------------------------------------
// Keys

#[test]
fn unknown_key_in_defaults_suggests_the_key_meant() {
    let p = Project::new();
    p.file(
        "dags/bad.toml",
        r#"name = "bad"
schedule = "0 2 * * *"

[defaults]
retires = 2
timeout = "20m"

[[task]]
id = "a"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/bad.toml:5:1",
        "unknown key `defaults.retires`",
        Some("did you mean `retries`?"),
    );
    // Once, not once more from serde.
    assert_eq!(out.errors().len(), 1, "{out}");
}

#[test]
fn unknown_top_level_key_suggests_the_key_meant() {
    let p = Project::new();
    p.file(
        "dags/bad.toml",
        r#"name = "bad"
schedul = "0 2 * * *"

[[task]]
id = "a"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/bad.toml:2:1",
        "unknown key `schedul`",
        Some("did you mean `schedule`?"),
    );
}

#[test]
fn unknown_key_in_an_inline_task_suggests_task_and_policy_keys_too() {
    let p = Project::new();
    p.file(
        "dags/bad.toml",
        r#"name = "bad"

[[task]]
id = "a"
kind = "shell"
command = "echo hi"
retires = 3
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/bad.toml:7:1",
        "unknown key `retires` for step kind `shell`",
        Some("did you mean `retries`?"),
    );
}

#[test]
fn unknown_key_in_a_job_file_points_into_the_job_file() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
job = "jobs/greet.toml"
"#,
    )
    .file(
        "jobs/greet.toml",
        r#"# a job
kind = "shell"
comand = "echo hi"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "jobs/greet.toml:3:1",
        "unknown key `comand` for step kind `shell`",
        Some("did you mean `command`?"),
    );
    assert_eq!(out.errors().len(), 1, "{out}");
}

#[test]
fn unknown_key_inside_with_points_into_the_dag_file() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
job = "jobs/greet.toml"
with = { workdir = ".", comand = "echo bye" }
"#,
    )
    .file("jobs/greet.toml", "kind = \"shell\"\ncommand = \"echo hi\"\n");
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:6:25",
        "unknown key `comand` for step kind `shell`",
        Some("did you mean `command`?"),
    );
    assert_eq!(out.errors().len(), 1, "{out}");
}

#[test]
fn with_without_job_is_an_error() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = "echo hi"
with = { command = "echo bye" }
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:7:1",
        "`with` overrides a job file, but this task has no `job`",
        Some("write the settings directly in the task"),
    );
}

#[test]
fn job_fields_next_to_job_say_to_use_with() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
job = "jobs/greet.toml"
retries = 2
command = "echo bye"
"#,
    )
    .file("jobs/greet.toml", "kind = \"shell\"\ncommand = \"echo hi\"\n");
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:7:1",
        "`command` is not a task key, and task `a` takes its job from `jobs/greet.toml`",
        Some("write `with = { command = ... }`"),
    );
    // `retries` is a task key (a policy), fine next to `job`.
    assert_eq!(out.errors().len(), 1, "{out}");
}

// ---------------------------------------------------------------------------
// Step kinds and job files

#[test]
fn unknown_step_kind_suggests_the_kind_meant() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shel"
command = "echo hi"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:5:8",
        "unknown step kind `shel`",
        Some("did you mean `shell`?"),
    );
}

#[test]
fn unknown_step_kind_in_a_job_file_points_at_its_kind() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        "name = \"d\"\n\n[[task]]\nid = \"a\"\njob = \"jobs/j.toml\"\n",
    )
    .file("jobs/j.toml", "\nkind = \"nop\"\n");
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "jobs/j.toml:2:8",
        "unknown step kind `nop`",
        Some("did you mean `noop`?"),
    );
}

#[test]
fn missing_job_file_points_at_the_job_key() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
job = "jobs/nope.toml"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:5:7",
        "job file `jobs/nope.toml` not found",
        Some("job paths are relative to the project folder"),
    );
}

#[test]
fn shell_step_checks_its_own_config() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = "   "
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:6:11",
        "`command` is empty",
        Some("write the command to run"),
    );
}

#[test]
fn a_step_config_value_of_the_wrong_type_points_at_the_value() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = ["echo", "hi"]
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/d.toml:6:11", "`command`: invalid type", None);
}

// ---------------------------------------------------------------------------
// Tasks and the graph

#[test]
fn duplicate_task_id_mentions_the_first_one() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "load"
kind = "noop"

[[task]]
id = "load"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:8:6",
        "duplicate task id `load` (first declared on line 4)",
        Some("give each task a unique id"),
    );
}

#[test]
fn needs_naming_a_missing_task_suggests_the_task_meant() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "extract"
kind = "noop"

[[task]]
id = "load"
kind = "noop"
needs = ["extract", "extrcat"]
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:10:21",
        "task `load` needs `extrcat`, which is not a task of this DAG",
        Some("did you mean `extract`?"),
    );
}

#[test]
fn cycles_are_named() {
    let p = Project::new();
    p.file(
        "dags/loop.toml",
        r#"name = "loop"

[[task]]
id = "a"
kind = "noop"
needs = ["c"]

[[task]]
id = "b"
kind = "noop"
needs = ["a"]

[[task]]
id = "c"
kind = "noop"
needs = ["b"]

[[task]]
id = "d"
kind = "noop"
needs = ["c"]
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/loop.toml:6:1",
        "cycle: a -> b -> c -> a",
        Some("remove one of these `needs`"),
    );
    assert_eq!(out.errors().len(), 1, "{out}");
}

#[test]
fn a_task_needing_itself_is_an_error() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        "name = \"d\"\n\n[[task]]\nid = \"a\"\nkind = \"noop\"\nneeds = [\"a\"]\n",
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:6:10",
        "task `a` needs itself",
        Some("remove it from `needs`"),
    );
}

// ---------------------------------------------------------------------------
// Schedule, time zone, durations, retry policy

#[test]
fn bad_cron_points_at_the_schedule() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"
schedule = "0 25 * * *"

[[task]]
id = "a"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:2:12",
        "bad cron expression `0 25 * * *`",
        Some("5 fields (`min hour day month weekday`"),
    );
}

#[test]
fn bad_time_zone_suggests_the_zone_meant() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"
schedule = "0 2 * * *"
timezone = "Europe/Londn"

[[task]]
id = "a"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:3:12",
        "unknown time zone `Europe/Londn`",
        Some("did you mean `Europe/London`?"),
    );
}

#[test]
fn bad_duration_says_how_to_write_one() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "noop"
retry_delay = "30 parsecs"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    let d = out.error_at("dags/d.toml:6:15", "bad duration `30 parsecs`", None);
    assert!(d.message.contains(r#"write it like "30s""#), "{d:?}");
    assert!(d.message.contains("`task[0].retry_delay`"), "{d:?}");
}

#[test]
fn retry_backoff_below_one_is_reported_once_where_it_is_written() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[defaults]
retry_backoff = 0.5

[[task]]
id = "a"
kind = "noop"

[[task]]
id = "b"
kind = "noop"
retry_backoff = 0
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:4:17",
        "`retry_backoff` = 0.5 must be at least 1.0",
        Some("2.0 doubles the wait"),
    );
    out.error_at(
        "dags/d.toml:13:17",
        "`retry_backoff` = 0 must be at least 1.0",
        Some("2.0 doubles the wait"),
    );
    // Not once more on task `a`, which only inherits it.
    assert_eq!(out.errors().len(), 2, "{out}");
}

// ---------------------------------------------------------------------------
// Templates

#[test]
fn undeclared_var_suggests_the_var_meant() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[vars]
raw = "data/raw"

[[task]]
id = "a"
kind = "shell"
command = "cat {{ vars.rwa }}/{{ ds }}.csv"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:9:11",
        "undeclared variable `vars.rwa`",
        Some("did you mean `vars.raw`?"),
    );
}

#[test]
fn undeclared_var_without_vars_says_to_declare_it() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = "cat {{ vars.raw }}"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:6:11",
        "undeclared variable `vars.raw`",
        Some("declare it in the DAG's [vars] table: `raw = \"...\"`"),
    );
}

#[test]
fn unknown_template_variable_suggests_the_name_meant() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = "echo {{ dss }}"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:6:11",
        "unknown template variable `dss`",
        Some("did you mean `ds`?"),
    );
}

#[test]
fn template_syntax_error_is_reported() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shell"
command = "echo {{ ds "
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/d.toml:6:11", "template syntax error", Some("templates are Jinja"));
}

#[test]
fn template_errors_in_with_point_into_the_dag_and_in_jobs_into_the_job() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
job = "jobs/j.toml"
with = { workdir = "{{ vars.dir }}" }
"#,
    )
    .file("jobs/j.toml", "kind = \"shell\"\ncommand = \"echo {{ run_idd }}\"\n");
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/d.toml:6:20", "undeclared variable `vars.dir`", Some("declare it"));
    out.error_at(
        "jobs/j.toml:2:11",
        "unknown template variable `run_idd`",
        Some("did you mean `run_id`?"),
    );
}

// ---------------------------------------------------------------------------
// Syntax, whole files, several files

#[test]
fn invalid_toml_reports_every_syntax_error_and_no_noise() {
    let p = Project::new();
    p.file(
        "dags/syn.toml",
        r#"name = "syn"
schedule =
timezone = "UTC

[[task]]
id = "a"
kind = "shell"
command = [1,
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/syn.toml:2:11", "invalid TOML", Some("https://toml.io"));
    out.error_at("dags/syn.toml:3:16", "invalid TOML", Some("https://toml.io"));
    out.error_at("dags/syn.toml:8:14", "invalid TOML", Some("https://toml.io"));
    // What the parser guessed on those lines (an empty schedule, a
    // half-read array) is not reported as more errors.
    assert_eq!(out.count("invalid TOML"), 3, "{out}");
    assert_eq!(out.errors().len(), 3, "{out}");
}

#[test]
fn syntax_errors_do_not_hide_other_problems_in_the_file() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"
timezone = "Europe/Pariss"
description = "unterminated

[[task]]
id = "a"
kind = "shel"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    // At the end of the line, where the closing quote should be.
    out.error_at("dags/d.toml:3:28", "invalid TOML", Some("toml.io"));
    out.error_at(
        "dags/d.toml:2:12",
        "unknown time zone",
        Some("did you mean `Europe/Paris`?"),
    );
    out.error_at(
        "dags/d.toml:7:8",
        "unknown step kind `shel`",
        Some("did you mean `shell`?"),
    );
}

#[test]
fn many_errors_in_one_file_are_all_reported_in_one_run() {
    let p = Project::new();
    p.file(
        "dags/bad.toml",
        r#"name = "bad"
schedule = "0 25 * * *"
timezone = "Europe/Londn"

[defaults]
retires = 2
retry_delay = "30 parsecs"
retry_backoff = 0.5

[vars]
raw = "data"

[[task]]
id = "a"
kind = "shel"

[[task]]
id = "b"
kind = "shell"
command = "echo {{ vars.rwa }}"
needs = ["aa"]

[[task]]
id = "b"
kind = "shell"
command = "echo {{ ds "

[[task]]
id = "c"
kind = "shell"
command = ""
timeout = "forever"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/bad.toml:2:12", "bad cron expression", Some("5 fields"));
    out.error_at("dags/bad.toml:3:12", "unknown time zone", Some("`Europe/London`"));
    out.error_at("dags/bad.toml:6:1", "unknown key `defaults.retires`", Some("`retries`"));
    out.error_at("dags/bad.toml:7:15", "bad duration `30 parsecs`", None);
    out.error_at(
        "dags/bad.toml:8:17",
        "`retry_backoff` = 0.5",
        Some("2.0 doubles the wait"),
    );
    out.error_at("dags/bad.toml:15:8", "unknown step kind `shel`", Some("`shell`"));
    out.error_at(
        "dags/bad.toml:20:11",
        "undeclared variable `vars.rwa`",
        Some("`vars.raw`"),
    );
    out.error_at("dags/bad.toml:21:10", "needs `aa`", Some("did you mean `a`?"));
    out.error_at("dags/bad.toml:24:6", "duplicate task id `b`", Some("unique"));
    out.error_at("dags/bad.toml:26:11", "template syntax error", Some("Jinja"));
    out.error_at("dags/bad.toml:31:11", "`command` is empty", Some("command to run"));
    out.error_at("dags/bad.toml:32:11", "bad duration `forever`", None);
    assert_eq!(out.errors().len(), 12, "{out}");
    assert_eq!(out.summary_errors(), 12, "{out}");
}

#[test]
fn header_problems_do_not_hide_each_other() {
    // A bad value in the header used to stop the header from being read,
    // and with it every check of the schedule, time zone and defaults.
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"schedule = "61 * * * *"
timezone = "Mars/Olympus"
max_active_runs = "two"

[defaults]
timeout = "0s"

[[task]]
id = "a"
kind = "noop"
"#,
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at("dags/d.toml:1:1", "the DAG has no `name`", Some("add `name = \"...\"`"));
    out.error_at("dags/d.toml:1:12", "bad cron expression", Some("5 fields"));
    out.error_at("dags/d.toml:2:12", "unknown time zone `Mars/Olympus`", Some("IANA"));
    out.error_at("dags/d.toml:3:19", "`max_active_runs`: invalid type", None);
    out.error_at(
        "dags/d.toml:6:11",
        "`timeout` must be longer than zero",
        Some("no limit"),
    );
    assert_eq!(out.errors().len(), 5, "{out}");
}

#[test]
fn a_task_without_id_says_to_add_one() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        "name = \"d\"\n\n[[task]]\nkind = \"noop\"\n\n[[task]]\nid = \"b\"\nkind = \"nop\"\n",
    );
    let out = p.validate(&[]);
    out.failed();
    out.error_at(
        "dags/d.toml:3:1",
        "`task[0]`: missing field `id`",
        Some("add `id = ...`"),
    );
    out.error_at("dags/d.toml:8:8", "unknown step kind `nop`", Some("`noop`"));
}

#[test]
fn valid_project_exits_zero() {
    let p = Project::new();
    p.file(
        "nightjar.toml",
        r#"default_env = "local"

[env.local.connections.warehouse]
kind = "sqlite"
path = ".nightjar/warehouse.db"
"#,
    )
    .file(
        "dags/hello.toml",
        r#"name = "hello"
description = "a valid DAG"
schedule = "0 2 * * *"
timezone = "Europe/London"
start = 2010-12-01
catchup = false

[defaults]
retries = 2
retry_delay = "30s"
retry_backoff = 2.0
timeout = "20m"

[vars]
out = ".nightjar/hello"

[[task]]
id = "prepare"
kind = "shell"
command = "mkdir -p {{ vars.out }}/{{ ds }}"

[[task]]
id = "write"
job = "jobs/write.toml"
with = { command = "echo {{ ds_nodash }} > {{ vars.out }}/{{ ds }}/x.txt" }
needs = ["prepare"]

[[task]]
id = "done"
kind = "noop"
needs = ["write", "prepare"]
"#,
    )
    .file("jobs/write.toml", "kind = \"shell\"\ncommand = \"echo {{ run_id }}\"\n");
    let out = p.validate(&[]);
    out.succeeded();
    assert!(out.stdout.contains("0 error(s)"), "{out}");
    assert!(out.stdout.contains("2 file(s) checked (1 DAG(s) valid)"), "{out}");
    assert_eq!(out.stderr, "", "{out}");

    // The same, found from the current directory, without --project.
    let out = p.validate_here(&[]);
    out.succeeded();
    assert!(out.stdout.contains("0 error(s)"), "{out}");
}

#[test]
fn json_output_lists_the_diagnostics() {
    let p = Project::new();
    p.file(
        "dags/d.toml",
        r#"name = "d"

[[task]]
id = "a"
kind = "shel"

[[task]]
id = "b"
kind = "noop"
needs = ["x"]
"#,
    );
    let out = p.validate(&["--json"]);
    out.failed();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{out}"));
    assert_eq!(v["errors"], 2, "{v:#}");
    assert_eq!(v["warnings"], 0, "{v:#}");
    assert_eq!(v["files"], 1, "{v:#}");
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 2, "{v:#}");
    let kind = &diags[0];
    assert_eq!(kind["severity"], "error");
    assert!(
        ends_with_path(kind["origin"].as_str().unwrap(), "dags/d.toml:5:8"),
        "{kind}"
    );
    assert_eq!(kind["message"], "unknown step kind `shel`");
    assert_eq!(kind["hint"], "did you mean `shell`?");
    let need = &diags[1];
    assert!(
        ends_with_path(need["origin"].as_str().unwrap(), "dags/d.toml:10:10"),
        "{need}"
    );
    assert!(need["message"].as_str().unwrap().contains("needs `x`"), "{need}");

    // A valid project: still JSON, no diagnostics, exit 0.
    let ok = Project::new();
    ok.file("dags/ok.toml", "name = \"ok\"\n[[task]]\nid = \"a\"\nkind = \"noop\"\n");
    let out = ok.validate(&["--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["errors"], 0);
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 0);
}

#[test]
fn validating_a_folder_checks_every_file_in_it() {
    let p = Project::new();
    p.file(
        "dags/team/a.toml",
        "name = \"a\"\n[[task]]\nid = \"x\"\nkind = \"noop\"\n",
    )
    .file(
        "dags/team/b.toml",
        "name = \"b\"\n[[task]]\nid = \"x\"\nkind = \"shel\"\n",
    )
    .file(
        "dags/team/nested/c.toml",
        "name = \"c\"\ncatchup = \"yes\"\n[[task]]\nid = \"x\"\nkind = \"noop\"\n",
    )
    // Outside the folder: not checked.
    .file("dags/other.toml", "name = \"other\"\nbroken = true\n");
    let team = p.root().join("dags/team");
    let out = p.validate(&[team.to_str().unwrap()]);
    out.failed();
    out.error_at("dags/team/b.toml:4:8", "unknown step kind `shel`", Some("`shell`"));
    out.error_at("dags/team/nested/c.toml:2:11", "`catchup`: invalid type", None);
    assert_eq!(out.errors().len(), 2, "{out}");
    assert!(out.stderr.contains("3 file(s) checked (1 DAG(s) valid)"), "{out}");

    // A relative folder works too, as does naming several paths.
    let out = p.validate_here(&["dags/team/a.toml", "dags/team/nested"]);
    out.failed();
    assert_eq!(out.errors().len(), 1, "{out}");
    assert!(out.stderr.contains("2 file(s) checked"), "{out}");
}

#[test]
fn a_standalone_job_file_is_checked_as_a_job() {
    let p = Project::new();
    p.file("jobs/ok.toml", "kind = \"shell\"\ncommand = \"echo {{ ds }}\"\n")
        .file(
            "jobs/bad.toml",
            "# greets\nkind = \"shell\"\ncommand = \"echo {{ dss }}\"\nworkdri = \".\"\n",
        )
        .file(
            "jobs/broken.toml",
            "kind = \"shell\"\ncommand = \"echo\nworkdir = \".\"\n",
        );
    let out = p.validate_here(&["jobs/ok.toml"]);
    out.succeeded();

    let out = p.validate_here(&["jobs/bad.toml"]);
    out.failed();
    out.error_at(
        "jobs/bad.toml:4:1",
        "unknown key `workdri` for step kind `shell`",
        Some("did you mean `workdir`?"),
    );
    out.error_at("jobs/bad.toml:3:11", "unknown template variable `dss`", Some("`ds`"));
    assert_eq!(out.errors().len(), 2, "{out}");

    // A syntax error does not turn the job file into a DAG without a name.
    let out = p.validate_here(&["jobs/broken.toml"]);
    out.failed();
    out.error_at("jobs/broken.toml:2:16", "invalid TOML", Some("toml.io"));
    assert_eq!(out.count("name"), 0, "{out}");
    assert_eq!(out.count("unknown key"), 0, "{out}");
}

#[test]
fn two_dags_with_the_same_name() {
    let p = Project::new();
    p.file(
        "dags/a.toml",
        "# first\nname = \"nightly\"\n[[task]]\nid = \"x\"\nkind = \"noop\"\n",
    )
    .file(
        "dags/b.toml",
        "\n\nname = \"nightly\"\n[[task]]\nid = \"y\"\nkind = \"noop\"\n",
    );
    let out = p.validate(&[]);
    out.failed();
    let d = out.error_at(
        "dags/b.toml:3:8",
        "DAG name `nightly` is also used by ",
        Some("make them unique"),
    );
    assert!(d.message.ends_with("dags/a.toml:2:8"), "{d:?}");
    assert!(out.stderr.contains("(1 DAG(s) valid)"), "{out}");
}

#[test]
fn a_broken_nightjar_toml_is_reported_and_dags_are_still_checked() {
    let p = Project::new();
    p.file(
        "nightjar.toml",
        r#"default_env = "locl"

[env.local]
dispatch = "lokal"
"#,
    )
    .file("dags/d.toml", "name = \"d\"\n[[task]]\nid = \"a\"\nkind = \"shel\"\n");
    for out in [p.validate(&[]), p.validate_here(&["dags/d.toml"])] {
        out.failed();
        out.error_at(
            "nightjar.toml:1:15",
            "`default_env` names unknown env `locl`",
            Some("did you mean `local`?"),
        );
        out.error_at(
            "nightjar.toml:4:12",
            "`env.local.dispatch`: unknown variant `lokal`",
            Some("did you mean `local`?"),
        );
        out.error_at("dags/d.toml:4:8", "unknown step kind `shel`", Some("`shell`"));
        assert_eq!(out.errors().len(), 3, "{out}");
    }
}

#[test]
fn a_path_that_does_not_exist_is_an_error() {
    let p = Project::new();
    let out = p.validate_here(&["dags/nope.toml"]);
    out.failed();
    assert!(out.stderr.contains("dags/nope.toml: no such file or folder"), "{out}");
}
