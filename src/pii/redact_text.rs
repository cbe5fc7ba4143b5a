//! Finds PII inside free text and replaces it: `call 020 7946 0958 or mail
//! jo@example.com` -> `call [PHONE] or mail [EMAIL]`, or with a keyed
//! pseudonym (`[EMAIL:3f9a2c1d0b7e4a55]`) so that the same address reads
//! the same everywhere without being readable.
//!
//! Each kind has a pattern that finds candidates and a validator from
//! [`super::detect`] that confirms them (a 16-digit order number that fails
//! Luhn is left alone). Kinds are tried in a fixed order and a span taken
//! by one kind is not matched again.

use regex::Regex;

use super::detect::{self, Kind};
use super::pseudonym::Pseudonymizer;

/// What a found span becomes.
#[derive(Clone)]
pub enum Replace {
    /// `[EMAIL]`, `[PHONE]`, ... (see [`Kind::label`]).
    Label,
    /// `[EMAIL:<pseudonym>]`.
    Pseudonym(Pseudonymizer),
}

/// A span of PII in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// Finds and replaces PII in text.
#[derive(Clone)]
pub struct Redactor {
    finders: Vec<(Kind, Regex)>,
    replace: Replace,
}

fn pattern(kind: Kind) -> &'static str {
    // ASCII classes and boundaries: the fast engines handle them on any
    // input (a Unicode `\b` falls back to a slow engine on non-ASCII text).
    match kind {
        Kind::Email => r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
        Kind::Card => r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)",
        Kind::Iban => r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
        Kind::Ipv4 => r"(?-u:\b)[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?-u:\b)",
        Kind::Ipv6 => r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
        Kind::UkNi => r"(?-u:\b)[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d](?-u:\b)",
        Kind::UsSsn => r"(?-u:\b)[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}(?-u:\b)",
        Kind::Phone => r"(?:\+|\(|(?-u:\b)[0-9])[0-9 ().-]{5,20}[0-9](?-u:\b)",
        // Names, addresses, postcodes and dates are column-level judgements
        // (see `scan`), not found in text by pattern.
        _ => r"[^\s\S]",
    }
}

fn validate(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::Email => detect::is_email(s),
        Kind::Card => detect::is_card(s),
        Kind::Iban => detect::is_iban(s),
        Kind::Ipv4 => detect::is_ipv4(s),
        Kind::Ipv6 => detect::is_ipv6(s),
        Kind::UkNi => detect::is_uk_ni(s),
        Kind::UsSsn => detect::is_us_ssn(s, false),
        Kind::Phone => detect::is_phone(s),
        _ => false,
    }
}

impl Redactor {
    /// A redactor for `kinds` (in [`Kind::TEXT`] order whatever the order
    /// given, so that a card is not first taken for a phone number).
    pub fn new(kinds: &[Kind], replace: Replace) -> Self {
        let finders = Kind::TEXT
            .iter()
            .filter(|k| kinds.contains(k))
            .map(|&k| (k, Regex::new(pattern(k)).expect("built-in pattern")))
            .collect();
        Self { finders, replace }
    }

    /// Every kind that can be found in text.
    pub fn all(replace: Replace) -> Self {
        Self::new(&Kind::TEXT, replace)
    }

