//! Built-in functions: their signatures (type checking) and kernels.
//!
//! Arrow kernels do the work where one exists (date parts, casts, zip);
//! the string and rounding functions are tight typed loops over the
//! arrays' buffers.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, PrimitiveArray, StringArray, new_null_array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::compute::{cast, is_not_null, nullif};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use arrow::error::ArrowError;

use super::ExprError;
use super::ast::Node;
use super::eval::{Value, broadcast, choose};
use super::temporal::{self, TruncUnit};
use super::typecheck::{Checker, TKind, Typed, type_name};

/// A resolved function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Upper,
    Lower,
    Trim,
    Ltrim,
    Rtrim,
    Length,
    Concat,
    Coalesce,
    NullIf,
    Substr,
    Replace,
    Abs,
    /// Digits after the point (negative: before it).
    Round(i32),
    Floor,
    Ceil,
    Part(DatePart),
    Date,
    DateTrunc(TruncUnit),
}

/// Every function: name and usage, for errors and hints.
pub(crate) const FUNCTIONS: [(&str, &str); 25] = [
    ("upper", "upper(string) -> string"),
    ("lower", "lower(string) -> string"),
    ("trim", "trim(string) -> string"),
    ("ltrim", "ltrim(string) -> string"),
    ("rtrim", "rtrim(string) -> string"),
    ("length", "length(string) -> int64"),
    ("concat", "concat(value, ...) -> string"),
    ("coalesce", "coalesce(value, ...)"),
    ("nullif", "nullif(value, other)"),
    ("substr", "substr(string, start[, length]) -> string"),
    ("replace", "replace(string, from, to) -> string"),
    ("abs", "abs(number)"),
    ("round", "round(number[, digits])"),
    ("floor", "floor(number)"),
    ("ceil", "ceil(number)"),
    ("year", "year(date_or_timestamp) -> int64"),
    ("quarter", "quarter(date_or_timestamp) -> int64"),
    ("month", "month(date_or_timestamp) -> int64"),
    ("day", "day(date_or_timestamp) -> int64"),
    ("hour", "hour(timestamp) -> int64"),
    ("minute", "minute(timestamp) -> int64"),
    ("second", "second(timestamp) -> int64"),
    (
        "weekday",
        "weekday(date_or_timestamp) -> int64 (Monday = 1 .. Sunday = 7)",
    ),
    ("date", "date(timestamp_or_string) -> date"),
    (
        "date_trunc",
        "date_trunc('year'|'quarter'|'month'|'week'|'day'|'hour'|'minute'|'second', date_or_timestamp)",
    ),
];

/// `if` is special (it builds a case expression) and has aliases.
const OTHER_NAMES: [(&str, &str); 4] = [
    ("if", "if(condition, then, else)"),
    ("substring", "substring(string, start[, length]) -> string"),
    ("ceiling", "ceiling(number)"),
    (
        "dayofweek",
        "dayofweek(date_or_timestamp) -> int64 (Monday = 1 .. Sunday = 7)",
    ),
];

fn usage(name: &str) -> &'static str {
    FUNCTIONS
        .iter()
        .chain(OTHER_NAMES.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, u)| *u)
        .unwrap_or("")
}

fn is_num(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int64 | DataType::Float64 | DataType::Decimal128(..) | DataType::Null
    )
}

fn is_str(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Null)
}

fn is_date_or_ts(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Timestamp(..) | DataType::Null)
}

fn is_ts(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..) | DataType::Null)
}

