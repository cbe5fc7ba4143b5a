//! Column types users declare in `[columns]`, and turning text into them.
//!
//! ```toml
//! [columns]
//! InvoiceNo = "string"
//! Quantity = "int64"
//! InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S", timezone = "Europe/London" }
//! UnitPrice = "decimal(10,2)"
//! ```

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

mod fast;

/// The types a column can be declared as.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    String,
    Int64,
    Float64,
    Bool,
    Date,
    Timestamp,
    Decimal { precision: u8, scale: i8 },
}

pub const TYPE_NAMES: &[&str] = &[
    "string",
    "int64",
    "float64",
    "bool",
    "date",
    "timestamp",
    "decimal(p,s)",
];

impl ColumnType {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "string" | "str" | "text" | "utf8" => Self::String,
            "int64" | "int" | "integer" | "bigint" => Self::Int64,
            "float64" | "float" | "double" => Self::Float64,
            "bool" | "boolean" => Self::Bool,
            "date" => Self::Date,
            "timestamp" | "datetime" => Self::Timestamp,
            _ => {
                let inner = t
                    .strip_prefix("decimal(")
                    .or_else(|| t.strip_prefix("numeric("))
                    .and_then(|r| r.strip_suffix(')'));
                let Some(inner) = inner else {
                    let hint = crate::spec::diagnostic::unknown_name_hint(&t, TYPE_NAMES);
                    return Err(format!("unknown column type `{s}` ({hint})"));
                };
                let (p, sc) = inner.split_once(',').unwrap_or((inner, "0"));
                let precision: u8 = p.trim().parse().map_err(|_| format!("bad precision in `{s}`"))?;
                let scale: i8 = sc.trim().parse().map_err(|_| format!("bad scale in `{s}`"))?;
                if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                    return Err(format!("`{s}`: precision must be 1..38 and scale 0..precision"));
                }
                Self::Decimal { precision, scale }
            }
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Int64 => f.write_str("int64"),
            Self::Float64 => f.write_str("float64"),
            Self::Bool => f.write_str("bool"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
        }
    }
}

/// A declared column: its type and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub ty: ColumnType,
    /// Accepted input formats (chrono strftime) for dates and timestamps,
    /// tried in order. Empty: ISO 8601 forms.
    pub formats: Vec<String>,
    /// The time zone of timestamps written without an offset; they are
    /// stored as UTC instants. None: stored as written (no time zone).
    pub timezone: Option<Tz>,
    /// When false, a missing value is a bad row (quarantined).
    pub nullable: bool,
}

impl ColumnSpec {
    pub fn of(ty: ColumnType) -> Self {
        Self {
            ty,
            formats: Vec::new(),
            timezone: None,
            nullable: true,
        }
    }

