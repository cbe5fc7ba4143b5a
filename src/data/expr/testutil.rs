//! Test helpers: small batches and terse evaluation.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use arrow::datatypes::{Field, Schema};

use super::{Expr, ExprError};

/// A batch from named columns (all nullable).
pub(crate) fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = cols.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

/// Parses and evaluates, panicking with the error on failure.
pub(crate) fn eval(src: &str, b: &RecordBatch) -> ArrayRef {
    Expr::parse(src)
        .and_then(|e| e.eval(b))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// Parses and evaluates, expecting an error.
pub(crate) fn eval_err(src: &str, b: &RecordBatch) -> ExprError {
    match Expr::parse(src).and_then(|e| e.eval(b)) {
        Ok(a) => panic!("{src}: expected an error, got {a:?}"),
        Err(e) => e,
    }
}

pub(crate) fn int(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}

pub(crate) fn float(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

pub(crate) fn string(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

pub(crate) fn boolean(v: Vec<Option<bool>>) -> ArrayRef {
    Arc::new(BooleanArray::from(v))
}

pub(crate) fn date(v: Vec<Option<&str>>) -> ArrayRef {
    let days: Vec<Option<i32>> = v
        .into_iter()
        .map(|s| s.map(|s| super::temporal::parse_date(s).unwrap()))
        .collect();
    Arc::new(Date32Array::from(days))
}

pub(crate) fn ts(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(ts_array(v))
}

pub(crate) fn ts_array(v: Vec<Option<&str>>) -> TimestampMicrosecondArray {
    let us: Vec<Option<i64>> = v
        .into_iter()
        .map(|s| s.map(|s| super::temporal::parse_timestamp(s).unwrap()))
        .collect();
    TimestampMicrosecondArray::from(us)
}

/// Decimal128(p, s) from unscaled values.
pub(crate) fn decimal(v: Vec<Option<i128>>, p: u8, s: i8) -> ArrayRef {
    Arc::new(Decimal128Array::from(v).with_precision_and_scale(p, s).unwrap())
}

pub(crate) fn ints(a: &ArrayRef) -> Vec<Option<i64>> {
    assert_eq!(a.data_type(), &DataType::Int64, "{a:?}");
    a.as_primitive::<Int64Type>().iter().collect()
}

pub(crate) fn floats(a: &ArrayRef) -> Vec<Option<f64>> {
    assert_eq!(a.data_type(), &DataType::Float64, "{a:?}");
    a.as_primitive::<Float64Type>().iter().collect()
}

pub(crate) fn strs(a: &ArrayRef) -> Vec<Option<String>> {
    assert_eq!(a.data_type(), &DataType::Utf8, "{a:?}");
    a.as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect()
}

pub(crate) fn bools(a: &ArrayRef) -> Vec<Option<bool>> {
    assert_eq!(a.data_type(), &DataType::Boolean, "{a:?}");
    a.as_boolean().iter().collect()
}

/// Unscaled decimal values, checking the type.
pub(crate) fn decimals(a: &ArrayRef, p: u8, s: i8) -> Vec<Option<i128>> {
    assert_eq!(a.data_type(), &DataType::Decimal128(p, s), "{a:?}");
    a.as_primitive::<arrow::datatypes::Decimal128Type>().iter().collect()
}

/// Values rendered as text (for dates and timestamps).
pub(crate) fn texts(a: &ArrayRef) -> Vec<Option<String>> {
    let s = arrow::compute::cast(a, &DataType::Utf8).unwrap();
    strs(&s)
}

/// A timestamp type without a zone.
pub(crate) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// A few Online Retail rows (one cancelled invoice, one missing customer).
pub(crate) fn retail() -> RecordBatch {
    batch(vec![
        (
            "InvoiceNo",
            string(vec![
                Some("536365"),
                Some("536366"),
                Some("C536379"),
                Some("536370"),
                Some("536371"),
            ]),
        ),
        (
            "StockCode",
            string(vec![
                Some("85123A"),
                Some("22633"),
                Some("D"),
                Some("22728"),
                Some("22086"),
            ]),
        ),
        (
            "Description",
            string(vec![
                Some("WHITE HANGING HEART T-LIGHT HOLDER"),
                Some("HAND WARMER UNION JACK"),
                Some("Discount"),
                Some("ALARM CLOCK BAKELIKE PINK"),
                None,
            ]),
        ),
        ("Quantity", int(vec![Some(6), Some(6), Some(-1), Some(24), Some(0)])),
        (
            "InvoiceDate",
            ts(vec![
                Some("2010-12-01 08:26:00"),
                Some("2010-12-01 08:28:00"),
                Some("2010-12-01 09:41:00"),
                Some("2010-12-01 08:45:00"),
                Some("2011-01-09 23:59:00"),
            ]),
        ),
        (
            "UnitPrice",
            float(vec![Some(2.55), Some(1.85), Some(27.5), Some(3.75), Some(0.0)]),
        ),
        (
            "CustomerID",
            int(vec![Some(17850), Some(17850), Some(14527), Some(12583), None]),
        ),
        (
            "Country",
            string(vec![
                Some("United Kingdom"),
                Some("United Kingdom"),
                Some("United Kingdom"),
                Some("France"),
                Some("EIRE"),
            ]),
        ),
    ])
}