/// Type-checks a call.
pub(crate) fn check_call(c: &Checker, n: &Node, name: &str, args: &[Node]) -> Result<Typed, ExprError> {
    let known = FUNCTIONS.iter().chain(OTHER_NAMES.iter()).any(|(f, _)| *f == name);
    if !known {
        let names = FUNCTIONS.iter().chain(OTHER_NAMES.iter()).map(|(f, _)| *f);
        let hint = if matches!(name, "count" | "sum" | "avg" | "min" | "max") {
            "aggregates are not available in row expressions".to_string()
        } else if super::parser::CAST_TYPES.contains(&name) {
            format!("to convert a value write cast(x as {name})")
        } else {
            match super::did_you_mean(name, names) {
                Some(s) => format!("did you mean `{s}`? ({})", usage(s)),
                None => format!(
                    "functions are: {}, if",
                    FUNCTIONS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
                ),
            }
        };
        return Err(ExprError::at(n.pos, format!("unknown function `{name}`")).with_hint(hint));
    }
    let (min, max) = match name {
        "concat" | "coalesce" => (1, usize::MAX),
        "nullif" => (2, 2),
        "substr" | "substring" => (2, 3),
        "replace" | "if" => (3, 3),
        "round" => (1, 2),
        "date_trunc" => (2, 2),
        _ => (1, 1),
    };
    if args.len() < min || args.len() > max {
        let expected = if min == max {
            format!("{min} argument{}", if min == 1 { "" } else { "s" })
        } else if max == usize::MAX {
            format!("at least {min} argument{}", if min == 1 { "" } else { "s" })
        } else {
            format!("{min} to {max} arguments")
        };
        return Err(
            ExprError::at(n.pos, format!("{name}() takes {expected}, got {}", args.len()))
                .with_hint(format!("usage: {}", usage(name))),
        );
    }
    let ty_of = |t: &Typed| t.ty.clone();
    // Checks argument `i` against `ok`, coercing it to `to`.
    let arg = |i: usize, ok: fn(&DataType) -> bool, want: &str, to: Option<DataType>| {
        let t = c.check(&args[i])?;
        if !ok(&t.ty) {
            let text = c.node_text(&args[i]);
            let hint = match want {
                "a string" => format!("convert it: cast({text} as string)"),
                "a number" if t.ty == DataType::Utf8 => {
                    format!("convert it: cast({text} as float64)")
                }
                "a timestamp" if t.ty == DataType::Date32 => {
                    format!("`{text}` is a date, which has no time of day")
                }
                "a date or timestamp" | "a timestamp" if t.ty == DataType::Utf8 => {
                    format!("convert it: cast({text} as timestamp)")
                }
                _ => format!("usage: {}", usage(name)),
            };
            return Err(ExprError::at(
                args[i].start,
                format!("{name}() needs {want}, but `{text}` is {}", type_name(&t.ty)),
            )
            .with_hint(hint));
        }
        match to {
            Some(to) => c.coerce(t, &to),
            None => Ok(t),
        }
    };
    let call = |f: Func, args: Vec<Typed>, ty: DataType| Typed {
        kind: TKind::Func(f, args),
        ty,
        pos: n.pos,
        start: n.start,
        end: n.end,
    };
    let utf8 = Some(DataType::Utf8);
    let int64 = Some(DataType::Int64);
    Ok(match name {
        "upper" | "lower" | "trim" | "ltrim" | "rtrim" => {
            let f = match name {
                "upper" => Func::Upper,
                "lower" => Func::Lower,
                "trim" => Func::Trim,
                "ltrim" => Func::Ltrim,
                _ => Func::Rtrim,
            };
            call(f, vec![arg(0, is_str, "a string", utf8)?], DataType::Utf8)
        }
        "length" => call(Func::Length, vec![arg(0, is_str, "a string", utf8)?], DataType::Int64),
        "concat" => {
            let parts = (0..args.len())
                .map(|i| arg(i, |_| true, "", utf8.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            call(Func::Concat, parts, DataType::Utf8)
        }
        "coalesce" | "nullif" => {
            let nodes: Vec<&Node> = args.iter().collect();
            let (items, ty) = c.unify(&nodes, n, "mix")?;
            let f = if name == "coalesce" {
                Func::Coalesce
            } else {
                Func::NullIf
            };
            call(f, items, ty)
        }
        "substr" | "substring" => {
            let mut a = vec![
                arg(0, is_str, "a string", utf8)?,
                arg(
                    1,
                    |t| matches!(t, DataType::Int64 | DataType::Null),
                    "an integer start",
                    int64.clone(),
                )?,
            ];
            if args.len() == 3 {
                a.push(arg(
                    2,
                    |t| matches!(t, DataType::Int64 | DataType::Null),
                    "an integer length",
                    int64,
                )?);
            }
            call(Func::Substr, a, DataType::Utf8)
        }
        "replace" => {
            let a = (0..3)
                .map(|i| arg(i, is_str, "a string", utf8.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            call(Func::Replace, a, DataType::Utf8)
        }
        "abs" | "floor" | "ceil" | "ceiling" | "round" => {
            let mut x = arg(0, is_num, "a number", None)?;
            if x.ty == DataType::Null {
                x = c.coerce(x, &DataType::Int64)?;
            }
            let digits = match args.get(1) {
                None => 0,
                Some(d) => {
                    let bad = || {
                        ExprError::at(
                            d.start,
                            format!(
                                "round() needs a whole number of digits written out, got `{}`",
                                c.node_text(d)
                            ),
                        )
                        .with_hint("write e.g. round(UnitPrice, 2); digits go from -38 to 38")
                    };
                    let v = d.as_int_literal().ok_or_else(bad)?;
                    if !(-38..=38).contains(&v) {
                        return Err(bad());
                    }
                    v as i32
                }
            };
            let (f, ty) = match name {
                "abs" => (Func::Abs, ty_of(&x)),
                "floor" | "ceil" | "ceiling" => {
                    let f = if name == "floor" { Func::Floor } else { Func::Ceil };
                    let ty = match x.ty {
                        DataType::Decimal128(p, s) => {
                            DataType::Decimal128((p as i16 - s as i16 + 1).clamp(1, 38) as u8, 0)
                        }
                        ref t => t.clone(),
                    };
                    (f, ty)
                }
                _ => {
                    let ty = match x.ty {
                        DataType::Decimal128(p, s) if (digits as i16) < s as i16 => {
                            let new_s = digits.max(0) as i16;
                            DataType::Decimal128((p as i16 - s as i16 + new_s + 1).clamp(1, 38) as u8, new_s as i8)
                        }
                        ref t => t.clone(),
                    };
                    (Func::Round(digits), ty)
                }
            };
            call(f, vec![x], ty)
        }
        "year" | "quarter" | "month" | "day" | "weekday" | "dayofweek" => {
            let part = match name {
                "year" => DatePart::Year,
                "quarter" => DatePart::Quarter,
                "month" => DatePart::Month,
                "day" => DatePart::Day,
                _ => DatePart::DayOfWeekMonday1,
            };
            let mut x = arg(0, is_date_or_ts, "a date or timestamp", None)?;
            if x.ty == DataType::Null {
                x = c.coerce(x, &DataType::Date32)?;
            }
            call(Func::Part(part), vec![x], DataType::Int64)
        }
        "hour" | "minute" | "second" => {
            let part = match name {
                "hour" => DatePart::Hour,
                "minute" => DatePart::Minute,
                _ => DatePart::Second,
            };
            let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
            let mut x = arg(0, is_ts, "a timestamp", None)?;
            if x.ty == DataType::Null {
                x = c.coerce(x, &ts)?;
            }
            call(Func::Part(part), vec![x], DataType::Int64)
        }
        "date" => {
            let x = arg(
                0,
                |t| is_date_or_ts(t) || t == &DataType::Utf8,
                "a timestamp, date or string",
                None,
            )?;
            if x.ty == DataType::Date32 {
                return Ok(Typed {
                    pos: n.pos,
                    start: n.start,
                    end: n.end,
                    ..x
                });
            }
            call(Func::Date, vec![x], DataType::Date32)
        }
        "date_trunc" => {
            let unit_node = &args[0];
            let names = TruncUnit::NAMES.join("', '");
            let Some(text) = unit_node.as_str_literal() else {
                return Err(ExprError::at(
                    unit_node.start,
                    format!(
                        "date_trunc() needs the unit as a quoted string first, got `{}`",
                        c.node_text(unit_node)
                    ),
                )
                .with_hint(format!("write e.g. date_trunc('month', InvoiceDate); units: '{names}'")));
            };
            let Some(unit) = TruncUnit::parse(text) else {
                let hint = match super::did_you_mean(text, TruncUnit::NAMES.iter().copied()) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!("units: '{names}'"),
                };
                return Err(
                    ExprError::at(unit_node.start, format!("unknown date_trunc unit '{text}'")).with_hint(hint),
                );
            };
            let mut x = arg(1, is_date_or_ts, "a date or timestamp", None)?;
            if x.ty == DataType::Null {
                x = c.coerce(x, &DataType::Date32)?;
            }
            if x.ty == DataType::Date32 && unit.is_time_of_day() {
                return Err(ExprError::at(
                    args[1].start,
                    format!(
                        "date_trunc('{text}', ...) needs a timestamp, but `{}` is a date",
                        c.node_text(&args[1])
                    ),
                )
                .with_hint("dates have no time of day; truncate to 'day' or coarser"));
            }
            let ty = x.ty.clone();
            call(Func::DateTrunc(unit), vec![x], ty)
        }
        "if" => {
            let cond = c.boolean(&args[0], "if()")?;
            let (mut values, ty) = c.unify(&[&args[1], &args[2]], n, "mix")?;
            let otherwise = values.pop().expect("else value");
            let then = values.pop().expect("then value");
            Typed {
                kind: TKind::Case {
                    branches: vec![(cond, then)],
                    otherwise: Some(Box::new(otherwise)),
                },
                ty,
                pos: n.pos,
                start: n.start,
                end: n.end,
            }
        }
        other => unreachable!("function {other} has no signature"),
    })
}

/// Evaluates a call on already-evaluated arguments.
pub(crate) fn eval(f: &Func, args: &[Value], ty: &DataType, n: usize) -> Result<Value, ArrowError> {
    let x = &args[0];
    match f {
        Func::Upper => x.map(|a| Ok(Arc::new(change_case(a.as_string::<i32>(), true)?))),
        Func::Lower => x.map(|a| Ok(Arc::new(change_case(a.as_string::<i32>(), false)?))),
        Func::Trim => x.map(|a| Ok(Arc::new(map_str(a.as_string::<i32>(), str::trim)?))),
        Func::Ltrim => x.map(|a| Ok(Arc::new(map_str(a.as_string::<i32>(), str::trim_start)?))),
        Func::Rtrim => x.map(|a| Ok(Arc::new(map_str(a.as_string::<i32>(), str::trim_end)?))),
        Func::Length => x.map(|a| Ok(Arc::new(char_length(a.as_string::<i32>())))),
        Func::Concat => concat(args, n),
        Func::Coalesce => coalesce(args, n),
        Func::NullIf => {
            let same = eq(&args[0], &args[1])?;
            if x.is_scalar() && !args[1].is_scalar() {
                let a = broadcast(x.array(), n)?;
                Ok(Value::Array(nullif(&a, &same)?))
            } else {
                x.map(|a| nullif(a, &same))
            }
        }
        Func::Substr => substr(args, n),
        Func::Replace => replace(args, n),
        Func::Abs => x.map(abs),
        Func::Round(d) => x.map(|a| round(a, *d, ty)),
        Func::Floor => x.map(|a| floor_ceil(a, true, ty)),
        Func::Ceil => x.map(|a| floor_ceil(a, false, ty)),
        Func::Part(p) => x.map(|a| cast(&date_part(a, *p)?, &DataType::Int64)),
        Func::Date => x.map(|a| cast(a, &DataType::Date32)),
        Func::DateTrunc(unit) => x.map(|a| temporal::date_trunc(a, *unit)),
    }
}

/// A string column built straight into its buffers (the rows' nulls are
/// supplied at the end, so a null row is just an empty slot).
struct StrOut {
    values: Vec<u8>,
    offsets: Vec<i32>,
}

impl StrOut {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrOut {
            values: Vec::with_capacity(bytes),
            offsets,
        }
    }

    /// Appends `s` as the next row.
    #[inline]
    fn push(&mut self, s: &str) {
        self.values.extend_from_slice(s.as_bytes());
        self.end_row();
    }

    /// Appends `s` to the current row without ending it.
    #[inline]
    fn extend(&mut self, s: &str) {
        self.values.extend_from_slice(s.as_bytes());
    }

    /// Ends the current row (an empty one if nothing was added).
    #[inline]
    fn end_row(&mut self) {
        // Wraps past 2 GiB; `finish` then reports the overflow.
        self.offsets.push(self.values.len() as i32);
    }

    fn finish(self, nulls: Option<NullBuffer>) -> Result<StringArray, ArrowError> {
        if i32::try_from(self.values.len()).is_err() {
            return Err(ArrowError::ComputeError(
                "a string result exceeds 2 GiB in one batch; use smaller batches".into(),
            ));
        }
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            Buffer::from_vec(self.values),
            nulls,
        )
    }
}

/// Applies `f` to every non-null string.
fn map_str<'a, R: AsRef<str>>(a: &'a StringArray, mut f: impl FnMut(&'a str) -> R) -> Result<StringArray, ArrowError> {
    let mut out = StrOut::with_capacity(a.len(), value_bytes(a).0.len());
    match a.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for i in 0..a.len() {
                out.push(f(a.value(i)).as_ref());
            }
        }
        Some(nulls) => {
            for i in 0..a.len() {
                if nulls.is_valid(i) {
                    out.push(f(a.value(i)).as_ref());
                } else {
                    out.end_row();
                }
            }
        }
    }
    out.finish(a.nulls().cloned())
}

