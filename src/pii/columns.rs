//! Arrow-level helpers for `transform.pii`: map a column's values as text,
//! value by value, into a new text column (nulls stay null).

use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::DataType;

/// A column as text: text columns as they are, others through Arrow's cast
/// (`17850`, `2010-12-01`, `2010-12-01T08:26:00`).
pub fn as_text(col: &ArrayRef) -> Result<StringArray> {
    let c = match col.data_type() {
        DataType::Utf8 => col.clone(),
        _ => arrow::compute::cast(col, &DataType::Utf8)?,
    };
    Ok(c.as_string::<i32>().clone())
}

/// Maps every non-null value through `f`, which writes the new value into
/// the buffer it is given and returns false to make the value null.
pub fn map_text(col: &ArrayRef, mut f: impl FnMut(&str, &mut String) -> bool) -> Result<ArrayRef> {
    let text = as_text(col)?;
    let mut out = StringBuilder::with_capacity(text.len(), text.value_data().len());
    let mut buf = String::new();
    for v in text.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                buf.clear();
                if f(v, &mut buf) {
                    out.append_value(&buf);
                } else {
                    out.append_null();
                }
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn numbers_become_text_and_nulls_stay() {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![Some(17850), None]));
        let out = map_text(&col, |v, b| {
            b.push_str(v);
            b.push('!');
            true
        })
        .unwrap();
        let s = out.as_string::<i32>();
        assert_eq!(s.value(0), "17850!");
        assert!(s.is_null(1));
    }
}
