//! Statistics over a whole column (for mean/median fills and IQR bounds),
//! gathered in a first pass over the input.

use arrow::array::{ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};

/// The non-null values of a numeric column, as f64.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    values: Vec<f64>,
    sorted: bool,
}

impl Sample {
    pub fn add(&mut self, col: &ArrayRef) -> anyhow::Result<()> {
        let f = cast(col, &DataType::Float64)?;
        let f = f.as_primitive::<Float64Type>();
        self.values.extend(f.iter().flatten().filter(|v| v.is_finite()));
        self.sorted = false;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// The q-quantile (0..=1), linear between closest ranks (pandas'
    /// default).
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        if !self.sorted {
            self.values.sort_by(f64::total_cmp);
            self.sorted = true;
        }
        let pos = q.clamp(0.0, 1.0) * (self.values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let frac = pos - lo as f64;
        Some(self.values[lo] + (self.values[hi] - self.values[lo]) * frac)
    }

    pub fn median(&mut self) -> Option<f64> {
        self.quantile(0.5)
    }
}

/// Is this a type the numeric statistics apply to?
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    #[test]
    fn quantiles_like_pandas() {
        let mut s = Sample::default();
        s.add(&(Arc::new(Int64Array::from(vec![Some(1), None, Some(2), Some(3), Some(4)])) as ArrayRef))
            .unwrap();
        assert_eq!(s.mean(), Some(2.5));
        assert_eq!(s.median(), Some(2.5));
        assert_eq!(s.quantile(0.25), Some(1.75));
        assert_eq!(s.len(), 4);
    }
}
