//! Column-level PII detection for `nightjar pii scan` and `validate`'s
//! warning: what a column's name hints, what its values are (validated by
//! [`super::detect`]), and which `transform.pii` action fits.
//!
//! A column is reported as PII when at least [`MIN_RATE`] of its sampled
//! non-empty values validate as one kind, when its values are free text
//! holding PII, or when its name hints PII. Names and addresses have no
//! checksum: a value counts as a person's name when it is two or three
//! capitalised words and its first word is a common given name (the list
//! below), and as an address when it has a house number and a street word.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::detect::{self, Kind};
use super::mask::Mask;
use super::redact_text::{Redactor, Replace};

/// Share of sampled values that must validate as one kind.
pub const MIN_RATE: f64 = 0.5;

/// The kind a column name hints, from its words (`customer_email`,
/// `CustomerName`, `DOB`, `card number`).
pub fn name_hint(column: &str) -> Option<Kind> {
    let words = words(column);
    let has = |w: &str| words.iter().any(|x| x == w);
    let joined = words.concat();
    if has("email") || has("mail") || joined.contains("email") {
        return Some(Kind::Email);
    }
    if has("phone") || has("tel") || has("telephone") || has("mobile") || has("cell") || joined.contains("phone") {
        return Some(Kind::Phone);
    }
    if has("iban") {
        return Some(Kind::Iban);
    }
    if has("ssn") || joined.contains("socialsecurity") {
        return Some(Kind::UsSsn);
    }
    if has("nino") || joined.contains("nationalinsurance") || joined.contains("nationalid") {
        return Some(Kind::UkNi);
    }
    if has("card") || has("pan") || has("cc") || joined.contains("creditcard") || joined.starts_with("ccnum") {
        return Some(Kind::Card);
    }
    if has("dob") || has("birthday") || joined.contains("birth") {
        return Some(Kind::Date);
    }
    if has("postcode") || has("zip") || has("zipcode") || has("postal") {
        return Some(Kind::Postcode);
    }
    if has("address") || has("addr") || has("street") {
        return Some(Kind::Address);
    }
    if has("ip") {
        return Some(Kind::Ipv4);
    }
    // `name` alone, or a person's name; not product or branch names.
    const PERSON: &[&str] = &[
        "customer", "first", "last", "full", "given", "sur", "person", "contact", "client", "user",
    ];
    const THING: &[&str] = &[
        "product", "item", "branch", "store", "shop", "file", "company", "country", "city", "stock",
    ];
    let name_word = has("name") || has("surname") || has("firstname") || has("lastname") || has("fullname");
    if name_word
        && !THING.iter().any(|t| has(t))
        && (words.len() == 1 || PERSON.iter().any(|p| has(p) || joined.contains(p)))
    {
        return Some(Kind::Name);
    }
    None
}

/// Lower-case words of an identifier: `CustomerEmail`, `customer_email`
/// and `customer email` all give [customer, email].
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Common given names (English-speaking countries, both sexes): the
/// anchor of the name heuristic.
const GIVEN_NAMES: &str = "aaron adam adrian aidan alan albert alex alexander alfie alice alison amanda amber amelia amy andrea andrew angela anna anne anthony archie arthur ashley barbara ben benjamin beth betty bill billy bob brandon brenda brian bruce carl carol caroline catherine charles charlie charlotte chloe chris christine christopher claire colin connor craig daniel danielle darren david dawn dean deborah debra denise dennis diana diane donald donna dorothy dylan edward eleanor elizabeth ella ellie emily emma eric ethan eve evelyn fiona frances frank freddie freya gary gavin george georgia gerald gillian gloria grace graham gregory hannah harold harriet harry harvey heather helen henry holly ian isaac isabel isabella isla jack jacob jade james jamie jane janet janice jason jean jeffrey jennifer jeremy jessica jill joan joanne joe john jonathan jordan joseph joshua joyce judith julia julie justin karen kate katherine kathleen kathryn katie keith kelly kenneth kevin kieran kim kimberly laura lauren leah lee leo lewis liam lily linda lisa logan louise lucy luke lynn margaret maria marie mark martin mary matthew megan melissa michael michelle mike mohammed molly morgan muhammad nancy natalie nathan neil nicholas nicola nicole noah oliver olivia oscar owen pamela patricia patrick paul paula peter philip phoebe poppy rachel raymond rebecca richard robert robin roger ronald rose ruby russell ruth ryan sally samantha samuel sandra sara sarah scott sean sharon shirley simon sophia sophie stephanie stephen steven stuart susan teresa thomas timothy tom tony tracy tyler victoria vincent walter wayne william zachary zoe";

