//! PII throughput over the whole Online Retail year, on one core:
//! pseudonymize CustomerID (HMAC-SHA256, 16 hex), mask InvoiceNo (keep the
//! last 2) and redact_text Description (every text kind, `[LABEL]`
//! replacements). Figures are MB/s of input CSV bytes (the year's files),
//! parsing excluded (it is the extract's job, measured in the data-plane
//! benchmark). `bash benches/pii.sh` runs this and the pandas version
//! (benches/pii_pandas.py) side by side and prints both.
//!
//!     cargo bench --bench pii -- [BY_DAY_DIR]

use std::time::Instant;

use nightjar::pii::mask::Mask;
use nightjar::pii::pseudonym::{Encoding, Memo, Pseudonymizer};
use nightjar::pii::redact_text::{Redactor, Replace};

const KEY: &[u8] = b"benchmark key, 32 bytes long...!";

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("NIGHTJAR_RETAIL_DIR").ok())
        .unwrap_or_else(|| "../shared/data/online-retail/by-day".into());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let (mut bytes, mut ids, mut invoices, mut descs) = (0u64, Vec::new(), Vec::new(), Vec::new());
    for f in &files {
        bytes += std::fs::metadata(f).unwrap().len();
        let mut r = csv::Reader::from_path(f).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            invoices.push(rec[0].to_string());
            descs.push(rec[2].to_string());
            // As the retail extract types it: an integer, null when empty.
            ids.push((!rec[6].is_empty()).then(|| rec[6].trim_end_matches(".0").to_string()));
        }
    }
    let mb = bytes as f64 / 1e6;
    let reps = 3;
    let best = |f: &mut dyn FnMut() -> u64| {
        let mut t = f64::MAX;
        let mut check = 0;
        for _ in 0..reps {
            let s = Instant::now();
            check = f();
            t = t.min(s.elapsed().as_secs_f64());
        }
        (t, check)
    };
    let p = Pseudonymizer::new(KEY, Encoding::Hex, 16);
    let mut out = String::new();
    // What transform.pii runs: HMAC with a memo of recent values.
    let (t_pseudo, _) = best(&mut || {
        let mut memo = Memo::new(&p);
        let mut n = 0u64;
        for v in ids.iter().flatten() {
            out.clear();
            memo.write(v.as_bytes(), &mut out);
            n += out.len() as u64;
        }
        n
    });
    // One HMAC per value, as the pandas side does.
    let (t_pseudo_nomemo, _) = best(&mut || {
        let mut n = 0u64;
        for v in ids.iter().flatten() {
            out.clear();
            p.write(v.as_bytes(), &mut out);
            n += out.len() as u64;
        }
        n
    });
    let m = Mask {
        keep_first: 0,
        keep_last: 2,
        ch: '*',
        keep_separators: false,
    };
    let (t_mask, _) = best(&mut || {
        let mut n = 0u64;
        for v in &invoices {
            out.clear();
            m.write(v, &mut out);
            n += out.len() as u64;
        }
        n
    });
    let r = Redactor::all(Replace::Label);
    let (t_redact, spans) = best(&mut || {
        let mut n = 0u64;
        for v in &descs {
            out.clear();
            n += r.redact_into(v, &mut out) as u64;
        }
        n
    });
    let first = ids.iter().flatten().next().map(|v| p.pseudonym(v)).unwrap_or_default();
    let cols = t_pseudo + t_mask;
    println!("rows\t{}", invoices.len());
    println!("input_mb\t{mb:.1}");
    println!("pseudonymize_s\t{t_pseudo:.3}");
    println!("pseudonymize_no_memo_s\t{t_pseudo_nomemo:.3}");
    println!("mask_s\t{t_mask:.3}");
    println!("redact_text_s\t{t_redact:.3}");
    println!("column_actions_mb_s\t{:.0}", mb / cols);
    println!("all_three_mb_s\t{:.0}", mb / (cols + t_redact));
    println!("redact_spans\t{spans}");
    println!("first_pseudonym\t{first}");
}
