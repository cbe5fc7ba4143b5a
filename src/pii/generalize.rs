//! Generalization: keep a coarser version of a value that still answers
//! the analyst's question (which month, which age band, which district)
//! but no longer singles out a person.

use chrono::{Datelike, NaiveDate};

/// The precision a date is cut to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatePart {
    /// `YYYY-MM`
    Month,
    /// `YYYY`
    Year,
}

/// A date cut to a month (`2010-12`) or year (`2010`).
pub fn date(d: NaiveDate, part: DatePart) -> String {
    match part {
        DatePart::Month => format!("{:04}-{:02}", d.year(), d.month()),
        DatePart::Year => format!("{:04}", d.year()),
    }
}

/// A date written as text: the leading `YYYY-MM-DD` (ISO, possibly with a
/// time after it) or `DD/MM/YYYY`.
pub fn parse_date_text(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() >= 10 {
        if let Ok(d) = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d") {
            return Some(d);
        }
        if let Ok(d) = NaiveDate::parse_from_str(&s[..10], "%d/%m/%Y") {
            return Some(d);
        }
    }
    None
}

/// A number in a bucket of `width` (`37` in width 10 -> `30-39`; floats
/// use half-open ranges: `37.5` -> `30-40`).
pub fn bucket(x: f64, width: f64, integral: bool) -> String {
    let lo = (x / width).floor() * width;
    if integral && width.fract() == 0.0 {
        format!("{}-{}", lo as i64, (lo + width) as i64 - 1)
    } else {
        format!("{}-{}", fmt_num(lo), fmt_num(lo + width))
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A postcode cut to its district: the UK outward code (`SW1A 1AA` ->
/// `SW1A`, also without the space: `M11AE` -> `M1`), a US ZIP to its first
/// three digits (`90210-1234` -> `902`), anything else to its first half.
pub fn postcode_district(p: &str) -> String {
    let t: String = p.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
    if let Some((out, inward)) = t.split_once(' ')
        && is_uk_inward(inward)
    {
        return out.to_string();
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() >= 5 && compact.len() <= 7 && compact.is_ascii() && is_uk_inward(&compact[compact.len() - 3..]) {
        return compact[..compact.len() - 3].to_string();
    }
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() == 5 {
        return digits[..3].to_string();
    }
    t.chars().take(t.chars().count().div_ceil(2)).collect()
}

fn is_uk_inward(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_numbers_postcodes() {
        let d = NaiveDate::from_ymd_opt(1984, 7, 19).unwrap();
        assert_eq!(date(d, DatePart::Month), "1984-07");
        assert_eq!(date(d, DatePart::Year), "1984");
        assert_eq!(parse_date_text("19/07/1984"), Some(d));
        assert_eq!(parse_date_text("1984-07-19 10:00:00"), Some(d));
        assert_eq!(parse_date_text("July"), None);
        assert_eq!(bucket(37.0, 10.0, true), "30-39");
        assert_eq!(bucket(-3.0, 10.0, true), "-10--1");
        assert_eq!(bucket(37.5, 10.0, false), "30-40");
        assert_eq!(bucket(0.3, 0.5, false), "0-0.5");
        assert_eq!(postcode_district("SW1A 1AA"), "SW1A");
        assert_eq!(postcode_district("m1 1ae"), "M1");
        assert_eq!(postcode_district("EC1A1BB"), "EC1A");
        assert_eq!(postcode_district("90210-1234"), "902");
    }
}
