//! Compiling DAGs to Amazon States Language: every definition passes
//! `asl-validator` (npm), keeps the DAG's concurrency wherever the shape
//! allows, and reports exactly where it could not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use nightjar::graph::DagGraph;
use nightjar::sfn::{self, ResourceKind, SfnSettings, analysis};
use nightjar::spec::{Dag, Project};
use nightjar::steps::Registry;

/// The install command `scripts/services.sh` runs (and CI with it).
const INSTALL: &str = "npm install --prefix target/node asl-validator";

fn validator() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node/node_modules/.bin/asl-validator");
    assert!(
        bin.exists(),
        "asl-validator is not installed: run `{INSTALL}` in {} (or `bash scripts/services.sh`)",
        env!("CARGO_MANIFEST_DIR")
    );
    bin
}

/// Runs asl-validator on definitions; panics with its report unless all pass.
fn validate(defs: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(validator());
    for (name, text) in defs {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        cmd.arg("--json-path").arg(&path);
    }
    let out = cmd.output().expect("running asl-validator");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "asl-validator rejected a definition:\n{report}");
    assert_eq!(
        report.matches("is valid").count(),
        defs.len(),
        "asl-validator did not check every definition:\n{report}"
    );
}

fn settings(kind: ResourceKind) -> SfnSettings {
    let mut s = SfnSettings::new(kind);
    s.queue = Some("https://sqs.eu-west-2.amazonaws.com/123456789012/nightjar".into());
    s.cluster = Some("nightjar".into());
    s.task_definition = Some("nightjar-step:3".into());
    s.subnets = vec!["subnet-0abc".into()];
    s.security_groups = vec!["sg-0abc".into()];
    s.function = Some("arn:aws:lambda:eu-west-2:123456789012:function:nightjar-step".into());
    s
}

/// A DAG of noop tasks from (id, needs), written as a file and loaded the
/// way users' DAGs are.
fn dag(dir: &Path, name: &str, tasks: &[(String, Vec<String>)]) -> Dag {
    let mut text = format!("name = \"{name}\"\n[defaults]\nretries = 2\nretry_delay = \"5s\"\ntimeout = \"10m\"\n");
    for (id, needs) in tasks {
        let needs: Vec<String> = needs.iter().map(|n| format!("\"{n}\"")).collect();
        text += &format!(
            "[[task]]\nid = \"{id}\"\nkind = \"noop\"\nneeds = [{}]\n",
            needs.join(", ")
        );
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let project = Project::embedded(dir);
    nightjar::spec::dag::load(&path, &project, &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn t(id: &str, needs: &[&str]) -> (String, Vec<String>) {
    (id.to_string(), needs.iter().map(|s| s.to_string()).collect())
}

fn chain(n: usize) -> Vec<(String, Vec<String>)> {
    (0..n)
        .map(|i| {
            let needs = if i == 0 { vec![] } else { vec![format!("c{}", i - 1)] };
            (format!("c{i}"), needs)
        })
        .collect()
}

fn fan_out(n: usize) -> Vec<(String, Vec<String>)> {
    let mut v = vec![t("extract", &[])];
    for i in 0..n {
        v.push((format!("part{i}"), vec!["extract".into()]));
    }
    v.push(("merge".into(), (0..n).map(|i| format!("part{i}")).collect()));
    v
}

/// A layered DAG of `n` tasks, each needing 1-3 tasks of the layer before
/// (seeded: the same DAG every run). Far from series-parallel.
fn layered(n: usize, width: usize, seed: u64) -> Vec<(String, Vec<String>)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = Vec::new();
    for i in 0..n {
        let layer = i / width;
        let needs = if layer == 0 {
            vec![]
        } else {
            let k = rng.usize(1..=3);
            let mut s = BTreeSet::new();
            for _ in 0..k {
                s.insert(format!("t{}", (layer - 1) * width + rng.usize(0..width)));
            }
            s.into_iter().collect()
        };
        v.push((format!("t{i}"), needs));
    }
    v
}

fn shapes(dir: &Path) -> Vec<Dag> {
    vec![
        dag(dir, "chain", &chain(20)),
        dag(
            dir,
            "diamond",
            &[t("a", &[]), t("b", &["a"]), t("c", &["a"]), t("d", &["b", "c"])],
        ),
        dag(dir, "fan_out", &fan_out(50)),
        dag(
            dir,
            "n_shape",
            &[t("a", &[]), t("b", &[]), t("c", &["a", "b"]), t("d", &["b"])],
        ),
        dag(dir, "big", &layered(300, 12, 7)),
    ]
}

fn project_dags() -> Vec<Dag> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = Project::load(root).unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("dags")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (d, _) = nightjar::spec::dag::load(&path, &project, &Registry::builtin())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push(d);
        }
    }
    assert!(out.len() >= 2, "expected the DAGs of dags/");
    out
}

