//! A Pratt parser from tokens to the syntax tree.
//!
//! Binding powers, loosest first: `or` 1, `and` 2, prefix `not` 3,
//! comparisons / `like` / `in` / `is` / `between` 4 (non-associative),
//! `||` 5, `+ -` 6, `* / // %` 7, unary `-` 8.

use super::ExprError;
use super::ast::{BinOp, CastTarget, Literal, Node, NodeKind};
use super::lexer::{Tok, Token, tokenize};
use super::temporal;

const BP_OR: u8 = 1;
const BP_AND: u8 = 2;
const BP_NOT: u8 = 3;
const BP_CMP: u8 = 4;
const BP_CONCAT: u8 = 5;
const BP_ADD: u8 = 6;
const BP_MUL: u8 = 7;
const BP_UNARY: u8 = 8;

const KEYWORDS: [&str; 18] = [
    "and", "or", "not", "like", "ilike", "in", "is", "null", "between", "true", "false", "case", "when", "then",
    "else", "end", "cast", "as",
];

/// Whether a bare word is reserved (write it `"quoted"` to use it as a
/// column name).
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// The type names `cast(x as T)` accepts.
pub(crate) const CAST_TYPES: [&str; 17] = [
    "int64",
    "bigint",
    "int",
    "integer",
    "float64",
    "double",
    "float",
    "real",
    "string",
    "text",
    "varchar",
    "bool",
    "boolean",
    "date",
    "timestamp",
    "decimal",
    "numeric",
];

pub(crate) fn parse(src: &str) -> Result<Node, ExprError> {
    let toks = tokenize(src)?;
    if toks.len() == 1 {
        return Err(ExprError::at(0, "empty expression").with_hint("write a condition such as `Quantity > 0`"));
    }
    let mut p = Parser { toks, i: 0 };
    let node = p.expr(0)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let hint = match &t.tok {
            Tok::RParen => "this `)` has no matching `(`".to_string(),
            Tok::Ident(w) if is_keyword(w) => {
                format!("`{}` cannot follow here", w.to_ascii_lowercase())
            }
            _ => "is an operator (and, or, =, +, ...) or a comma missing?".to_string(),
        };
        return Err(ExprError::at(
            t.start,
            format!("unexpected {} after a complete expression", t.describe()),
        )
        .with_hint(hint));
    }
    Ok(node)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

enum Infix {
    Bin(BinOp),
    Like { negated: bool, ci: bool },
    In { negated: bool },
    Between { negated: bool },
    Is,
}