/// Whether some scalar argument is null (so every row's result is).
fn null_scalar(args: &[Value]) -> bool {
    args.iter().any(|v| v.is_scalar() && v.array().is_null(0))
}

/// Rows where any column argument is null.
fn union_nulls(args: &[Value]) -> Option<NullBuffer> {
    args.iter()
        .filter(|v| !v.is_scalar())
        .fold(None, |acc, v| NullBuffer::union(acc.as_ref(), v.array().nulls()))
        .filter(|n| n.null_count() > 0)
}

/// The bytes the array's values span (a slice may not start at 0).
fn value_bytes(a: &StringArray) -> (&[u8], i32) {
    let offsets = a.value_offsets();
    let first = offsets[0];
    let last = offsets[offsets.len() - 1];
    (&a.value_data()[first as usize..last as usize], first)
}

/// Rebased offsets for a new values buffer holding exactly the array's bytes.
fn rebased_offsets(a: &StringArray, first: i32) -> OffsetBuffer<i32> {
    if first == 0 {
        a.offsets().clone()
    } else {
        let v: Vec<i32> = a.value_offsets().iter().map(|o| o - first).collect();
        OffsetBuffer::new(v.into())
    }
}

/// upper/lower: all-ASCII data is mapped byte by byte in one pass.
fn change_case(a: &StringArray, upper: bool) -> Result<StringArray, ArrowError> {
    let (bytes, first) = value_bytes(a);
    if bytes.is_ascii() {
        let mapped: Vec<u8> = if upper {
            bytes.iter().map(u8::to_ascii_uppercase).collect()
        } else {
            bytes.iter().map(u8::to_ascii_lowercase).collect()
        };
        return StringArray::try_new(rebased_offsets(a, first), Buffer::from_vec(mapped), a.nulls().cloned());
    }
    if upper {
        map_str(a, str::to_uppercase)
    } else {
        map_str(a, str::to_lowercase)
    }
}

