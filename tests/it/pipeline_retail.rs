//! `retail_nightly` with `--env local` over the shipped sample (three days,
//! one day without an export): warehouse row counts, the raw zone, no raw
//! CustomerID anywhere under `.nightjar/` or in the warehouse, and the
//! business views' top rows against values computed from the raw files by
//! `tests/fixtures/retail/expected.py` (not by the views' SQL).

use crate::support::project::{Project, assert_absent, count, everything_stored, repo, rows};
use serde_json::Value;

fn expected() -> Value {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/retail/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: &str, b: f64) -> bool {
    (a.parse::<f64>().unwrap() - b).abs() < 0.006
}

#[test]
fn retail_nightly_sample_days_into_tables_views_and_raw_zone() {
    let p = Project::new().with("data/sample/online-retail");
    // A day folder archived 200 days ago (past the 90-day retention) and
    // one archived yesterday: the first run's archive task deletes the first.
    let zone = p.path().join("archive/retail_nightly");
    for (day, age_days) in [("2009-01-01", 200), ("2009-06-01", 1)] {
        std::fs::create_dir_all(zone.join(day)).unwrap();
        std::fs::write(zone.join(day).join(format!("{day}.csv")), "old\n").unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_days * 86_400);
        std::fs::File::open(zone.join(day)).unwrap().set_modified(when).unwrap();
    }
    for date in ["2010-12-01", "2010-12-02", "2010-12-03", "2010-12-04"] {
        p.ok(&["run", "retail_nightly", "--date", date]);
    }
    let e = expected();
    let db = p.warehouse();
    for (table, n) in e["tables"].as_object().unwrap() {
        assert_eq!(count(&db, table) as u64, n.as_u64().unwrap(), "rows of {table}");
    }

    // 2010-12-04 had no export: skipped, views included (nothing archived);
    // the archive task (the raw zone's retention, no upstream) succeeds.
    let show = p.nightjar(&["show", "retail_nightly@2010-12-04", "--json"]);
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["run"]["state"], "success");
    for t in v["tasks"].as_array().unwrap() {
        let want = if t["task"]["task_id"] == "archive" {
            "success"
        } else {
            "skipped"
        };
        assert_eq!(t["task"]["state"], want, "{t}");
    }
    assert!(!p.path().join("archive/retail_nightly/2010-12-04").exists());

    // The raw zone: each day's file as received, owner-only, outside .nightjar/.
    for date in ["2010-12-01", "2010-12-02", "2010-12-03"] {
        let archived = p.path().join(format!("archive/retail_nightly/{date}/{date}.csv"));
        let raw = repo().join(format!("data/sample/online-retail/by-day/{date}.csv"));
        assert_eq!(
            std::fs::read(&archived).unwrap(),
            std::fs::read(&raw).unwrap(),
            "{date}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archived).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the raw zone is owner-only: {mode:o}");
    }
    assert!(!p.path().join("archive/retail_nightly/2010-12-04").exists());
    assert!(!zone.join("2009-01-01").exists(), "past the retention: deleted");
    assert!(zone.join("2009-06-01").exists(), "within the retention: kept");

    // No raw CustomerID under .nightjar/ (artifacts, quarantines, logs, run
    // history, events, warehouse), nor in the warehouse's tables.
    let ids: Vec<String> = e["customer_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() > 40);
    let stored = everything_stored(&p.path().join(".nightjar"));
    assert!(stored.iter().any(|(f, _)| f.ends_with("warehouse.db")));
    assert_absent(&stored, &ids, true);
    // ... while the raw zone does hold them (the scan would find them).
    let raw = everything_stored(&p.path().join("archive"));
    assert!(ids.iter().all(|id| raw.iter().any(|(_, t)| t.contains(id.as_str()))));

    // Views against the independently computed figures.
    let days = rows(&db, "SELECT sales_day, revenue FROM sales_per_day ORDER BY sales_day");
    let want = e["sales_per_day"].as_array().unwrap();
    assert_eq!(days.len(), want.len(), "{days:?}");
    for (got, w) in days.iter().zip(want) {
        let (d, r) = got.split_once('|').unwrap();
        assert_eq!(d, w[0].as_str().unwrap());
        assert!(close(r, w[1].as_f64().unwrap()), "{got} vs {w}");
    }
    let month = rows(&db, "SELECT sales_month, revenue FROM sales_per_month");
    let w = &e["sales_per_month"][0];
    assert_eq!(month.len(), 1);
    let (m, r) = month[0].split_once('|').unwrap();
    assert!(
        m == w[0].as_str().unwrap() && close(r, w[1].as_f64().unwrap()),
        "{month:?} vs {w}"
    );
    let hour = rows(
        &db,
        "SELECT sales_hour, revenue FROM sales_per_hour ORDER BY revenue DESC LIMIT 1",
    );
    let (h, r) = hour[0].split_once('|').unwrap();
    let w = &e["busiest_hour"];
    assert!(
        h == w[0].as_str().unwrap() && close(r, w[1].as_f64().unwrap()),
        "{hour:?} vs {w}"
    );

    let top = rows(
        &db,
        "SELECT InvoiceNo, lines, units, revenue FROM highest_invoices LIMIT 3",
    );
    for (got, w) in top.iter().zip(e["highest_invoices"].as_array().unwrap()) {
        let f: Vec<&str> = got.split('|').collect();
        assert_eq!(f[0], w[0].as_str().unwrap(), "{got} vs {w}");
        assert_eq!(f[1].parse::<u64>().unwrap(), w[1].as_u64().unwrap(), "{got} vs {w}");
        assert_eq!(f[2].parse::<i64>().unwrap(), w[2].as_i64().unwrap(), "{got} vs {w}");
        assert!(close(f[3], w[3].as_f64().unwrap()), "{got} vs {w}");
    }

    // Best sellers of the month; the third place is a tie of two products.
    let best = rows(
        &db,
        "SELECT product_rank, StockCode, units, revenue FROM top_products_per_month \
         WHERE product_rank <= 3 ORDER BY product_rank, StockCode DESC",
    );
    let want = e["top_products"].as_array().unwrap();
    assert_eq!(best.len(), want.len(), "{best:?}");
    for (i, (got, w)) in best.iter().zip(want).enumerate() {
        let f: Vec<&str> = got.split('|').collect();
        assert_eq!(f[0], ["1", "2", "3", "3"][i], "{got}");
        assert_eq!(f[1], w[1].as_str().unwrap(), "{got} vs {w}");
        assert_eq!(f[2].parse::<i64>().unwrap(), w[2].as_i64().unwrap(), "{got} vs {w}");
        assert!(close(f[3], w[3].as_f64().unwrap()), "{got} vs {w}");
    }

    // Lifetime value: the top customers (pseudonyms) with their invoice
    // counts and totals; their purchase history adds up to it.
    let ltv = rows(
        &db,
        "SELECT CustomerID, invoices, lifetime_value FROM customer_lifetime_value \
         ORDER BY lifetime_value DESC LIMIT 3",
    );
    for (got, w) in ltv.iter().zip(e["top_customers"].as_array().unwrap()) {
        let f: Vec<&str> = got.split('|').collect();
        assert_eq!(f[0].len(), 16, "a 16-hex pseudonym: {got}");
        assert_eq!(f[1].parse::<u64>().unwrap(), w[0].as_u64().unwrap(), "{got} vs {w}");
        assert!(close(f[2], w[1].as_f64().unwrap()), "{got} vs {w}");
        let history = rows(
            &db,
            &format!(
                "SELECT COUNT(*), ROUND(SUM(revenue), 2) FROM customer_purchase_history WHERE CustomerID = '{}'",
                f[0]
            ),
        );
        let (n, total) = history[0].split_once('|').unwrap();
        assert_eq!(n, f[1], "{history:?}");
        assert!(close(total, w[1].as_f64().unwrap()), "{history:?} vs {w}");
    }
}