#[test]
fn every_definition_passes_asl_validator() {
    let dir = tempfile::tempdir().unwrap();
    let mut defs = Vec::new();
    for d in project_dags().iter().chain(shapes(dir.path()).iter()) {
        for kind in [ResourceKind::Sqs, ResourceKind::Ecs, ResourceKind::Lambda] {
            let c = sfn::compile(d, &settings(kind)).unwrap();
            assert!(c.text.len() < sfn::MAX_DEFINITION_BYTES);
            defs.push((format!("{}-{}", d.name, kind.as_str()), c.text));
        }
    }
    validate(&defs);
}

#[test]
fn the_validator_really_checks() {
    // A definition whose StartAt names no state must be rejected, or the
    // test above proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, r#"{"StartAt": "nowhere", "States": {"x": {"Type": "Succeed"}}}"#).unwrap();
    let out = Command::new(validator())
        .arg("--json-path")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// For every task: the tasks its state waits for, read from the compiled
/// definition, are exactly its upstream tasks, plus (only) the waits the
/// compiler reported as lost concurrency.
fn check_waits(d: &Dag, c: &sfn::Compiled) {
    let g = DagGraph::new(d.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let by_state = c.tasks_by_state();
    let waits = analysis::task_waits(&c.definition).unwrap();
    assert_eq!(waits.len(), d.tasks.len(), "{}: every task has one state", d.name);
    let lost: BTreeMap<&str, BTreeSet<&str>> = c
        .lost
        .iter()
        .map(|l| (l.task.as_str(), l.waits_for.iter().map(String::as_str).collect()))
        .collect();
    for (state, before) in &waits {
        let task = by_state[state].as_str();
        let got: BTreeSet<&str> = before.iter().map(|s| by_state[s].as_str()).collect();
        let mut want = g.upstream_of(task);
        want.remove(task);
        let mut want: BTreeSet<&str> = want.iter().map(String::as_str).collect::<BTreeSet<_>>();
        let want_owned: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        if let Some(extra) = lost.get(task) {
            assert!(
                extra.iter().all(|x| !want_owned.iter().any(|w| w == x)),
                "{}: `{task}` reported as waiting for its own upstream",
                d.name
            );
            want.extend(extra.iter().copied());
        }
        assert_eq!(got, want, "{}: `{task}` waits for the wrong tasks", d.name);
    }
}

#[test]
fn a_ready_task_waits_only_for_its_upstream() {
    let dir = tempfile::tempdir().unwrap();
    for d in project_dags().iter().chain(shapes(dir.path()).iter()) {
        let c = sfn::compile(d, &settings(ResourceKind::Sqs)).unwrap();
        check_waits(d, &c);
        // Series-parallel shapes keep full concurrency.
        if ["chain", "diamond", "fan_out", "hello", "retail_nightly"].contains(&d.name.as_str()) {
            assert!(c.lost.is_empty(), "{}: lost {:?}", d.name, c.lost);
        }
    }
}

#[test]
fn the_n_shape_reports_the_one_wait_it_adds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dag(
        dir.path(),
        "n_shape",
        &[t("a", &[]), t("b", &[]), t("c", &["a", "b"]), t("d", &["b"])],
    );
    let c = sfn::compile(&d, &settings(ResourceKind::Sqs)).unwrap();
    let total: usize = c.lost.iter().map(|l| l.waits_for.len()).sum();
    assert_eq!(total, 1, "{:?}", c.lost);
    assert!(c.lost_report().contains("also waits for"));
    check_waits(&d, &c);
}

#[test]
fn a_slow_task_does_not_hold_an_unrelated_ready_one() {
    // `slow` and `quick -> after_quick` are independent branches that meet at
    // `end`: `after_quick` must not wait for `slow`.
    let dir = tempfile::tempdir().unwrap();
    let d = dag(
        dir.path(),
        "branches",
        &[
            t("start", &[]),
            t("slow", &["start"]),
            t("quick", &["start"]),
            t("after_quick", &["quick"]),
            t("end", &["slow", "after_quick"]),
        ],
    );
    let c = sfn::compile(&d, &settings(ResourceKind::Sqs)).unwrap();
    let waits = analysis::task_waits(&c.definition).unwrap();
    let after: BTreeSet<&str> = waits["after_quick"].iter().map(String::as_str).collect();
    assert_eq!(after, BTreeSet::from(["start", "quick"]));
    assert!(c.lost.is_empty());
}

#[test]
fn state_names_and_payloads_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(120);
    let d = dag(dir.path(), "long_names", &[t(&long, &[]), t("b", &[&long])]);
    let c = sfn::compile(&d, &settings(ResourceKind::Sqs)).unwrap();
    fn names(v: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(states) = v.get("States").and_then(|s| s.as_object()) {
            for (k, s) in states {
                out.push(k.clone());
                for b in s.get("Branches").and_then(|b| b.as_array()).into_iter().flatten() {
                    names(b, out);
                }
            }
        }
    }
    let mut all = Vec::new();
    names(&c.definition, &mut all);
    assert!(all.iter().all(|n| n.chars().count() <= 80), "{all:?}");
    // The message to a worker: ids only.
    let body = &c.definition["States"]["b"]["Parameters"]["MessageBody"];
    assert_eq!(body["task"], "b");
    assert!(body.to_string().len() < 300);
    // Parallel groups keep one flag per branch, not their branches' output.
    let big = dag(dir.path(), "fan", &fan_out(50));
    let c = sfn::compile(&big, &settings(ResourceKind::Sqs)).unwrap();
    let par = c.definition["States"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| s["Type"] == "Parallel")
        .unwrap();
    assert_eq!(par["ResultSelector"]["f.$"], "$[*].failed");
    assert_eq!(par["Parameters"], serde_json::json!({ "failed": false }));
}

