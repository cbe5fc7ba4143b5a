//! What every handler shares: the project, the run history, the DAG files
//! (reloaded when they change), the templates and the secrets to hide.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use minijinja::Environment;
use tokio_util::sync::CancellationToken;

use super::UiOptions;
use super::mask::Secrets;
use crate::engine::Engine;
use crate::schedule::reload::DagSet;
use crate::spec::{Dag, Project};
use crate::steps::Registry;
use crate::store::Store;

pub struct AppState {
    pub project: Project,
    pub store: Arc<Store>,
    pub opts: UiOptions,
    pub registry: Registry,
    dags: Mutex<DagSet>,
    pub templates: Environment<'static>,
    /// The CSRF token of this process (forms and `X-CSRF-Token`).
    pub csrf: String,
    pub secrets: Secrets,
    /// Cancelled when the server stops: runs started from the UI stop too.
    pub cancel: CancellationToken,
}

/// The DAGs of the folder, as last loaded, and the files that do not load.
pub struct Catalog {
    pub dags: BTreeMap<String, Arc<Dag>>,
    pub invalid: Vec<(PathBuf, String)>,
}

impl AppState {
    pub fn new(project: Project, store: Arc<Store>, opts: UiOptions, cancel: CancellationToken) -> Result<Self> {
        let secrets = Secrets::from_process(&project, opts.token.as_deref());
        Ok(Self {
            dags: Mutex::new(DagSet::new(&opts.dags_dir)),
            registry: Registry::builtin(),
            templates: templates(),
            csrf: super::auth::new_csrf_token()?,
            secrets,
            project,
            store,
            opts,
            cancel,
        })
    }

    /// The DAGs, reloading the files that changed since the last look.
    pub fn catalog(&self) -> Catalog {
        let mut set = self.dags.lock().unwrap_or_else(|e| e.into_inner());
        set.poll(&self.project, &self.registry);
        Catalog {
            dags: set.dags(),
            invalid: set.invalid(),
        }
    }

    /// One DAG by name.
    pub fn dag(&self, name: &str) -> Option<Arc<Dag>> {
        self.catalog().dags.get(name).cloned()
    }

    /// A fresh engine for one action, cancelled with the server.
    pub fn engine(&self) -> Engine {
        let mut e = Engine::new(self.project.clone(), self.store.clone());
        e.cancel = self.cancel.child_token();
        e
    }
}

/// The page templates, compiled into the binary. `.html` templates escape
/// every value; SVG drawn by [`super::svg`] is inserted with `|safe`.
fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("dags.html", include_str!("templates/dags.html")),
        ("grid.html", include_str!("templates/grid.html")),
        ("graph.html", include_str!("templates/graph.html")),
        ("run.html", include_str!("templates/run.html")),
        ("task.html", include_str!("templates/task.html")),
        ("backfill.html", include_str!("templates/backfill.html")),
    ] {
        env.add_template(name, text).expect("built-in template parses");
    }
    env.add_filter("urlseg", |s: String| super::views::seg(&s));
    // HTML-escape strings without minijinja's escaping of `/` (`&#x2f;`),
    // which made every URL and time zone five times longer in the page.
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == minijinja::AutoEscape::Html
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            out.write_str(&super::svg::esc(s))?;
            return Ok(());
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_templates_parse() {
        let env = super::templates();
        for name in [
            "dags.html",
            "grid.html",
            "graph.html",
            "run.html",
            "task.html",
            "backfill.html",
        ] {
            env.get_template(name).unwrap();
        }
    }
}
