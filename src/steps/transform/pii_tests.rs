//! Tests of `transform.pii`, through the compliance harness: rows are
//! conserved and no raw PII value reaches the log, the quarantine or the
//! output.

use super::*;
use crate::pii::tokenize::Tokenizer;
use crate::steps::testing::Harness;
use arrow::array::{Date32Array, Float64Array, Int64Array};

const KEY: &str = "a test key that is long enough";

fn cafe() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("timestamp", DataType::Utf8, true),
        Field::new("branch", DataType::Utf8, true),
        Field::new("customer_name", DataType::Utf8, true),
        Field::new("total", DataType::Float64, true),
        Field::new("card", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                "2021-02-23 09:00:48",
                "2021-02-23 09:01:10",
                "2021-02-23 09:02:33",
            ])),
            Arc::new(StringArray::from(vec!["Isle of Wight", "Isle of Wight", "Leeds"])),
            Arc::new(StringArray::from(vec![Some("Morgan Berry"), Some("Sarah Jones"), None])),
            Arc::new(Float64Array::from(vec![3.85, 2.45, 6.1])),
            Arc::new(StringArray::from(vec![
                Some("visa16,4924515776335673"),
                Some("None"),
                Some("mastercard16,5555555555554444"),
            ])),
        ],
    )
    .unwrap()
}

fn harness(input: RecordBatch) -> Harness {
    let mut h = Harness::new("pii");
    h.file("secrets/pii.key", KEY);
    h.input("extract", &[input]);
    h.pii_values = ["Morgan Berry", "Sarah Jones", "4924515776335673", "5555555555554444"]
        .map(String::from)
        .to_vec();
    h
}

fn text(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let c = b.column_by_name(col).unwrap_or_else(|| panic!("no column {col}"));
    let s = c.as_string::<i32>();
    (0..s.len())
        .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
        .collect()
}

#[tokio::test]
async fn cafe_names_dropped_cards_split_and_masked_order_ids_stable() {
    let h = harness(cafe());
    let config = r#"
key = { file = "secrets/pii.key" }
[columns]
customer_name = "drop"
card = { action = "split", into = ["card_type", "card_number"], then = { card_number = { action = "mask", keep_last = 4 } } }
order_id = { action = "pseudonymize", from = ["timestamp", "branch", "total"], length = 20 }
"#;
    let out = h.run(&KIND, config).await.unwrap();
    let b = &out.datasets["default"][0];
    let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["timestamp", "branch", "total", "card_type", "card_number", "order_id"]
    );
    assert_eq!(
        text(b, "card_type"),
        [Some("visa16".to_string()), None, Some("mastercard16".into())]
    );
    assert_eq!(
        text(b, "card_number"),
        [
            Some("************5673".to_string()),
            None,
            Some("************4444".into())
        ]
    );
    let ids = text(b, "order_id");
    let p = Pseudonymizer::new(KEY.as_bytes(), Encoding::Hex, 20);
    let mut want = String::new();
    p.encode(
        &p.mac_parts([&b"2021-02-23 09:00:48"[..], b"Isle of Wight", b"3.85"]),
        &mut want,
    );
    assert_eq!(ids[0].as_deref(), Some(want.as_str()));
    assert_eq!(ids[0].as_ref().unwrap().len(), 20);
    assert_ne!(ids[0], ids[1]);
    // The input artifact held the raw values: it is gone.
    assert!(!std::path::Path::new(&h.cx.inputs["extract"].uri).exists());
    // Same input again: the same ids (deterministic with one key).
    let h2 = harness(cafe());
    let again = h2.run(&KIND, config).await.unwrap();
    assert_eq!(text(&again.datasets["default"][0], "order_id"), ids);
}