fn node(kind: NodeKind, pos: usize, start: usize, end: usize) -> Node {
    Node { kind, pos, start, end }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek_at(&self, k: usize) -> &Token {
        &self.toks[(self.i + k).min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn expect(&mut self, tok: Tok, what: &str, hint: &str) -> Result<Token, ExprError> {
        let t = self.peek();
        if t.tok == tok {
            return Ok(self.advance());
        }
        Err(ExprError::at(t.start, format!("expected {what}, found {}", t.describe())).with_hint(hint))
    }

    fn expect_kw(&mut self, kw: &str, hint: &str) -> Result<Token, ExprError> {
        let t = self.peek();
        if t.is_kw(kw) {
            return Ok(self.advance());
        }
        Err(ExprError::at(t.start, format!("expected `{kw}`, found {}", t.describe())).with_hint(hint))
    }

    fn expr(&mut self, min_bp: u8) -> Result<Node, ExprError> {
        let mut lhs = self.prefix()?;
        let mut after_cmp = false;
        loop {
            let t = self.peek().clone();
            let (infix, bp, width) = match &t.tok {
                Tok::Eq => (Infix::Bin(BinOp::Eq), BP_CMP, 1),
                Tok::NotEq => (Infix::Bin(BinOp::NotEq), BP_CMP, 1),
                Tok::Lt => (Infix::Bin(BinOp::Lt), BP_CMP, 1),
                Tok::LtEq => (Infix::Bin(BinOp::LtEq), BP_CMP, 1),
                Tok::Gt => (Infix::Bin(BinOp::Gt), BP_CMP, 1),
                Tok::GtEq => (Infix::Bin(BinOp::GtEq), BP_CMP, 1),
                Tok::Concat => (Infix::Bin(BinOp::Concat), BP_CONCAT, 1),
                Tok::Plus => (Infix::Bin(BinOp::Add), BP_ADD, 1),
                Tok::Minus => (Infix::Bin(BinOp::Sub), BP_ADD, 1),
                Tok::Star => (Infix::Bin(BinOp::Mul), BP_MUL, 1),
                Tok::Slash => (Infix::Bin(BinOp::Div), BP_MUL, 1),
                Tok::SlashSlash => (Infix::Bin(BinOp::IntDiv), BP_MUL, 1),
                Tok::Percent => (Infix::Bin(BinOp::Rem), BP_MUL, 1),
                Tok::Ident(w) => match w.to_ascii_lowercase().as_str() {
                    "or" => (Infix::Bin(BinOp::Or), BP_OR, 1),
                    "and" => (Infix::Bin(BinOp::And), BP_AND, 1),
                    "like" => (
                        Infix::Like {
                            negated: false,
                            ci: false,
                        },
                        BP_CMP,
                        1,
                    ),
                    "ilike" => (
                        Infix::Like {
                            negated: false,
                            ci: true,
                        },
                        BP_CMP,
                        1,
                    ),
                    "in" => (Infix::In { negated: false }, BP_CMP, 1),
                    "between" => (Infix::Between { negated: false }, BP_CMP, 1),
                    "is" => (Infix::Is, BP_CMP, 1),
                    "not" => {
                        let n = self.peek_at(1);
                        let infix = if n.is_kw("like") {
                            Infix::Like {
                                negated: true,
                                ci: false,
                            }
                        } else if n.is_kw("ilike") {
                            Infix::Like {
                                negated: true,
                                ci: true,
                            }
                        } else if n.is_kw("in") {
                            Infix::In { negated: true }
                        } else if n.is_kw("between") {
                            Infix::Between { negated: true }
                        } else {
                            return Err(ExprError::at(
                                t.start,
                                format!(
                                    "expected `like`, `ilike`, `in` or `between` after `not`, found {}",
                                    n.describe()
                                ),
                            )
                            .with_hint(
                                "`not` goes before a condition (`not a = b`) or forms \
                                 `not like`, `not in`, `not between`; for inequality write `!=`",
                            ));
                        };
                        (infix, BP_CMP, 2)
                    }
                    _ => break,
                },
                _ => break,
            };
            if bp < min_bp {
                break;
            }
            if bp == BP_CMP && after_cmp {
                return Err(ExprError::at(t.start, "comparisons cannot be chained")
                    .with_hint("combine them with `and` (`a < b and b < c`), or add parentheses"));
            }
            after_cmp = bp == BP_CMP;
            for _ in 0..width {
                self.advance();
            }
            let start = lhs.start;
            lhs = match infix {
                Infix::Bin(op) => {
                    let rhs = self.expr(bp + 1)?;
                    let end = rhs.end;
                    node(
                        NodeKind::Binary {
                            op,
                            left: Box::new(lhs),
                            right: Box::new(rhs),
                        },
                        t.start,
                        start,
                        end,
                    )
                }
                Infix::Like { negated, ci } => {
                    let pattern = self.expr(BP_CONCAT)?;
                    let end = pattern.end;
                    node(
                        NodeKind::Like {
                            expr: Box::new(lhs),
                            pattern: Box::new(pattern),
                            negated,
                            case_insensitive: ci,
                        },
                        t.start,
                        start,
                        end,
                    )
                }
                Infix::In { negated } => {
                    let open = self.expect(
                        Tok::LParen,
                        "`(` after `in`",
                        "write a list in parentheses: `Country in ('France', 'Spain')`",
                    )?;
                    if self.peek().tok == Tok::RParen {
                        return Err(ExprError::at(open.start, "empty `in` list")
                            .with_hint("list at least one value: `x in (1, 2)`"));
                    }
                    let mut list = vec![self.expr(0)?];
                    while self.peek().tok == Tok::Comma {
                        self.advance();
                        list.push(self.expr(0)?);
                    }
                    let close = self.expect(
                        Tok::RParen,
                        "`,` or `)` in the `in` list",
                        "separate the values with commas and close the list with `)`",
                    )?;
                    node(
                        NodeKind::InList {
                            expr: Box::new(lhs),
                            list,
                            negated,
                        },
                        t.start,
                        start,
                        close.end,
                    )
                }
                Infix::Between { negated } => {
                    let low = self.expr(BP_CONCAT)?;
                    self.expect_kw("and", "write `x between low and high`")?;
                    let high = self.expr(BP_CONCAT)?;
                    let end = high.end;
                    node(
                        NodeKind::Between {
                            expr: Box::new(lhs),
                            low: Box::new(low),
                            high: Box::new(high),
                            negated,
                        },
                        t.start,
                        start,
                        end,
                    )
                }
                Infix::Is => {
                    let negated = self.peek().is_kw("not");
                    if negated {
                        self.advance();
                    }
                    let null = self.expect_kw(
                        "null",
                        "write `x is null` or `x is not null`; to compare values use `=` or `!=`",
                    )?;
                    node(
                        NodeKind::IsNull {
                            expr: Box::new(lhs),
                            negated,
                        },
                        t.start,
                        start,
                        null.end,
                    )
                }
            };
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Node, ExprError> {
        let t = self.advance();
        let lit = |l: Literal| node(NodeKind::Literal(l), t.start, t.start, t.end);
        match &t.tok {
            Tok::Int(i) => Ok(lit(Literal::Int(*i))),
            Tok::Float(f) => Ok(lit(Literal::Float(*f))),
            Tok::Str(s) => Ok(lit(Literal::Str(s.clone()))),
            Tok::Quoted(name) => Ok(node(NodeKind::Column(name.clone()), t.start, t.start, t.end)),
            Tok::LParen => {
                let inner = self.expr(0)?;
                let close = self.peek().clone();
                if close.tok != Tok::RParen {
                    return Err(ExprError::at(
                        close.start,
                        format!(
                            "expected `)` to close the `(` at character {}, found {}",
                            t.start,
                            close.describe()
                        ),
                    )
                    .with_hint("add the missing `)` (or an operator, if one is missing)"));
                }
                self.advance();
                Ok(Node {
                    start: t.start,
                    end: close.end,
                    ..inner
                })
            }
            Tok::Minus => {
                let operand = self.expr(BP_UNARY)?;
                let end = operand.end;
                Ok(node(NodeKind::Neg(Box::new(operand)), t.start, t.start, end))
            }
            Tok::Plus => {
                let operand = self.expr(BP_UNARY)?;
                Ok(Node {
                    start: t.start,
                    ..operand
                })
            }
            Tok::Ident(word) => self.word(&t, word),
            Tok::Eof => {
                Err(ExprError::at(t.start, "the expression ends too early")
                    .with_hint("an operand is missing at the end"))
            }
            _ => Err(ExprError::at(
                t.start,
                format!("expected a value, column or function, found {}", t.describe()),
            )
            .with_hint(match &t.tok {
                Tok::RParen => "an operand is missing before `)`",
                Tok::Comma => "an operand is missing before `,`",
                _ => "an operand is missing before this operator",
            })),
        }
    }

    fn word(&mut self, t: &Token, word: &str) -> Result<Node, ExprError> {
        let lower = word.to_ascii_lowercase();
        let lit = |l: Literal| node(NodeKind::Literal(l), t.start, t.start, t.end);
        let next = self.peek().clone();
        match lower.as_str() {
            "null" => return Ok(lit(Literal::Null)),
            "true" => return Ok(lit(Literal::Bool(true))),
            "false" => return Ok(lit(Literal::Bool(false))),
            "not" => {
                let operand = self.expr(BP_NOT)?;
                let end = operand.end;
                return Ok(node(NodeKind::Not(Box::new(operand)), t.start, t.start, end));
            }
            "case" => return self.case(t),
            "cast" if next.tok == Tok::LParen => return self.cast(t),
            "date" | "timestamp" => {
                if let Tok::Str(s) = &next.tok {
                    self.advance();
                    let value = if lower == "date" {
                        temporal::parse_date(s).map(Literal::Date).ok_or_else(|| {
                            ExprError::at(next.start, format!("invalid date '{s}'"))
                                .with_hint("write dates as date 'YYYY-MM-DD', e.g. date '2010-12-01'")
                        })?
                    } else {
                        temporal::parse_timestamp(s).map(Literal::Timestamp).ok_or_else(|| {
                            ExprError::at(next.start, format!("invalid timestamp '{s}'")).with_hint(
                                "write timestamps as timestamp 'YYYY-MM-DD HH:MM:SS', \
                                         e.g. timestamp '2010-12-01 08:26:00'",
                            )
                        })?
                    };
                    return Ok(node(NodeKind::Literal(value), t.start, t.start, next.end));
                }
            }
            _ => {}
        }
        if next.tok == Tok::LParen && !is_keyword(word) {
            return self.call(t, lower);
        }
        if is_keyword(word) {
            return Err(ExprError::at(
                t.start,
                format!("expected a value, column or function, found {}", t.describe()),
            )
            .with_hint(format!(
                "an operand is missing; if `{word}` is a column, quote it: \"{word}\""
            )));
        }
        Ok(node(NodeKind::Column(word.to_string()), t.start, t.start, t.end))
    }

    fn call(&mut self, name_tok: &Token, name: String) -> Result<Node, ExprError> {
        self.advance(); // (
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            args.push(self.expr(0)?);
            while self.peek().tok == Tok::Comma {
                self.advance();
                args.push(self.expr(0)?);
            }
        }
        let close = self.expect(
            Tok::RParen,
            &format!("`,` or `)` in the arguments of {name}()"),
            "separate arguments with commas and close the call with `)`",
        )?;
        Ok(node(
            NodeKind::Call { name, args },
            name_tok.start,
            name_tok.start,
            close.end,
        ))
    }

    fn cast(&mut self, cast_tok: &Token) -> Result<Node, ExprError> {
        self.advance(); // (
        let expr = self.expr(0)?;
        self.expect_kw("as", "write `cast(x as int64)`")?;
        let ty_tok = self.advance();
        let type_hint = || "types: int64, float64, string, bool, date, timestamp, decimal(p,s)".to_string();
        let word = match &ty_tok.tok {
            Tok::Ident(w) => w.to_ascii_lowercase(),
            _ => {
                return Err(ExprError::at(
                    ty_tok.start,
                    format!("expected a type name, found {}", ty_tok.describe()),
                )
                .with_hint(type_hint()));
            }
        };
        let to = match word.as_str() {
            "int64" | "bigint" | "int" | "integer" | "long" => CastTarget::Int64,
            "float64" | "double" | "float" | "real" => CastTarget::Float64,
            "string" | "text" | "varchar" | "utf8" => {
                // Accept and ignore a length: varchar(20).
                if self.peek().tok == Tok::LParen && matches!(self.peek_at(1).tok, Tok::Int(_)) {
                    self.advance();
                    self.advance();
                    self.expect(Tok::RParen, "`)`", "write `varchar(20)`")?;
                }
                CastTarget::Utf8
            }
            "bool" | "boolean" => CastTarget::Boolean,
            "date" => CastTarget::Date,
            "timestamp" | "datetime" => CastTarget::Timestamp,
            "decimal" | "numeric" => self.decimal_args()?,
            _ => {
                let mut err = ExprError::at(ty_tok.start, format!("unknown type `{word}`"));
                err.hint = Some(match super::did_you_mean(&word, CAST_TYPES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? {}", type_hint()),
                    None => type_hint(),
                });
                return Err(err);
            }
        };
        let close = self.expect(Tok::RParen, "`)` to close cast(...)", "write `cast(x as int64)`")?;
        Ok(node(
            NodeKind::Cast {
                expr: Box::new(expr),
                to,
            },
            cast_tok.start,
            cast_tok.start,
            close.end,
        ))
    }

    /// `decimal`, `decimal(p)` or `decimal(p, s)`.
    fn decimal_args(&mut self) -> Result<CastTarget, ExprError> {
        if self.peek().tok != Tok::LParen {
            return Ok(CastTarget::Decimal(38, 10));
        }
        let open = self.advance();
        let hint = "precision is 1 to 38 digits and scale 0 to the precision: decimal(10,2)";
        let int = |p: &mut Parser| -> Result<(i64, usize), ExprError> {
            let t = p.advance();
            match t.tok {
                Tok::Int(i) => Ok((i, t.start)),
                _ => Err(ExprError::at(
                    t.start,
                    format!("expected a number in decimal(p, s), found {}", t.describe()),
                )
                .with_hint(hint)),
            }
        };
        let (p, p_pos) = int(self)?;
        let (s, s_pos) = if self.peek().tok == Tok::Comma {
            self.advance();
            int(self)?
        } else {
            (0, open.start)
        };
        self.expect(Tok::RParen, "`)`", hint)?;
        if !(1..=38).contains(&p) {
            return Err(ExprError::at(p_pos, format!("decimal precision {p} is out of range")).with_hint(hint));
        }
        if s < 0 || s > p {
            return Err(ExprError::at(s_pos, format!("decimal scale {s} is out of range")).with_hint(hint));
        }
        Ok(CastTarget::Decimal(p as u8, s as i8))
    }

    fn case(&mut self, case_tok: &Token) -> Result<Node, ExprError> {
        // `case x when v then ...` compares x with each v.
        let operand = if self.peek().is_kw("when") {
            None
        } else {
            Some(self.expr(0)?)
        };
        let mut branches = Vec::new();
        while self.peek().is_kw("when") {
            let when = self.advance();
            let mut cond = self.expr(0)?;
            if let Some(op) = &operand {
                let (start, end) = (cond.start, cond.end);
                cond = node(
                    NodeKind::Binary {
                        op: BinOp::Eq,
                        left: Box::new(op.clone()),
                        right: Box::new(cond),
                    },
                    when.start,
                    start,
                    end,
                );
            }
            self.expect_kw("then", "write `when condition then value`")?;
            let value = self.expr(0)?;
            branches.push((cond, value));
        }
        if branches.is_empty() {
            let t = self.peek();
            return Err(ExprError::at(
                t.start,
                format!("expected `when` in case expression, found {}", t.describe()),
            )
            .with_hint("write `case when condition then value [else other] end`"));
        }
        let otherwise = if self.peek().is_kw("else") {
            self.advance();
            Some(Box::new(self.expr(0)?))
        } else {
            None
        };
        let t = self.peek().clone();
        if !t.is_kw("end") {
            return Err(ExprError::at(
                t.start,
                format!(
                    "expected `when`, `else` or `end` in the case expression at character {}, found {}",
                    case_tok.start,
                    t.describe()
                ),
            )
            .with_hint("every `case` closes with `end`"));
        }
        self.advance();
        Ok(node(
            NodeKind::Case { branches, otherwise },
            case_tok.start,
            case_tok.start,
            t.end,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the tree fully parenthesized, for precedence tests.
    fn show(n: &Node) -> String {
        match &n.kind {
            NodeKind::Literal(l) => match l {
                Literal::Null => "null".into(),
                Literal::Bool(b) => b.to_string(),
                Literal::Int(i) => i.to_string(),
                Literal::Float(f) => format!("{f:?}"),
                Literal::Str(s) => format!("'{s}'"),
                Literal::Date(d) => format!("date({d})"),
                Literal::Timestamp(t) => format!("ts({t})"),
            },
            NodeKind::Column(c) => c.clone(),
            NodeKind::Neg(e) => format!("(-{})", show(e)),
            NodeKind::Not(e) => format!("(not {})", show(e)),
            NodeKind::Binary { op, left, right } => {
                format!("({} {} {})", show(left), op.symbol(), show(right))
            }
            NodeKind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => format!(
                "({} {}{} {})",
                show(expr),
                if *negated { "not " } else { "" },
                if *case_insensitive { "ilike" } else { "like" },
                show(pattern)
            ),
            NodeKind::InList { expr, list, negated } => format!(
                "({} {}in [{}])",
                show(expr),
                if *negated { "not " } else { "" },
                list.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            NodeKind::IsNull { expr, negated } => {
                format!("({} is {}null)", show(expr), if *negated { "not " } else { "" })
            }
            NodeKind::Between {
                expr,
                low,
                high,
                negated,
            } => format!(
                "({} {}between {} and {})",
                show(expr),
                if *negated { "not " } else { "" },
                show(low),
                show(high)
            ),
            NodeKind::Call { name, args } => {
                format!("{name}({})", args.iter().map(show).collect::<Vec<_>>().join(", "))
            }
            NodeKind::Cast { expr, to } => format!("cast({} as {to:?})", show(expr)),
            NodeKind::Case { branches, otherwise } => {
                let mut s = "case".to_string();
                for (c, v) in branches {
                    s += &format!(" when {} then {}", show(c), show(v));
                }
                if let Some(o) = otherwise {
                    s += &format!(" else {}", show(o));
                }
                s + " end"
            }
        }
    }

    fn p(src: &str) -> String {
        show(&parse(src).unwrap_or_else(|e| panic!("{src}: {e}")))
    }

    fn err(src: &str) -> ExprError {
        parse(src).expect_err(src)
    }

    #[test]
    fn arithmetic_precedence() {
        assert_eq!(p("1 + 2 * 3"), "(1 + (2 * 3))");
        assert_eq!(p("(1 + 2) * 3"), "((1 + 2) * 3)");
        assert_eq!(p("1 - 2 - 3"), "((1 - 2) - 3)");
        assert_eq!(p("8 / 4 / 2"), "((8 / 4) / 2)");
        assert_eq!(p("a % b * c // d"), "(((a % b) * c) // d)");
        assert_eq!(p("-a * b"), "((-a) * b)");
        assert_eq!(p("- -a"), "(-(-a))");
        assert_eq!(p("+a"), "a");
        assert_eq!(p("a - -1"), "(a - (-1))");
    }

    #[test]
    fn logical_precedence() {
        assert_eq!(p("a or b and c"), "(a or (b and c))");
        assert_eq!(p("a and b or c"), "((a and b) or c)");
        assert_eq!(p("not a and b"), "((not a) and b)");
        assert_eq!(p("not a = b"), "(not (a = b))");
        assert_eq!(p("not not a"), "(not (not a))");
        assert_eq!(
            p("Quantity > 0 and UnitPrice * 2 <= 10 or x"),
            "(((Quantity > 0) and ((UnitPrice * 2) <= 10)) or x)"
        );
        assert_eq!(p("a AND b Or NOT c"), "((a and b) or (not c))");
    }

    #[test]
    fn concat_precedence() {
        assert_eq!(p("a || b + 1"), "(a || (b + 1))");
        assert_eq!(p("a || b = c"), "((a || b) = c)");
        assert_eq!(p("a || b || c"), "((a || b) || c)");
    }

    #[test]
    fn comparison_operators() {
        for (src, op) in [
            ("a = 1", "="),
            ("a == 1", "="),
            ("a != 1", "!="),
            ("a <> 1", "!="),
            ("a < 1", "<"),
            ("a <= 1", "<="),
            ("a > 1", ">"),
            ("a >= 1", ">="),
        ] {
            assert_eq!(p(src), format!("(a {op} 1)"));
        }
    }

    #[test]
    fn predicates() {
        assert_eq!(p("InvoiceNo not like 'C%'"), "(InvoiceNo not like 'C%')");
        assert_eq!(p("a LIKE 'x' || b"), "(a like ('x' || b))");
        assert_eq!(p("a ilike 'x'"), "(a ilike 'x')");
        assert_eq!(p("a not ilike 'x'"), "(a not ilike 'x')");
        assert_eq!(
            p("Country in ('United Kingdom', 'France')"),
            "(Country in ['United Kingdom', 'France'])"
        );
        assert_eq!(p("a not in (1, 2 + 3)"), "(a not in [1, (2 + 3)])");
        assert_eq!(p("CustomerID is not null"), "(CustomerID is not null)");
        assert_eq!(p("a + 1 is null"), "((a + 1) is null)");
        assert_eq!(p("UnitPrice between 0 and 10000"), "(UnitPrice between 0 and 10000)");
        assert_eq!(p("a between 1 and 2 and b"), "((a between 1 and 2) and b)");
        assert_eq!(
            p("a not between b - 1 and b + 1 or c"),
            "((a not between (b - 1) and (b + 1)) or c)"
        );
        assert_eq!(p("not a in (1)"), "(not (a in [1]))");
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(p("'it''s'"), "'it's'");
        assert_eq!(p("NULL"), "null");
        assert_eq!(p("True or FALSE"), "(true or false)");
        assert_eq!(p("2.5"), "2.5");
        assert_eq!(p("date '2010-12-01'"), "date(14944)");
        assert_eq!(p("timestamp '1970-01-01 00:00:01'"), "ts(1000000)");
        assert_eq!(p("\"customer.address.city\" = 'x'"), "(customer.address.city = 'x')");
        assert_eq!(p("`my col` + \"and\""), "(my col + and)");
        assert_eq!(p("date + 1"), "(date + 1)");
        assert_eq!(p("date(ts)"), "date(ts)");
    }

    #[test]
    fn calls_cast_case() {
        assert_eq!(p("UPPER(name)"), "upper(name)");
        assert_eq!(p("coalesce(a, b, 0)"), "coalesce(a, b, 0)");
        assert_eq!(p("f()"), "f()");
        assert_eq!(
            p("date_trunc('month', InvoiceDate)"),
            "date_trunc('month', InvoiceDate)"
        );
        assert_eq!(p("cast(a as bigint)"), "cast(a as Int64)");
        assert_eq!(p("CAST(a AS decimal(10, 2))"), "cast(a as Decimal(10, 2))");
        assert_eq!(p("cast(a as numeric(5))"), "cast(a as Decimal(5, 0))");
        assert_eq!(p("cast(a as varchar(20))"), "cast(a as Utf8)");
        assert_eq!(p("cast(a as timestamp)"), "cast(a as Timestamp)");
        assert_eq!(
            p("case when a > 0 then 'pos' when a < 0 then 'neg' else 'zero' end"),
            "case when (a > 0) then 'pos' when (a < 0) then 'neg' else 'zero' end"
        );
        assert_eq!(p("case when a then 1 end"), "case when a then 1 end");
        assert_eq!(
            p("case Country when 'France' then 1 when 'Spain' then 2 end"),
            "case when (Country = 'France') then 1 when (Country = 'Spain') then 2 end"
        );
        assert_eq!(p("if(a > 1, 'x', 'y')"), "if((a > 1), 'x', 'y')");
    }

    #[test]
    fn spans_and_positions() {
        let n = parse("Quantity * UnitPrice").unwrap();
        assert_eq!((n.pos, n.start, n.end), (9, 0, 20));
        let n = parse("(a + b)").unwrap();
        assert_eq!((n.pos, n.start, n.end), (3, 0, 7));
        let n = parse("x is not null").unwrap();
        assert_eq!((n.pos, n.start, n.end), (2, 0, 13));
        let n = parse("upper(x)").unwrap();
        assert_eq!((n.pos, n.start, n.end), (0, 0, 8));
    }

    #[test]
    fn syntax_errors() {
        let e = err("");
        assert_eq!(e.position, Some(0));
        assert!(e.message.contains("empty"));
        let e = err("   ");
        assert!(e.message.contains("empty"));
        let e = err("Quantity >");
        assert_eq!(e.position, Some(10));
        assert!(e.message.contains("ends too early"), "{e}");
        let e = err("(a + b");
        assert_eq!(e.position, Some(6));
        assert!(e.message.contains("expected `)`"), "{e}");
        let e = err("a + b)");
        assert_eq!(e.position, Some(5));
        assert!(e.hint.as_deref().unwrap().contains("no matching"));
        let e = err("a b");
        assert_eq!(e.position, Some(2));
        assert!(e.message.contains("after a complete expression"), "{e}");
        let e = err("a = = b");
        assert_eq!(e.position, Some(4));
        let e = err("a < b < c");
        assert_eq!(e.position, Some(6));
        assert!(e.message.contains("chained"));
        let e = err("a not = b");
        assert_eq!(e.position, Some(2));
        assert!(e.hint.as_deref().unwrap().contains("!="));
        let e = err("a in 1, 2");
        assert_eq!(e.position, Some(5));
        let e = err("a in ()");
        assert!(e.message.contains("empty `in` list"));
        let e = err("a in (1, 2");
        assert_eq!(e.position, Some(10));
        let e = err("a between 1 or 2");
        assert!(e.message.contains("expected `and`"), "{e}");
        let e = err("a is 3");
        assert_eq!(e.position, Some(5));
        assert!(e.message.contains("expected `null`"));
        let e = err("case a > 1 then 2 end");
        assert!(e.message.contains("expected `when`"), "{e}");
        let e = err("case when a then 1");
        assert!(e.message.contains("`end`"), "{e}");
        let e = err("cast(a as integr)");
        assert_eq!(e.position, Some(10));
        assert!(e.hint.as_deref().unwrap().contains("did you mean `integer`?"), "{e}");
        let e = err("cast(a int)");
        assert!(e.message.contains("expected `as`"));
        let e = err("cast(a as decimal(40, 2))");
        assert!(e.message.contains("precision"));
        let e = err("cast(a as decimal(4, 5))");
        assert!(e.message.contains("scale"));
        let e = err("date '2010-13-01'");
        assert_eq!(e.position, Some(5));
        assert!(e.hint.as_deref().unwrap().contains("YYYY-MM-DD"));
        let e = err("timestamp 'yesterday'");
        assert!(e.message.contains("invalid timestamp"));
        let e = err("upper(a b)");
        assert_eq!(e.position, Some(8));
        let e = err("and > 1");
        assert_eq!(e.position, Some(0));
        assert!(e.hint.as_deref().unwrap().contains("\"and\""));
        let e = err("f(a,)");
        assert_eq!(e.position, Some(4));
    }
}
