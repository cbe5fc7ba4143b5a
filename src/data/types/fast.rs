//! A fast path for the common fixed date and time formats (`%Y-%m-%d
//! %H:%M:%S`, `%m/%d/%Y %H:%M`, `%d.%m.%Y`, ...), which chrono's
//! `parse_from_str` re-parses for every cell (a third of a CSV extract).
//!
//! It reads the format and the text side by side and understands only
//! `%Y %m %d %H %M %S`, ASCII literals and single spaces. It answers
//! `Some` only when the text has the plain shape (digits exactly where the
//! format wants numbers, literals exactly matching, nothing left over) and
//! every field is in range; in every other case (other specifiers, signs,
//! extra whitespace, a leap second, an impossible date, an error) it answers
//! `None` and the caller asks chrono. So a `Some` is always what chrono
//! would return: the test below checks that over many generated strings.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Year, month, day, hour, minute, second, as read.
type Fields = [Option<u32>; 6];

fn fields(s: &[u8], f: &[u8]) -> Option<Fields> {
    let mut out: Fields = [None; 6];
    let (mut i, mut j) = (0, 0);
    while j < f.len() {
        let c = f[j];
        if c == b'%' {
            // chrono reads up to `max` digits greedily (at least one); the
            // year unsigned takes up to 4, and fewer is left to chrono.
            let (slot, min, max) = match f.get(j + 1)? {
                b'Y' => (0, 4, 4),
                b'm' => (1, 1, 2),
                b'd' => (2, 1, 2),
                b'H' => (3, 1, 2),
                b'M' => (4, 1, 2),
                b'S' => (5, 1, 2),
                _ => return None,
            };
            if out[slot].is_some() {
                return None; // a field twice: chrono checks they agree
            }
            let mut v = 0u32;
            let mut n = 0;
            while n < max && i < s.len() && s[i].is_ascii_digit() {
                v = v * 10 + u32::from(s[i] - b'0');
                i += 1;
                n += 1;
            }
            if n < min {
                return None;
            }
            out[slot] = Some(v);
            j += 2;
        } else if c == b' ' {
            // chrono skips any run of whitespace here; one space is the
            // plain shape.
            if s.get(i) != Some(&b' ') {
                return None;
            }
            i += 1;
            j += 1;
        } else if c.is_ascii() && !c.is_ascii_whitespace() {
            if s.get(i) != Some(&c) {
                return None;
            }
            i += 1;
            j += 1;
        } else {
            return None;
        }
    }
    (i == s.len()).then_some(out)
}

fn ymd(f: &Fields) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(f[0]?).ok()?, f[1]?, f[2]?)
}

/// `NaiveDate::parse_from_str(s, format)` when the format is a plain date
/// format (no time fields) and `s` has its plain shape; else None.
pub(super) fn date(s: &str, format: &str) -> Option<NaiveDate> {
    let f = fields(s.as_bytes(), format.as_bytes())?;
    if f[3..].iter().any(Option::is_some) {
        return None;
    }
    ymd(&f)
}