#[tokio::test]
async fn pseudonyms_are_hmac_of_the_text_value_and_tokens_round_trip() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("CustomerID", DataType::Int64, true),
        Field::new("iban", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(17850), None, Some(17850)])),
            Arc::new(StringArray::from(vec![
                Some("GB82WEST12345698765432"),
                Some("DE89370400440532013000"),
                None,
            ])),
        ],
    )
    .unwrap();
    let mut h = harness(b);
    h.pii_values = vec!["GB82WEST12345698765432".into(), "DE89370400440532013000".into()];
    let out = h
        .run(
            &KIND,
            r#"
key = { file = "secrets/pii.key" }
purge_input = false
columns = { CustomerID = { action = "pseudonymize", encoding = "base64", length = 12 }, iban = { action = "tokenize", context = "iban" } }
"#,
        )
        .await
        .unwrap();
    let b = &out.datasets["default"][0];
    let ids = text(b, "CustomerID");
    let want = Pseudonymizer::new(KEY.as_bytes(), Encoding::Base64, 12).pseudonym("17850");
    assert_eq!(ids, [Some(want.clone()), None, Some(want)]);
    let toks = text(b, "iban");
    let mut t = Tokenizer::from_master(KEY.as_bytes(), "iban");
    assert_eq!(
        t.detokenize(toks[0].as_ref().unwrap()).unwrap(),
        "GB82WEST12345698765432"
    );
    assert_eq!(toks[2], None);
    assert!(
        std::path::Path::new(&h.cx.inputs["extract"].uri).exists(),
        "purge_input = false"
    );
}

#[tokio::test]
async fn free_text_generalize_and_a_quarantined_row_without_its_value() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("notes", DataType::Utf8, true),
        Field::new("dob", DataType::Utf8, true),
        Field::new("signup", DataType::Date32, true),
        Field::new("age", DataType::Int64, true),
        Field::new("postcode", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                "call 020 7946 0958 or mail jo@example.com",
                "nothing here",
                "card 4111 1111 1111 1111",
            ])),
            Arc::new(StringArray::from(vec![
                "1984-07-19",
                "19/07/1990",
                "Jul 84 (Jo Secret)",
            ])),
            Arc::new(Date32Array::from(vec![Some(14944), None, Some(15000)])),
            Arc::new(Int64Array::from(vec![37, 40, 9])),
            Arc::new(StringArray::from(vec!["SW1A 1AA", "M1 1AE", "EC1A1BB"])),
            Arc::new(StringArray::from(vec![
                "ann@example.com",
                "kim@example.org",
                "sam@example.net",
            ])),
        ],
    )
    .unwrap();
    let mut h = harness(b);
    // The email column passes through this step untouched (another step
    // would protect it), so its values are checked in the quarantine only.
    h.pii_values = [
        "jo@example.com",
        "020 7946 0958",
        "4111 1111 1111 1111",
        "Jo Secret",
        "SW1A 1AA",
    ]
    .map(String::from)
    .to_vec();
    // The DAG declares `email` PII; this step does not touch it, yet the
    // quarantine must withhold it.
    h.cx.pii = Arc::new(["email".to_string()].into_iter().collect());
    let out = h
        .run(
            &KIND,
            r#"
max_bad_rows = 1
[columns]
notes = { action = "redact_text" }
dob = { action = "generalize", to = "year" }
signup = { action = "generalize", to = "month" }
age = { action = "generalize", bucket = 10 }
postcode = { action = "generalize", to = "district" }
"#,
        )
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("{e:#}"),
    };
    assert!(
        !serde_json::to_string(&out.quarantine)
            .unwrap()
            .contains("sam@example.net")
    );
    let b = &out.datasets["default"][0];
    assert_eq!(out.output.metrics.rows_quarantined, 1);
    assert_eq!(
        text(b, "notes"),
        [
            Some("call [PHONE] or mail [EMAIL]".to_string()),
            Some("nothing here".into())
        ]
    );
    assert_eq!(text(b, "dob"), [Some("1984".to_string()), Some("1990".into())]);
    assert_eq!(text(b, "signup"), [Some("2010-12".to_string()), None]);
    assert_eq!(text(b, "age"), [Some("30-39".to_string()), Some("40-49".into())]);
    assert_eq!(text(b, "postcode"), [Some("SW1A".to_string()), Some("M1".into())]);
    // Two in the kept rows, one (a card) in the quarantined row.
    assert_eq!(out.output.metrics.extra["redact_text.spans"], 3);
    let q = &out.quarantine[0];
    assert_eq!(q["line"], 3);
    assert_eq!(q["column"], "dob");
    assert_eq!(q["row"]["dob"], "<redacted>");
    assert_eq!(q["row"]["email"], "<redacted>");
    assert_eq!(
        q["row"]["age"], "<redacted>",
        "every column this step acts on is withheld"
    );
}

