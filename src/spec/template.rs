//! Jinja templates in DAG and job files (minijinja).
//!
//! Every string value of a task's job may hold a template. Templates are
//! checked for syntax and for the names they use at `validate` time, and
//! rendered once per run and task. An unknown variable is an error, never an
//! empty string (minijinja's strict undefined behaviour).

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use toml::Value;

/// The names a template may use at the top level.
pub const TOP_LEVEL_NAMES: &[&str] = &[
    "ds",
    "ds_nodash",
    "interval_start",
    "interval_end",
    "run_id",
    "dag",
    "task",
    "vars",
    "env",
];

/// What a template sees when it is rendered for one run of one task.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub ds: String,
    pub ds_nodash: String,
    pub interval_start: String,
    pub interval_end: String,
    pub run_id: String,
    pub dag: String,
    pub task: String,
    pub vars: BTreeMap<String, Value>,
    pub env: BTreeMap<String, String>,
}

impl TemplateContext {
    /// The process environment, exposed as `env.X`.
    pub fn process_env() -> BTreeMap<String, String> {
        std::env::vars().collect()
    }
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Values are not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env
    })
}

/// Is there anything to render in this string?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Renders one string. Errors name the variable or the syntax problem.
pub fn render_str(s: &str, ctx: &TemplateContext) -> Result<String, String> {
    if !is_template(s) {
        return Ok(s.to_string());
    }
    environment().render_str(s, ctx).map_err(describe_error)
}

/// Renders every string inside a value (tables and arrays recursively).
/// The error carries the key path of the failing string.
pub fn render_value(v: &Value, ctx: &TemplateContext) -> Result<Value, (String, String)> {
    render_at(v, ctx, "")
}

fn render_at(v: &Value, ctx: &TemplateContext, path: &str) -> Result<Value, (String, String)> {
    Ok(match v {
        Value::String(s) => Value::String(render_str(s, ctx).map_err(|e| (path.to_string(), e))?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, it)| render_at(it, ctx, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Table(t) => Value::Table(
            t.iter()
                .map(|(k, it)| Ok::<_, (String, String)>((k.clone(), render_at(it, ctx, &super::doc::join(path, k))?)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Checks a template without rendering it: syntax, and that every variable
/// it reads is one nightjar provides (`vars.X` must be declared in the DAG,
/// when the DAG is known).
/// Returns the problems found, each as (message, hint).
pub fn check(s: &str, declared_vars: Option<&HashSet<String>>) -> Vec<(String, String)> {
    if !is_template(s) {
        return Vec::new();
    }
    let tmpl = match environment().template_from_str(s) {
        Ok(t) => t,
        Err(e) => {
            return vec![(
                format!("template syntax error: {}", describe_error(e)),
                "templates are Jinja: `{{ ds }}`, `{{ vars.name }}`, `{% if ... %}...{% endif %}`".into(),
            )];
        }
    };
    let mut problems = Vec::new();
    let mut names: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
    names.sort();
    for name in names {
        let mut parts = name.splitn(2, '.');
        let top = parts.next().unwrap_or_default();
        let rest = parts.next();
        if !TOP_LEVEL_NAMES.contains(&top) {
            problems.push((
                format!("unknown template variable `{top}`"),
                super::diagnostic::unknown_name_hint(top, TOP_LEVEL_NAMES),
            ));
        } else if let (Some(declared_vars), "vars") = (declared_vars, top)
            && let Some(var) = rest.map(|r| r.split('.').next().unwrap_or(r))
            && !declared_vars.contains(var)
        {
            let mut known: Vec<&str> = declared_vars.iter().map(String::as_str).collect();
            known.sort();
            // "did you mean `raw`?; or declare it" read badly: say one or
            // the other.
            let hint = match super::diagnostic::did_you_mean(var, known.iter().copied()) {
                Some(c) => format!("did you mean `vars.{c}`? Or declare `{var}` in the DAG's [vars] table"),
                None if known.is_empty() => format!("declare it in the DAG's [vars] table: `{var} = \"...\"`"),
                None => format!(
                    "declare it in the DAG's [vars] table: `{var} = \"...\"` (declared: {})",
                    super::diagnostic::list(&known)
                ),
            };
            problems.push((format!("undeclared variable `vars.{var}`"), hint));
        }
    }
    problems
}

fn describe_error(e: minijinja::Error) -> String {
    let mut msg = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        msg = format!("undefined variable in template ({msg})");
    }
    if let Some(line) = e.line()
        && line > 1
    {
        msg = format!("{msg} (template line {line})");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            ds: "2010-12-01".into(),
            ds_nodash: "20101201".into(),
            interval_start: "2010-12-01T02:00:00+00:00".into(),
            interval_end: "2010-12-02T02:00:00+00:00".into(),
            run_id: "d@2010-12-01".into(),
            dag: "d".into(),
            task: "t".into(),
            vars: [("raw".to_string(), Value::String("s3://b".into()))].into(),
            env: [("HOME".to_string(), "/root".to_string())].into(),
        }
    }

    #[test]
    fn renders_run_variables() {
        let s = render_str("{{ vars.raw }}/{{ ds }}.csv {{ env.HOME }}", &ctx()).unwrap();
        assert_eq!(s, "s3://b/2010-12-01.csv /root");
    }

    #[test]
    fn unknown_variable_is_an_error_not_empty() {
        assert!(render_str("{{ nope }}", &ctx()).is_err());
        assert!(render_str("{{ vars.nope }}", &ctx()).is_err());
        assert!(render_str("{{ env.NIGHTJAR_SURELY_UNSET }}", &ctx()).is_err());
    }

    #[test]
    fn check_finds_syntax_and_names() {
        let vars: HashSet<String> = ["raw".to_string()].into();
        assert!(check("{{ vars.raw }}/{{ ds }}", Some(&vars)).is_empty());
        assert!(check("{{ ds ", Some(&vars))[0].0.contains("syntax"));
        assert!(check("{{ vars.rwa }}", Some(&vars))[0].1.contains("raw"));
        assert!(check("{{ dss }}", None)[0].1.contains("`ds`"));
    }
}