    /// The Arrow type this column is stored as.
    pub fn arrow_type(&self) -> DataType {
        match self.ty {
            ColumnType::String => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, self.timezone.map(|_| Arc::from("UTC")))
            }
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecTable {
    #[serde(rename = "type")]
    ty: String,
    format: Option<String>,
    #[serde(default)]
    formats: Vec<String>,
    timezone: Option<String>,
    #[serde(default = "yes")]
    nullable: bool,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for ColumnSpec {
    // A hand-written visitor rather than an untagged enum, so that a bad
    // type name or key gets its own message instead of "did not match any
    // variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ColumnSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a type name such as \"int64\", or a table such as { type = \"timestamp\", format = \"%Y-%m-%d\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ColumnSpec, E> {
                ColumnType::parse(v).map(ColumnSpec::of).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ColumnSpec, A::Error> {
                let t = SpecTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                t.into_spec().map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl SpecTable {
    fn into_spec(self) -> Result<ColumnSpec, String> {
        let ty = ColumnType::parse(&self.ty)?;
        let mut formats = self.formats;
        if let Some(f) = self.format {
            formats.insert(0, f);
        }
        if !formats.is_empty() && !matches!(ty, ColumnType::Date | ColumnType::Timestamp) {
            return Err("`format` applies to date and timestamp columns only".into());
        }
        let timezone = match self.timezone {
            None => None,
            Some(z) => Some(crate::spec::schedule::parse_tz(&z)?),
        };
        Ok(ColumnSpec {
            ty,
            formats,
            timezone,
            nullable: self.nullable,
        })
    }
}

/// A value parsed from text, before it is appended to a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parsed<'a> {
    Null,
    Str(&'a str),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 (UTC, or naive local).
    Ts(i64),
    /// Unscaled decimal.
    Dec(i128),
}

const DATE_FORMATS: &[&str] = &["%Y-%m-%d"];
const TS_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
}

impl ColumnSpec {
    /// Parses one text value. `None` and the empty string are missing
    /// values. The error is the reason, for the quarantine.
    pub fn parse<'a>(&self, text: Option<&'a str>) -> Result<Parsed<'a>, String> {
        let Some(raw) = text else { return self.null() };
        if self.ty == ColumnType::String {
            return if raw.is_empty() {
                self.null()
            } else {
                Ok(Parsed::Str(raw))
            };
        }
        let s = trimmed(raw);
        if s.is_empty() {
            return self.null();
        }
        match &self.ty {
            ColumnType::String => unreachable!(),
            ColumnType::Int64 => parse_i64(s).map(Parsed::I64),
            ColumnType::Float64 => s
                .parse::<f64>()
                .map(Parsed::F64)
                .map_err(|_| format!("`{s}` is not a number")),
            ColumnType::Bool => parse_bool(s).map(Parsed::Bool),
            ColumnType::Date => self.parse_date(s).map(Parsed::Date),
            ColumnType::Timestamp => self.parse_ts(s).map(Parsed::Ts),
            ColumnType::Decimal { precision, scale } => parse_decimal(s, *precision, *scale).map(Parsed::Dec),
        }
    }

    fn null<'a>(&self) -> Result<Parsed<'a>, String> {
        if self.nullable {
            Ok(Parsed::Null)
        } else {
            Err("missing value in a column declared `nullable = false`".into())
        }
    }

    /// The accepted formats: the declared ones, else `defaults`. (No
    /// allocation: this runs for every cell.)
    fn formats_or<'f>(&'f self, defaults: &'f [&'static str]) -> impl Iterator<Item = &'f str> + Clone {
        let declared = self.formats.iter().map(String::as_str);
        let fallback = defaults.iter().copied().filter(|_| self.formats.is_empty());
        declared.chain(fallback)
    }

    fn formats_text(&self, defaults: &[&'static str]) -> String {
        self.formats_or(defaults).collect::<Vec<_>>().join(" or ")
    }

    fn parse_date(&self, s: &str) -> Result<i32, String> {
        for f in self.formats_or(DATE_FORMATS) {
            if let Some(d) = fast::date(s, f) {
                return Ok((d - epoch()).num_days() as i32);
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, f) {
                return Ok((d - epoch()).num_days() as i32);
            }
            // A date column fed timestamps keeps the date part.
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Ok((t.date() - epoch()).num_days() as i32);
            }
        }
        Err(format!(
            "`{s}` is not a date in format {}",
            self.formats_text(DATE_FORMATS)
        ))
    }

    fn parse_ts(&self, s: &str) -> Result<i64, String> {
        if self.formats.is_empty()
            && let Ok(t) = DateTime::parse_from_rfc3339(s)
        {
            return Ok(t.timestamp_micros());
        }
        for f in self.formats_or(TS_FORMATS) {
            // The fast path first: it knows no offset specifier, so a
            // value it reads has none, and most values take it.
            if let Some(t) = fast::datetime(s, f) {
                return self.local_micros(t, s);
            }
            // Only a format with an offset can give an instant; trying it
            // on the others fails every time and cost a third of a CSV
            // extract.
            if has_offset(f) {
                if let Ok(t) = DateTime::parse_from_str(s, f) {
                    return Ok(t.timestamp_micros());
                }
                continue;
            }
            let naive = NaiveDateTime::parse_from_str(s, f)
                .or_else(|_| NaiveDate::parse_from_str(s, f).map(|d| d.and_hms_opt(0, 0, 0).unwrap()));
            if let Ok(t) = naive {
                return self.local_micros(t, s);
            }
        }
        Err(format!(
            "`{s}` is not a timestamp in format {}",
            self.formats_text(TS_FORMATS)
        ))
    }

    /// A timestamp written without an offset, in microseconds: read in
    /// the column's time zone, else kept as written.
    fn local_micros(&self, t: NaiveDateTime, s: &str) -> Result<i64, String> {
        match self.timezone {
            None => Ok(t.and_utc().timestamp_micros()),
            Some(tz) => tz
                .from_local_datetime(&t)
                .earliest()
                .map(|dt| dt.timestamp_micros())
                .ok_or_else(|| format!("`{s}` does not exist in {tz} (skipped by a daylight-saving change)")),
        }
    }
}

