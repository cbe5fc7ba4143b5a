//! `nightjar.toml`: environments and their connections.
//!
//! With no `nightjar.toml`, a project gets the embedded defaults: env
//! `local`, connection `warehouse` = SQLite at `.nightjar/warehouse.db`.
//! A `local` env declared in the file still gets that `warehouse` unless it
//! names its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diagnostic::{Diagnostic, Diagnostics, unknown_name_hint};
use super::doc::Doc;
use super::fields::field_names;
use super::source::{Origin, SourceFile};

pub const PROJECT_FILE: &str = "nightjar.toml";
/// The folder, inside the project, for run history, logs, artifacts and the
/// local warehouse.
pub const STATE_DIR: &str = ".nightjar";

/// A named connection: its kind (`sqlite`, `postgres`, `redshift`, ...) and
/// the kind's settings, which the steps that use it interpret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    pub name: String,
    pub kind: String,
    pub settings: toml::Table,
}

/// Where tasks run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DispatchMode {
    #[default]
    Local,
    Stepfunctions,
}

/// One environment (`[env.NAME]`).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub name: String,
    pub connections: BTreeMap<String, Connection>,
    pub dispatch: DispatchMode,
    pub artifacts: Option<String>,
    pub report: toml::Table,
    /// `sfn = { ... }`: how Step Functions runs tasks (see `crate::sfn::SfnSettings`).
    pub sfn: Option<crate::sfn::SfnSettings>,
    /// `[env.NAME.secrets]`: variables whose values live in AWS Secrets
    /// Manager or SSM (see `crate::secrets`).
    pub secrets: BTreeMap<String, crate::secrets::SecretRef>,
    /// `[env.NAME.vars]`: values for DAG variables in this env (see
    /// [`Environment::run_vars`]).
    pub vars: toml::Table,
}

impl Environment {
    /// The variables of a run of `dag` in this env, unrendered: the DAG's
    /// `[vars]`, overridden by this env's `[env.NAME.vars]`, overridden by
    /// the run's `--var K=V`. An env var the DAG does not declare is
    /// ignored (one env serves every DAG); a `--var` it does not declare is
    /// an error.
    pub fn run_vars(&self, dag: &super::Dag, overrides: &BTreeMap<String, String>) -> anyhow::Result<toml::Table> {
        let mut vars = dag.vars.clone();
        for (k, v) in &self.vars {
            if let Some(slot) = vars.get_mut(k) {
                *slot = v.clone();
            }
        }
        for (k, v) in overrides {
            let Some(slot) = vars.get_mut(k) else {
                let known: Vec<&str> = dag.vars.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "--var {k}: the DAG has no variable `{k}` ({})",
                    unknown_name_hint(k, &known)
                );
            };
            *slot = toml::Value::String(v.clone());
        }
        Ok(vars)
    }
}

/// A project: its folder and its environments.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub file: Option<PathBuf>,
    pub default_env: String,
    pub envs: BTreeMap<String, Environment>,
}

// Unknown keys are reported by `Doc::check_keys` (all of them, with hints)
// rather than by serde, which stops at the first.
#[derive(Deserialize)]
struct ProjectFile {
    /// The environment used when neither `--env` nor `NIGHTJAR_ENV` is set.
    default_env: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, EnvFile>,
}

#[derive(Deserialize)]
struct EnvFile {
    #[serde(default)]
    connections: BTreeMap<String, toml::Table>,
    #[serde(default)]
    dispatch: DispatchMode,
    artifacts: Option<String>,
    #[serde(default)]
    report: toml::Table,
    /// Step Functions dispatch settings (checked by `check_sfn`).
    sfn: Option<toml::Value>,
    /// Secrets by reference (checked by `check_secrets`).
    #[serde(default)]
    secrets: BTreeMap<String, toml::Value>,
    /// Values for DAG variables in this env.
    #[serde(default)]
    vars: toml::Table,
}

/// Connection kinds nightjar knows.
pub const CONNECTION_KINDS: &[&str] = &["sqlite", "postgres", "mysql", "redshift", "s3", "http"];

impl Project {
    /// Finds the project a path belongs to: the nearest folder at or above
    /// it holding `nightjar.toml`; failing that, the parent of a `dags/`
    /// folder the path is in; failing that, the current directory.
    pub fn discover(start: &Path) -> PathBuf {
        let abs = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        let mut dir = if abs.is_dir() {
            Some(abs.as_path())
        } else {
            abs.parent()
        };
        while let Some(d) = dir {
            if d.join(PROJECT_FILE).is_file() {
                return d.to_path_buf();
            }
            dir = d.parent();
        }
        let mut dir = if abs.is_dir() {
            Some(abs.as_path())
        } else {
            abs.parent()
        };
        while let Some(d) = dir {
            if d.file_name().is_some_and(|n| n == "dags")
                && let Some(p) = d.parent()
            {
                return p.to_path_buf();
            }
            dir = d.parent();
        }
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }

    /// Loads `nightjar.toml` from `root` (or the embedded defaults).
    pub fn load(root: &Path) -> Result<Project, Diagnostics> {
        let path = root.join(PROJECT_FILE);
        if !path.is_file() {
            return Ok(Self::embedded(root));
        }
        let source = SourceFile::read(&path).map_err(|e| {
            Diagnostics(vec![Diagnostic::error(
                Origin::file_only(&path),
                format!("cannot read: {e}"),
            )])
        })?;
        let (doc, mut diags) = Doc::parse(source);
        let syntax_errors = diags.len();
        let project = Self::from_doc(root, &doc, &mut diags);
        doc.drop_cascading(&mut diags, syntax_errors);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(Diagnostics(diags));
        }
        Ok(project.expect("no errors means a project"))
    }

    /// The embedded defaults, for a project without `nightjar.toml` (and for
    /// `validate`, to keep checking DAGs when `nightjar.toml` is broken).
    pub fn embedded(root: &Path) -> Project {
        let mut p = Project {
            root: root.to_path_buf(),
            file: None,
            default_env: "local".into(),
            envs: BTreeMap::new(),
        };
        p.add_local_defaults();
        p
    }

    fn add_local_defaults(&mut self) {
        let local = self.envs.entry("local".into()).or_insert_with(|| Environment {
            name: "local".into(),
            ..Default::default()
        });
        local.connections.entry("warehouse".into()).or_insert_with(|| {
            let mut settings = toml::Table::new();
            settings.insert("path".into(), format!("{STATE_DIR}/warehouse.db").into());
            Connection {
                name: "warehouse".into(),
                kind: "sqlite".into(),
                settings,
            }
        });
    }

    fn from_doc(root: &Path, doc: &Doc, diags: &mut Vec<Diagnostic>) -> Option<Project> {
        doc.check_keys("", &doc.table, field_names::<ProjectFile>(), diags);
        if let Some(toml::Value::Table(envs)) = doc.table.get("env") {
            for (name, env) in envs {
                if let toml::Value::Table(t) = env {
                    doc.check_keys(&format!("env.{name}"), t, field_names::<EnvFile>(), diags);
                    if let Some(toml::Value::Table(r)) = t.get("report") {
                        let keys = field_names::<crate::report::ReportSettings>();
                        doc.check_keys(&format!("env.{name}.report"), r, keys, diags);
                        if let Some(a) = r.get("alerts") {
                            check_env_alerts(doc, name, a, diags);
                        }
                    }
                }
            }
        }
        // Every bad value is reported (a bad `dispatch` must not hide a bad
        // `default_env`); the rest of the file is still checked.
        let file: ProjectFile = doc.deserialize_all("", toml::Value::Table(doc.table.clone()), diags)?;
        let mut project = Project {
            root: root.to_path_buf(),
            file: Some(doc.source.path.to_path_buf()),
            default_env: file.default_env.clone().unwrap_or_else(|| "local".into()),
            envs: BTreeMap::new(),
        };
        for (env_name, mut env) in file.env {
            let sfn = check_sfn(doc, &env_name, &env, diags);
            let secrets = check_secrets(doc, &env_name, std::mem::take(&mut env.secrets), diags);
            crate::secrets::declare(secrets.keys());
            let mut connections = BTreeMap::new();
            for (name, mut table) in std::mem::take(&mut env.connections) {
                let path = format!("env.{env_name}.connections.{name}");
                let kind = match table.remove("kind") {
                    Some(toml::Value::String(k)) => k,
                    _ => {
                        diags.push(
                            Diagnostic::error(doc.key_origin(&path), format!("connection `{name}` has no `kind`"))
                                .with_hint(format!(
                                    "add `kind = \"sqlite\"` (one of {})",
                                    CONNECTION_KINDS.join(", ")
                                )),
                        );
                        continue;
                    }
                };
                if !CONNECTION_KINDS.contains(&kind.as_str()) {
                    diags.push(
                        Diagnostic::error(
                            doc.value_origin(&format!("{path}.kind")),
                            format!("unknown connection kind `{kind}`"),
                        )
                        .with_hint(unknown_name_hint(&kind, CONNECTION_KINDS)),
                    );
                }
                connections.insert(
                    name.clone(),
                    Connection {
                        name,
                        kind,
                        settings: table,
                    },
                );
            }
            project.envs.insert(
                env_name.clone(),
                Environment {
                    name: env_name,
                    connections,
                    dispatch: env.dispatch,
                    artifacts: env.artifacts,
                    report: env.report,
                    sfn,
                    secrets,
                    vars: env.vars,
                },
            );
        }
        project.add_local_defaults();
        if !project.envs.contains_key(&project.default_env) {
            diags.push(
                Diagnostic::error(
                    doc.value_origin("default_env"),
                    format!("`default_env` names unknown env `{}`", project.default_env),
                )
                .with_hint(unknown_name_hint(&project.default_env, &project.env_names())),
            );
        }
        Some(project)
    }

    pub fn env_names(&self) -> Vec<&str> {
        self.envs.keys().map(String::as_str).collect()
    }

    /// Picks the environment: `--env`, else `NIGHTJAR_ENV`, else
    /// `default_env`.
    pub fn select_env(&self, flag: Option<&str>) -> anyhow::Result<&Environment> {
        let from_var = std::env::var("NIGHTJAR_ENV").ok().filter(|s| !s.is_empty());
        let name = flag
            .map(str::to_string)
            .or(from_var)
            .unwrap_or_else(|| self.default_env.clone());
        self.envs.get(&name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown environment `{name}`: {} (environments come from [env.NAME] in {})",
                unknown_name_hint(&name, &self.env_names()),
                self.root.join(PROJECT_FILE).display()
            )
        })
    }

    /// `<root>/.nightjar`
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }
}

