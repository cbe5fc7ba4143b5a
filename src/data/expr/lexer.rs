//! Tokens of the expression language, with character positions.

use super::ExprError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An integer literal that fits in an `i64`.
    Int(i64),
    /// A literal with a decimal point or an exponent.
    Float(f64),
    /// A `'single quoted'` string, with `''` unescaped.
    Str(String),
    /// A bare word: a keyword, function name or column name.
    Ident(String),
    /// A `"double quoted"` or `` `backticked` `` column name (never a keyword).
    Quoted(String),
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    /// `//`, integer division.
    SlashSlash,
    Percent,
    /// `=` or `==`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    /// `||`, string concatenation.
    Concat,
    Eof,
}

/// A token and where it sits in the source (0-based character offsets,
/// `end` exclusive).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// Whether this is the bare (unquoted) keyword `kw`, case-insensitively.
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Float(f) => format!("number `{f}`"),
            Tok::Str(s) => format!("string '{}'", s.replace('\'', "''")),
            Tok::Ident(s) if super::parser::is_keyword(s) => {
                format!("keyword `{}`", s.to_ascii_lowercase())
            }
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Quoted(s) => format!("column \"{s}\""),
            Tok::Eof => "the end of the expression".to_string(),
            other => format!("`{}`", symbol(other)),
        }
    }
}

/// The spelling of a symbol token.
pub(crate) fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::SlashSlash => "//",
        Tok::Percent => "%",
        Tok::Eq => "=",
        Tok::NotEq => "!=",
        Tok::Lt => "<",
        Tok::LtEq => "<=",
        Tok::Gt => ">",
        Tok::GtEq => ">=",
        Tok::Concat => "||",
        _ => "?",
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '%' => (Tok::Percent, 1),
            '/' if next == Some('/') => (Tok::SlashSlash, 2),
            '/' => (Tok::Slash, 1),
            '=' if next == Some('=') => (Tok::Eq, 2),
            '=' => (Tok::Eq, 1),
            '!' if next == Some('=') => (Tok::NotEq, 2),
            '!' => {
                return Err(ExprError::at(start, "unexpected `!`")
                    .with_hint("write `not` for negation and `!=` or `<>` for \"not equal\""));
            }
            '<' if next == Some('=') => (Tok::LtEq, 2),
            '<' if next == Some('>') => (Tok::NotEq, 2),
            '<' => (Tok::Lt, 1),
            '>' if next == Some('=') => (Tok::GtEq, 2),
            '>' => (Tok::Gt, 1),
            '|' if next == Some('|') => (Tok::Concat, 2),
            '|' => {
                return Err(ExprError::at(start, "unexpected `|`")
                    .with_hint("write `or` for logical or and `||` to join strings"));
            }
            '&' => {
                return Err(ExprError::at(start, "unexpected `&`").with_hint("write `and` for logical and"));
            }
            '\'' => {
                let (s, end) = quoted(&chars, i, '\'').ok_or_else(|| {
                    ExprError::at(start, "unterminated string literal")
                        .with_hint("close the string with `'` (write `''` for a quote inside it)")
                })?;
                (Tok::Str(s), end - start)
            }
            '"' | '`' => {
                let (s, end) = quoted(&chars, i, c).ok_or_else(|| {
                    ExprError::at(start, "unterminated quoted column name")
                        .with_hint(format!("close the name with `{c}`"))
                })?;
                if s.is_empty() {
                    return Err(ExprError::at(start, "empty quoted column name"));
                }
                (Tok::Quoted(s), end - start)
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) => number(&chars, i)?,
            c if is_ident_start(c) => {
                let mut j = i + 1;
                while j < n && is_ident_char(chars[j]) {
                    j += 1;
                }
                (Tok::Ident(chars[i..j].iter().collect()), j - i)
            }
            other => {
                let hint = match other {
                    ';' => "an expression is not a statement: drop the `;`",
                    '[' | ']' | '{' | '}' => "use `(` and `)` for grouping and `in (a, b)` for lists",
                    _ => "quote column names with special characters: \"my column\"",
                };
                return Err(ExprError::at(start, format!("unexpected character `{other}`")).with_hint(hint));
            }
        };
        out.push(Token {
            tok,
            start,
            end: start + len,
        });
        i = start + len;
    }
    out.push(Token {
        tok: Tok::Eof,
        start: n,
        end: n,
    });
    Ok(out)
}

/// Reads a quoted run starting at `chars[i] == q`; a doubled `q` stands for
/// itself. Returns the content and the index past the closing quote.
fn quoted(chars: &[char], i: usize, q: char) -> Option<(String, usize)> {
    let mut s = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        if chars[j] == q {
            if chars.get(j + 1) == Some(&q) {
                s.push(q);
                j += 2;
                continue;
            }
            return Some((s, j + 1));
        }
        s.push(chars[j]);
        j += 1;
    }
    None
}