static GIVEN: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| GIVEN_NAMES.split_whitespace().collect());

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)[0-9]+[a-z]?,? +(?:[a-z'.-]+ +){0,4}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|way|court|ct|boulevard|blvd|place|pl|crescent|terrace|square|sq|gardens|grove|row|parade|hill|mews|walk)(?-u:\b)")
        .expect("pattern")
});

static UK_POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$").expect("pattern"));

/// Two or three capitalised words whose first is a common given name.
pub fn looks_like_name(v: &str) -> bool {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if !(2..=3).contains(&parts.len()) {
        return false;
    }
    let capitalised = |w: &str| {
        let mut cs = w.chars();
        cs.next().is_some_and(char::is_uppercase)
            && w.chars().all(|c| c.is_alphabetic() || "'-.".contains(c))
            && w.chars().skip(1).any(char::is_lowercase)
    };
    parts.iter().all(|w| capitalised(w)) && GIVEN.contains(parts[0].to_lowercase().as_str())
}

pub fn looks_like_address(v: &str) -> bool {
    ADDRESS.is_match(v)
}

pub fn looks_like_uk_postcode(v: &str) -> bool {
    UK_POSTCODE.is_match(v.trim())
}

/// What a column holds, from a sample of its values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnReport {
    pub column: String,
    /// Non-empty values sampled.
    pub sampled: usize,
    /// Matching values per kind (a value counts for the first kind it
    /// validates as).
    pub matches: BTreeMap<Kind, usize>,
    /// Values that are free text holding PII somewhere inside.
    pub text_with_pii: usize,
    /// `"type,number"` values whose number part is a card.
    pub combined_cards: usize,
    /// The kind the column's name hints.
    pub name_hint: Option<Kind>,
    /// The verdict: the kind this column holds, if any.
    pub kind: Option<Kind>,
    /// Share of sampled values behind the verdict (0 when only the name
    /// hints it).
    pub rate: f64,
    /// Why: `values`, `name`, `values+name`, `text`.
    pub evidence: String,
    /// A few matching values, masked.
    pub examples: Vec<String>,
}

impl ColumnReport {
    pub fn is_pii(&self) -> bool {
        self.kind.is_some()
    }

    /// The `transform.pii` action this column should get, as TOML.
    pub fn suggested_action(&self) -> Option<String> {
        let kind = self.kind?;
        if self.evidence == "text" {
            return Some("{ action = \"redact_text\" }".into());
        }
        if self.combined_cards > 0 && kind == Kind::Card {
            return Some(format!(
                "{{ action = \"split\", into = [\"{0}_type\", \"{0}_number\"], then = {{ {0}_number = {{ action = \"mask\", keep_last = 4 }} }} }}",
                self.column
            ));
        }
        Some(
            match kind {
                Kind::Email | Kind::Ipv4 | Kind::Ipv6 => "{ action = \"pseudonymize\" }",
                Kind::Phone => "{ action = \"mask\", keep_last = 3 }",
                Kind::Card => "{ action = \"mask\", keep_last = 4 }",
                Kind::Iban | Kind::UkNi | Kind::UsSsn => "{ action = \"tokenize\" }",
                Kind::Name | Kind::Address => "\"drop\"",
                Kind::Postcode => "{ action = \"generalize\", to = \"district\" }",
                Kind::Date => "{ action = \"generalize\", to = \"year\" }",
            }
            .to_string(),
        )
    }
}

