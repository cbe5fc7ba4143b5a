//! Type checking: resolves columns against a schema, picks the type of
//! every node and inserts the casts that evaluation relies on (both sides
//! of a comparison or an arithmetic operator have one type after this).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Schema, TimeUnit};

use super::ExprError;
use super::ast::{BinOp, CastTarget, Literal, Node, NodeKind};
use super::functions::{self, Func};
use super::temporal;

/// A type-checked node.
#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub kind: TKind,
    /// The type evaluation produces.
    pub ty: DataType,
    /// Where to point runtime errors (overflow), and the node's extent.
    pub pos: usize,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum TKind {
    /// A one-element array of type `ty`.
    Lit(ArrayRef),
    /// A column by index; cast to `ty` when the stored type differs.
    Col(usize),
    /// A cast of the operand to `ty`.
    Cast(Box<Typed>),
    Neg(Box<Typed>),
    Not(Box<Typed>),
    And(Box<Typed>, Box<Typed>),
    Or(Box<Typed>, Box<Typed>),
    /// Arithmetic (`+ - * / // %`) on operands already cast for the operator.
    Arith(BinOp, Box<Typed>, Box<Typed>),
    /// A comparison of two operands of one type.
    Cmp(BinOp, Box<Typed>, Box<Typed>),
    /// `||` of two strings.
    Concat(Box<Typed>, Box<Typed>),
    Like {
        expr: Box<Typed>,
        pattern: Box<Typed>,
        negated: bool,
        case_insensitive: bool,
    },
    InList {
        expr: Box<Typed>,
        list: Vec<Typed>,
        negated: bool,
    },
    IsNull {
        expr: Box<Typed>,
        negated: bool,
    },
    Between {
        expr: Box<Typed>,
        low: Box<Typed>,
        high: Box<Typed>,
        negated: bool,
    },
    Case {
        branches: Vec<(Typed, Typed)>,
        otherwise: Option<Box<Typed>>,
    },
    Func(Func, Vec<Typed>),
}

/// How a type reads in messages: `int64`, `string`, `decimal(10,2)`.
pub(crate) fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(tz)) => format!("timestamp({tz})"),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Null => "null".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// The type expressions compute in for a stored column type, or `None` when
/// expressions cannot use the column. Narrow integers widen to int64,
/// floats to float64, all string encodings become utf8, timestamps become
/// microseconds (keeping their zone), decimals become decimal128.
pub(crate) fn canonical(dt: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match dt {
        Null => Null,
        Boolean => Boolean,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Int64,
        Float16 | Float32 | Float64 => Float64,
        Utf8 | LargeUtf8 | Utf8View => Utf8,
        Dictionary(_, v) if matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View) => Utf8,
        Dictionary(_, v) => return canonical(v),
        Date32 | Date64 => Date32,
        Timestamp(_, tz) => Timestamp(TimeUnit::Microsecond, tz.clone()),
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) => Decimal128(*p, *s),
        Decimal256(p, s) if *p <= 38 => Decimal128(*p, *s),
        Decimal256(..) => Float64,
        _ => return None,
    })
}

fn is_numeric(dt: &DataType) -> bool {
    matches!(dt, DataType::Int64 | DataType::Float64 | DataType::Decimal128(..))
}

fn is_temporal(dt: &DataType) -> bool {
    matches!(dt, DataType::Date32 | DataType::Timestamp(..))
}

/// A decimal type holding both, or float64 when that needs over 38 digits.
fn decimal_common(p1: u8, s1: i8, p2: u8, s2: i8) -> DataType {
    let s = s1.max(s2) as i16;
    let int_digits = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
    if int_digits + s <= 38 {
        DataType::Decimal128((int_digits + s).max(1) as u8, s as i8)
    } else {
        DataType::Float64
    }
}

/// The decimal an int64 fits in exactly.
const INT64_AS_DECIMAL: (u8, i8) = (19, 0);

/// The type two values are compared or combined in, if any.
pub(crate) fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    Some(match (a, b) {
        (Null, x) | (x, Null) => x.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Decimal128(..), Float64) | (Float64, Decimal128(..)) => Float64,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => decimal_common(*p1, *s1, *p2, *s2),
        (Decimal128(p, s), Int64) | (Int64, Decimal128(p, s)) => {
            decimal_common(*p, *s, INT64_AS_DECIMAL.0, INT64_AS_DECIMAL.1)
        }
        (Date32, Timestamp(u, tz)) | (Timestamp(u, tz), Date32) => Timestamp(*u, tz.clone()),
        (Timestamp(u, t1), Timestamp(_, t2)) => Timestamp(*u, t1.clone().or_else(|| t2.clone())),
        _ => return None,
    })
}

