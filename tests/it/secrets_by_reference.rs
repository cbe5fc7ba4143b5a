//! Secrets by reference end to end: a PII key that lives in AWS Secrets
//! Manager (the moto server) and nowhere else. `validate` does not call it
//! missing, a run in the env that declares it pseudonymizes with it, and a
//! run whose reference cannot be fetched fails before any task starts,
//! naming the variable and the reference.

use crate::support;

use std::path::Path;
use std::process::Command;

use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: &str = "a key that only Secrets Manager holds";

fn nightjar(project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .current_dir(project)
        .args(args)
        .env_remove("NIGHTJAR_PII_KEY")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn project(secret: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let endpoint = nightjar::testenv::aws_endpoint();
    write(
        &p.join("nightjar.toml"),
        &format!(
            r#"default_env = "local"

[env.vault.connections.warehouse]
kind = "sqlite"
path = ".nightjar/warehouse.db"

[env.vault.secrets]
NIGHTJAR_PII_KEY = {{ aws_secret = "{secret}", field = "pii_key", endpoint_url = "{endpoint}" }}

[env.broken.secrets]
NIGHTJAR_PII_KEY = {{ ssm = "/nightjar-test/never-created", endpoint_url = "{endpoint}" }}
"#
        ),
    );
    write(
        &p.join("data/people.csv"),
        "id,email\n1,ann@example.com\n2,bob@example.com\n",
    );
    write(
        &p.join("dags/people.toml"),
        r#"name = "people"
pii = ["email"]

[[task]]
id = "extract"
kind = "extract.file"
path = "data/people.csv"

[[task]]
id = "redact"
kind = "transform.pii"
key = { env = "NIGHTJAR_PII_KEY" }
columns = { email = { action = "pseudonymize", length = 16 } }
needs = ["extract"]

[[task]]
id = "load"
kind = "load.sqlite"
table = "people"
mode = "replace"
needs = ["redact"]
"#,
    );
    dir
}

fn hmac_hex16(value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    hex[..16].to_string()
}

#[tokio::test]
async fn a_pii_key_from_secrets_manager() {
    support::emulator_credentials();
    let conf = nightjar::aws::sdk_config(&nightjar::testenv::aws_options()).await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let secret = format!("nightjar-test/pii-{}-{}", std::process::id(), fastrand::u32(..));
    sm.create_secret()
        .name(&secret)
        .secret_string(serde_json::json!({ "pii_key": KEY }).to_string())
        .send()
        .await
        .unwrap();
    let dir = project(&secret);
    let p = dir.path();

    let out = nightjar(p, &["validate"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "validate: {text}");
    assert!(
        !text.contains("NIGHTJAR_PII_KEY"),
        "a declared secret is not missing: {text}"
    );

    let out = nightjar(p, &["run", "people", "--date", "2024-01-01", "--env", "vault"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "run: {text}");
    assert!(!text.contains(KEY), "the key never reaches the console");

    let db = rusqlite::Connection::open(p.join(".nightjar/warehouse.db")).unwrap();
    let got: Vec<String> = db
        .prepare("SELECT email FROM people ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, vec![hmac_hex16("ann@example.com"), hmac_hex16("bob@example.com")]);
    for f in support::files_under(&p.join(".nightjar")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key was written to {}",
            f.display()
        );
    }

    let out = nightjar(p, &["run", "people", "--date", "2024-01-02", "--env", "broken"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a missing secret fails the run: {text}");
    assert!(
        text.contains("NIGHTJAR_PII_KEY") && text.contains("/nightjar-test/never-created"),
        "names the variable and the reference: {text}"
    );
    let runs: i64 = rusqlite::Connection::open(p.join(".nightjar/state.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM runs WHERE logical_date LIKE '2024-01-02%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 0, "no run is recorded when its secrets cannot be fetched");
}
