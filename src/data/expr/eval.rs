//! Vectorized evaluation of a type-checked tree over a record batch.
//!
//! Every node evaluates to a [`Value`]: a whole column, or a one-element
//! scalar (literals and anything computed only from literals). Kernels get
//! scalars as Arrow [`Datum`]s, so `Quantity > 0` never materializes a
//! column of zeros.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int64Array, UInt32Array, new_null_array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::kernels::cmp::{eq, gt, gt_eq, lt, lt_eq, neq};
use arrow::compute::kernels::comparison::{ilike, like, nilike, nlike};
use arrow::compute::kernels::concat_elements::concat_elements_utf8;
use arrow::compute::kernels::numeric::{add, div, mul, neg, rem, sub};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{and_kleene, cast, is_not_null, is_null, not, nullif, or_kleene, take};
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::ExprError;
use super::ast::BinOp;
use super::functions;
use super::typecheck::{TKind, Typed};

/// A column, or one value standing for every row.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Array(ArrayRef),
    /// A one-element array.
    Scalar(ArrayRef),
}

impl Datum for Value {
    fn get(&self) -> (&dyn Array, bool) {
        match self {
            Value::Array(a) => (a.as_ref(), false),
            Value::Scalar(a) => (a.as_ref(), true),
        }
    }
}

impl Value {
    pub fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(a) | Value::Scalar(a) => a,
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// Applies an element-wise function, keeping scalars scalar.
    pub fn map(&self, f: impl FnOnce(&dyn Array) -> Result<ArrayRef, ArrowError>) -> Result<Value, ArrowError> {
        Ok(match self {
            Value::Array(a) => Value::Array(f(a.as_ref())?),
            Value::Scalar(a) => Value::Scalar(f(a.as_ref())?),
        })
    }

    /// A column of `n` rows (scalars are repeated).
    pub fn into_array(self, n: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(a) => broadcast(&a, n),
        }
    }

    /// Wraps a kernel result: scalar when every input was.
    pub fn wrap(array: ArrayRef, scalar: bool) -> Value {
        if scalar {
            Value::Scalar(array)
        } else {
            Value::Array(array)
        }
    }
}

/// Repeats a one-element array `n` times.
pub(crate) fn broadcast(a: &ArrayRef, n: usize) -> Result<ArrayRef, ArrowError> {
    if a.len() == n {
        return Ok(a.clone());
    }
    if a.logical_null_count() == a.len() {
        return Ok(new_null_array(a.data_type(), n));
    }
    let indices = UInt32Array::from(vec![0u32; n]);
    take(a.as_ref(), &indices, None)
}

/// `BooleanArray` results as `ArrayRef`s.
fn arc(b: Result<BooleanArray, ArrowError>) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(b?))
}

/// A binary kernel over two values; scalar when both are.
fn datum_op(
    l: &Value,
    r: &Value,
    f: impl FnOnce(&dyn Datum, &dyn Datum) -> Result<ArrayRef, ArrowError>,
) -> Result<Value, ArrowError> {
    Ok(Value::wrap(f(l, r)?, l.is_scalar() && r.is_scalar()))
}

/// `and_kleene` / `or_kleene`, which want equal-length arrays.
fn bool_op(
    l: Value,
    r: Value,
    n: usize,
    f: fn(&BooleanArray, &BooleanArray) -> Result<BooleanArray, ArrowError>,
) -> Result<Value, ArrowError> {
    let scalar = l.is_scalar() && r.is_scalar();
    let (l, r) = if scalar {
        (l.array().clone(), r.array().clone())
    } else {
        (l.into_array(n)?, r.into_array(n)?)
    };
    Ok(Value::wrap(Arc::new(f(l.as_boolean(), r.as_boolean())?), scalar))
}

