//! Splitting SQL text into statements, and turning text result rows into
//! Arrow columns.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

/// The statements of `sql`, split at `;` outside quotes, comments and
/// PostgreSQL dollar quoting; empty statements dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut only_comments = true;
    let push = |out: &mut Vec<String>, s: &str| {
        let t = s.trim();
        if !t.is_empty() {
            out.push(t.to_string());
        }
    };
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                only_comments = false;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // $tag$ ... $tag$
                let tag_end = sql[i + 1..].find('$').map(|e| i + 1 + e);
                if let Some(e) = tag_end
                    && sql[i + 1..e].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    let tag = &sql[i..=e];
                    if let Some(close) = sql[e + 1..].find(tag) {
                        i = e + 1 + close + tag.len() - 1;
                    }
                }
                only_comments = false;
            }
            b';' => {
                if !only_comments {
                    push(&mut out, &sql[start..i]);
                }
                start = i + 1;
                only_comments = true;
            }
            c if !c.is_ascii_whitespace() => only_comments = false,
            _ => {}
        }
        i += 1;
    }
    if !only_comments {
        push(&mut out, &sql[start.min(sql.len())..]);
    }
    out
}

/// Kinds of result columns, from a database's type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Float,
    Bool,
    Date,
    Text,
}

impl ColumnKind {
    /// From a PostgreSQL / Redshift type name (`int4`, `float8`, `bool`,
    /// `date`, ...).
    pub fn of_type_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "int2" | "int4" | "int8" | "smallint" | "integer" | "bigint" | "oid" => ColumnKind::Int,
            "float4" | "float8" | "real" | "double precision" => ColumnKind::Float,
            "bool" | "boolean" => ColumnKind::Bool,
            "date" => ColumnKind::Date,
            _ => ColumnKind::Text,
        }
    }
}

/// A batch from text cells (`None` = NULL) and each column's kind. Cells
/// that do not parse as their kind become NULL.
pub fn text_rows_to_batch(
    columns: &[(String, ColumnKind)],
    rows: &[Vec<Option<String>>],
) -> anyhow::Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (name, kind)) in columns.iter().enumerate() {
        let cell = |r: &Vec<Option<String>>| r.get(i).cloned().flatten();
        let (ty, array): (DataType, ArrayRef) = match kind {
            ColumnKind::Int => {
                let mut b = Int64Builder::new();
                rows.iter()
                    .for_each(|r| b.append_option(cell(r).and_then(|s| s.parse().ok())));
                (DataType::Int64, Arc::new(b.finish()))
            }
            ColumnKind::Float => {
                let mut b = Float64Builder::new();
                rows.iter()
                    .for_each(|r| b.append_option(cell(r).and_then(|s| s.parse().ok())));
                (DataType::Float64, Arc::new(b.finish()))
            }
            ColumnKind::Bool => {
                let mut b = BooleanBuilder::new();
                rows.iter()
                    .for_each(|r| b.append_option(cell(r).map(|s| matches!(s.as_str(), "t" | "true" | "1" | "TRUE"))));
                (DataType::Boolean, Arc::new(b.finish()))
            }
            ColumnKind::Date => {
                let mut b = Date32Builder::new();
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
                rows.iter().for_each(|r| {
                    b.append_option(
                        cell(r)
                            .and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
                            .map(|d| (d - epoch).num_days() as i32),
                    )
                });
                (DataType::Date32, Arc::new(b.finish()))
            }
            ColumnKind::Text => {
                let mut b = StringBuilder::new();
                rows.iter().for_each(|r| b.append_option(cell(r)));
                (DataType::Utf8, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(name, ty, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    if arrays.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements() {
        let sql = "-- a comment; not a statement\nCREATE TABLE t (a text DEFAULT 'x;y');\n\
                   /* block; */ INSERT INTO \"odd;name\" VALUES ($$a;b$$);;\n  SELECT 1 -- trailing";
        assert_eq!(
            split_statements(sql),
            [
                "-- a comment; not a statement\nCREATE TABLE t (a text DEFAULT 'x;y')",
                "/* block; */ INSERT INTO \"odd;name\" VALUES ($$a;b$$)",
                "SELECT 1 -- trailing"
            ]
        );
        assert!(split_statements("-- only a comment\n").is_empty());
    }

    #[test]
    fn text_rows_become_typed_columns() {
        let cols = [
            ("n".to_string(), ColumnKind::Int),
            ("d".to_string(), ColumnKind::Date),
            ("s".to_string(), ColumnKind::Text),
        ];
        let rows = vec![
            vec![Some("5".into()), Some("2010-12-01".into()), Some("a".into())],
            vec![None, None, None],
        ];
        let b = text_rows_to_batch(&cols, &rows).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema().field(1).data_type(), &DataType::Date32);
        assert_eq!(b.column(0).null_count(), 1);
    }
}
