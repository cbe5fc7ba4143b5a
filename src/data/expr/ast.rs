//! The syntax tree the parser builds.

/// A node and where it came from in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Where to point errors about this node: the operator of a binary or
    /// postfix expression, the function name of a call, the start otherwise.
    pub pos: usize,
    /// The node's extent in the source, in characters (`end` exclusive).
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `date '...'`: days since 1970-01-01.
    Date(i32),
    /// `timestamp '...'`: microseconds since 1970-01-01 00:00:00 (no zone).
    Timestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Rem,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "//",
            BinOp::Rem => "%",
            BinOp::Eq => "=",
            BinOp::NotEq => "!=",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Concat => "||",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }
}

/// The target of `cast(x as T)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastTarget {
    Int64,
    Float64,
    Utf8,
    Boolean,
    Date,
    Timestamp,
    Decimal(u8, i8),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Literal(Literal),
    Column(String),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary {
        op: BinOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    Like {
        expr: Box<Node>,
        pattern: Box<Node>,
        negated: bool,
        case_insensitive: bool,
    },
    InList {
        expr: Box<Node>,
        list: Vec<Node>,
        negated: bool,
    },
    IsNull {
        expr: Box<Node>,
        negated: bool,
    },
    Between {
        expr: Box<Node>,
        low: Box<Node>,
        high: Box<Node>,
        negated: bool,
    },
    Call {
        name: String,
        args: Vec<Node>,
    },
    Cast {
        expr: Box<Node>,
        to: CastTarget,
    },
    Case {
        branches: Vec<(Node, Node)>,
        otherwise: Option<Box<Node>>,
    },
}

impl Node {
    /// Calls `f` on this node and every node below it.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        match &self.kind {
            NodeKind::Literal(_) | NodeKind::Column(_) => {}
            NodeKind::Neg(e) | NodeKind::Not(e) => e.walk(f),
            NodeKind::Binary { left, right, .. } => {
                left.walk(f);
                right.walk(f);
            }
            NodeKind::Like { expr, pattern, .. } => {
                expr.walk(f);
                pattern.walk(f);
            }
            NodeKind::InList { expr, list, .. } => {
                expr.walk(f);
                for n in list {
                    n.walk(f);
                }
            }
            NodeKind::IsNull { expr, .. } | NodeKind::Cast { expr, .. } => expr.walk(f),
            NodeKind::Between { expr, low, high, .. } => {
                expr.walk(f);
                low.walk(f);
                high.walk(f);
            }
            NodeKind::Call { args, .. } => {
                for a in args {
                    a.walk(f);
                }
            }
            NodeKind::Case { branches, otherwise } => {
                for (c, v) in branches {
                    c.walk(f);
                    v.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
        }
    }

    /// A string literal node's text.
    pub fn as_str_literal(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Literal(Literal::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer literal, possibly negated (`-2`).
    pub fn as_int_literal(&self) -> Option<i64> {
        match &self.kind {
            NodeKind::Literal(Literal::Int(i)) => Some(*i),
            NodeKind::Neg(inner) => inner.as_int_literal().and_then(|i| i.checked_neg()),
            _ => None,
        }
    }
}
