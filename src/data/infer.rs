//! Column types guessed from a sample of text values.
//!
//! The narrowest type every non-empty sampled value fits, tried in order:
//! bool, int64, float64, date, timestamp, else string. Only the sample is
//! looked at: a later value that does not fit is a bad row (quarantined,
//! with a reason that says the type was inferred and how to declare it).

use super::types::{ColumnSpec, ColumnType};

const CANDIDATES: &[ColumnType] = &[
    ColumnType::Bool,
    ColumnType::Int64,
    ColumnType::Float64,
    ColumnType::Date,
    ColumnType::Timestamp,
];

/// Infers one column's spec from its sampled values.
pub fn infer<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> ColumnSpec {
    let non_empty = values.filter_map(|v| v.map(str::trim).filter(|s| !s.is_empty()));
    if non_empty.clone().next().is_none() {
        return ColumnSpec::of(ColumnType::String);
    }
    for ty in CANDIDATES {
        let spec = ColumnSpec::of(ty.clone());
        // Booleans only from words: "0"/"1" columns are numbers.
        if *ty == ColumnType::Bool && non_empty.clone().all(|v| v == "0" || v == "1") {
            continue;
        }
        // Integers with a leading zero ("007") are codes, not numbers.
        if *ty == ColumnType::Int64 && non_empty.clone().any(|v| v.len() > 1 && v.starts_with('0')) {
            return ColumnSpec::of(ColumnType::String);
        }
        // A date column holds bare dates only (the date parser would also
        // take timestamps and drop their time).
        if *ty == ColumnType::Date
            && !non_empty
                .clone()
                .all(|v| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok())
        {
            continue;
        }
        if non_empty.clone().all(|v| spec.parse(Some(v)).is_ok()) {
            return spec;
        }
    }
    ColumnSpec::of(ColumnType::String)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(vals: &[&str]) -> ColumnType {
        infer(vals.iter().map(|v| Some(*v))).ty
    }

    #[test]
    fn narrowest_type_that_fits() {
        assert_eq!(ty(&["1", "2", ""]), ColumnType::Int64);
        assert_eq!(ty(&["1", "2.5"]), ColumnType::Float64);
        assert_eq!(ty(&["17850.0", "13047.0"]), ColumnType::Int64);
        assert_eq!(ty(&["true", "no"]), ColumnType::Bool);
        assert_eq!(ty(&["0", "1"]), ColumnType::Int64);
        assert_eq!(ty(&["2010-12-01 08:26:00"]), ColumnType::Timestamp);
        assert_eq!(ty(&["2010-12-01"]), ColumnType::Date);
        assert_eq!(ty(&["536365", "C536379"]), ColumnType::String);
        assert_eq!(ty(&["007", "12"]), ColumnType::String);
        assert_eq!(ty(&["", ""]), ColumnType::String);
    }
}