fn number(chars: &[char], i: usize) -> Result<(Tok, usize), ExprError> {
    let n = chars.len();
    let mut j = i;
    let mut is_float = false;
    while j < n && chars[j].is_ascii_digit() {
        j += 1;
    }
    if j < n && chars[j] == '.' {
        is_float = true;
        j += 1;
        while j < n && chars[j].is_ascii_digit() {
            j += 1;
        }
    }
    if j < n && (chars[j] == 'e' || chars[j] == 'E') {
        let mut k = j + 1;
        if k < n && (chars[k] == '+' || chars[k] == '-') {
            k += 1;
        }
        if k < n && chars[k].is_ascii_digit() {
            is_float = true;
            while k < n && chars[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    if j < n && is_ident_char(chars[j]) {
        return Err(
            ExprError::at(j, format!("unexpected `{}` right after a number", chars[j]))
                .with_hint("put a space or an operator between a number and a name"),
        );
    }
    let text: String = chars[i..j].iter().collect();
    let tok = if is_float {
        Tok::Float(
            text.parse()
                .map_err(|_| ExprError::at(i, format!("invalid number `{text}`")))?,
        )
    } else {
        match text.parse::<i64>() {
            Ok(v) => Tok::Int(v),
            Err(_) => {
                return Err(ExprError::at(i, format!("integer `{text}` does not fit in int64"))
                    .with_hint(format!("write `{text}.0` for a float64")));
            }
        }
    };
    Ok((tok, j - i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn symbols_and_words() {
        assert_eq!(
            toks("a >= 1 and b <> 'x''y' || \"c d\" // 2"),
            vec![
                Tok::Ident("a".into()),
                Tok::GtEq,
                Tok::Int(1),
                Tok::Ident("and".into()),
                Tok::Ident("b".into()),
                Tok::NotEq,
                Tok::Str("x'y".into()),
                Tok::Concat,
                Tok::Quoted("c d".into()),
                Tok::SlashSlash,
                Tok::Int(2),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("= == != < <= > >= + - * / %"),
            vec![
                Tok::Eq,
                Tok::Eq,
                Tok::NotEq,
                Tok::Lt,
                Tok::LtEq,
                Tok::Gt,
                Tok::GtEq,
                Tok::Plus,
                Tok::Minus,
                Tok::Star,
                Tok::Slash,
                Tok::Percent,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("1 2.5 .5 1e3 1.5E-2 7."),
            vec![
                Tok::Int(1),
                Tok::Float(2.5),
                Tok::Float(0.5),
                Tok::Float(1000.0),
                Tok::Float(0.015),
                Tok::Float(7.0),
                Tok::Eof
            ]
        );
        let e = tokenize("99999999999999999999").unwrap_err();
        assert!(e.message.contains("does not fit"), "{e}");
        let e = tokenize("x > 12abc").unwrap_err();
        assert_eq!(e.position, Some(6));
    }

    #[test]
    fn quoted_names() {
        assert_eq!(
            toks("`a``b` \"x\"\"y\" \"customer.address.city\""),
            vec![
                Tok::Quoted("a`b".into()),
                Tok::Quoted("x\"y".into()),
                Tok::Quoted("customer.address.city".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_are_characters() {
        let t = tokenize("'héllo' = x").unwrap();
        assert_eq!((t[0].start, t[0].end), (0, 7));
        assert_eq!((t[1].start, t[1].end), (8, 9));
        assert_eq!((t[2].start, t[2].end), (10, 11));
        assert_eq!((t[3].start, t[3].end), (11, 11));
    }

    #[test]
    fn lexical_errors() {
        let e = tokenize("name = 'abc").unwrap_err();
        assert_eq!(e.position, Some(7));
        assert!(e.message.contains("unterminated string"));
        assert!(e.hint.is_some());
        let e = tokenize("a ! b").unwrap_err();
        assert_eq!(e.position, Some(2));
        let e = tokenize("a && b").unwrap_err();
        assert!(e.hint.unwrap().contains("and"));
        let e = tokenize("a | b").unwrap_err();
        assert!(e.hint.unwrap().contains("||"));
        let e = tokenize("a; b").unwrap_err();
        assert_eq!(e.position, Some(1));
        let e = tokenize("\"\"").unwrap_err();
        assert!(e.message.contains("empty"));
        let e = tokenize("\"abc").unwrap_err();
        assert!(e.message.contains("unterminated quoted"));
    }
}
