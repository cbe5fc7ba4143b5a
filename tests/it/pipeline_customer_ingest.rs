//! `customer_ingest` with `--env local` over data/sample/customer_ingest
//! (two projects; CSV, JSON, XLSX and NDJSON files): each project's
//! customers standardized into its own schema (its own database file),
//! names and emails only as tokens, no raw name or email under
//! `.nightjar/`; a project whose file is bad fails alone and alerts; and no
//! project's chain can reach another project's data or tables.

use crate::support;

use crate::support::project::{Project, assert_absent, count, everything_stored, printed, rows};
use serde_json::Value;

const DATE: &str = "2024-05-01";

/// Every (name, email) written in the sample files, raw.
const PEOPLE: &[(&str, &str)] = &[
    ("Ada Lovelace", "Ada.Lovelace@Example.COM"),
    ("Grace Hopper", "grace@navy.example"),
    ("Alan Turing", "ALAN@bletchley.example"),
    ("Edsger Dijkstra", "edsger@tue.example"),
    ("Katherine Johnson", "KJohnson@NASA.example"),
    ("Tim Berners-Lee", "timbl@w3.example"),
    ("Margaret Hamilton", "margaret@MIT.example"),
    ("Barbara Liskov", "liskov@mit.example"),
];

fn project_db(p: &Project, project: &str) -> rusqlite::Connection {
    let f = p.path().join(format!(".nightjar/warehouse.{project}.db"));
    assert!(f.is_file(), "{} missing", f.display());
    rusqlite::Connection::open(f).unwrap()
}