/// `NaiveDateTime::parse_from_str(s, format)` when the format has a date,
/// an hour and a minute (seconds optional, as in chrono) and `s` has its
/// plain shape; else None.
pub(super) fn datetime(s: &str, format: &str) -> Option<NaiveDateTime> {
    let f = fields(s.as_bytes(), format.as_bytes())?;
    // Second 60 is a leap second in chrono: left to it.
    let second = f[5].unwrap_or(0);
    if second >= 60 {
        return None;
    }
    let time = NaiveTime::from_hms_opt(f[3]?, f[4]?, second)?;
    Some(ymd(&f)?.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: &[&str] = &[
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%m/%d/%Y %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y",
        "%Y-%m-%d",
        "%Y%m%d%H%M%S",
        "%H:%M %d/%m/%Y",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %I:%M %p",
        "%Y-%m-%d  %H:%M",
        "%Y-%m-%d\t%H:%M",
    ];

    /// Text shaped like `format` with random digits and random damage:
    /// short and long numbers, out-of-range fields, signs, whitespace,
    /// wrong separators, leftovers, non-ASCII.
    fn generate(format: &str, rng: &mut fastrand::Rng) -> String {
        let mut s = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '%' {
                let spec = chars.next().unwrap_or('%');
                let plain = match spec {
                    'Y' => format!("{:04}", rng.u32(0..3000)),
                    'm' => format!("{:02}", rng.u32(1..13)),
                    'd' => format!("{:02}", rng.u32(1..32)),
                    'H' => format!("{:02}", rng.u32(0..24)),
                    'M' | 'S' => format!("{:02}", rng.u32(0..61)),
                    'I' => format!("{:02}", rng.u32(1..13)),
                    'p' => ["AM", "PM", "am"][rng.usize(0..3)].to_string(),
                    'f' => rng.u32(0..1000).to_string(),
                    _ => String::new(),
                };
                let v = match rng.u32(0..30) {
                    0 => rng.u32(0..10).to_string(),
                    1 => rng.u32(0..1000).to_string(),
                    2 => format!("-{plain}"),
                    3 => format!("+{plain}"),
                    4 => format!(" {plain}"),
                    5 => rng.u32(0..100_000).to_string(),
                    _ => plain,
                };
                if spec == 'f' {
                    s.push('.');
                }
                s.push_str(&v);
            } else {
                match rng.u32(0..100) {
                    0 => {}
                    1 => s.push('x'),
                    2 => s.push_str("  "),
                    3 => s.push('é'),
                    _ => s.push(c),
                }
            }
        }
        match rng.u32(0..30) {
            0 => s.push(' '),
            1 => s.push('1'),
            2 => s.insert(0, ' '),
            3 => {
                let mut at = rng.usize(0..=s.len());
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.truncate(at)
            }
            _ => {}
        }
        s
    }

    #[test]
    fn agrees_with_chrono_on_valid_and_invalid_text() {
        let mut rng = fastrand::Rng::with_seed(20111209);
        let (mut fast_hits, mut chrono_ok, mut chrono_err) = (0, 0, 0);
        for format in FORMATS {
            for _ in 0..20_000 {
                let s = generate(format, &mut rng);
                let want_dt = NaiveDateTime::parse_from_str(&s, format).ok();
                let want_d = NaiveDate::parse_from_str(&s, format).ok();
                if want_dt.is_some() || want_d.is_some() {
                    chrono_ok += 1;
                } else {
                    chrono_err += 1;
                }
                if let Some(got) = datetime(&s, format) {
                    fast_hits += 1;
                    assert_eq!(Some(got), want_dt, "`{s}` in `{format}`");
                }
                if let Some(got) = date(&s, format) {
                    fast_hits += 1;
                    assert_eq!(Some(got), want_d, "`{s}` in `{format}`");
                }
            }
        }
        // The generator must exercise both sides, and the fast path must
        // take most of the valid plain-shaped inputs.
        assert!(chrono_ok > 50_000 && chrono_err > 50_000, "{chrono_ok} / {chrono_err}");
        assert!(fast_hits > 40_000, "{fast_hits}");
    }

    #[test]
    fn common_shapes() {
        let dt = |s, f| datetime(s, f).map(|d| d.to_string());
        assert_eq!(
            dt("2010-12-01 08:26:00", "%Y-%m-%d %H:%M:%S").as_deref(),
            Some("2010-12-01 08:26:00")
        );
        assert_eq!(
            dt("12/1/2010 8:26", "%m/%d/%Y %H:%M").as_deref(),
            Some("2010-12-01 08:26:00")
        );
        assert_eq!(dt("2011-02-29 08:26:00", "%Y-%m-%d %H:%M:%S"), None, "no such day");
        assert_eq!(
            dt("2016-12-31 23:59:60", "%Y-%m-%d %H:%M:%S"),
            None,
            "leap second: chrono's"
        );
        assert_eq!(
            dt("2010-12-01  08:26:00", "%Y-%m-%d %H:%M:%S"),
            None,
            "two spaces: chrono's"
        );
        assert_eq!(dt("2010-12-01", "%Y-%m-%d"), None, "no time");
        assert_eq!(
            date("2010-12-01", "%Y-%m-%d").map(|d| d.to_string()).as_deref(),
            Some("2010-12-01")
        );
        assert_eq!(date("2010-12-01 08:26", "%Y-%m-%d %H:%M"), None);
        assert_eq!(
            dt("2010-12-01 08:26:00", "%Y-%m-%d %H:%M:%S%z"),
            None,
            "unsupported: chrono's"
        );
    }
}
