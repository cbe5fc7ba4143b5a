//! PII primitives: keyed pseudonyms, masks, reversible tokens, detectors,
//! generalization and free-text redaction.
//!
//! These are plain functions and small structs over `&str`; the
//! `transform.pii` step (`src/steps/transform/pii.rs`) applies them to Arrow
//! columns, and `nightjar pii scan` ([`scan`]) uses the detectors to say
//! which columns hold PII.
//!
//! Keys never live in DAG or job files: [`key::KeySource`] names where the
//! key comes from (an environment variable or a key file).

pub mod columns;
pub mod detect;
pub mod generalize;
pub mod key;
pub mod mask;
pub mod pseudonym;
pub mod redact_text;
pub mod scan;
pub mod tokenize;

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