/// Length in characters (not bytes).
fn char_length(a: &StringArray) -> Int64Array {
    let (bytes, _) = value_bytes(a);
    if bytes.is_ascii() {
        let lengths: Vec<i64> = a.value_offsets().windows(2).map(|w| (w[1] - w[0]) as i64).collect();
        return Int64Array::new(lengths.into(), a.nulls().cloned());
    }
    PrimitiveArray::<Int64Type>::from_unary(a, |s: &str| s.chars().count() as i64)
}

/// Rows in the result: 1 when every argument is a scalar.
fn out_rows(args: &[Value], n: usize) -> (usize, bool) {
    let scalar = args.iter().all(Value::is_scalar);
    (if scalar { 1 } else { n }, scalar)
}

/// Row `i` of an argument (scalars repeat).
#[inline]
fn row(v: &Value, i: usize) -> usize {
    if v.is_scalar() { 0 } else { i }
}

/// concat(...): nulls count as empty strings.
fn concat(args: &[Value], n: usize) -> Result<Value, ArrowError> {
    let (rows, scalar) = out_rows(args, n);
    let parts: Vec<&StringArray> = args.iter().map(|v| v.array().as_string::<i32>()).collect();
    let bytes: usize = args
        .iter()
        .zip(&parts)
        .map(|(v, a)| {
            let b = value_bytes(a).0.len();
            if v.is_scalar() { b * rows } else { b }
        })
        .sum();
    let mut out = StrOut::with_capacity(rows, bytes);
    for i in 0..rows {
        for (v, a) in args.iter().zip(&parts) {
            let j = row(v, i);
            if a.is_valid(j) {
                out.extend(a.value(j));
            }
        }
        out.end_row();
    }
    Ok(Value::wrap(Arc::new(out.finish(None)?), scalar))
}

/// coalesce(...): the first non-null argument, row by row.
fn coalesce(args: &[Value], n: usize) -> Result<Value, ArrowError> {
    let mut result = args[0].clone();
    for next in &args[1..] {
        if result.array().logical_null_count() == 0 {
            break;
        }
        result = if result.is_scalar() {
            next.clone()
        } else {
            let present = Value::Array(Arc::new(is_not_null(result.array())?));
            choose(present, &result, next, n)?
        };
    }
    Ok(result)
}

