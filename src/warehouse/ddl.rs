//! Column types for tables created from an input's Arrow schema
//! (`create = true`), in the dialect PostgreSQL and Redshift share.
//!
//! To merge with `normalize ddl` (built in parallel on another branch):
//! both should end up calling one Arrow -> SQL type function.

use arrow::datatypes::{DataType, Schema};

use super::modes::Partition;
use super::schema::TargetColumn;
use super::{TableName, ident};

/// Which warehouse the DDL is for (they differ in a few types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Redshift,
}

/// The SQL type for an Arrow type.
pub fn sql_type(ty: &DataType, dialect: Dialect) -> String {
    match ty {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INTEGER".into(),
        DataType::Int64 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "NUMERIC(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            format!("NUMERIC({},{})", (*p).min(38), (*s).max(0))
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        _ => match dialect {
            Dialect::Postgres => "TEXT".into(),
            // Redshift's TEXT is VARCHAR(256); take the widest.
            Dialect::Redshift => "VARCHAR(65535)".into(),
        },
    }
}

/// The columns a table created for `schema` gets (as
/// `information_schema` would list them), plus the partition column when
/// the input lacks it (as text).
pub fn columns_for(schema: &Schema, dialect: Dialect, partition: Option<&Partition>) -> Vec<TargetColumn> {
    let mut cols: Vec<TargetColumn> = schema
        .fields()
        .iter()
        .map(|f| column(f.name(), f.data_type(), f.is_nullable(), dialect))
        .collect();
    if let Some(p) = partition
        && !cols.iter().any(|c| c.name.eq_ignore_ascii_case(&p.column))
    {
        cols.push(column(&p.column, &DataType::Utf8, true, dialect));
    }
    cols
}

fn column(name: &str, ty: &DataType, nullable: bool, dialect: Dialect) -> TargetColumn {
    let sql = sql_type(ty, dialect).to_lowercase();
    let (data_type, char_len, precision, scale) = match sql.as_str() {
        "timestamp" => ("timestamp without time zone".to_string(), None, None, None),
        "timestamptz" => ("timestamp with time zone".to_string(), None, None, None),
        "time" => ("time without time zone".to_string(), None, None, None),
        "varchar(65535)" => ("character varying".to_string(), Some(65535), None, None),
        s if s.starts_with("numeric(") => {
            let inner = s.trim_start_matches("numeric(").trim_end_matches(')');
            let (p, sc) = inner.split_once(',').unwrap_or((inner, "0"));
            ("numeric".to_string(), None, p.parse().ok(), sc.parse().ok())
        }
        s => (s.to_string(), None, None, None),
    };
    TargetColumn {
        name: name.to_lowercase(),
        data_type,
        nullable,
        char_len,
        precision,
        scale,
    }
}

/// `CREATE TABLE` with `columns`.
pub fn create_table(table: &TableName, columns: &[TargetColumn]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("{} {}{null}", ident(&c.name), c.type_text().to_uppercase())
        })
        .collect();
    format!("CREATE TABLE {} ({})", table.sql(), cols.join(", "))
}

/// The statements that create `table` where it does not exist: its schema
/// first (`CREATE SCHEMA IF NOT EXISTS`, so a project's first load creates
/// the project's schema), then the table.
pub fn create_statements(table: &TableName, columns: &[TargetColumn]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schema) = &table.schema {
        out.push(format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)));
    }
    out.push(create_table(table, columns));
    out
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, TimeUnit};

    use super::*;

    #[test]
    fn create_table_from_arrow() {
        let schema = Schema::new(vec![
            Field::new("InvoiceNo", DataType::Utf8, false),
            Field::new("Quantity", DataType::Int64, true),
            Field::new("UnitPrice", DataType::Decimal128(10, 2), true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]);
        let t = TableName::parse("dw.lines").unwrap();
        assert_eq!(
            create_table(&t, &columns_for(&schema, Dialect::Redshift, None)),
            "CREATE TABLE \"dw\".\"lines\" (\"invoiceno\" CHARACTER VARYING(65535) NOT NULL, \"quantity\" BIGINT, \
             \"unitprice\" NUMERIC(10,2), \"at\" TIMESTAMP WITHOUT TIME ZONE)"
        );
        let pg = columns_for(&schema, Dialect::Postgres, None);
        assert!(create_table(&t, &pg).contains("\"invoiceno\" TEXT NOT NULL"));
        assert_eq!(pg[2].arrow_type(), Some(DataType::Decimal128(10, 2)));
        // The schema is created first when the table names one.
        let stmts = create_statements(&t, &pg);
        assert_eq!(stmts[0], "CREATE SCHEMA IF NOT EXISTS \"dw\"");
        assert_eq!(stmts[1], create_table(&t, &pg));
        let bare = TableName::parse("lines").unwrap();
        assert_eq!(create_statements(&bare, &pg), [create_table(&bare, &pg)]);
    }
}