/// Turns zero divisors into nulls, so `x / 0` is null rather than an error
/// or infinity.
fn null_zeros(v: Value) -> Result<Value, ArrowError> {
    let zero: ArrayRef = match v.array().data_type() {
        DataType::Int64 => Arc::new(Int64Array::from(vec![0])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![0.0])),
        _ => return Ok(v),
    };
    let mask = eq(&v, &arrow::array::Scalar::new(zero))?;
    if mask.true_count() == 0 {
        return Ok(v);
    }
    v.map(|a| nullif(a, &mask))
}

/// Evaluates a checked tree over a batch.
pub(crate) struct Evaluator<'a> {
    pub batch: &'a RecordBatch,
    pub src: &'a str,
}

impl Evaluator<'_> {
    fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    fn error(&self, t: &Typed, e: ArrowError) -> ExprError {
        let text: String = self.src.chars().skip(t.start).take(t.end - t.start).collect();
        match e {
            ArrowError::ArithmeticOverflow(_) => ExprError::at(t.pos, format!("arithmetic overflow in `{text}`"))
                .with_hint("the result does not fit its type; cast an operand to float64 first"),
            other => ExprError::at(t.pos, format!("cannot evaluate `{text}`: {other}")),
        }
    }

    pub fn eval(&self, t: &Typed) -> Result<Value, ExprError> {
        self.eval_inner(t).map_err(|e| match e {
            Failure::Expr(e) => e,
            Failure::Arrow(e) => self.error(t, e),
        })
    }

    fn eval_inner(&self, t: &Typed) -> Result<Value, Failure> {
        if t.ty == DataType::Null {
            return Ok(Value::Scalar(new_null_array(&DataType::Null, 1)));
        }
        let n = self.rows();
        let v = match &t.kind {
            TKind::Lit(a) => Value::Scalar(a.clone()),
            TKind::Col(i) => {
                let c = self.batch.column(*i);
                if c.data_type() == &t.ty {
                    Value::Array(c.clone())
                } else {
                    Value::Array(cast(c, &t.ty)?)
                }
            }
            TKind::Cast(inner) => self.eval(inner)?.map(|a| cast(a, &t.ty))?,
            TKind::Neg(inner) => self.eval(inner)?.map(neg)?,
            TKind::Not(inner) => self.eval(inner)?.map(|a| arc(not(a.as_boolean())))?,
            TKind::And(l, r) => bool_op(self.eval(l)?, self.eval(r)?, n, and_kleene)?,
            TKind::Or(l, r) => bool_op(self.eval(l)?, self.eval(r)?, n, or_kleene)?,
            TKind::Arith(op, l, r) => {
                let lv = self.eval(l)?;
                let mut rv = self.eval(r)?;
                if matches!(op, BinOp::Div | BinOp::IntDiv | BinOp::Rem) {
                    rv = null_zeros(rv)?;
                }
                let out = datum_op(&lv, &rv, |a, b| match op {
                    BinOp::Add => add(a, b),
                    BinOp::Sub => sub(a, b),
                    BinOp::Mul => mul(a, b),
                    BinOp::Div | BinOp::IntDiv => div(a, b),
                    BinOp::Rem => rem(a, b),
                    _ => unreachable!("not arithmetic: {op:?}"),
                })?;
                if out.array().data_type() != &t.ty {
                    out.map(|a| cast(a, &t.ty))?
                } else {
                    out
                }
            }
            TKind::Cmp(op, l, r) => {
                let (lv, rv) = (self.eval(l)?, self.eval(r)?);
                datum_op(&lv, &rv, |a, b| {
                    arc(match op {
                        BinOp::Eq => eq(a, b),
                        BinOp::NotEq => neq(a, b),
                        BinOp::Lt => lt(a, b),
                        BinOp::LtEq => lt_eq(a, b),
                        BinOp::Gt => gt(a, b),
                        BinOp::GtEq => gt_eq(a, b),
                        _ => unreachable!("not a comparison: {op:?}"),
                    })
                })?
            }
            TKind::Concat(l, r) => {
                let (lv, rv) = (self.eval(l)?, self.eval(r)?);
                let scalar = lv.is_scalar() && rv.is_scalar();
                let (la, ra) = if scalar {
                    (lv.array().clone(), rv.array().clone())
                } else {
                    (lv.into_array(n)?, rv.into_array(n)?)
                };
                let out = concat_elements_utf8(la.as_string::<i32>(), ra.as_string::<i32>())?;
                Value::wrap(Arc::new(out), scalar)
            }
            TKind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let (e, p) = (self.eval(expr)?, self.eval(pattern)?);
                datum_op(&e, &p, |a, b| {
                    arc(match (negated, case_insensitive) {
                        (false, false) => like(a, b),
                        (true, false) => nlike(a, b),
                        (false, true) => ilike(a, b),
                        (true, true) => nilike(a, b),
                    })
                })?
            }
            TKind::InList { expr, list, negated } => {
                let e = self.eval(expr)?;
                let found = match in_set(&e, list) {
                    Some(found) => found,
                    None => {
                        let mut acc: Option<Value> = None;
                        for item in list {
                            let iv = self.eval(item)?;
                            let hit = datum_op(&e, &iv, |a, b| arc(eq(a, b)))?;
                            acc = Some(match acc {
                                None => hit,
                                Some(prev) => bool_op(prev, hit, n, or_kleene)?,
                            });
                        }
                        acc.expect("in lists are never empty")
                    }
                };
                if *negated {
                    found.map(|a| arc(not(a.as_boolean())))?
                } else {
                    found
                }
            }
            TKind::IsNull { expr, negated } => {
                let e = self.eval(expr)?;
                if *negated {
                    e.map(|a| arc(is_not_null(a)))?
                } else {
                    e.map(|a| arc(is_null(a)))?
                }
            }
            TKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let e = self.eval(expr)?;
                let (lo, hi) = (self.eval(low)?, self.eval(high)?);
                let above = datum_op(&e, &lo, |a, b| arc(gt_eq(a, b)))?;
                let below = datum_op(&e, &hi, |a, b| arc(lt_eq(a, b)))?;
                let inside = bool_op(above, below, n, and_kleene)?;
                if *negated {
                    inside.map(|a| arc(not(a.as_boolean())))?
                } else {
                    inside
                }
            }
            TKind::Case { branches, otherwise } => {
                let mut result = match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Value::Scalar(new_null_array(&t.ty, 1)),
                };
                for (cond, value) in branches.iter().rev() {
                    let c = self.eval(cond)?;
                    let v = self.eval(value)?;
                    result = choose(c, &v, &result, n)?;
                }
                result
            }
            TKind::Func(f, args) => {
                let values = args.iter().map(|a| self.eval(a)).collect::<Result<Vec<_>, _>>()?;
                functions::eval(f, &values, &t.ty, n)?
            }
        };
        Ok(v)
    }
}