/// Whether a strftime format reads a UTC offset (`%z`, `%:z`, `%::z`,
/// `%#z`). One pass over the bytes: it runs for every value, and four
/// substring searches per value were a tenth of a CSV extract.
fn has_offset(format: &str) -> bool {
    let mut rest = format.as_bytes();
    while let Some(at) = rest.iter().position(|&c| c == b'%') {
        let spec = &rest[at + 1..];
        if spec.first() == Some(&b'%') {
            // `%%` is a literal percent sign.
            rest = &spec[1..];
            continue;
        }
        if [&b"z"[..], b":z", b"::z", b"#z"].iter().any(|z| spec.starts_with(z)) {
            return true;
        }
        rest = spec;
    }
    false
}

/// `s` without surrounding whitespace. Most values have none: two byte
/// checks instead of `str::trim`'s Unicode scan.
fn trimmed(s: &str) -> &str {
    let plain = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii() && !b.is_ascii_whitespace());
    if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// Digits with an optional sign, and an optional all-zero fraction
/// ("17850.0"), read in one pass; None for anything else (the general
/// path below decides) or past 18 digits (no overflow check needed).
fn plain_i64(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let int_len = digits.iter().position(|c| !c.is_ascii_digit()).unwrap_or(digits.len());
    if int_len == 0 || int_len > 18 {
        return None;
    }
    match &digits[int_len..] {
        [] => {}
        [b'.', zeros @ ..] if !zeros.is_empty() && zeros.iter().all(|&c| c == b'0') => {}
        _ => return None,
    }
    let v = digits[..int_len]
        .iter()
        .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    Some(if neg { -v } else { v })
}

fn parse_i64(s: &str) -> Result<i64, String> {
    if let Some(v) = plain_i64(s) {
        return Ok(v);
    }
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    // "17850.0" without going through f64 (same result: the digits before
    // a zero fraction, below the f64 path's 9e15 bound).
    if let Some((int, frac)) = s.split_once('.')
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0')
        && let Ok(v) = int.parse::<i64>()
        && v.unsigned_abs() < 9_000_000_000_000_000
    {
        return Ok(v);
    }
    // Exports often write integers as floats ("17850.0"): accept them when
    // they are whole.
    match s.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        Ok(_) => Err(format!("`{s}` is not a whole number")),
        Err(_) => Err(format!("`{s}` is not an integer")),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true/false, yes/no, 1/0)")),
    }
}