/// Operand and result types of an arithmetic operator.
fn arith_types(op: BinOp, l: &DataType, r: &DataType) -> Option<(DataType, DataType)> {
    use DataType::*;
    // A null operand takes the other side's type.
    let (l, r) = match (l, r) {
        (Null, Null) => (&Int64, &Int64),
        (Null, x) => (x, x),
        (x, Null) => (x, x),
        _ => (l, r),
    };
    if !is_numeric(l) || !is_numeric(r) {
        return None;
    }
    let float = Some((Float64, Float64));
    match op {
        BinOp::Div => float,
        BinOp::IntDiv => (l == &Int64 && r == &Int64).then_some((Int64, Int64)),
        BinOp::Rem => match (l, r) {
            (Int64, Int64) => Some((Int64, Int64)),
            _ => float,
        },
        _ => match (l, r) {
            (Int64, Int64) => Some((Int64, Int64)),
            (Float64, _) | (_, Float64) => float,
            _ => {
                let dec = |t: &DataType| match t {
                    Decimal128(p, s) => (*p, *s),
                    _ => INT64_AS_DECIMAL,
                };
                let ((p1, s1), (p2, s2)) = (dec(l), dec(r));
                let result = if op == BinOp::Mul {
                    let s = s1 as i16 + s2 as i16;
                    if s > 38 {
                        return float;
                    }
                    Decimal128((p1 as u16 + p2 as u16 + 1).min(38) as u8, s as i8)
                } else {
                    let s = s1.max(s2) as i16;
                    let int = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
                    Decimal128((s + int + 1).min(38) as u8, s as i8)
                };
                Some((result.clone(), result))
            }
        },
    }
}

pub(crate) struct Checker<'a> {
    pub src: &'a str,
    pub schema: &'a Schema,
}

/// Type-checks `root` against `schema`.
pub(crate) fn check(root: &Node, src: &str, schema: &Schema) -> Result<Typed, ExprError> {
    Checker { src, schema }.check(root)
}

fn typed(kind: TKind, ty: DataType, n: &Node) -> Typed {
    Typed {
        kind,
        ty,
        pos: n.pos,
        start: n.start,
        end: n.end,
    }
}