#[test]
fn a_definition_over_one_megabyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dag(dir.path(), "huge", &chain(2500));
    let err = sfn::compile(&d, &settings(ResourceKind::Sqs)).unwrap_err().to_string();
    assert!(
        err.contains("over Step Functions' limit") && err.contains("split the DAG"),
        "{err}"
    );
}

#[test]
fn retry_policy_becomes_retry_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dag(dir.path(), "one", &[t("a", &[])]);
    let c = sfn::compile(&d, &settings(ResourceKind::Sqs)).unwrap();
    let a = &c.definition["States"]["a"];
    assert_eq!(a["TimeoutSeconds"], 600);
    assert_eq!(a["Retry"][0]["ErrorEquals"][0], "nightjar.Permanent");
    assert_eq!(a["Retry"][1]["MaxAttempts"], 2);
    assert_eq!(a["Retry"][1]["IntervalSeconds"], 5);
    assert_eq!(a["Retry"][1]["BackoffRate"], 2.0);
    assert_eq!(a["Retry"][1]["JitterStrategy"], "FULL");
    assert_eq!(a["Catch"][0]["Next"], "tasks failed #0");
    assert_eq!(c.definition["States"]["tasks failed #0"]["Type"], "Fail");
}

#[test]
fn bad_sfn_settings_are_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nightjar.toml"),
        "[env.aws]\ndispatch = \"stepfunctions\"\nsfn = { resource = \"ecs\", clustr = \"x\" }\n\n[env.aws2]\ndispatch = \"stepfunctions\"\nartifacts = \"s3://b/p/\"\nsfn = { resource = \"lambda\" }\n",
    )
    .unwrap();
    let text = Project::load(dir.path()).unwrap_err().to_string();
    assert!(text.contains("nightjar.toml:3:") && text.contains("clustr"), "{text}");
    assert!(text.contains("needs an S3 artifact store"), "{text}");
    assert!(
        text.contains("nightjar.toml:8:") && text.contains("needs `function`"),
        "{text}"
    );
}