/// Parses a decimal into its unscaled integer, rounding half away from zero
/// past `scale` digits (as SQL's CAST does).
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let bad = || format!("`{s}` is not a decimal number");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        // Scientific notation and the like: go through f64.
        let f: f64 = s.parse().map_err(|_| bad())?;
        let scaled = (f * 10f64.powi(scale as i32)).round();
        return check_precision(scaled as i128, precision, s);
    }
    let scale = scale as usize;
    // Up to 18 digits in all (nearly every value) fit an i64 without a
    // check per digit; i128 arithmetic is the slow general case.
    if int_part.len() + scale <= 18 {
        let fb = frac_part.as_bytes();
        let digit = |b: u8| i64::from(b - b'0');
        let mut v = int_part.bytes().fold(0i64, |v, b| v * 10 + digit(b));
        for i in 0..scale {
            v = v * 10 + fb.get(i).map_or(0, |&b| digit(b));
        }
        if fb.get(scale).is_some_and(|b| *b >= b'5') {
            v += 1;
        }
        return check_precision(i128::from(if neg { -v } else { v }), precision, s);
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as i128))
            .ok_or_else(bad)?;
    }
    let fb = frac_part.as_bytes();
    for i in 0..scale {
        let d = fb.get(i).map_or(0, |b| (b - b'0') as i128);
        v = v.checked_mul(10).and_then(|v| v.checked_add(d)).ok_or_else(bad)?;
    }
    if fb.get(scale).is_some_and(|b| *b >= b'5') {
        v += 1;
    }
    check_precision(if neg { -v } else { v }, precision, s)
}