/// Judges one column from a sample of its values (`None` = null).
pub fn scan_column<'a>(column: &str, values: impl IntoIterator<Item = Option<&'a str>>) -> ColumnReport {
    let text = Redactor::all(Replace::Label);
    let mut matches: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut examples: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    let (mut sampled, mut text_with_pii, mut combined) = (0usize, 0usize, 0usize);
    let mut text_examples = Vec::new();
    let mut text_kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    let hint = name_hint(column);
    let mask = Mask {
        keep_first: 1,
        keep_last: 2,
        ch: '*',
        keep_separators: true,
    };
    for v in values.into_iter().flatten() {
        let v = v.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("null") {
            continue;
        }
        sampled += 1;
        let mut kind = detect::classify(v);
        if kind.is_none()
            && let Some((_, number)) = v.split_once(',')
            && detect::is_card(number)
        {
            combined += 1;
            kind = Some(Kind::Card);
        }
        if kind.is_none() {
            kind = if looks_like_name(v) {
                Some(Kind::Name)
            } else if looks_like_address(v) {
                Some(Kind::Address)
            } else if looks_like_uk_postcode(v) {
                Some(Kind::Postcode)
            } else {
                None
            };
        }
        match kind {
            Some(k) => {
                *matches.entry(k).or_default() += 1;
                let ex = examples.entry(k).or_default();
                if ex.len() < 3 {
                    ex.push(mask.apply(v));
                }
            }
            None => {
                let found = text.find(v);
                for f in &found {
                    *text_kinds.entry(f.kind).or_default() += 1;
                }
                if !found.is_empty() {
                    text_with_pii += 1;
                    if text_examples.len() < 3 {
                        text_examples.push(text.redact(v));
                    }
                }
            }
        }
    }
    let best = matches.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (*k, *n));
    let rate_of = |n: usize| if sampled == 0 { 0.0 } else { n as f64 / sampled as f64 };
    let (mut kind, mut rate, mut evidence, mut ex) = (None, 0.0, String::new(), Vec::new());
    if let Some((k, n)) = best
        && rate_of(n) >= MIN_RATE
    {
        kind = Some(k);
        rate = rate_of(n);
        evidence = if hint.is_some() { "values+name" } else { "values" }.into();
        ex = examples.remove(&k).unwrap_or_default();
    } else if rate_of(text_with_pii) >= 0.05 && text_with_pii >= 2 {
        // Free text: even a few notes holding an email make the column PII.
        kind = text_kinds.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k);
        rate = rate_of(text_with_pii);
        evidence = "text".into();
        ex = text_examples;
    } else if let Some(h) = hint {
        kind = Some(h);
        evidence = "name".into();
        // A US ZIP only counts where the name says so (it is any 5 digits).
        if h == Kind::Postcode || h == Kind::Date {
            ex = Vec::new();
        }
    }
    ColumnReport {
        column: column.to_string(),
        sampled,
        matches,
        text_with_pii,
        combined_cards: combined,
        name_hint: hint,
        kind,
        rate,
        evidence,
        examples: ex,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hints() {
        for (col, kind) in [
            ("customer_email", Kind::Email),
            ("EmailAddress", Kind::Email),
            ("TelephoneNumber", Kind::Phone),
            ("CCNumber", Kind::Card),
            ("card", Kind::Card),
            ("customer name", Kind::Name),
            ("CustomerName", Kind::Name),
            ("Surname", Kind::Name),
            ("GivenName", Kind::Name),
            ("StreetAddress", Kind::Address),
            ("DOB", Kind::Date),
            ("ZipCode", Kind::Postcode),
            ("iban", Kind::Iban),
            ("ssn", Kind::UsSsn),
        ] {
            assert_eq!(name_hint(col), Some(kind), "{col}");
        }
        for col in [
            "product_name",
            "Description",
            "StockCode",
            "branch",
            "Country",
            "InvoiceNo",
            "ship_date",
            "capacity",
        ] {
            assert_eq!(name_hint(col), None, "{col}");
        }
    }

    #[test]
    fn columns_by_values() {
        let r = scan_column(
            "c1",
            ["Morgan Berry", "Sarah Jones", "Isle of Wight", "John Smith"].map(Some),
        );
        assert_eq!(r.kind, Some(Kind::Name));
        assert_eq!(r.rate, 0.75);
        assert!(!r.examples.iter().any(|e| e.contains("Berry")), "{:?}", r.examples);
        let r = scan_column(
            "c2",
            ["visa16,4924515776335673", "None", "mastercard16,5555555555554444"].map(Some),
        );
        assert_eq!((r.kind, r.combined_cards, r.sampled), (Some(Kind::Card), 2, 2));
        assert!(r.suggested_action().unwrap().contains("split"));
        let r = scan_column(
            "Description",
            ["WHITE HANGING HEART T-LIGHT HOLDER", "United Kingdom", "12 PENCILS"].map(Some),
        );
        assert_eq!(r.kind, None);
        let r = scan_column(
            "notes",
            ["call me on +44 20 7946 0958", "fine", "mail jo@example.com", "ok"].map(Some),
        );
        assert_eq!(r.evidence, "text");
        assert!(r.examples.iter().all(|e| !e.contains("jo@example.com")));
        let r = scan_column(
            "addr",
            ["12 Baker Street", "221B Baker St, London", "Flat 3, 7 Mill Lane"].map(Some),
        );
        assert_eq!(r.kind, Some(Kind::Address));
        let r = scan_column("customer_phone", [None, None]);
        assert_eq!((r.kind, r.evidence.as_str()), (Some(Kind::Phone), "name"));
    }
}
