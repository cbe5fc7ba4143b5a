//! Masks: replace a value's characters with a mask character, keeping the
//! first and/or last few (`4891633226863` -> `*********6863`). The length
//! is kept, so a masked card still looks like a card to the people who read
//! the table; with `keep_separators`, spaces, dashes and dots stay in place
//! (`4891 6332 2686 3` -> `**** **** *686 3`).

/// How to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    pub keep_first: usize,
    pub keep_last: usize,
    pub ch: char,
    pub keep_separators: bool,
}

impl Default for Mask {
    fn default() -> Self {
        Self {
            keep_first: 0,
            keep_last: 4,
            ch: '*',
            keep_separators: false,
        }
    }
}

fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '/' | '(' | ')')
}

impl Mask {
    /// Appends the masked `value` to `out`. When the value is no longer
    /// than what would be kept, all of it is masked: a short value shown
    /// whole would not be masked at all.
    pub fn write(&self, value: &str, out: &mut String) {
        let counted = |c: char| !(self.keep_separators && is_sep(c));
        if value.is_ascii() && !self.keep_separators {
            // Fast path: bytes are characters.
            let n = value.len();
            if n <= self.keep_first + self.keep_last {
                out.extend(std::iter::repeat_n(self.ch, n));
                return;
            }
            out.push_str(&value[..self.keep_first]);
            out.extend(std::iter::repeat_n(self.ch, n - self.keep_first - self.keep_last));
            out.push_str(&value[n - self.keep_last..]);
            return;
        }
        let n = value.chars().filter(|&c| counted(c)).count();
        let reveal_all_masked = n <= self.keep_first + self.keep_last;
        let mut i = 0;
        for c in value.chars() {
            if !counted(c) {
                out.push(c);
                continue;
            }
            let keep = !reveal_all_masked && (i < self.keep_first || i >= n - self.keep_last);
            out.push(if keep { c } else { self.ch });
            i += 1;
        }
    }

    pub fn apply(&self, value: &str) -> String {
        let mut s = String::with_capacity(value.len());
        self.write(value, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_last_or_first() {
        let m = Mask::default();
        assert_eq!(m.apply("4891633226863"), "*********6863");
        let first = Mask {
            keep_first: 2,
            keep_last: 0,
            ch: '#',
            keep_separators: false,
        };
        assert_eq!(first.apply("SW1A 1AA"), "SW######");
        assert_eq!(m.apply("123"), "***", "short values are masked whole");
        assert_eq!(m.apply(""), "");
    }

    #[test]
    fn separators_and_unicode() {
        let m = Mask {
            keep_separators: true,
            ..Mask::default()
        };
        assert_eq!(m.apply("4891 6332 2686 3"), "**** **** *686 3");
        let u = Mask {
            keep_first: 1,
            keep_last: 1,
            ..Mask::default()
        };
        assert_eq!(u.apply("Zoë Ångström"), "Z**********m");
    }
}
