//! Query results in the Data API's shape: `Records` of typed fields
//! (`longValue`, `doubleValue`, `booleanValue`, `stringValue`, `isNull`)
//! and `ColumnMetadata`, paged with `NextToken`.

use serde_json::{Value, json};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

#[derive(Debug, Clone)]
pub struct ResultSet {
    columns: Vec<(String, Type)>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// How a PostgreSQL type travels: the Data API's field kind and the
/// Redshift type name it reports.
fn field_kind(t: &Type) -> (&'static str, String) {
    let kind = match *t {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => "longValue",
        Type::FLOAT4 | Type::FLOAT8 => "doubleValue",
        Type::BOOL => "booleanValue",
        _ => "stringValue",
    };
    let name = match *t {
        Type::VARCHAR | Type::TEXT | Type::NAME => "varchar".to_string(),
        ref other => other.name().to_string(),
    };
    (kind, name)
}

impl ResultSet {
    pub fn new(columns: &[tokio_postgres::Column], messages: Vec<SimpleQueryMessage>) -> Self {
        let columns = columns
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect::<Vec<_>>();
        let rows = messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect();
        Self { columns, rows }
    }

    /// Bytes of the result, roughly as Redshift counts them.
    pub fn size(&self) -> i64 {
        self.rows
            .iter()
            .flatten()
            .map(|v| v.as_ref().map_or(1, |s| s.len() as i64))
            .sum()
    }

    /// Rows `start..start + n` as a GetStatementResult response.
    pub fn page(&self, start: usize, n: usize) -> Value {
        let end = (start + n).min(self.rows.len());
        let records: Vec<Value> = self.rows[start.min(end)..end]
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&self.columns)
                    .map(|(v, (_, t))| match v {
                        None => json!({"isNull": true}),
                        Some(text) => {
                            let (kind, _) = field_kind(t);
                            let value = match kind {
                                "longValue" => text.parse::<i64>().map_or(json!(text), |n| json!(n)),
                                "doubleValue" => text.parse::<f64>().map_or(json!(text), |n| json!(n)),
                                "booleanValue" => json!(text == "t"),
                                _ => json!(text),
                            };
                            json!({ kind: value })
                        }
                    })
                    .collect()
            })
            .collect();
        let meta: Vec<Value> = self
            .columns
            .iter()
            .map(|(name, t)| {
                let (_, type_name) = field_kind(t);
                json!({
                    "name": name,
                    "label": name,
                    "typeName": type_name,
                    "nullable": 1,
                    "isSigned": matches!(*t, Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC),
                    "precision": 0,
                    "scale": 0,
                    "length": 0,
                    "isCaseSensitive": type_name == "varchar",
                    "isCurrency": false,
                })
            })
            .collect();
        let mut out = json!({
            "Records": records,
            "ColumnMetadata": meta,
            "TotalNumRows": self.rows.len(),
        });
        if end < self.rows.len() {
            out["NextToken"] = json!(end.to_string());
        }
        out
    }
}