/// Checks `env.NAME.report.alerts`: its keys, and its targets as a DAG's
/// `[alerts]` are checked.
fn check_env_alerts(doc: &Doc, env: &str, value: &toml::Value, diags: &mut Vec<Diagnostic>) {
    let base = format!("env.{env}.report.alerts");
    if let toml::Value::Table(t) = value {
        super::dag::check_alert_keys(doc, &base, t, diags);
    }
    let Some(alerts) = doc.deserialize_all::<crate::report::alert::Alerts>(&base, value.clone(), diags) else {
        return;
    };
    for (path, msg, hint) in alerts.check_env() {
        diags.push(Diagnostic::error(doc.value_origin(&format!("{base}.{path}")), msg).with_hint(hint));
    }
}

/// Reads `env.NAME.secrets`: each entry a reference with exactly one place.
fn check_secrets(
    doc: &Doc,
    env_name: &str,
    entries: BTreeMap<String, toml::Value>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, crate::secrets::SecretRef> {
    let mut out = BTreeMap::new();
    for (name, value) in entries {
        let path = format!("env.{env_name}.secrets.{name}");
        let Some(r) = doc.deserialize_all::<crate::secrets::SecretRef>(&path, value, diags) else {
            continue;
        };
        for (message, hint) in r.problems() {
            diags.push(Diagnostic::error(doc.value_origin(&path), message).with_hint(hint));
        }
        out.insert(name, r);
    }
    out
}

/// Reads `env.NAME.sfn` and checks that Step Functions dispatch has what
/// it needs (settings for the chosen resource, an S3 artifact store).
fn check_sfn(doc: &Doc, env_name: &str, env: &EnvFile, diags: &mut Vec<Diagnostic>) -> Option<crate::sfn::SfnSettings> {
    let path = format!("env.{env_name}.sfn");
    let settings: Option<crate::sfn::SfnSettings> = env.sfn.clone().and_then(|v| doc.deserialize_all(&path, v, diags));
    if let Some(s) = &settings {
        for p in s.problems() {
            let origin = match p.key {
                Some(k) => doc.value_origin(&format!("{path}.{k}")),
                None => doc.value_origin(&format!("{path}.resource")),
            };
            diags.push(Diagnostic::error(origin, p.message).with_hint(p.hint));
        }
    }
    if env.dispatch == DispatchMode::Stepfunctions {
        let dispatch = format!("env.{env_name}.dispatch");
        if env.sfn.is_none() {
            diags.push(
                Diagnostic::error(doc.value_origin(&dispatch), "`dispatch = \"stepfunctions\"` needs `sfn` settings")
                    .with_hint("add `sfn = { resource = \"sqs\", queue = \"https://sqs...\", role_arn = \"arn:aws:iam::...\" }` (see docs/stepfunctions.md)"),
            );
        }
        if !env.artifacts.as_deref().is_some_and(|a| a.starts_with("s3://")) {
            diags.push(
                Diagnostic::error(
                    doc.value_origin(&dispatch),
                    "`dispatch = \"stepfunctions\"` needs an S3 artifact store: tasks run on other machines",
                )
                .with_hint("add `artifacts = \"s3://BUCKET/PREFIX/\"` to this env"),
            );
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_give_a_sqlite_warehouse() {
        let dir = tempfile::tempdir().unwrap();
        let p = Project::load(dir.path()).unwrap();
        let env = p.select_env(Some("local")).unwrap();
        assert_eq!(env.connections["warehouse"].kind, "sqlite");
    }

    #[test]
    fn secret_references_are_checked_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "[env.aws.secrets]\nA = { ssm = \"/a\" }\nB = { ssm = \"/b\", aws_secret = \"b\" }\nC = { arn = \"x\" }\n",
        )
        .unwrap();
        let text = Project::load(dir.path()).unwrap_err().to_string();
        assert!(
            text.contains("nightjar.toml:3:") && text.contains("exactly one of"),
            "{text}"
        );
        assert!(text.contains("nightjar.toml:4:") && text.contains("arn"), "{text}");

        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "[env.aws.secrets]\nA = { ssm = \"/a\" }\n",
        )
        .unwrap();
        let p = Project::load(dir.path()).unwrap();
        assert_eq!(p.envs["aws"].secrets["A"].ssm.as_deref(), Some("/a"));
        assert!(crate::secrets::known("A"), "declared names are known to validate");
    }

    #[test]
    fn env_alerts_are_checked_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PROJECT_FILE);
        std::fs::write(
            &file,
            "[env.aws.report]\nsqs = \"https://q\"\n[env.aws.report.alerts]\nsla = \"06:00\"\n\
             on_failure = { sqs = \"oncall\" }\non_falure = { command = \"x\" }\n",
        )
        .unwrap();
        let text = Project::load(dir.path()).unwrap_err().to_string();
        assert!(
            text.contains("nightjar.toml:4:") && text.contains("cannot set an `sla`"),
            "{text}"
        );
        assert!(
            text.contains("nightjar.toml:5:") && text.contains("not an SQS queue URL"),
            "{text}"
        );
        assert!(
            text.contains("nightjar.toml:6:") && text.contains("on_failure"),
            "did you mean: {text}"
        );

        std::fs::write(
            &file,
            "[env.aws.report.alerts]\non_failure = [{ sqs = \"https://q\" }, { webhook = \"https://h\" }]\n",
        )
        .unwrap();
        let p = Project::load(dir.path()).unwrap();
        let s = crate::report::ReportSettings::of_env(&p.envs["aws"]).unwrap();
        assert_eq!(s.alerts.unwrap().on_failure.len(), 2);
    }

    #[test]
    fn env_vars_override_dag_vars_and_are_overridden_by_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "[env.aws.vars]\ninput = \"s3://b/{{ dag }}\"\nunused = \"x\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("dags")).unwrap();
        let dag_file = dir.path().join("dags/d.toml");
        std::fs::write(
            &dag_file,
            "name = \"d\"\n[vars]\ninput = \"data\"\napi = \"http://a\"\n[[task]]\nid = \"t\"\nkind = \"noop\"\n",
        )
        .unwrap();
        let p = Project::load(dir.path()).unwrap();
        let (dag, _) = crate::spec::dag::load(&dag_file, &p, &crate::steps::Registry::builtin()).unwrap();
        let none = BTreeMap::new();
        let local = p.select_env(Some("local")).unwrap().run_vars(&dag, &none).unwrap();
        assert_eq!(local["input"].as_str(), Some("data"));
        let aws = p.envs["aws"].run_vars(&dag, &none).unwrap();
        assert_eq!(aws["input"].as_str(), Some("s3://b/{{ dag }}"));
        assert_eq!(aws["api"].as_str(), Some("http://a"));
        assert!(
            !aws.contains_key("unused"),
            "env vars the DAG does not declare are ignored"
        );
        let flag = BTreeMap::from([("input".to_string(), "other".to_string())]);
        assert_eq!(
            p.envs["aws"].run_vars(&dag, &flag).unwrap()["input"].as_str(),
            Some("other")
        );
        let typo = BTreeMap::from([("inptu".to_string(), "x".to_string())]);
        let err = p.envs["aws"].run_vars(&dag, &typo).unwrap_err().to_string();
        assert!(err.contains("did you mean `input`"), "{err}");
    }

    #[test]
    fn project_file_errors_have_positions_and_hints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "default_env = \"local\"\n[env.aws]\ndispatsh = \"local\"\n[env.aws.connections.wh]\nkind = \"redshfit\"\n",
        )
        .unwrap();
        let errs = Project::load(dir.path()).unwrap_err();
        let text = errs.to_string();
        assert!(
            text.contains("nightjar.toml:3:1") && text.contains("did you mean `dispatch`"),
            "{text}"
        );
        assert!(
            text.contains("nightjar.toml:5:8") && text.contains("did you mean `redshift`"),
            "{text}"
        );
    }
}