#[tokio::test]
async fn errors_name_columns_and_keys_not_values() {
    let h = harness(cafe());
    let err = h
        .run(&KIND, "columns = { customer = \"drop\" }")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("columns.customer") && err.contains("customer_name"),
        "{err}"
    );
    let h = harness(cafe());
    let err = h
        .run(
            &KIND,
            "key = { file = \"secrets/missing.key\" }\ncolumns = { customer_name = { action = \"pseudonymize\" } }",
        )
        .await
        .err()
        .unwrap();
    let err = format!("{err:#}");
    assert!(err.contains("missing.key") && !err.contains(KEY), "{err}");
}

fn problems(config: &str) -> Vec<String> {
    let cfg: PiiConfig = toml::from_str(config).unwrap();
    cfg.check()
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect()
}

#[test]
fn validation_catches_missing_keys_and_bad_actions() {
    let p = problems("columns = { email = { action = \"pseudonymize\" } }");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("key:"), "{p:?}");
    let p = problems(
        "key = { env = \"NIGHTJAR_TEST_PII_KEY_NEVER_SET\" }\ncolumns = { email = { action = \"tokenize\" } }",
    );
    assert!(
        p[0].contains("NIGHTJAR_TEST_PII_KEY_NEVER_SET") && p[0].contains("not set"),
        "{p:?}"
    );
    let p = problems(
        r#"[columns]
card = { action = "split", into = ["t"], then = { number = "drop" } }
age = { action = "generalize" }
email = { action = "mask", keep_last = 2 }
id = { action = "pseudonymize", length = 4 }
"#,
    );
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(p.iter().any(|m| m.starts_with("columns.card.then.number")), "{p:?}");
    assert!(p.iter().any(|m| m.starts_with("columns.id.length")), "{p:?}");
    // "drop" alone, and a typo in an action's key is an error.
    assert!(toml::from_str::<PiiConfig>("columns = { a = \"drop\" }").is_ok());
    let err = toml::from_str::<PiiConfig>("columns = { a = { action = \"mask\", keep_lst = 2 } }")
        .unwrap_err()
        .to_string();
    assert!(err.contains("keep_lst"), "{err}");
    let err = toml::from_str::<PiiConfig>("columns = { a = \"hash\" }")
        .unwrap_err()
        .to_string();
    assert!(err.contains("pseudonymize"), "{err}");
}

#[tokio::test]
async fn normalize_makes_one_token_and_one_pseudonym_per_address_whatever_its_case() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("email", DataType::Utf8, true),
        Field::new("contact", DataType::Utf8, true),
    ]));
    let emails = [
        "Ann@Example.COM ",
        "ann@example.com",
        " ANN@example.com",
        "bob@example.com",
    ];
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(emails.to_vec())),
            Arc::new(StringArray::from(emails.to_vec())),
        ],
    )
    .unwrap();
    let mut h = harness(batch);
    h.pii_values = vec![
        "Ann@Example.COM".into(),
        "ann@example.com".into(),
        "bob@example.com".into(),
    ];
    let config = r#"
key = { file = "secrets/pii.key" }
[columns]
email = { action = "tokenize", context = "email", normalize = "lower" }
contact = { action = "pseudonymize", normalize = "lower" }
"#;
    let out = h.run(&KIND, config).await.unwrap();
    let b = &out.datasets["default"][0];
    for col in ["email", "contact"] {
        let v = text(b, col);
        assert!(v[0] == v[1] && v[1] == v[2] && v[2] != v[3], "{col}: {v:?}");
    }
    // The token reads back as the standardized address.
    let key = crate::pii::key::KeySource {
        env: None,
        file: Some("secrets/pii.key".into()),
        generate: false,
    }
    .load(h.path())
    .unwrap();
    let mut t = Tokenizer::from_master(&key, "email");
    assert_eq!(
        t.detokenize(text(b, "email")[0].as_deref().unwrap()).unwrap(),
        "ann@example.com"
    );
}