/// SQL substring on characters: 1-based `start`; positions before 1 still
/// use up `len` (substr('abc', 0, 2) = 'a'); a negative length gives ''.
fn substr_one(s: &str, start: i64, len: Option<i64>) -> &str {
    let begin = start.max(1);
    let end = len.map(|l| if l < 0 { begin } else { start.saturating_add(l) });
    if end.is_some_and(|e| e <= begin) {
        return "";
    }
    let skip = (begin - 1) as usize;
    let take = end.map(|e| (e - begin) as usize);
    if s.is_ascii() {
        let b = skip.min(s.len());
        let e = take.map_or(s.len(), |t| b.saturating_add(t).min(s.len()));
        return &s[b..e];
    }
    let b = s.char_indices().nth(skip).map_or(s.len(), |(i, _)| i);
    let rest = &s[b..];
    match take {
        None => rest,
        Some(t) => &rest[..rest.char_indices().nth(t).map_or(rest.len(), |(i, _)| i)],
    }
}

fn substr(args: &[Value], n: usize) -> Result<Value, ArrowError> {
    let (rows, scalar) = out_rows(args, n);
    if null_scalar(args) {
        return Ok(Value::wrap(new_null_array(&DataType::Utf8, rows), scalar));
    }
    let nulls = union_nulls(args);
    let s = args[0].array().as_string::<i32>();
    let start = args[1].array().as_primitive::<Int64Type>();
    let len = args.get(2).map(|v| (v, v.array().as_primitive::<Int64Type>()));
    let mut out = StrOut::with_capacity(rows, value_bytes(s).0.len());
    for i in 0..rows {
        if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
            out.end_row();
            continue;
        }
        let l = len.map(|(v, l)| l.value(row(v, i)));
        out.push(substr_one(s.value(row(&args[0], i)), start.value(row(&args[1], i)), l));
    }
    Ok(Value::wrap(Arc::new(out.finish(nulls)?), scalar))
}

/// replace(s, from, to): every occurrence; an empty `from` changes nothing.
fn replace(args: &[Value], n: usize) -> Result<Value, ArrowError> {
    let (rows, scalar) = out_rows(args, n);
    if null_scalar(args) {
        return Ok(Value::wrap(new_null_array(&DataType::Utf8, rows), scalar));
    }
    let nulls = union_nulls(args);
    let [s, from, to] = [0, 1, 2].map(|k| args[k].array().as_string::<i32>());
    let mut out = StrOut::with_capacity(rows, value_bytes(s).0.len());
    for i in 0..rows {
        if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
            out.end_row();
            continue;
        }
        let (v, f) = (s.value(row(&args[0], i)), from.value(row(&args[1], i)));
        if f.is_empty() || !v.contains(f) {
            out.push(v);
        } else {
            out.push(&v.replace(f, to.value(row(&args[2], i))));
        }
    }
    Ok(Value::wrap(Arc::new(out.finish(nulls)?), scalar))
}

fn overflow(what: &str) -> ArrowError {
    ArrowError::ArithmeticOverflow(format!("{what} overflows"))
}

fn abs(a: &dyn Array) -> Result<ArrayRef, ArrowError> {
    Ok(match a.data_type() {
        DataType::Int64 => Arc::new(
            a.as_primitive::<Int64Type>()
                .try_unary::<_, Int64Type, _>(|v| v.checked_abs().ok_or_else(|| overflow("abs")))?,
        ),
        DataType::Float64 => Arc::new(a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f64::abs)),
        DataType::Decimal128(p, s) => Arc::new(
            a.as_primitive::<Decimal128Type>()
                .try_unary::<_, Decimal128Type, _>(|v| v.checked_abs().ok_or_else(|| overflow("abs")))?
                .with_precision_and_scale(*p, *s)?,
        ),
        other => return Err(ArrowError::InvalidArgumentError(format!("abs({other})"))),
    })
}

/// Rounds `v` to a multiple of `unit`, halves away from zero.
#[inline]
fn round_to(v: i128, unit: i128) -> Option<i128> {
    let r = v % unit;
    let down = v - r;
    if r.abs() * 2 >= unit {
        down.checked_add(if v < 0 { -unit } else { unit })
    } else {
        Some(down)
    }
}

fn round(a: &dyn Array, digits: i32, ty: &DataType) -> Result<ArrayRef, ArrowError> {
    Ok(match a.data_type() {
        DataType::Float64 => {
            let f = 10f64.powi(digits);
            Arc::new(
                a.as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(move |v| if digits == 0 { v.round() } else { (v * f).round() / f }),
            )
        }
        DataType::Int64 if digits >= 0 => Arc::new(a.as_primitive::<Int64Type>().clone()),
        DataType::Int64 => {
            let unit = 10i128.pow((-digits) as u32);
            Arc::new(a.as_primitive::<Int64Type>().try_unary::<_, Int64Type, _>(|v| {
                round_to(v as i128, unit)
                    .and_then(|r| i64::try_from(r).ok())
                    .ok_or_else(|| overflow("round"))
            })?)
        }
        DataType::Decimal128(_, s) => {
            let DataType::Decimal128(p2, s2) = ty else {
                unreachable!("decimal round has a decimal type")
            };
            let s = *s as i32;
            if digits >= s {
                return Ok(Arc::new(a.as_primitive::<Decimal128Type>().clone()));
            }
            let unit = 10i128.pow((s - digits) as u32);
            let shrink = 10i128.pow((s - *s2 as i32) as u32);
            let out: Decimal128Array = a
                .as_primitive::<Decimal128Type>()
                .try_unary::<_, Decimal128Type, _>(|v| {
                    round_to(v, unit).map(|r| r / shrink).ok_or_else(|| overflow("round"))
                })?;
            Arc::new(out.with_precision_and_scale(*p2, *s2)?)
        }
        other => return Err(ArrowError::InvalidArgumentError(format!("round({other})"))),
    })
}