    /// The PII spans of `text`, in order, not overlapping.
    pub fn find(&self, text: &str) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        // Cheap gates: every kind needs digits, an `@` or colons.
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        let has_at = text.contains('@');
        let colons = text.bytes().filter(|&b| b == b':').count();
        for (kind, re) in &self.finders {
            let possible = match kind {
                Kind::Email => has_at,
                Kind::Ipv6 => colons >= 2,
                Kind::Card => digits >= 13,
                Kind::Iban => digits >= 4,
                Kind::Ipv4 => digits >= 4,
                Kind::UkNi => digits >= 6,
                Kind::UsSsn => digits >= 9,
                Kind::Phone => digits >= 7,
                _ => false,
            };
            if !possible {
                continue;
            }
            for m in re.find_iter(text) {
                let Some((start, end)) = confirm(*kind, text, m.start(), m.end()) else {
                    continue;
                };
                if found.iter().any(|f| start < f.end && f.start < end) {
                    continue;
                }
                found.push(Found {
                    start,
                    end,
                    kind: *kind,
                });
            }
        }
        found.sort_by_key(|f| f.start);
        found
    }

    /// Appends `text` with its PII replaced to `out`; returns how many
    /// spans were replaced.
    pub fn redact_into(&self, text: &str, out: &mut String) -> usize {
        let found = self.find(text);
        let mut at = 0;
        for f in &found {
            out.push_str(&text[at..f.start]);
            match &self.replace {
                Replace::Label => out.push_str(f.kind.label()),
                Replace::Pseudonym(p) => {
                    let label = f.kind.label();
                    out.push_str(&label[..label.len() - 1]);
                    out.push(':');
                    p.write(&text.as_bytes()[f.start..f.end], out);
                    out.push(']');
                }
            }
            at = f.end;
        }
        out.push_str(&text[at..]);
        found.len()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut s = String::with_capacity(text.len());
        self.redact_into(text, &mut s);
        s
    }
}

/// Validates a candidate span, trimming what the pattern may over-take
/// (a sentence's full stop after an email, a word after an IBAN).
fn confirm(kind: Kind, text: &str, start: usize, mut end: usize) -> Option<(usize, usize)> {
    let mut s = &text[start..end];
    match kind {
        Kind::Email | Kind::Ipv6 => {
            let t = s.trim_end_matches(['.', '-', ':']);
            end -= s.len() - t.len();
            s = t;
        }
        Kind::Iban => {
            // Drop trailing space-separated groups until the checksum holds.
            loop {
                if validate(kind, s) {
                    return Some((start, end));
                }
                let (head, _) = s.rsplit_once(' ')?;
                end = start + head.len();
                s = head;
            }
        }
        _ => {}
    }
    validate(kind, s).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::pseudonym::Encoding;

    #[test]
    fn every_kind_in_a_sentence() {
        let r = Redactor::all(Replace::Label);
        let text = "Mail jo.smith@example.co.uk. Card 4111 1111 1111 1111 or 4111111111111112 (bad Luhn). \
IBAN GB82 WEST 1234 5698 7654 32 AND more. From 192.168.10.7 and 2001:db8::8a2e:370:7334 at 10:30. \
NI AB 12 34 56 C, SSN 078-05-1120, tel +44 20 7946 0958, order 536365 on 2010-12-01.";
        let out = r.redact(text);
        assert_eq!(
            out,
            "Mail [EMAIL]. Card [CARD] or 4111111111111112 (bad Luhn). IBAN [IBAN] AND more. From [IP] and [IP] at 10:30. \
NI [NI], SSN [SSN], tel [PHONE], order 536365 on 2010-12-01."
        );
    }

    #[test]
    fn plain_text_is_untouched_and_pseudonyms_are_stable() {
        let r = Redactor::all(Replace::Label);
        for t in [
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "SET 7 BABUSHKA NESTING BOXES",
            "Zoë's café — 12 items",
            "",
        ] {
            assert_eq!(r.redact(t), t);
        }
        let p = Redactor::new(
            &[Kind::Email],
            Replace::Pseudonym(Pseudonymizer::new(b"0123456789abcdef", Encoding::Hex, 8)),
        );
        let a = p.redact("from a@b.com to c@d.org");
        let b = p.redact("a@b.com");
        assert!(a.starts_with("from [EMAIL:") && !a.contains("a@b.com"), "{a}");
        assert_eq!(&a[5..5 + b.len()], b);
        // Only the kinds asked for.
        assert_eq!(p.redact("tel +44 20 7946 0958"), "tel +44 20 7946 0958");
    }
}