fn detokenize(p: &Project, context: &str, tokens: &[String]) -> Vec<String> {
    let mut args = vec![
        "pii",
        "detokenize",
        "--key-file",
        ".nightjar/pii.key",
        "--context",
        context,
    ];
    args.extend(tokens.iter().map(String::as_str));
    p.ok(&args)
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn each_project_into_its_own_schema_standardized_without_raw_pii() {
    let p = Project::new().with("data/sample/customer_ingest");
    p.ok(&["run", "customer_ingest", "--date", DATE]);

    let acme = project_db(&p, "acme");
    let globex = project_db(&p, "globex");
    assert_eq!((count(&acme, "customers"), count(&globex, "customers")), (4, 4));
    // Only its own customers in each project's schema, nothing in the main file.
    assert_eq!(
        rows(
            &acme,
            "SELECT customer_id, signup_date, country FROM customers ORDER BY customer_id"
        ),
        [
            "A-001|2024-04-30|GB",
            "A-002|2024-04-30|US",
            "A-003|2024-04-29|GB",
            "A-004|2024-05-01|NL"
        ]
    );
    assert_eq!(
        rows(
            &globex,
            "SELECT customer_id, signup_date, country FROM customers ORDER BY customer_id"
        ),
        [
            "G-100|2024-05-01|US",
            "G-101|2024-05-01|GB",
            "G-102|2024-05-01|US",
            "G-103|2024-05-01|FR"
        ]
    );
    let main = p.path().join(".nightjar/warehouse.db");
    if main.exists() {
        let c = rusqlite::Connection::open(&main).unwrap();
        assert_eq!(
            rows(&c, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'customers'"),
            ["0"]
        );
    }
    // Which format each row came from: all four were read.
    let sources = rows(&globex, "SELECT DISTINCT source_file FROM customers ORDER BY 1");
    assert!(
        sources[0].ends_with("crm-2024-05-01.xlsx") && sources[1].ends_with("web-2024-05-01.ndjson"),
        "{sources:?}"
    );

    // Names and emails are tokens; with the key they read back standardized
    // (emails trimmed and lower-cased, the later file's A-002 kept).
    let tokens = rows(&acme, "SELECT email FROM customers ORDER BY customer_id");
    assert!(tokens.iter().all(|t| t.starts_with("tok_")), "{tokens:?}");
    assert_eq!(
        detokenize(&p, "customer_ingest.email", &tokens),
        [
            "ada.lovelace@example.com",
            "grace.hopper@navy.example",
            "alan@bletchley.example",
            "edsger@tue.example"
        ]
    );
    let names = rows(&acme, "SELECT name FROM customers WHERE customer_id = 'A-001'");
    assert_eq!(detokenize(&p, "customer_ingest.name", &names), ["Ada Lovelace"]);
    let tokens = rows(&globex, "SELECT email FROM customers ORDER BY customer_id");
    assert_eq!(
        detokenize(&p, "customer_ingest.email", &tokens),
        [
            "kjohnson@nasa.example",
            "timbl@w3.example",
            "margaret@mit.example",
            "liskov@mit.example"
        ]
    );

    // No raw name or email anywhere under .nightjar/ (artifacts, logs,
    // history, events, every project's database).
    let needles: Vec<String> = PEOPLE
        .iter()
        .flat_map(|(n, e)| [n.to_string(), e.trim().to_string(), e.trim().to_lowercase()])
        .collect();
    assert_absent(&everything_stored(&p.path().join(".nightjar")), &needles, false);
}

#[test]
fn a_bad_file_fails_its_project_alone_and_alerts() {
    let p = Project::new().with("data/sample/customer_ingest");
    // A date written a third way in globex's NDJSON file.
    let f = p
        .path()
        .join("data/sample/customer_ingest/globex/incoming/web-2024-05-01.ndjson");
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push_str("{\"customer_id\": \"G-104\", \"name\": \"Zed Failing\", \"email\": \"zed@x.example\", \"signup_date\": \"May 1st\", \"country\": \"US\"}\n");
    std::fs::write(&f, text).unwrap();
    let out = p.nightjar(&["run", "customer_ingest", "--date", DATE]);
    let console = printed(&out);
    assert!(!out.status.success(), "{console}");

    let show = p.nightjar(&["show", &format!("customer_ingest@{DATE}"), "--json"]);
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    let state = |id: &str| {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"]["task_id"] == id)
            .unwrap()["task"]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state("globex_standardize"), "failed");
    assert_eq!(state("globex_load"), "upstream_failed");
    assert_eq!(state("acme_load"), "success");
    assert_eq!(count(&project_db(&p, "acme"), "customers"), 4);
    assert!(!p.path().join(".nightjar/warehouse.globex.db").exists());

    // The alert: the run_failed event document, naming the failed task.
    let alerts = std::fs::read_to_string(p.path().join(".nightjar/alerts/customer_ingest.ndjson"))
        .unwrap_or_else(|e| panic!("no alert written ({e}):\n{console}"));
    let doc: Value = serde_json::from_str(alerts.lines().find(|l| !l.trim().is_empty()).unwrap()).unwrap();
    assert_eq!(doc["kind"], "run_failed", "{doc}");
    assert_eq!(doc["dag"], "customer_ingest");
    assert!(doc.to_string().contains("globex_standardize"), "{doc}");
    // The quarantined row's name and email are redacted, there and everywhere.
    let mut stored = everything_stored(&p.path().join(".nightjar"));
    stored.push(("console".into(), console));
    assert_absent(
        &stored,
        &["Zed Failing".to_string(), "zed@x.example".to_string()],
        false,
    );
}

#[test]
fn no_project_chain_reaches_another_projects_data_or_tables() {
    // The DAG: every task of a project needs only tasks of that project,
    // and its load names that project's schema.
    let dag: toml::Table = std::fs::read_to_string(support::project::repo().join("dags/customer_ingest.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let tasks = dag["task"].as_array().unwrap();
    let mut projects = std::collections::BTreeSet::new();
    for t in tasks {
        let id = t["id"].as_str().unwrap();
        let (project, _) = id.split_once('_').unwrap();
        projects.insert(project.to_string());
        for need in t.get("needs").and_then(|n| n.as_array()).into_iter().flatten() {
            assert!(
                need.as_str().unwrap().starts_with(&format!("{project}_")),
                "{id} needs {need}"
            );
        }
        if let Some(schema) = t.get("with").and_then(|w| w.get("schema")) {
            assert_eq!(schema.as_str().unwrap(), project, "{id}");
        }
        if let Some(path) = t.get("with").and_then(|w| w.get("path")) {
            assert!(
                path.as_str().unwrap().contains(&format!("/{project}/incoming/")),
                "{id}"
            );
        }
    }
    assert_eq!(projects.len(), 2);

    // The load: a schema is a name, never a path to another file, and a
    // table cannot name another schema; `validate` refuses both.
    let p = Project::new();
    for (from, to) in [
        ("with = { schema = \"acme\" }", "with = { schema = \"../globex\" }"),
        (
            "with = { schema = \"acme\" }",
            "with = { schema = \"acme\", table = \"globex.customers\" }",
        ),
    ] {
        let f = p.path().join("dags/customer_ingest.toml");
        let text = std::fs::read_to_string(support::project::repo().join("dags/customer_ingest.toml")).unwrap();
        let changed = text.replacen(from, to, 1);
        assert_ne!(changed, text, "the DAG has `{from}`");
        std::fs::write(&f, changed).unwrap();
        let out = p.nightjar(&["validate"]);
        assert!(!out.status.success(), "{to}: {}", printed(&out));
        let text = printed(&out);
        assert!(text.contains("schema") || text.contains("no `.`"), "{text}");
    }
}