/// Where `cond` is true take `then`, elsewhere `otherwise` (a null
/// condition counts as false).
pub(crate) fn choose(cond: Value, then: &Value, otherwise: &Value, n: usize) -> Result<Value, ArrowError> {
    let scalar = cond.is_scalar() && then.is_scalar() && otherwise.is_scalar();
    if cond.is_scalar() && !scalar {
        // One answer for every row.
        let c = cond.array().as_boolean();
        let pick = if c.is_valid(0) && c.value(0) { then } else { otherwise };
        return Ok(Value::Array(pick.clone().into_array(n)?));
    }
    let mask = cond.array().as_boolean();
    Ok(Value::wrap(zip(mask, then, otherwise)?, scalar))
}

/// A list this long or longer, of non-null literals, is matched in one pass
/// over the column (a hash or length look-up per row) instead of one
/// comparison kernel pass per value.
const IN_SET_MIN: usize = 4;

/// `x in (...)` with many literal values. `None` when the fast path does
/// not apply (short list, non-literal or null items, other types).
fn in_set(e: &Value, list: &[Typed]) -> Option<Value> {
    if e.is_scalar() || list.len() < IN_SET_MIN {
        return None;
    }
    let mut lits = Vec::with_capacity(list.len());
    for item in list {
        match &item.kind {
            TKind::Lit(a) if a.is_valid(0) => lits.push(a),
            _ => return None,
        }
    }
    let a = e.array();
    let found: Vec<bool> = match a.data_type() {
        DataType::Utf8 => {
            // Literals bucketed by byte length: most rows are rejected by
            // one look-up, the rest compare against a few candidates (or
            // probe a hash set when a length has many).
            let keys: Vec<&[u8]> = lits.iter().map(|l| l.as_string::<i32>().value(0).as_bytes()).collect();
            let max_len = keys.iter().map(|k| k.len()).max().unwrap_or(0);
            let mut by_len: Vec<Vec<&[u8]>> = vec![Vec::new(); max_len + 1];
            for k in keys {
                if !by_len[k.len()].contains(&k) {
                    by_len[k.len()].push(k);
                }
            }
            let buckets: Vec<Bucket> = by_len
                .into_iter()
                .map(|keys| {
                    if keys.len() > 16 {
                        Bucket::Hashed(keys.into_iter().collect())
                    } else {
                        Bucket::Few(keys)
                    }
                })
                .collect();
            let s = a.as_string::<i32>();
            let data = s.value_data();
            s.value_offsets()
                .windows(2)
                .map(|w| {
                    let v = &data[w[0] as usize..w[1] as usize];
                    match buckets.get(v.len()) {
                        None => false,
                        Some(Bucket::Few(keys)) => keys.contains(&v),
                        Some(Bucket::Hashed(set)) => set.contains(v),
                    }
                })
                .collect()
        }
        DataType::Int64 => {
            let set: FxSet<i64> = lits.iter().map(|l| l.as_primitive::<Int64Type>().value(0)).collect();
            let s = a.as_primitive::<Int64Type>();
            s.values().iter().map(|v| set.contains(v)).collect()
        }
        _ => return None,
    };
    let nulls = a.logical_nulls().filter(|n: &NullBuffer| n.null_count() > 0);
    let out = BooleanArray::new(BooleanBuffer::from(found), nulls);
    Some(Value::Array(Arc::new(out)))
}

type FxSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// The `in` literals of one byte length.
enum Bucket<'a> {
    Few(Vec<&'a [u8]>),
    Hashed(FxSet<&'a [u8]>),
}

/// A fast non-cryptographic hasher (the Firefox/rustc "Fx" hash) for the
/// `in` sets; the keys are the expression's own literals, so no untrusted
/// input can choose collisions.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Why evaluation stopped: an Arrow kernel failed (reported against the
/// node being evaluated) or a child already produced a positioned error.
enum Failure {
    Arrow(ArrowError),
    Expr(ExprError),
}

impl From<ArrowError> for Failure {
    fn from(e: ArrowError) -> Self {
        Failure::Arrow(e)
    }
}

impl From<ExprError> for Failure {
    fn from(e: ExprError) -> Self {
        Failure::Expr(e)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Array, DictionaryArray, Int32Array, LargeStringArray, RecordBatch, StringViewArray, TimestampNanosecondArray,
    };
    use arrow::datatypes::Int32Type;

    use crate::data::expr::Expr;
    use crate::data::expr::testutil::*;

    /// a: ints, b: ints with a zero, f: floats, s: strings, t/u: booleans.
    fn sample() -> RecordBatch {
        batch(vec![
            ("a", int(vec![Some(1), Some(2), None, Some(4)])),
            ("b", int(vec![Some(2), Some(0), Some(3), None])),
            ("f", float(vec![Some(1.5), Some(-2.0), None, Some(0.0)])),
            ("s", string(vec![Some("apple"), Some("Banana"), None, Some("cherry")])),
            ("t", boolean(vec![Some(true), Some(false), None, Some(true)])),
            ("u", boolean(vec![None, None, Some(true), Some(false)])),
        ])
    }

    fn i(src: &str) -> Vec<Option<i64>> {
        ints(&eval(src, &sample()))
    }

    fn fl(src: &str) -> Vec<Option<f64>> {
        floats(&eval(src, &sample()))
    }

    fn b(src: &str) -> Vec<Option<bool>> {
        bools(&eval(src, &sample()))
    }

    fn s(src: &str) -> Vec<Option<String>> {
        strs(&eval(src, &sample()))
    }

    fn owned(v: Vec<Option<&str>>) -> Vec<Option<String>> {
        v.into_iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn integer_arithmetic() {
        assert_eq!(i("a + b"), vec![Some(3), Some(2), None, None]);
        assert_eq!(i("a - b"), vec![Some(-1), Some(2), None, None]);
        assert_eq!(i("a * b"), vec![Some(2), Some(0), None, None]);
        assert_eq!(i("a + 1"), vec![Some(2), Some(3), None, Some(5)]);
        assert_eq!(i("10 - a"), vec![Some(9), Some(8), None, Some(6)]);
        assert_eq!(i("-a"), vec![Some(-1), Some(-2), None, Some(-4)]);
        assert_eq!(i("a + 2 * 3"), vec![Some(7), Some(8), None, Some(10)]);
        assert_eq!(i("(a + 2) * 3"), vec![Some(9), Some(12), None, Some(18)]);
        assert_eq!(i("a // 2"), vec![Some(0), Some(1), None, Some(2)]);
        assert_eq!(i("-7 // 2 + a * 0"), vec![Some(-3), Some(-3), None, Some(-3)]);
        assert_eq!(i("a % 3"), vec![Some(1), Some(2), None, Some(1)]);
        assert_eq!(i("a + null"), vec![None, None, None, None]);
    }

    #[test]
    fn division() {
        // `/` is real division; zero divisors give null.
        assert_eq!(fl("a / b"), vec![Some(0.5), None, None, None]);
        assert_eq!(fl("a / 2"), vec![Some(0.5), Some(1.0), None, Some(2.0)]);
        assert_eq!(fl("a / 0"), vec![None, None, None, None]);
        assert_eq!(fl("f / f"), vec![Some(1.0), Some(1.0), None, None]);
        assert_eq!(fl("f / 0.0"), vec![None, None, None, None]);
        assert_eq!(i("a // b"), vec![Some(0), None, None, None]);
        assert_eq!(i("a % b"), vec![Some(1), None, None, None]);
        assert_eq!(fl("f % 0"), vec![None, None, None, None]);
        assert_eq!(fl("7 / 2 + f * 0"), vec![Some(3.5), Some(3.5), None, Some(3.5)]);
    }

    #[test]
    fn mixed_arithmetic() {
        assert_eq!(fl("a + f"), vec![Some(2.5), Some(0.0), None, Some(4.0)]);
        assert_eq!(fl("a * 1.5"), vec![Some(1.5), Some(3.0), None, Some(6.0)]);
        assert_eq!(fl("-f"), vec![Some(-1.5), Some(2.0), None, Some(-0.0)]);
    }

    #[test]
    fn overflow_is_an_error() {
        let e = eval_err("a * 9223372036854775807", &sample());
        assert_eq!(e.position, Some(2));
        assert!(e.message.contains("overflow"), "{e}");
        assert!(e.message.contains("`a * 9223372036854775807`"), "{e}");
        assert!(e.hint.is_some());
    }

    #[test]
    fn comparisons() {
        assert_eq!(b("a = b"), vec![Some(false), Some(false), None, None]);
        assert_eq!(b("a == 2"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("a != 2"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("a <> 2"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("a < 2"), vec![Some(true), Some(false), None, Some(false)]);
        assert_eq!(b("a <= 2"), vec![Some(true), Some(true), None, Some(false)]);
        assert_eq!(b("a > 2"), vec![Some(false), Some(false), None, Some(true)]);
        assert_eq!(b("a >= 2"), vec![Some(false), Some(true), None, Some(true)]);
        assert_eq!(b("2 < a"), vec![Some(false), Some(false), None, Some(true)]);
        assert_eq!(b("a > f"), vec![Some(false), Some(true), None, Some(true)]);
        assert_eq!(b("a >= 1.5"), vec![Some(false), Some(true), None, Some(true)]);
        assert_eq!(b("s < 'b'"), vec![Some(true), Some(true), None, Some(false)]);
        assert_eq!(b("s = 'apple'"), vec![Some(true), Some(false), None, Some(false)]);
        assert_eq!(b("t = true"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("a = null"), vec![None, None, None, None]);
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(b("t and u"), vec![None, Some(false), None, Some(false)]);
        assert_eq!(b("t or u"), vec![Some(true), None, Some(true), Some(true)]);
        assert_eq!(b("not t"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("t and null"), vec![None, Some(false), None, None]);
        assert_eq!(b("t or null"), vec![Some(true), None, None, Some(true)]);
        assert_eq!(b("t and true"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("false and u"), vec![Some(false); 4]);
        assert_eq!(b("true or u"), vec![Some(true); 4]);
        assert_eq!(b("not null or t"), vec![Some(true), None, None, Some(true)]);
        assert_eq!(
            b("a > 1 and s like '%e%'"),
            vec![Some(false), Some(false), None, Some(true)]
        );
    }

    #[test]
    fn like_patterns() {
        assert_eq!(b("s like 'a%'"), vec![Some(true), Some(false), None, Some(false)]);
        assert_eq!(b("s like '_anana'"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("s not like '%e%'"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("s ilike 'b%'"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("s not ilike 'B%'"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("s like null"), vec![None, None, None, None]);
        assert_eq!(b("'apple' like s"), vec![Some(true), Some(false), None, Some(false)]);
        assert_eq!(b("'50%' like '50\\%'"), vec![Some(true); 4]);
    }

    #[test]
    fn in_lists() {
        assert_eq!(b("a in (1, 4)"), vec![Some(true), Some(false), None, Some(true)]);
        assert_eq!(b("a not in (1, 4)"), vec![Some(false), Some(true), None, Some(false)]);
        // SQL: no match plus a null in the list is null.
        assert_eq!(b("a in (1, null)"), vec![Some(true), None, None, None]);
        assert_eq!(b("a not in (1, null)"), vec![Some(false), None, None, None]);
        assert_eq!(b("a in (b, 4)"), vec![Some(false), Some(false), None, Some(true)]);
        assert_eq!(b("a in (1.0, 2.5)"), vec![Some(true), Some(false), None, Some(false)]);
        assert_eq!(b("1 in (a, 9)"), vec![Some(true), Some(false), None, Some(false)]);
        // Long literal lists use a hash set; same answers.
        assert_eq!(
            b("a in (1, 4, 5, 6, 7)"),
            vec![Some(true), Some(false), None, Some(true)]
        );
        assert_eq!(
            b("a not in (1, 4, 5, 6, 7)"),
            vec![Some(false), Some(true), None, Some(false)]
        );
        assert_eq!(
            b("s in ('apple', 'cherry', 'x', 'y', 'z', 'a somewhat longer string', '', 'q')"),
            vec![Some(true), Some(false), None, Some(true)]
        );
        assert_eq!(
            b("s in ('apple', 'cherry', 'x', 'y', 'z', 'v', 'w', null)"),
            vec![Some(true), None, None, Some(true)]
        );
        let many: Vec<String> = (0..40).map(|k| format!("'z{k:04}'")).collect();
        assert_eq!(
            b(&format!("s in ({}, 'apple')", many.join(", "))),
            vec![Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(
            b("s in ('apple', 'apple', 'Banana', 'x')"),
            vec![Some(true), Some(true), None, Some(false)]
        );
        assert_eq!(
            b("f in (1.5, 0, 3, 4, 5, 6, 7, 8)"),
            vec![Some(true), Some(false), None, Some(true)]
        );
    }

    #[test]
    fn null_tests() {
        assert_eq!(b("a is null"), vec![Some(false), Some(false), Some(true), Some(false)]);
        assert_eq!(
            b("a is not null"),
            vec![Some(true), Some(true), Some(false), Some(true)]
        );
        assert_eq!(
            b("a + b is null"),
            vec![Some(false), Some(false), Some(true), Some(true)]
        );
        assert_eq!(b("null is null"), vec![Some(true); 4]);
        assert_eq!(b("1 is null"), vec![Some(false); 4]);
    }

    #[test]
    fn between() {
        assert_eq!(b("a between 1 and 2"), vec![Some(true), Some(true), None, Some(false)]);
        assert_eq!(
            b("a not between 1 and 2"),
            vec![Some(false), Some(false), None, Some(true)]
        );
        assert_eq!(b("a between b and 3"), vec![Some(false), Some(true), None, Some(false)]);
        assert_eq!(b("a between 0 and b"), vec![Some(true), Some(false), None, None]);
        // A false half makes the answer known even with a null bound.
        assert_eq!(b("a between 2 and null"), vec![Some(false), None, None, None]);
        assert_eq!(b("f between -2 and 1"), vec![Some(false), Some(true), None, Some(true)]);
    }

    #[test]
    fn concatenation() {
        assert_eq!(
            s("s || '!'"),
            owned(vec![Some("apple!"), Some("Banana!"), None, Some("cherry!")])
        );
        assert_eq!(
            s("s || '-' || a"),
            owned(vec![Some("apple-1"), Some("Banana-2"), None, Some("cherry-4")])
        );
        assert_eq!(s("'x' || 'y'"), owned(vec![Some("xy"); 4]));
        assert_eq!(s("s || null"), owned(vec![None; 4]));
        assert_eq!(s("f || ''"), owned(vec![Some("1.5"), Some("-2.0"), None, Some("0.0")]));
    }

    #[test]
    fn case_expressions() {
        let src = "case when a > 1 then 'big' when a = 1 then 'one' end";
        assert_eq!(s(src), owned(vec![Some("one"), Some("big"), None, Some("big")]));
        let src = "case when a > 1 then 'big' else 'small' end";
        assert_eq!(
            s(src),
            owned(vec![Some("small"), Some("big"), Some("small"), Some("big")])
        );
        // The first true branch wins; a null condition falls through.
        let src = "case when u then 1 when t then 2 else 3 end";
        assert_eq!(i(src), vec![Some(2), Some(3), Some(1), Some(2)]);
        assert_eq!(
            i("case when a > 1 then a * 10 else b end"),
            vec![Some(2), Some(20), Some(3), Some(40)]
        );
        assert_eq!(
            s("case s when 'apple' then 'fruit' when 'cherry' then 'berry' end"),
            owned(vec![Some("fruit"), None, None, Some("berry")])
        );
        assert_eq!(i("case when true then 1 else a end"), vec![Some(1); 4]);
        assert_eq!(i("case when false then a else 7 end"), vec![Some(7); 4]);
        assert_eq!(i("case when null then 1 else 2 end"), vec![Some(2); 4]);
        assert_eq!(
            fl("case when t then 1 else 0.5 end"),
            vec![Some(1.0), Some(0.5), Some(0.5), Some(1.0)]
        );
        assert_eq!(i("if(t, a, 0)"), vec![Some(1), Some(0), Some(0), Some(4)]);
    }

    #[test]
    fn constants_fill_the_batch() {
        assert_eq!(i("1 + 1"), vec![Some(2); 4]);
        assert_eq!(s("upper('x')"), owned(vec![Some("X"); 4]));
        let a = eval("null", &sample());
        assert_eq!(a.len(), 4);
        assert_eq!(a.logical_null_count(), 4);
        // Empty batches work too.
        let empty = sample().slice(0, 0);
        assert_eq!(eval("a + 1", &empty).len(), 0);
        assert_eq!(eval("1", &empty).len(), 0);
    }

    #[test]
    fn predicates_treat_null_as_false() {
        let e = Expr::parse("a > 1").unwrap();
        let mask = e.eval_predicate(&sample()).unwrap();
        assert_eq!(mask.null_count(), 0);
        assert_eq!(
            mask.iter().collect::<Vec<_>>(),
            vec![Some(false), Some(true), Some(false), Some(true)]
        );
        let mask = Expr::parse("null").unwrap().eval_predicate(&sample()).unwrap();
        assert_eq!(mask.true_count(), 0);
        assert_eq!(mask.len(), 4);
        let mask = Expr::parse("true").unwrap().eval_predicate(&sample()).unwrap();
        assert_eq!(mask.true_count(), 4);
        let e = Expr::parse("a * 2").unwrap().eval_predicate(&sample()).unwrap_err();
        assert_eq!(
            e.message,
            "a filter must be a true/false condition, but `a * 2` is int64"
        );
        assert!(e.hint.unwrap().contains("a * 2 > 0"));
    }

    #[test]
    fn sliced_batches() {
        let b = sample().slice(1, 3);
        assert_eq!(ints(&eval("a + 1", &b)), vec![Some(3), None, Some(5)]);
        assert_eq!(
            strs(&eval("upper(s)", &b)),
            owned(vec![Some("BANANA"), None, Some("CHERRY")])
        );
        assert_eq!(ints(&eval("length(s)", &b)), vec![Some(6), None, Some(6)]);
        assert_eq!(
            bools(&eval("s in ('Banana', 'x', 'y', 'z', 'v', 'w', 't', 'u')", &b)),
            vec![Some(true), None, Some(false)]
        );
    }

    #[test]
    fn stored_types_are_converted() {
        let dict: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("y")].into_iter().collect();
        let b = batch(vec![
            ("i32", Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as _),
            (
                "large",
                Arc::new(LargeStringArray::from(vec![Some("a"), Some("b"), None])) as _,
            ),
            (
                "view",
                Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c")])) as _,
            ),
            ("dict", Arc::new(dict) as _),
            (
                "nanos",
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(3_600_000_000_000),
                    None,
                    Some(7_200_000_000_001),
                ])) as _,
            ),
        ]);
        assert_eq!(ints(&eval("i32 * 2", &b)), vec![Some(2), None, Some(6)]);
        assert_eq!(ints(&eval("i32", &b)), vec![Some(1), None, Some(3)]);
        assert_eq!(strs(&eval("upper(large)", &b)), owned(vec![Some("A"), Some("B"), None]));
        assert_eq!(bools(&eval("view = 'a'", &b)), vec![Some(true), None, Some(false)]);
        assert_eq!(bools(&eval("dict like 'x%'", &b)), vec![Some(true), None, Some(false)]);
        assert_eq!(ints(&eval("hour(nanos)", &b)), vec![Some(1), None, Some(2)]);
    }

    #[test]
    fn quoted_column_names() {
        let b = batch(vec![
            ("customer.address.city", string(vec![Some("Paris"), None])),
            ("unit price", float(vec![Some(2.0), Some(3.0)])),
            ("end", int(vec![Some(1), Some(2)])),
        ]);
        assert_eq!(
            bools(&eval("\"customer.address.city\" = 'Paris'", &b)),
            vec![Some(true), None]
        );
        assert_eq!(floats(&eval("`unit price` * \"end\"", &b)), vec![Some(2.0), Some(6.0)]);
    }
}