fn lit_array(l: &Literal) -> ArrayRef {
    match l {
        Literal::Null => new_null_array(&DataType::Null, 1),
        Literal::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Int(i) => Arc::new(Int64Array::from(vec![*i])),
        Literal::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Literal::Str(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        Literal::Date(d) => Arc::new(Date32Array::from(vec![*d])),
        Literal::Timestamp(t) => Arc::new(TimestampMicrosecondArray::from(vec![*t])),
    }
}

impl Checker<'_> {
    /// The source text of a node.
    pub fn snippet(&self, start: usize, end: usize) -> String {
        self.src.chars().skip(start).take(end - start).collect()
    }

    pub fn node_text(&self, n: &Node) -> String {
        self.snippet(n.start, n.end)
    }

    pub fn check(&self, n: &Node) -> Result<Typed, ExprError> {
        match &n.kind {
            NodeKind::Literal(l) => {
                let a = lit_array(l);
                let ty = a.data_type().clone();
                Ok(typed(TKind::Lit(a), ty, n))
            }
            NodeKind::Column(name) => self.column(n, name),
            NodeKind::Neg(inner) => {
                let t = self.check(inner)?;
                if t.ty == DataType::Null {
                    return Ok(t);
                }
                if !is_numeric(&t.ty) {
                    return Err(ExprError::at(
                        n.pos,
                        format!("cannot negate a {}: `{}`", type_name(&t.ty), self.node_text(n)),
                    )
                    .with_hint("unary `-` works on numbers"));
                }
                let ty = t.ty.clone();
                Ok(typed(TKind::Neg(Box::new(t)), ty, n))
            }
            NodeKind::Not(inner) => {
                let t = self.boolean(inner, "`not`")?;
                Ok(typed(TKind::Not(Box::new(t)), DataType::Boolean, n))
            }
            NodeKind::Binary { op, left, right } => self.binary(n, *op, left, right),
            NodeKind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let word = match (negated, case_insensitive) {
                    (false, false) => "like",
                    (true, false) => "not like",
                    (false, true) => "ilike",
                    (true, true) => "not ilike",
                };
                let e = self.check(expr)?;
                let p = self.check(pattern)?;
                for (t, side) in [(&e, "left"), (&p, "right")] {
                    if !matches!(t.ty, DataType::Utf8 | DataType::Null) {
                        return Err(ExprError::at(
                            n.pos,
                            format!(
                                "`{word}` needs strings, but the {side} side is {}: `{}`",
                                type_name(&t.ty),
                                self.node_text(n)
                            ),
                        )
                        .with_hint(format!(
                            "convert it first: cast({} as string) {word} ...",
                            self.snippet(t.start, t.end)
                        )));
                    }
                }
                Ok(typed(
                    TKind::Like {
                        expr: Box::new(self.coerce(e, &DataType::Utf8)?),
                        pattern: Box::new(self.coerce(p, &DataType::Utf8)?),
                        negated: *negated,
                        case_insensitive: *case_insensitive,
                    },
                    DataType::Boolean,
                    n,
                ))
            }
            NodeKind::InList { expr, list, negated } => {
                let mut nodes: Vec<&Node> = vec![expr];
                nodes.extend(list.iter());
                let (mut items, _) = self.unify(&nodes, n, "compare")?;
                let e = items.remove(0);
                Ok(typed(
                    TKind::InList {
                        expr: Box::new(e),
                        list: items,
                        negated: *negated,
                    },
                    DataType::Boolean,
                    n,
                ))
            }
            NodeKind::IsNull { expr, negated } => {
                let e = self.check(expr)?;
                Ok(typed(
                    TKind::IsNull {
                        expr: Box::new(e),
                        negated: *negated,
                    },
                    DataType::Boolean,
                    n,
                ))
            }
            NodeKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let (mut items, _) = self.unify(&[expr, low, high], n, "compare")?;
                let high = items.pop().expect("3 items");
                let low = items.pop().expect("3 items");
                let e = items.pop().expect("3 items");
                Ok(typed(
                    TKind::Between {
                        expr: Box::new(e),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated: *negated,
                    },
                    DataType::Boolean,
                    n,
                ))
            }
            NodeKind::Call { name, args } => functions::check_call(self, n, name, args),
            NodeKind::Cast { expr, to } => {
                let e = self.check(expr)?;
                let target = match to {
                    CastTarget::Int64 => DataType::Int64,
                    CastTarget::Float64 => DataType::Float64,
                    CastTarget::Utf8 => DataType::Utf8,
                    CastTarget::Boolean => DataType::Boolean,
                    CastTarget::Date => DataType::Date32,
                    CastTarget::Timestamp => match &e.ty {
                        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                        _ => DataType::Timestamp(TimeUnit::Microsecond, None),
                    },
                    CastTarget::Decimal(p, s) => DataType::Decimal128(*p, *s),
                };
                if !can_cast_types(&e.ty, &target) {
                    return Err(ExprError::at(
                        n.pos,
                        format!(
                            "cannot cast {} to {}: `{}`",
                            type_name(&e.ty),
                            type_name(&target),
                            self.node_text(n)
                        ),
                    ));
                }
                if e.ty == target {
                    return Ok(Typed {
                        pos: n.pos,
                        start: n.start,
                        end: n.end,
                        ..e
                    });
                }
                Ok(typed(TKind::Cast(Box::new(e)), target, n))
            }
            NodeKind::Case { branches, otherwise } => {
                let mut conds = Vec::with_capacity(branches.len());
                for (c, _) in branches {
                    conds.push(self.boolean(c, "`when`")?);
                }
                let mut value_nodes: Vec<&Node> = branches.iter().map(|(_, v)| v).collect();
                if let Some(o) = otherwise {
                    value_nodes.push(o);
                }
                let (mut values, ty) = self.unify(&value_nodes, n, "mix")?;
                let otherwise = otherwise.as_ref().map(|_| Box::new(values.pop().expect("else value")));
                Ok(typed(
                    TKind::Case {
                        branches: conds.into_iter().zip(values).collect(),
                        otherwise,
                    },
                    ty,
                    n,
                ))
            }
        }
    }

    fn column(&self, n: &Node, name: &str) -> Result<Typed, ExprError> {
        let Ok(index) = self.schema.index_of(name) else {
            let names = self.schema.fields().iter().map(|f| f.name().as_str());
            let hint = match super::did_you_mean(name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => {
                    let all: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
                    let mut h = if all.is_empty() {
                        "the input has no columns".to_string()
                    } else if all.len() <= 12 {
                        format!("columns are: {}", all.join(", "))
                    } else {
                        format!("columns include: {}, ...", all[..12].join(", "))
                    };
                    if self.src.chars().nth(n.start) == Some('"') {
                        h.push_str(&format!(
                            "; double quotes name a column, write a string in single quotes: '{name}'"
                        ));
                    }
                    h
                }
            };
            return Err(ExprError::at(n.start, format!("unknown column `{name}`")).with_hint(hint));
        };
        let stored = self.schema.field(index).data_type();
        let Some(ty) = canonical(stored) else {
            return Err(ExprError::at(
                n.start,
                format!("column `{name}` has type {stored}, which expressions cannot use"),
            )
            .with_hint("expressions work on numbers, strings, booleans, dates, timestamps and decimals"));
        };
        Ok(typed(TKind::Col(index), ty, n))
    }

    /// Checks a node that must be boolean (a null literal counts).
    pub fn boolean(&self, n: &Node, what: &str) -> Result<Typed, ExprError> {
        let t = self.check(n)?;
        match t.ty {
            DataType::Boolean => Ok(t),
            DataType::Null => self.coerce(t, &DataType::Boolean),
            _ => Err(ExprError::at(
                n.start,
                format!(
                    "{what} needs a true/false condition, but `{}` is {}",
                    self.node_text(n),
                    type_name(&t.ty)
                ),
            )
            .with_hint(format!(
                "compare it, e.g. `{} > 0` or `{} is not null`",
                self.node_text(n),
                self.node_text(n)
            ))),
        }
    }

    /// Casts a checked node to `to`; literals are converted right away, so a
    /// bad literal (`date_col > 'soon'`) is reported now.
    pub fn coerce(&self, t: Typed, to: &DataType) -> Result<Typed, ExprError> {
        if &t.ty == to {
            return Ok(t);
        }
        if let TKind::Lit(a) = &t.kind {
            let opts = CastOptions {
                safe: false,
                ..Default::default()
            };
            // Our readers are more lenient than Arrow's for literals
            // ('2010-12-01 08:30'); Arrow's handle offsets ('...Z').
            let mut a = a.clone();
            if let Some(text) = a.as_string_opt::<i32>().filter(|s| s.is_valid(0)) {
                let text = text.value(0);
                match to {
                    DataType::Date32 => {
                        if let Some(d) = temporal::parse_date(text) {
                            a = Arc::new(Date32Array::from(vec![d]));
                        }
                    }
                    DataType::Timestamp(..) => {
                        if let Some(us) = temporal::parse_timestamp(text) {
                            a = Arc::new(TimestampMicrosecondArray::from(vec![us]));
                        }
                    }
                    _ => {}
                }
            }
            return match cast_with_options(&a, to, &opts) {
                Ok(c) => Ok(Typed {
                    kind: TKind::Lit(c),
                    ty: to.clone(),
                    ..t
                }),
                Err(_) => {
                    let text = self.snippet(t.start, t.end);
                    let hint = match to {
                        DataType::Date32 => "write dates as 'YYYY-MM-DD'".to_string(),
                        DataType::Timestamp(..) => "write timestamps as 'YYYY-MM-DD HH:MM:SS'".to_string(),
                        _ => format!("the value must be a valid {}", type_name(to)),
                    };
                    Err(ExprError::at(t.start, format!("cannot read {text} as {}", type_name(to))).with_hint(hint))
                }
            };
        }
        let (pos, start, end) = (t.pos, t.start, t.end);
        Ok(Typed {
            kind: TKind::Cast(Box::new(t)),
            ty: to.clone(),
            pos,
            start,
            end,
        })
    }

    /// Checks `nodes` and casts them to one common type. String literals
    /// next to dates or timestamps are read as dates or timestamps.
    /// `verb` words the error: "cannot compare int64 with string".
    pub fn unify(&self, nodes: &[&Node], parent: &Node, verb: &str) -> Result<(Vec<Typed>, DataType), ExprError> {
        let checked = nodes.iter().map(|n| self.check(n)).collect::<Result<Vec<_>, _>>()?;
        let is_str_lit: Vec<bool> = nodes.iter().map(|n| n.as_str_literal().is_some()).collect();
        let mut target = DataType::Null;
        let mut first: Option<usize> = None;
        // Non-literal types first; then string literals join unless the
        // common type is temporal (they are parsed into it).
        for pass in [false, true] {
            if pass && is_temporal(&target) {
                break;
            }
            for (i, t) in checked.iter().enumerate() {
                if is_str_lit[i] != pass {
                    continue;
                }
                match common_type(&target, &t.ty) {
                    Some(c) => {
                        if first.is_none() && t.ty != DataType::Null {
                            first = Some(i);
                        }
                        target = c;
                    }
                    None => {
                        let a = &checked[first.unwrap_or(0)];
                        return Err(self.mismatch(parent, verb, a, t, nodes));
                    }
                }
            }
        }
        let out = checked
            .into_iter()
            .map(|t| self.coerce(t, &target))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((out, target))
    }

    fn mismatch(&self, parent: &Node, verb: &str, a: &Typed, b: &Typed, nodes: &[&Node]) -> ExprError {
        // Name the two sides in source order.
        let (a, b) = if a.start <= b.start { (a, b) } else { (b, a) };
        let (ta, tb) = (type_name(&a.ty), type_name(&b.ty));
        let message = if verb == "compare" {
            format!("cannot compare {ta} with {tb}: `{}`", self.node_text(parent))
        } else {
            format!("cannot mix {ta} and {tb} in one result: `{}`", self.node_text(parent))
        };
        let str_lit = |t: &Typed| {
            nodes
                .iter()
                .find(|n| n.start == t.start && n.end == t.end)
                .and_then(|n| n.as_str_literal())
        };
        // A quoted number next to a number, either way round.
        let quoted = [(a, b), (b, a)]
            .into_iter()
            .find_map(|(x, y)| str_lit(x).filter(|_| is_numeric(&y.ty)).map(|s| (x, s, y)));
        let hint = match quoted {
            Some((_, s, _)) if s.trim().parse::<f64>().is_ok() => {
                format!("drop the quotes to write a number: {}", s.trim())
            }
            Some((x, _, y)) => format!(
                "{} is a string; compare {} with a number",
                self.snippet(x.start, x.end),
                type_name(&y.ty)
            ),
            None if is_temporal(&a.ty) || is_temporal(&b.ty) => {
                "convert one side: date(x), cast(x as timestamp) or cast(x as string)".to_string()
            }
            None => format!(
                "convert one side, e.g. cast({} as {})",
                self.snippet(b.start, b.end),
                match &a.ty {
                    DataType::Boolean => "bool".to_string(),
                    other => type_name(other),
                }
            ),
        };
        let pos = if parent.pos != parent.start || matches!(parent.kind, NodeKind::Binary { .. }) {
            parent.pos
        } else {
            b.start
        };
        ExprError::at(pos, message).with_hint(hint)
    }

    fn binary(&self, n: &Node, op: BinOp, left: &Node, right: &Node) -> Result<Typed, ExprError> {
        match op {
            BinOp::And | BinOp::Or => {
                let word = format!("`{}`", op.symbol());
                let l = self.boolean(left, &word)?;
                let r = self.boolean(right, &word)?;
                let kind = if op == BinOp::And {
                    TKind::And(Box::new(l), Box::new(r))
                } else {
                    TKind::Or(Box::new(l), Box::new(r))
                };
                Ok(typed(kind, DataType::Boolean, n))
            }
            _ if op.is_comparison() => {
                let (mut items, _) = self.unify(&[left, right], n, "compare")?;
                let r = items.pop().expect("two sides");
                let l = items.pop().expect("two sides");
                Ok(typed(TKind::Cmp(op, Box::new(l), Box::new(r)), DataType::Boolean, n))
            }
            BinOp::Concat => {
                let l = self.check(left)?;
                let r = self.check(right)?;
                let l = self.coerce(l, &DataType::Utf8)?;
                let r = self.coerce(r, &DataType::Utf8)?;
                Ok(typed(TKind::Concat(Box::new(l), Box::new(r)), DataType::Utf8, n))
            }
            _ => {
                let l = self.check(left)?;
                let r = self.check(right)?;
                let Some((operand, result)) = arith_types(op, &l.ty, &r.ty) else {
                    let (tl, tr) = (type_name(&l.ty), type_name(&r.ty));
                    let hint = if l.ty == DataType::Utf8 || r.ty == DataType::Utf8 {
                        if op == BinOp::Add {
                            "join strings with `||` or concat(); to do arithmetic, cast(x as float64)".to_string()
                        } else {
                            "convert strings to numbers first: cast(x as float64)".to_string()
                        }
                    } else if op == BinOp::IntDiv {
                        "`//` divides integers; for other numbers write floor(a / b)".to_string()
                    } else if is_temporal(&l.ty) || is_temporal(&r.ty) {
                        "date arithmetic is not supported; extract parts with year(), month(), \
                         day(), or truncate with date_trunc()"
                            .to_string()
                    } else {
                        "arithmetic works on int64, float64 and decimal".to_string()
                    };
                    return Err(ExprError::at(
                        n.pos,
                        format!(
                            "cannot apply `{}` to {tl} and {tr}: `{}`",
                            op.symbol(),
                            self.node_text(n)
                        ),
                    )
                    .with_hint(hint));
                };
                // Decimal results keep decimal operands (an int64 becomes
                // decimal(19,0)); otherwise both sides take the operand type.
                let (l, r) = if let DataType::Decimal128(..) = result {
                    // A null operand takes the other side's type.
                    let (lt, rt) = match (&l.ty, &r.ty) {
                        (DataType::Null, t) | (t, DataType::Null) => (t.clone(), t.clone()),
                        (a, b) => (a.clone(), b.clone()),
                    };
                    let dec = |t: Typed, eff: DataType| -> Result<Typed, ExprError> {
                        match eff {
                            DataType::Decimal128(..) => self.coerce(t, &eff),
                            _ => self.coerce(t, &DataType::Decimal128(INT64_AS_DECIMAL.0, INT64_AS_DECIMAL.1)),
                        }
                    };
                    (dec(l, lt)?, dec(r, rt)?)
                } else {
                    (self.coerce(l, &operand)?, self.coerce(r, &operand)?)
                };
                Ok(typed(TKind::Arith(op, Box::new(l), Box::new(r)), result, n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;
    use crate::data::expr::Expr;
    use crate::data::expr::testutil::ts_type;

    fn schema() -> Schema {
        let f = |n: &str, t: DataType| Field::new(n, t, true);
        Schema::new(vec![
            f("InvoiceNo", DataType::Utf8),
            f("Quantity", DataType::Int64),
            f("InvoiceDate", ts_type()),
            f("UnitPrice", DataType::Float64),
            f("CustomerID", DataType::Int64),
            f("Country", DataType::Utf8),
            f("Price", DataType::Decimal128(10, 2)),
            f("Day", DataType::Date32),
            f("Flag", DataType::Boolean),
            f("Small", DataType::Int32),
            f("Tiny", DataType::UInt8),
            f("Ratio", DataType::Float32),
            f("Big", DataType::LargeUtf8),
            f("View", DataType::Utf8View),
            f(
                "Dict",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            ),
            f(
                "London",
                DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/London".into())),
            ),
            f("Nanos", DataType::Timestamp(TimeUnit::Nanosecond, None)),
            f("customer.address.city", DataType::Utf8),
            f(
                "Tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            ),
        ])
    }

    fn ty(src: &str) -> DataType {
        Expr::parse(src)
            .and_then(|e| e.data_type(&schema()))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn err(src: &str) -> ExprError {
        match Expr::parse(src).and_then(|e| e.data_type(&schema())) {
            Ok(t) => panic!("{src}: expected a type error, got {t}"),
            Err(e) => e,
        }
    }

    fn hint(e: &ExprError) -> &str {
        e.hint.as_deref().unwrap_or("")
    }

    #[test]
    fn literal_types() {
        assert_eq!(ty("1"), DataType::Int64);
        assert_eq!(ty("1.5"), DataType::Float64);
        assert_eq!(ty("'x'"), DataType::Utf8);
        assert_eq!(ty("true"), DataType::Boolean);
        assert_eq!(ty("null"), DataType::Null);
        assert_eq!(ty("date '2010-12-01'"), DataType::Date32);
        assert_eq!(ty("timestamp '2010-12-01 08:26:00'"), ts_type());
    }

    #[test]
    fn column_types_are_canonical() {
        assert_eq!(ty("Small"), DataType::Int64);
        assert_eq!(ty("Tiny"), DataType::Int64);
        assert_eq!(ty("Ratio"), DataType::Float64);
        assert_eq!(ty("Big"), DataType::Utf8);
        assert_eq!(ty("View"), DataType::Utf8);
        assert_eq!(ty("Dict"), DataType::Utf8);
        assert_eq!(ty("Nanos"), ts_type());
        assert_eq!(
            ty("London"),
            DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/London".into()))
        );
        assert_eq!(ty("\"customer.address.city\""), DataType::Utf8);
        assert_eq!(canonical(&DataType::Decimal256(50, 2)), Some(DataType::Float64));
        assert_eq!(
            canonical(&DataType::Decimal64(12, 3)),
            Some(DataType::Decimal128(12, 3))
        );
        assert_eq!(canonical(&DataType::Date64), Some(DataType::Date32));
        assert_eq!(canonical(&DataType::Binary), None);
    }

    #[test]
    fn arithmetic_types() {
        assert_eq!(ty("Quantity + 1"), DataType::Int64);
        assert_eq!(ty("Quantity * UnitPrice"), DataType::Float64);
        assert_eq!(ty("Quantity / 2"), DataType::Float64);
        assert_eq!(ty("Quantity // 2"), DataType::Int64);
        assert_eq!(ty("Quantity % 2"), DataType::Int64);
        assert_eq!(ty("UnitPrice % 2"), DataType::Float64);
        assert_eq!(ty("Small + Tiny"), DataType::Int64);
        assert_eq!(ty("-Quantity"), DataType::Int64);
        assert_eq!(ty("-Price"), DataType::Decimal128(10, 2));
        // Decimals stay exact for + - *.
        assert_eq!(ty("Quantity * Price"), DataType::Decimal128(30, 2));
        assert_eq!(ty("Price + Price"), DataType::Decimal128(11, 2));
        assert_eq!(ty("Price - 1"), DataType::Decimal128(22, 2));
        assert_eq!(ty("Price * Price"), DataType::Decimal128(21, 4));
        assert_eq!(
            ty("cast(Price as decimal(38, 20)) * Price"),
            DataType::Decimal128(38, 22)
        );
        assert_eq!(
            ty("cast(Price as decimal(38, 20)) * cast(Price as decimal(38, 20))"),
            DataType::Float64
        );
        // ... and become float64 with floats, `/` and `%`.
        assert_eq!(ty("Price * 1.5"), DataType::Float64);
        assert_eq!(ty("Price / 2"), DataType::Float64);
        assert_eq!(ty("Price % 2"), DataType::Float64);
        // Null takes the other side's type.
        assert_eq!(ty("Quantity + null"), DataType::Int64);
        assert_eq!(ty("null * Price"), DataType::Decimal128(21, 4));
        assert_eq!(ty("null + null"), DataType::Int64);
    }

    #[test]
    fn other_types() {
        assert_eq!(ty("Quantity > 0"), DataType::Boolean);
        assert_eq!(ty("Quantity > 0.5"), DataType::Boolean);
        assert_eq!(ty("Price > 10"), DataType::Boolean);
        assert_eq!(ty("Price = UnitPrice"), DataType::Boolean);
        assert_eq!(ty("InvoiceDate > '2010-12-01'"), DataType::Boolean);
        assert_eq!(ty("Day < InvoiceDate"), DataType::Boolean);
        assert_eq!(ty("London > InvoiceDate"), DataType::Boolean);
        assert_eq!(ty("Day in ('2010-12-01', '2010-12-02')"), DataType::Boolean);
        assert_eq!(
            ty("InvoiceDate between '2010-12-01' and date '2010-12-31'"),
            DataType::Boolean
        );
        assert_eq!(ty("Country || Quantity"), DataType::Utf8);
        assert_eq!(ty("Flag and Quantity > 0 or null"), DataType::Boolean);
        assert_eq!(ty("not null"), DataType::Boolean);
        assert_eq!(ty("null is null"), DataType::Boolean);
        assert_eq!(ty("case when Quantity > 0 then 1 else 2.5 end"), DataType::Float64);
        assert_eq!(ty("case when Flag then 'a' end"), DataType::Utf8);
        assert_eq!(ty("case when Flag then null end"), DataType::Null);
        assert_eq!(ty("case when Flag then Day else '2010-12-01' end"), DataType::Date32);
        assert_eq!(ty("if(Flag, Price, 0)"), DataType::Decimal128(21, 2));
        assert_eq!(ty("coalesce(CustomerID, 0)"), DataType::Int64);
        assert_eq!(ty("coalesce(null, UnitPrice, 1)"), DataType::Float64);
        assert_eq!(ty("cast(Quantity as decimal(10,2))"), DataType::Decimal128(10, 2));
        assert_eq!(ty("cast(Quantity as string)"), DataType::Utf8);
        assert_eq!(ty("cast(Country as timestamp)"), ts_type());
        assert_eq!(ty("cast(London as timestamp)"), ty("London"));
        assert_eq!(ty("cast(Quantity as int64)"), DataType::Int64);
    }

    #[test]
    fn common_types() {
        use DataType::*;
        assert_eq!(common_type(&Int64, &Float64), Some(Float64));
        assert_eq!(common_type(&Null, &Utf8), Some(Utf8));
        assert_eq!(common_type(&Utf8, &Int64), None);
        assert_eq!(common_type(&Boolean, &Int64), None);
        assert_eq!(
            common_type(&Decimal128(10, 2), &Decimal128(5, 4)),
            Some(Decimal128(12, 4))
        );
        assert_eq!(common_type(&Decimal128(38, 0), &Decimal128(38, 10)), Some(Float64));
        assert_eq!(common_type(&Date32, &ts_type()), Some(ts_type()));
        assert_eq!(common_type(&Date32, &Utf8), None);
    }

    #[test]
    fn did_you_mean_columns() {
        let e = err("UnitPrice * Quantiy");
        assert_eq!(e.position, Some(12));
        assert_eq!(e.message, "unknown column `Quantiy`");
        assert_eq!(
            e.to_string(),
            "at character 12: unknown column `Quantiy` (hint: did you mean `Quantity`?)"
        );
        let e = err("country = 'France'");
        assert_eq!(hint(&e), "did you mean `Country`?");
        let e = err("Custmer_ID is null");
        assert_eq!(hint(&e), "did you mean `CustomerID`?");
        let e = err("\"customer.address.cty\" = 'Paris'");
        assert_eq!(hint(&e), "did you mean `customer.address.city`?");
        // Nothing close: list the columns.
        let e = err("zzzzzz > 1");
        assert!(hint(&e).starts_with("columns "), "{e}");
        // Double quotes for a string.
        let e = err("Country = \"France\"");
        assert_eq!(e.position, Some(10));
        assert!(hint(&e).contains("'France'"), "{e}");
    }

    #[test]
    fn comparison_errors() {
        let e = err("Quantity > 'abc'");
        assert_eq!(e.position, Some(9));
        assert_eq!(e.message, "cannot compare int64 with string: `Quantity > 'abc'`");
        assert!(hint(&e).contains("number"), "{e}");
        let e = err("Quantity > '5'");
        assert!(hint(&e).contains("drop the quotes"), "{e}");
        let e = err("Flag = 1");
        assert_eq!(e.message, "cannot compare boolean with int64: `Flag = 1`");
        let e = err("Country = Day");
        assert!(hint(&e).contains("date("), "{e}");
        let e = err("Country in ('France', 1)");
        assert_eq!(e.position, Some(8));
        assert!(e.message.contains("cannot compare string with int64"), "{e}");
        let e = err("Quantity between 0 and 'x'");
        assert_eq!(e.position, Some(9));
        let e = err("InvoiceDate > 'soon'");
        assert_eq!(e.position, Some(14));
        assert_eq!(e.message, "cannot read 'soon' as timestamp");
        let e = err("Day = '2010-02-30'");
        assert!(e.message.contains("as date"), "{e}");
    }

    #[test]
    fn operator_errors() {
        let e = err("Quantity + Country");
        assert_eq!(e.position, Some(9));
        assert_eq!(e.message, "cannot apply `+` to int64 and string: `Quantity + Country`");
        assert!(hint(&e).contains("||"));
        let e = err("InvoiceDate - 1");
        assert!(hint(&e).contains("date_trunc"), "{e}");
        let e = err("Quantity // 2.5");
        assert!(hint(&e).contains("floor"), "{e}");
        let e = err("-Country");
        assert_eq!(e.position, Some(0));
        assert!(e.message.contains("cannot negate a string"));
        let e = err("Quantity and Flag");
        assert_eq!(e.position, Some(0));
        assert!(e.message.contains("`and` needs a true/false condition"), "{e}");
        assert!(hint(&e).contains("Quantity > 0"));
        let e = err("Flag or 'x'");
        assert_eq!(e.position, Some(8));
        let e = err("not Quantity");
        assert_eq!(e.position, Some(4));
        let e = err("Quantity like '1%'");
        assert_eq!(e.position, Some(9));
        assert!(e.message.contains("`like` needs strings"));
        assert!(hint(&e).contains("cast(Quantity as string)"));
        let e = err("Country not like 1");
        assert!(e.message.contains("right side is int64"), "{e}");
        let e = err("case when Flag then 'a' else 1 end");
        assert_eq!(e.position, Some(29));
        assert!(e.message.contains("cannot mix string and int64"), "{e}");
        let e = err("'5' < Quantity");
        assert!(hint(&e).contains("drop the quotes"), "{e}");
        assert!(e.message.contains("cannot compare string with int64"), "{e}");
        let e = err("case when Quantity then 1 end");
        assert_eq!(e.position, Some(10));
        let e = err("cast(Flag as date)");
        assert!(e.message.contains("cannot cast boolean to date"), "{e}");
        let e = err("Tags is null");
        assert!(e.message.contains("cannot use"), "{e}");
    }

    #[test]
    fn function_errors() {
        let e = err("uper(Country)");
        assert_eq!(e.position, Some(0));
        assert_eq!(e.message, "unknown function `uper`");
        assert!(hint(&e).starts_with("did you mean `upper`?"), "{e}");
        let e = err("datetrunc('month', InvoiceDate)");
        assert!(hint(&e).starts_with("did you mean `date_trunc`?"), "{e}");
        let e = err("frobnicate(Country)");
        assert!(hint(&e).starts_with("functions are:"), "{e}");
        let e = err("sum(Quantity)");
        assert!(hint(&e).contains("aggregates"), "{e}");
        let e = err("upper(Quantity)");
        assert_eq!(e.position, Some(6));
        assert_eq!(e.message, "upper() needs a string, but `Quantity` is int64");
        assert_eq!(hint(&e), "convert it: cast(Quantity as string)");
        let e = err("substr(Country)");
        assert_eq!(e.message, "substr() takes 2 to 3 arguments, got 1");
        assert!(hint(&e).contains("substr(string, start[, length])"));
        let e = err("upper(Country, 1)");
        assert_eq!(e.message, "upper() takes 1 argument, got 2");
        let e = err("coalesce()");
        assert_eq!(e.message, "coalesce() takes at least 1 argument, got 0");
        let e = err("abs(Country)");
        assert!(hint(&e).contains("float64"));
        let e = err("round(UnitPrice, Quantity)");
        assert_eq!(e.position, Some(17));
        let e = err("round(UnitPrice, 40)");
        assert!(e.message.contains("digits"));
        let e = err("hour(Day)");
        assert_eq!(e.message, "hour() needs a timestamp, but `Day` is date");
        let e = err("year(Country)");
        assert!(hint(&e).contains("cast(Country as timestamp)"), "{e}");
        let e = err("date_trunc('mnth', InvoiceDate)");
        assert_eq!(e.position, Some(11));
        assert_eq!(hint(&e), "did you mean 'month'?");
        let e = err("date_trunc(Country, InvoiceDate)");
        assert!(e.message.contains("quoted string"), "{e}");
        let e = err("date_trunc('hour', Day)");
        assert_eq!(e.position, Some(19));
        let e = err("if(Quantity, 1, 2)");
        assert_eq!(e.position, Some(3));
        let e = err("coalesce(Quantity, 'none')");
        assert!(e.message.contains("cannot mix int64 and string"), "{e}");
        let e = err("cast(Quantiy as int)");
        assert_eq!(e.position, Some(5));
    }

    #[test]
    fn function_types() {
        assert_eq!(ty("upper(Country)"), DataType::Utf8);
        assert_eq!(ty("length(Big)"), DataType::Int64);
        assert_eq!(ty("concat(Country, 1, null, Day)"), DataType::Utf8);
        assert_eq!(ty("substr(Country, 1, 2)"), DataType::Utf8);
        assert_eq!(ty("substring(Country, 2)"), DataType::Utf8);
        assert_eq!(ty("replace(Country, 'a', 'b')"), DataType::Utf8);
        assert_eq!(ty("abs(Price)"), DataType::Decimal128(10, 2));
        assert_eq!(ty("abs(Quantity)"), DataType::Int64);
        assert_eq!(ty("round(UnitPrice)"), DataType::Float64);
        assert_eq!(ty("round(Price, 1)"), DataType::Decimal128(10, 1));
        assert_eq!(ty("round(Price)"), DataType::Decimal128(9, 0));
        assert_eq!(ty("round(Price, 5)"), DataType::Decimal128(10, 2));
        assert_eq!(ty("round(Price, -1)"), DataType::Decimal128(9, 0));
        assert_eq!(ty("round(Quantity, -1)"), DataType::Int64);
        assert_eq!(ty("floor(Price)"), DataType::Decimal128(9, 0));
        assert_eq!(ty("ceiling(UnitPrice)"), DataType::Float64);
        assert_eq!(ty("abs(null)"), DataType::Int64);
        assert_eq!(ty("year(Day)"), DataType::Int64);
        assert_eq!(ty("hour(London)"), DataType::Int64);
        assert_eq!(ty("weekday(InvoiceDate)"), DataType::Int64);
        assert_eq!(ty("date(InvoiceDate)"), DataType::Date32);
        assert_eq!(ty("date(Day)"), DataType::Date32);
        assert_eq!(ty("date('2010-12-01')"), DataType::Date32);
        assert_eq!(ty("date_trunc('month', InvoiceDate)"), ts_type());
        assert_eq!(ty("date_trunc('Week', Day)"), DataType::Date32);
        assert_eq!(ty("date_trunc('day', London)"), ty("London"));
        assert_eq!(ty("nullif(Country, '')"), DataType::Utf8);
        assert_eq!(ty("IF(Flag, 'a', null)"), DataType::Utf8);
        assert_eq!(ty("UPPER(Country)"), DataType::Utf8);
    }
}
