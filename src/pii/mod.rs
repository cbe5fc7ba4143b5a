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
pub mod lint;
pub mod mask;
pub mod pseudonym;
pub mod redact_text;
pub mod scan;
pub mod tokenize;

/// Whether a single value looks like PII by itself: it validates as one
/// of the detector kinds, is a `"type,number"` card, looks like a person's
/// name, or is text with PII inside. The quarantine's safety net for values
/// that land in an undeclared column (a row with a field too many shifts a
/// card number into `column_8`).
pub fn looks_like_pii(value: &str) -> bool {
    use std::sync::LazyLock;
    static TEXT: LazyLock<redact_text::Redactor> =
        LazyLock::new(|| redact_text::Redactor::all(redact_text::Replace::Label));
    let v = value.trim();
    detect::classify(v).is_some()
        || v.split_once(',').is_some_and(|(_, n)| detect::is_card(n))
        || scan::looks_like_name(v)
        || !TEXT.find(v).is_empty()
}

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
