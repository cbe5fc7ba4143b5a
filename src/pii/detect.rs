//! Validators and whole-value detectors for the kinds of PII nightjar
//! knows. A pattern alone over-matches (any 16 digits, any 9 digits); each
//! kind also passes its checksum or structural rules: Luhn for cards,
//! ISO 13616 mod-97 for IBANs, RFC 5321/5322 dot-atom shape for emails,
//! octet ranges for IPv4, the standard parser for IPv6, the HMRC prefix
//! rules for UK National Insurance numbers and the SSA rules for US SSNs.

use std::fmt;

/// A kind of PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Phone,
    Card,
    Iban,
    Ipv4,
    Ipv6,
    UkNi,
    UsSsn,
    Name,
    Address,
    Postcode,
    Date,
}

impl Kind {
    /// The kinds found inside free text by `redact_text`.
    pub const TEXT: [Kind; 8] = [
        Kind::Email,
        Kind::Card,
        Kind::Iban,
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::UkNi,
        Kind::UsSsn,
        Kind::Phone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::UkNi => "uk_ni",
            Kind::UsSsn => "us_ssn",
            Kind::Name => "name",
            Kind::Address => "address",
            Kind::Postcode => "postcode",
            Kind::Date => "date",
        }
    }

    /// The default replacement label in text: `[EMAIL]`, `[CARD]`, ...
    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Phone => "[PHONE]",
            Kind::Card => "[CARD]",
            Kind::Iban => "[IBAN]",
            Kind::Ipv4 | Kind::Ipv6 => "[IP]",
            Kind::UkNi => "[NI]",
            Kind::UsSsn => "[SSN]",
            Kind::Name => "[NAME]",
            Kind::Address => "[ADDRESS]",
            Kind::Postcode => "[POSTCODE]",
            Kind::Date => "[DATE]",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The Luhn (mod 10) check over the digits of `s` (other characters are
/// ignored; no digit at all fails).
pub fn luhn(s: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for b in s.bytes().rev().filter(u8::is_ascii_digit) {
        let mut d = (b - b'0') as u32;
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    n > 0 && sum.is_multiple_of(10)
}

/// A payment card number: 13-19 digits (spaces or dashes allowed between
/// groups), a known issuer prefix and a valid Luhn check digit.
pub fn is_card(s: &str) -> bool {
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'-') {
        return false;
    }
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    if !(13..=19).contains(&digits.len()) || !known_issuer(&digits) {
        return false;
    }
    luhn(s)
}

/// Visa, Mastercard, Amex, Discover, JCB, Diners, Maestro, UnionPay prefixes.
fn known_issuer(d: &[u8]) -> bool {
    let p = |n: usize| d.iter().take(n).fold(0u32, |a, &x| a * 10 + x as u32);
    match d[0] {
        4 => true,
        5 => (51..=55).contains(&p(2)) || matches!(p(2), 50 | 56..=58),
        2 => (2221..=2720).contains(&p(4)),
        3 => matches!(p(2), 34 | 37 | 36 | 38 | 39 | 30) || (3528..=3589).contains(&p(4)),
        6 => p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || p(2) == 62 || p(2) == 67,
        _ => false,
    }
}

/// IBAN lengths by country (ISO 13616 registry, common countries); others
/// must be 15-34 characters.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
];

/// An IBAN: country code, two check digits, the BBAN; the country's length;
/// mod-97 of the rearranged number is 1. Spaces between groups are allowed.
pub fn is_iban(s: &str) -> bool {
    let compact: Vec<u8> = s
        .trim()
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 15 || compact.len() > 34 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !compact[0].is_ascii_alphabetic() || !compact[1].is_ascii_alphabetic() {
        return false;
    }
    if !compact[2].is_ascii_digit() || !compact[3].is_ascii_digit() {
        return false;
    }
    let country = std::str::from_utf8(&compact[..2]).unwrap_or_default();
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country)
        && compact.len() != *len
    {
        return false;
    }
    let mut rem = 0u32;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + (b - b'0') as u32) % 97;
        } else {
            rem = (rem * 100 + (b - b'A' + 10) as u32) % 97;
        }
    }
    rem == 1
}

