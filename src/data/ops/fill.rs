//! Filling missing values: a constant, the previous value, or the column's
//! mean or median (computed over the whole input in a first pass).

use arrow::array::Scalar;
use arrow::array::{Array, ArrayRef, Float64Array, StringArray, UInt32Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{cast, concat, is_not_null, take};
use arrow::datatypes::DataType;
use serde::{Deserialize, Deserializer};

/// How to fill one column's missing values.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// A constant (converted to the column's type).
    Constant(String),
    /// The last value seen before (across batches, in input order).
    Previous,
    /// The mean of the column's non-missing values (numeric columns).
    Mean,
    /// The median of the column's non-missing values (numeric columns).
    Median,
}

impl Fill {
    /// Does it need statistics from a first pass?
    pub fn needs_stats(&self) -> bool {
        matches!(self, Fill::Mean | Fill::Median)
    }
}

impl<'de> Deserialize<'de> for Fill {
    /// `"unknown"`, `0`, `true`, or `{ method = "previous" | "mean" |
    /// "median" }`, or `{ method = "constant", value = ... }`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Method {
            method: String,
            value: Option<toml::Value>,
        }
        let v = toml::Value::deserialize(d)?;
        let text = |v: &toml::Value| match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            toml::Value::Datetime(d) => Some(d.to_string()),
            _ => None,
        };
        if let Some(t) = text(&v) {
            return Ok(Fill::Constant(t));
        }
        let m: Method = v.try_into().map_err(serde::de::Error::custom)?;
        match m.method.as_str() {
            "previous" | "ffill" => Ok(Fill::Previous),
            "mean" => Ok(Fill::Mean),
            "median" => Ok(Fill::Median),
            "constant" => m
                .value
                .as_ref()
                .and_then(text)
                .map(Fill::Constant)
                .ok_or_else(|| serde::de::Error::custom("method \"constant\" needs a `value`")),
            other => Err(serde::de::Error::custom(format!(
                "unknown fill method `{other}` (one of: constant, previous, mean, median)"
            ))),
        }
    }
}

/// Fills one column, batch after batch.
pub struct Filler {
    pub column: String,
    pub fill: Fill,
    /// The last non-missing value seen (for `Previous`).
    carry: Option<ArrayRef>,
    /// The statistic (for `Mean`/`Median`), set after the first pass.
    pub stat: Option<f64>,
}

impl Filler {
    pub fn new(column: &str, fill: Fill) -> Self {
        Self {
            column: column.to_string(),
            fill,
            carry: None,
            stat: None,
        }
    }

    /// Fills the missing values of `col`.
    pub fn apply(&mut self, col: &ArrayRef) -> anyhow::Result<ArrayRef> {
        if col.null_count() == 0 && self.fill != Fill::Previous {
            return Ok(col.clone());
        }
        let dt = col.data_type().clone();
        let value: ArrayRef = match &self.fill {
            Fill::Previous => return self.forward(col),
            Fill::Constant(s) => {
                let v = cast(
                    &(std::sync::Arc::new(StringArray::from(vec![s.as_str()])) as ArrayRef),
                    &dt,
                )?;
                if v.is_null(0) {
                    anyhow::bail!("fill value `{s}` is not a valid {dt} for column `{}`", self.column);
                }
                v
            }
            Fill::Mean | Fill::Median => {
                let Some(stat) = self.stat else {
                    return Ok(col.clone()); // no value at all to average
                };
                let stat = if matches!(dt, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) {
                    stat.round()
                } else {
                    stat
                };
                cast(&(std::sync::Arc::new(Float64Array::from(vec![stat])) as ArrayRef), &dt)?
            }
        };
        let mask = is_not_null(col.as_ref())?;
        Ok(zip(&mask, col, &Scalar::new(value))?)
    }

    fn forward(&mut self, col: &ArrayRef) -> anyhow::Result<ArrayRef> {
        let (all, offset) = match &self.carry {
            Some(c) => (concat(&[c.as_ref(), col.as_ref()])?, 1usize),
            None => (col.clone(), 0usize),
        };
        let mut last: Option<u32> = None;
        let mut idx: Vec<Option<u32>> = Vec::with_capacity(col.len());
        for i in 0..all.len() {
            if all.is_valid(i) {
                last = Some(i as u32);
            }
            if i >= offset {
                idx.push(last);
            }
        }
        if let Some(l) = last {
            self.carry = Some(all.slice(l as usize, 1));
        }
        Ok(take(all.as_ref(), &UInt32Array::from(idx), None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    use std::sync::Arc;

    fn ints(v: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(v))
    }

    #[test]
    fn previous_carries_across_batches() {
        let mut f = Filler::new("x", Fill::Previous);
        let a = f.apply(&ints(vec![None, Some(1), None])).unwrap();
        let b = f.apply(&ints(vec![None, Some(5)])).unwrap();
        let a: Vec<Option<i64>> = a.as_primitive::<Int64Type>().iter().collect();
        let b: Vec<Option<i64>> = b.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(a, [None, Some(1), Some(1)]);
        assert_eq!(b, [Some(1), Some(5)]);
    }

    #[test]
    fn constant_and_mean() {
        let mut f = Filler::new("x", Fill::Constant("7".into()));
        let a = f.apply(&ints(vec![None, Some(1)])).unwrap();
        assert_eq!(a.as_primitive::<Int64Type>().value(0), 7);
        let mut f = Filler::new("x", Fill::Mean);
        f.stat = Some(2.6);
        let a = f.apply(&ints(vec![None])).unwrap();
        assert_eq!(a.as_primitive::<Int64Type>().value(0), 3);
        let mut f = Filler::new("x", Fill::Constant("abc".into()));
        assert!(f.apply(&ints(vec![None])).is_err());
    }

    #[test]
    fn parses_from_toml() {
        let t: toml::Table =
            toml::from_str("a = \"n/a\"\nb = 0\nc = { method = \"median\" }\nd = { method = \"nope\" }").unwrap();
        assert_eq!(t["a"].clone().try_into::<Fill>().unwrap(), Fill::Constant("n/a".into()));
        assert_eq!(t["b"].clone().try_into::<Fill>().unwrap(), Fill::Constant("0".into()));
        assert_eq!(t["c"].clone().try_into::<Fill>().unwrap(), Fill::Median);
        assert!(t["d"].clone().try_into::<Fill>().is_err());
    }
}