fn check_precision(v: i128, precision: u8, s: &str) -> Result<i128, String> {
    // 10^precision from a table: `pow` on u128 per value was measurable.
    const POW10: [u128; 39] = {
        let mut t = [1u128; 39];
        let mut i = 1;
        while i < 39 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    if POW10
        .get(precision as usize)
        .is_some_and(|&limit| v.unsigned_abs() >= limit)
    {
        return Err(format!("`{s}` has more than {precision} digits"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(t: &str) -> ColumnSpec {
        ColumnSpec::of(ColumnType::parse(t).unwrap())
    }

    #[test]
    fn type_names() {
        assert_eq!(
            ColumnType::parse("decimal(10,2)").unwrap(),
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert!(ColumnType::parse("int46").unwrap_err().contains("int64"));
        assert!(ColumnType::parse("decimal(40,2)").is_err());
    }

    #[test]
    fn integers_accept_whole_floats() {
        assert_eq!(spec("int64").parse(Some("17850.0")), Ok(Parsed::I64(17850)));
        assert!(spec("int64").parse(Some("1.5")).is_err());
        assert_eq!(spec("int64").parse(Some(" ")), Ok(Parsed::Null));
    }

    #[test]
    fn the_one_pass_integer_reader_agrees_with_the_general_one() {
        for t in [
            "0",
            "-0",
            "+7",
            "17850",
            "17850.0",
            "17850.000",
            "-42.00",
            "123456789012345678",
            "999999999999999999.0",
        ] {
            let general = t.split('.').next().unwrap().parse::<i64>().unwrap();
            assert_eq!(plain_i64(t), Some(general), "{t}");
        }
        // Left to the general path: it decides (and names the problem).
        for t in [
            "",
            "-",
            ".0",
            "1.",
            "1.5",
            "1e3",
            "1234567890123456789",
            " 1",
            "1_000",
            "١٢",
        ] {
            assert_eq!(plain_i64(t), None, "{t}");
        }
        assert_eq!(parse_i64("1234567890123456789"), Ok(1_234_567_890_123_456_789));
        assert_eq!(parse_i64("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64("1e3"), Ok(1000));
        assert!(parse_i64("9223372036854775808").is_err());
        assert_eq!(spec("int64").parse(Some(" 12 ")), Ok(Parsed::I64(12)), "trimmed");
    }

    #[test]
    fn short_and_long_decimals_read_the_same_way() {
        // The i64 path (up to 18 digits) and the i128 one (more) round alike.
        assert_eq!(parse_decimal("123456789012345.675", 38, 2), Ok(12_345_678_901_234_568));
        assert_eq!(
            parse_decimal("1234567890123456.675", 38, 2),
            Ok(123_456_789_012_345_668)
        );
        assert_eq!(
            parse_decimal("12345678901234567.675", 38, 2),
            Ok(1_234_567_890_123_456_768)
        );
        assert_eq!(
            parse_decimal("-12345678901234567.675", 38, 2),
            Ok(-1_234_567_890_123_456_768)
        );
        assert_eq!(parse_decimal(".5", 3, 0), Ok(1));
        assert_eq!(parse_decimal("5.", 3, 1), Ok(50));
        assert_eq!(
            parse_decimal("99999999999999999999", 20, 0),
            Ok(99_999_999_999_999_999_999)
        );
        assert!(parse_decimal("99999999999999999999", 19, 0).is_err());
        assert!(parse_decimal("999", 2, 0).is_err());
    }

    #[test]
    fn decimals_round_half_away_from_zero() {
        assert_eq!(parse_decimal("2.55", 10, 2), Ok(255));
        assert_eq!(parse_decimal("-0.125", 10, 2), Ok(-13));
        assert_eq!(parse_decimal("3", 10, 2), Ok(300));
        assert!(parse_decimal("123456789012", 10, 2).is_err());
        assert!(parse_decimal("abc", 10, 2).is_err());
    }

    #[test]
    fn timestamps_with_zone_become_utc() {
        let mut s = spec("timestamp");
        s.formats = vec!["%Y-%m-%d %H:%M:%S".into()];
        s.timezone = Some("Europe/London".parse().unwrap());
        // 2011-06-01 08:00 BST = 07:00 UTC
        let Parsed::Ts(us) = s.parse(Some("2011-06-01 08:00:00")).unwrap() else {
            panic!()
        };
        assert_eq!(
            DateTime::from_timestamp_micros(us).unwrap().to_rfc3339(),
            "2011-06-01T07:00:00+00:00"
        );
        assert!(s.parse(Some("01/06/2011")).unwrap_err().contains("not a timestamp"));
    }

    #[test]
    fn formats_with_an_offset_give_instants() {
        let mut s = spec("timestamp");
        s.formats = vec!["%d/%m/%Y %H:%M %z".into(), "%Y-%m-%d %H:%M:%S".into()];
        let Parsed::Ts(us) = s.parse(Some("01/06/2011 08:00 +0100")).unwrap() else {
            panic!()
        };
        assert_eq!(
            DateTime::from_timestamp_micros(us).unwrap().to_rfc3339(),
            "2011-06-01T07:00:00+00:00"
        );
        assert!(matches!(s.parse(Some("2011-06-01 08:00:00")), Ok(Parsed::Ts(_))));
        let err = s.parse(Some("junk")).unwrap_err();
        assert!(err.contains("%d/%m/%Y %H:%M %z or %Y-%m-%d %H:%M:%S"), "{err}");
    }

    #[test]
    fn required_columns_reject_missing_values() {
        let mut s = spec("string");
        s.nullable = false;
        assert!(s.parse(Some("")).is_err());
        assert!(s.parse(None).is_err());
    }

    #[test]
    fn column_spec_from_toml() {
        let t: toml::Table = toml::from_str(
            "a = \"int64\"\nb = { type = \"timestamp\", format = \"%d/%m/%Y %H:%M\", timezone = \"UTC\" }\n",
        )
        .unwrap();
        let a: ColumnSpec = t["a"].clone().try_into().unwrap();
        let b: ColumnSpec = t["b"].clone().try_into().unwrap();
        assert_eq!(a.ty, ColumnType::Int64);
        assert_eq!(b.formats, vec!["%d/%m/%Y %H:%M"]);
    }

    #[test]
    fn offsets_in_formats_are_found() {
        for f in ["%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%:z", "%H%::z", "%d %#z"] {
            assert!(has_offset(f), "{f}");
        }
        for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %Z", "%%z", "z", "%:::z", ""] {
            assert!(!has_offset(f), "{f}");
        }
    }
}