/// An email address in the dot-atom form of RFC 5322 (no quoted local
/// parts or IP-literal domains, which real data does not hold): local part
/// at most 64 characters, domain labels of letters, digits and inner
/// hyphens, a top-level label of at least two letters, at most 254 in all.
pub fn is_email(s: &str) -> bool {
    let s = s.trim();
    if s.len() > 254 {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    const ATEXT: &[u8] = b"!#$%&'*+/=?^_`{|}~-.";
    if !local.bytes().all(|b| b.is_ascii_alphanumeric() || ATEXT.contains(&b)) {
        return false;
    }
    is_domain(domain)
}

fn is_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let tld = labels[labels.len() - 1];
    if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// A phone number: optional `+` and country code, digits grouped by
/// spaces, dashes, dots or parentheses, 7 to 15 digits in all (E.164), and
/// either international (`+`, `00`) or national (a leading `0`, or a
/// North-American `(xxx) xxx-xxxx` / `xxx-xxx-xxxx` shape).
pub fn is_phone(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b" +-.()".contains(&b)) {
        return false;
    }
    if s[1..].contains('+') || s.contains("--") {
        return false;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if !(7..=15).contains(&digits.len()) {
        return false;
    }
    let has_sep = s.bytes().any(|b| b" -.()".contains(&b));
    if s.starts_with('+') || digits.starts_with("00") {
        return digits.len() >= 8;
    }
    if digits.starts_with('0') {
        // A national number: UK 0xxxx xxxxxx (10-11 digits).
        return (10..=11).contains(&digits.len());
    }
    // North American: 10 digits grouped 3-3-4 (`(555) 123-4567`,
    // `555.123.4567`); a bare number is far more often an id, and other
    // groupings are dates and times (`2021-02-23 08`).
    let groups: Vec<usize> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(str::len)
        .collect();
    digits.len() == 10 && has_sep && groups == [3, 3, 4]
}

/// A dotted-quad IPv4 address (each octet 0-255, no leading zeros).
pub fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.trim().split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// An IPv6 address as the standard library parses it (with at least two
/// colons, so that times such as `10:30` never match).
pub fn is_ipv6(s: &str) -> bool {
    let s = s.trim();
    s.matches(':').count() >= 2 && s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A UK National Insurance number: two prefix letters (neither D, F, I, Q,
/// U, V; the second not O; not BG, GB, KN, NK, NT, TN, ZZ), six digits and
/// a suffix A-D; spaces between pairs allowed.
pub fn is_uk_ni(s: &str) -> bool {
    let c: Vec<u8> = s
        .trim()
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if c.len() != 9 {
        return false;
    }
    let (a, b) = (c[0], c[1]);
    let bad = |x: u8| b"DFIQUV".contains(&x);
    if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() || bad(a) || bad(b) || b == b'O' {
        return false;
    }
    if [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
        .iter()
        .any(|p| p[..] == c[..2])
    {
        return false;
    }
    c[2..8].iter().all(u8::is_ascii_digit) && (b'A'..=b'D').contains(&c[8])
}

/// A US Social Security number `AAA-GG-SSSS` (dashes or spaces; 9 bare
/// digits only when `bare` is allowed): area not 000, 666 or 900-999,
/// group not 00, serial not 0000.
pub fn is_us_ssn(s: &str, bare: bool) -> bool {
    let s = s.trim();
    let b = s.as_bytes();
    let digits: Vec<u8> = match b.len() {
        11 if (b[3] == b'-' && b[6] == b'-') || (b[3] == b' ' && b[6] == b' ') => [&b[..3], &b[4..6], &b[7..]].concat(),
        9 if bare => b.to_vec(),
        _ => return false,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &digits[3..5] != b"00" && &digits[5..] != b"0000"
}

/// What one whole cell is, by the validators (the first kind that
/// matches). Names and addresses are judged per column in [`super::scan`],
/// where a column's other values and its name count too.
pub fn classify(value: &str) -> Option<Kind> {
    let v = value.trim();
    if v.len() < 5 || v.len() > 254 {
        return None;
    }
    let first = v.as_bytes()[0];
    if v.contains('@') {
        return is_email(v).then_some(Kind::Email);
    }
    if v.contains(':') {
        return is_ipv6(v).then_some(Kind::Ipv6);
    }
    if first.is_ascii_digit() || first == b'+' || first == b'(' {
        if is_card(v) {
            return Some(Kind::Card);
        }
        if is_ipv4(v) {
            return Some(Kind::Ipv4);
        }
        if is_us_ssn(v, false) {
            return Some(Kind::UsSsn);
        }
        if is_phone(v) {
            return Some(Kind::Phone);
        }
        return None;
    }
    if first.is_ascii_alphabetic() {
        if is_iban(v) {
            return Some(Kind::Iban);
        }
        if is_uk_ni(v) {
            return Some(Kind::UkNi);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_valid_and_invalid() {
        for ok in [
            "4539578763621486",
            "4111 1111 1111 1111",
            "378282246310005",
            "5555555555554444",
            "79927398713",
        ] {
            assert!(luhn(ok), "{ok}");
        }
        for bad in ["4539578763621487", "4111 1111 1111 1112", "79927398710", "", "abc"] {
            assert!(!luhn(bad), "{bad}");
        }
        assert!(is_card("4924515776335673"), "the issue's example card");
        assert!(is_card("4111-1111-1111-1111"));
        assert!(!is_card("1234567812345670"), "Luhn-valid but no issuer starts with 1");
        assert!(!is_card("4111111111111112"));
        assert!(!is_card("411111111111"), "too short");
    }

    #[test]
    fn iban_valid_and_invalid() {
        for ok in [
            "GB82 WEST 1234 5698 7654 32",
            "GB82WEST12345698765432",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "be68539007547034",
        ] {
            assert!(is_iban(ok), "{ok}");
        }
        for bad in [
            "GB82 WEST 1234 5698 7654 33",
            "GB82WEST1234569876543",
            "DE89370400440532013001",
            "XX00",
            "GB82-WEST-1234-5698-7654-32",
        ] {
            assert!(!is_iban(bad), "{bad}");
        }
    }

    #[test]
    fn emails_phones_ips() {
        for ok in ["a@b.co", "first.last+tag@mail.example.org", "o'brien@x-y.ie"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "a@b",
            ".a@b.co",
            "a..b@c.com",
            "a@-b.com",
            "a@b.c0m",
            "@x.com",
            "a b@c.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        for ok in [
            "+44 20 7946 0958",
            "020 7946 0958",
            "(555) 123-4567",
            "555-123-4567",
            "+1-202-555-0147",
            "0044 20 7946 0958",
        ] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in [
            "5551234567",
            "12345",
            "2010-12-01",
            "17850",
            "1+2",
            "2021-02-23 08",
            "2021 0223 08",
        ] {
            assert!(!is_phone(bad), "{bad}");
        }
        assert!(is_ipv4("192.168.0.1") && is_ipv4("255.255.255.255"));
        assert!(!is_ipv4("256.1.1.1") && !is_ipv4("01.2.3.4") && !is_ipv4("1.2.3"));
        assert!(is_ipv6("2001:db8::1") && is_ipv6("::1") && is_ipv6("fe80::1ff:fe23:4567:890a"));
        assert!(!is_ipv6("10:30") && !is_ipv6("2001:db8:::1"));
    }

    #[test]
    fn national_ids() {
        assert!(is_uk_ni("AB 12 34 56 C") && is_uk_ni("JG103759A"));
        assert!(!is_uk_ni("GB123456A") && !is_uk_ni("DA123456A") && !is_uk_ni("AB123456E") && !is_uk_ni("AO123456A"));
        assert!(is_us_ssn("123-45-6789", false) && is_us_ssn("123456789", true));
        assert!(!is_us_ssn("123456789", false));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!is_us_ssn(bad, true), "{bad}");
        }
    }

    #[test]
    fn classify_whole_values() {
        assert_eq!(classify("jo@example.com"), Some(Kind::Email));
        assert_eq!(classify("4924515776335673"), Some(Kind::Card));
        assert_eq!(classify("GB82WEST12345698765432"), Some(Kind::Iban));
        assert_eq!(classify("10.0.0.1"), Some(Kind::Ipv4));
        assert_eq!(classify("2001:db8::1"), Some(Kind::Ipv6));
        assert_eq!(classify("QQ123456C"), None);
        assert_eq!(classify("AB123456C"), Some(Kind::UkNi));
        assert_eq!(classify("078-05-1120"), Some(Kind::UsSsn));
        assert_eq!(classify("+44 7700 900123"), Some(Kind::Phone));
        for none in [
            "17850",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "2010-12-01 08:26:00",
            "536365",
            "85123A",
        ] {
            assert_eq!(classify(none), None, "{none}");
        }
    }
}