fn floor_ceil(a: &dyn Array, floor: bool, ty: &DataType) -> Result<ArrayRef, ArrowError> {
    Ok(match a.data_type() {
        DataType::Float64 => {
            let f = if floor { f64::floor } else { f64::ceil };
            Arc::new(a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f))
        }
        DataType::Int64 => Arc::new(a.as_primitive::<Int64Type>().clone()),
        DataType::Decimal128(_, s) => {
            let DataType::Decimal128(p2, s2) = ty else {
                unreachable!("decimal floor has a decimal type")
            };
            let unit = 10i128.pow(*s as u32);
            let out: Decimal128Array = a.as_primitive::<Decimal128Type>().unary(|v| {
                if floor {
                    v.div_euclid(unit)
                } else {
                    -(-v).div_euclid(unit)
                }
            });
            Arc::new(out.with_precision_and_scale(*p2, *s2)?)
        }
        other => return Err(ArrowError::InvalidArgumentError(format!("floor({other})"))),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, RecordBatch};
    use arrow::datatypes::{DataType, TimeUnit};

    use super::substr_one;
    use crate::data::expr::testutil::*;

    fn sample() -> RecordBatch {
        batch(vec![
            (
                "s",
                string(vec![Some("  Café au lait "), Some("hello"), None, Some("")]),
            ),
            ("n", int(vec![Some(-3), Some(0), None, Some(7)])),
            ("x", float(vec![Some(2.5), Some(-2.5), None, Some(1.234)])),
            // 12.34, -0.05, null, 99.99
            ("p", decimal(vec![Some(1234), Some(-5), None, Some(9999)], 6, 2)),
            (
                "d",
                date(vec![Some("2010-12-01"), Some("2011-02-27"), None, Some("2012-12-31")]),
            ),
            (
                "t",
                ts(vec![
                    Some("2010-12-01 08:26:07"),
                    Some("2011-02-27 23:59:59"),
                    None,
                    Some("2012-12-31 00:00:00"),
                ]),
            ),
            ("e", string(vec![Some("a"), None, Some("c"), None])),
        ])
    }

    fn run(src: &str) -> arrow::array::ArrayRef {
        eval(src, &sample())
    }

    fn owned(v: Vec<Option<&str>>) -> Vec<Option<String>> {
        v.into_iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn case_functions() {
        assert_eq!(
            strs(&run("upper(s)")),
            owned(vec![Some("  CAFÉ AU LAIT "), Some("HELLO"), None, Some("")])
        );
        assert_eq!(
            strs(&run("lower('MiXeD' || s)")),
            owned(vec![
                Some("mixed  café au lait "),
                Some("mixedhello"),
                None,
                Some("mixed")
            ])
        );
        assert_eq!(strs(&run("upper(e)")), owned(vec![Some("A"), None, Some("C"), None]));
        assert_eq!(strs(&run("upper(null)")), owned(vec![None; 4]));
    }

    #[test]
    fn trimming_and_length() {
        assert_eq!(
            strs(&run("trim(s)")),
            owned(vec![Some("Café au lait"), Some("hello"), None, Some("")])
        );
        assert_eq!(
            strs(&run("ltrim(s)")),
            owned(vec![Some("Café au lait "), Some("hello"), None, Some("")])
        );
        assert_eq!(
            strs(&run("rtrim(s)")),
            owned(vec![Some("  Café au lait"), Some("hello"), None, Some("")])
        );
        // Characters, not bytes.
        assert_eq!(ints(&run("length(s)")), vec![Some(15), Some(5), None, Some(0)]);
        assert_eq!(ints(&run("length(e)")), vec![Some(1), None, Some(1), None]);
    }

    #[test]
    fn concat_and_coalesce() {
        assert_eq!(
            strs(&run("concat(e, '-', n)")),
            owned(vec![Some("a--3"), Some("-0"), Some("c-"), Some("-7")])
        );
        assert_eq!(strs(&run("concat('x', 1, true)")), owned(vec![Some("x1true"); 4]));
        assert_eq!(
            strs(&run("concat(d)")),
            owned(vec![
                Some("2010-12-01"),
                Some("2011-02-27"),
                Some(""),
                Some("2012-12-31")
            ])
        );
        assert_eq!(
            strs(&run("coalesce(e, 'none')")),
            owned(vec![Some("a"), Some("none"), Some("c"), Some("none")])
        );
        assert_eq!(
            ints(&run("coalesce(null, n, 42)")),
            vec![Some(-3), Some(0), Some(42), Some(7)]
        );
        assert_eq!(ints(&run("coalesce(null, 5, n)")), vec![Some(5); 4]);
        assert_eq!(ints(&run("coalesce(n)")), vec![Some(-3), Some(0), None, Some(7)]);
        assert_eq!(
            floats(&run("coalesce(x, n)")),
            vec![Some(2.5), Some(-2.5), None, Some(1.234)]
        );
        assert_eq!(
            texts(&run("coalesce(d, '1970-01-01')")),
            owned(vec![
                Some("2010-12-01"),
                Some("2011-02-27"),
                Some("1970-01-01"),
                Some("2012-12-31")
            ])
        );
        assert_eq!(strs(&run("nullif(e, 'a')")), owned(vec![None, None, Some("c"), None]));
        assert_eq!(ints(&run("nullif(n, 0)")), vec![Some(-3), None, None, Some(7)]);
        assert_eq!(ints(&run("nullif(1, n + 4)")), vec![None, Some(1), Some(1), Some(1)]);
    }

    #[test]
    fn substrings() {
        assert_eq!(substr_one("hello", 1, None), "hello");
        assert_eq!(substr_one("hello", 2, Some(3)), "ell");
        assert_eq!(substr_one("hello", 0, Some(2)), "h");
        assert_eq!(substr_one("hello", -5, None), "hello");
        assert_eq!(substr_one("hello", 4, Some(10)), "lo");
        assert_eq!(substr_one("hello", 9, None), "");
        assert_eq!(substr_one("hello", 2, Some(-1)), "");
        assert_eq!(substr_one("hello", 2, Some(0)), "");
        assert_eq!(substr_one("Café au", 3, Some(3)), "fé ");
        assert_eq!(substr_one("Café au", 4, None), "é au");
        assert_eq!(substr_one("Café", 9, Some(1)), "");
        assert_eq!(
            strs(&run("substr(e, 1, 1)")),
            owned(vec![Some("a"), None, Some("c"), None])
        );
        assert_eq!(
            strs(&run("substr('abcdef', n + 4, 2)")),
            owned(vec![Some("ab"), Some("de"), None, Some("")])
        );
        assert_eq!(
            strs(&run("substring(trim(s), 6)")),
            owned(vec![Some("au lait"), Some(""), None, Some("")])
        );
        assert_eq!(strs(&run("substr('abc', 2, null)")), owned(vec![None; 4]));
    }

    #[test]
    fn replacing() {
        assert_eq!(
            strs(&run("replace(s, ' ', '_')")),
            owned(vec![Some("__Café_au_lait_"), Some("hello"), None, Some("")])
        );
        assert_eq!(
            strs(&run("replace('hello', 'l', e)")),
            owned(vec![Some("heaao"), None, Some("hecco"), None])
        );
        assert_eq!(strs(&run("replace('abc', '', 'x')")), owned(vec![Some("abc"); 4]));
    }

    #[test]
    fn numeric_functions() {
        assert_eq!(ints(&run("abs(n)")), vec![Some(3), Some(0), None, Some(7)]);
        assert_eq!(floats(&run("abs(x)")), vec![Some(2.5), Some(2.5), None, Some(1.234)]);
        assert_eq!(
            decimals(&run("abs(p)"), 6, 2),
            vec![Some(1234), Some(5), None, Some(9999)]
        );
        // Halves round away from zero.
        assert_eq!(floats(&run("round(x)")), vec![Some(3.0), Some(-3.0), None, Some(1.0)]);
        assert_eq!(
            floats(&run("round(x, 2)")),
            vec![Some(2.5), Some(-2.5), None, Some(1.23)]
        );
        assert_eq!(
            floats(&run("round(x * 100, -2)")),
            vec![Some(300.0), Some(-300.0), None, Some(100.0)]
        );
        assert_eq!(ints(&run("round(n)")), vec![Some(-3), Some(0), None, Some(7)]);
        assert_eq!(ints(&run("round(n * 5, -1)")), vec![Some(-20), Some(0), None, Some(40)]);
        assert_eq!(
            decimals(&run("round(p, 1)"), 6, 1),
            vec![Some(123), Some(-1), None, Some(1000)]
        );
        assert_eq!(
            decimals(&run("round(p)"), 5, 0),
            vec![Some(12), Some(0), None, Some(100)]
        );
        assert_eq!(
            decimals(&run("round(p, -1)"), 5, 0),
            vec![Some(10), Some(0), None, Some(100)]
        );
        assert_eq!(floats(&run("floor(x)")), vec![Some(2.0), Some(-3.0), None, Some(1.0)]);
        assert_eq!(floats(&run("ceil(x)")), vec![Some(3.0), Some(-2.0), None, Some(2.0)]);
        assert_eq!(ints(&run("ceil(n)")), vec![Some(-3), Some(0), None, Some(7)]);
        assert_eq!(
            decimals(&run("floor(p)"), 5, 0),
            vec![Some(12), Some(-1), None, Some(99)]
        );
        assert_eq!(
            decimals(&run("ceiling(p)"), 5, 0),
            vec![Some(13), Some(0), None, Some(100)]
        );
        let e = eval_err("abs(n - 9223372036854775807 - 1)", &sample());
        assert!(e.message.contains("overflow"), "{e}");
    }

    #[test]
    fn date_parts() {
        assert_eq!(ints(&run("year(d)")), vec![Some(2010), Some(2011), None, Some(2012)]);
        assert_eq!(ints(&run("quarter(d)")), vec![Some(4), Some(1), None, Some(4)]);
        assert_eq!(ints(&run("month(t)")), vec![Some(12), Some(2), None, Some(12)]);
        assert_eq!(ints(&run("day(t)")), vec![Some(1), Some(27), None, Some(31)]);
        assert_eq!(ints(&run("hour(t)")), vec![Some(8), Some(23), None, Some(0)]);
        assert_eq!(ints(&run("minute(t)")), vec![Some(26), Some(59), None, Some(0)]);
        assert_eq!(ints(&run("second(t)")), vec![Some(7), Some(59), None, Some(0)]);
        // 2010-12-01 Wednesday, 2011-02-27 Sunday, 2012-12-31 Monday.
        assert_eq!(ints(&run("weekday(d)")), vec![Some(3), Some(7), None, Some(1)]);
        assert_eq!(ints(&run("dayofweek(t)")), vec![Some(3), Some(7), None, Some(1)]);
        assert_eq!(ints(&run("year(null)")), vec![None; 4]);
    }

    #[test]
    fn dates_and_truncation() {
        let a = run("date(t)");
        assert_eq!(a.data_type(), &DataType::Date32);
        assert_eq!(
            texts(&a),
            owned(vec![Some("2010-12-01"), Some("2011-02-27"), None, Some("2012-12-31")])
        );
        assert_eq!(texts(&run("date('2010-12-01')")), owned(vec![Some("2010-12-01"); 4]));
        assert_eq!(texts(&run("date(e)")), owned(vec![None; 4]));
        let a = run("date_trunc('month', t)");
        assert_eq!(a.data_type(), &ts_type());
        assert_eq!(
            texts(&a),
            owned(vec![
                Some("2010-12-01T00:00:00"),
                Some("2011-02-01T00:00:00"),
                None,
                Some("2012-12-01T00:00:00")
            ])
        );
        assert_eq!(
            texts(&run("date_trunc('hour', t)")),
            owned(vec![
                Some("2010-12-01T08:00:00"),
                Some("2011-02-27T23:00:00"),
                None,
                Some("2012-12-31T00:00:00")
            ])
        );
        assert_eq!(
            texts(&run("date_trunc('minute', t)"))[0].as_deref(),
            Some("2010-12-01T08:26:00")
        );
        assert_eq!(
            texts(&run("date_trunc('second', t)"))[0].as_deref(),
            Some("2010-12-01T08:26:07")
        );
        let a = run("date_trunc('week', d)");
        assert_eq!(a.data_type(), &DataType::Date32);
        assert_eq!(
            texts(&a),
            owned(vec![Some("2010-11-29"), Some("2011-02-21"), None, Some("2012-12-31")])
        );
        assert_eq!(
            texts(&run("date_trunc('YEAR', d)")),
            owned(vec![Some("2010-01-01"), Some("2011-01-01"), None, Some("2012-01-01")])
        );
        assert_eq!(
            texts(&run("date_trunc('quarter', d)")),
            owned(vec![Some("2010-10-01"), Some("2011-01-01"), None, Some("2012-10-01")])
        );
        assert_eq!(
            texts(&run("date_trunc('day', t)"))[1].as_deref(),
            Some("2011-02-27T00:00:00")
        );
    }

    #[test]
    fn zoned_timestamps() {
        // 2010-07-14 23:30 UTC is 2010-07-15 00:30 in London (BST).
        let zoned = ts_array(vec![Some("2010-07-14 23:30:00"), None]).with_timezone("Europe/London");
        let b = batch(vec![("t", std::sync::Arc::new(zoned) as _)]);
        assert_eq!(ints(&eval("hour(t)", &b)), vec![Some(0), None]);
        assert_eq!(ints(&eval("day(t)", &b)), vec![Some(15), None]);
        assert_eq!(texts(&eval("date(t)", &b)), owned(vec![Some("2010-07-15"), None]));
        let a = eval("date_trunc('day', t)", &b);
        assert_eq!(
            a.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/London".into()))
        );
        assert_eq!(texts(&a), owned(vec![Some("2010-07-15T00:00:00+01:00"), None]));
        // A naive literal is wall-clock time in the column's zone.
        assert_eq!(
            bools(&eval("t >= timestamp '2010-07-15 00:30:00'", &b)),
            vec![Some(true), None]
        );
        assert_eq!(bools(&eval("t > '2010-07-15 00:30:00'", &b)), vec![Some(false), None]);
        assert_eq!(bools(&eval("t >= date '2010-07-15'", &b)), vec![Some(true), None]);
        assert_eq!(bools(&eval("date(t) = '2010-07-15'", &b)), vec![Some(true), None]);
    }

    #[test]
    fn casts() {
        assert_eq!(ints(&run("cast(x as int64)")), vec![Some(2), Some(-2), None, Some(1)]);
        assert_eq!(
            strs(&run("cast(n as string)")),
            owned(vec![Some("-3"), Some("0"), None, Some("7")])
        );
        assert_eq!(ints(&run("cast('12' as bigint)")), vec![Some(12); 4]);
        // Unconvertible values become null instead of failing the run.
        assert_eq!(ints(&run("cast(e as int)")), vec![None; 4]);
        assert_eq!(
            floats(&run("cast(p as double)")),
            vec![Some(12.34), Some(-0.05), None, Some(99.99)]
        );
        assert_eq!(
            decimals(&run("cast(x as decimal(8, 3))"), 8, 3),
            vec![Some(2500), Some(-2500), None, Some(1234)]
        );
        assert_eq!(bools(&run("cast('true' as boolean)")), vec![Some(true); 4]);
        assert_eq!(
            texts(&run("cast('2010-12-01 08:26:00' as timestamp)"))[0].as_deref(),
            Some("2010-12-01T08:26:00")
        );
        assert_eq!(
            texts(&run("cast(t as date)")),
            owned(vec![Some("2010-12-01"), Some("2011-02-27"), None, Some("2012-12-31")])
        );
    }
}
