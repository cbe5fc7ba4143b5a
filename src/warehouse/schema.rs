//! The target table's columns, how the input's columns compare with them,
//! and the conversion of input batches to the target's column order and
//! types (what staging writes and binary COPY sends).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::{ArrayRef, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{TableName, literal};

/// A column of the target table, from `information_schema.columns`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    /// `information_schema` spelling: `integer`, `character varying`, ...
    pub data_type: String,
    pub nullable: bool,
    pub char_len: Option<i64>,
    pub precision: Option<i64>,
    pub scale: Option<i64>,
}

impl TargetColumn {
    /// The type as DDL would write it (`character varying(20)`).
    pub fn type_text(&self) -> String {
        match (self.char_len, self.precision, self.scale) {
            (Some(n), _, _) => format!("{}({n})", self.data_type),
            (None, Some(p), Some(s)) if self.data_type == "numeric" => format!("numeric({p},{s})"),
            _ => self.data_type.clone(),
        }
    }

    /// The Arrow type values of this column are staged as.
    pub fn arrow_type(&self) -> Option<DataType> {
        Some(match self.data_type.as_str() {
            "smallint" => DataType::Int16,
            "integer" => DataType::Int32,
            "bigint" => DataType::Int64,
            "real" => DataType::Float32,
            "double precision" => DataType::Float64,
            // PostgreSQL's unconstrained NUMERIC has no precision: stage
            // it with 10 fraction digits rather than rounding to integers.
            "numeric" => match self.precision {
                Some(p) => DataType::Decimal128(p.clamp(1, 38) as u8, self.scale.unwrap_or(0).clamp(0, 38) as i8),
                None => DataType::Decimal128(38, 10),
            },
            "boolean" => DataType::Boolean,
            "date" => DataType::Date32,
            "timestamp without time zone" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "timestamp with time zone" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "time without time zone" => DataType::Time64(TimeUnit::Microsecond),
            "character varying" | "character" | "text" => DataType::Utf8,
            _ => return None,
        })
    }
}

/// The query listing `table`'s columns (PostgreSQL and Redshift): name,
/// type, nullable, length, precision, scale. An unqualified table is
/// looked up in the current schema.
pub fn columns_query(table: &TableName) -> String {
    let schema = table
        .schema
        .as_deref()
        .map_or_else(|| "current_schema()".to_string(), |s| literal(&s.to_lowercase()));
    format!(
        "SELECT column_name::text, data_type::text, is_nullable::text, character_maximum_length::int8, \
         numeric_precision::int8, numeric_scale::int8 FROM information_schema.columns \
         WHERE table_schema = {schema} AND table_name = {} ORDER BY ordinal_position",
        literal(&table.table.to_lowercase())
    )
}

/// Whether an input column of type `input` can be loaded into `target`
/// without losing its meaning.
fn compatible(input: &DataType, target: &DataType) -> bool {
    use DataType::*;
    let int = |t: &DataType| t.is_integer();
    match target {
        Int16 | Int32 | Int64 => int(input),
        Float32 | Float64 => int(input) || input.is_floating() || matches!(input, Decimal128(..)),
        Decimal128(..) => int(input) || input.is_floating() || matches!(input, Decimal128(..) | Decimal256(..)),
        Boolean => *input == Boolean,
        Date32 => matches!(input, Date32 | Date64),
        Timestamp(_, tz) => matches!(input, Timestamp(_, t) if t.is_some() == tz.is_some()) || *input == Date32,
        Time64(_) => matches!(input, Time32(_) | Time64(_)),
        Utf8 => matches!(input, Utf8 | LargeUtf8 | Utf8View),
        _ => false,
    }
}

/// How each target column is filled from the input.
#[derive(Debug, Clone)]
pub enum Fill {
    /// From the input column at this index.
    Input(usize),
    /// The same value on every row (a partition column the input lacks).
    Value(String),
    /// NULL (a nullable column the input lacks).
    Null,
}

/// The plan mapping input columns onto the target's.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub columns: Vec<TargetColumn>,
    pub fills: Vec<Fill>,
    /// The staged schema: the target's columns, as Arrow types.
    pub schema: SchemaRef,
}

/// Maps `input` onto `target`, or refuses with a diff of the two schemas.
/// `partition` names a column the input may lack (filled with its value).
pub fn map_columns(
    table: &TableName,
    target: &[TargetColumn],
    input: &Schema,
    partition: Option<(&str, &str)>,
) -> Result<Mapping> {
    let mut diff = Vec::new();
    let mut fills = Vec::new();
    let mut fields = Vec::new();
    for col in target {
        let staged = col.arrow_type();
        let found = input
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(&col.name));
        match (found, &staged) {
            (Some(i), Some(ty)) if compatible(input.field(i).data_type(), ty) => fills.push(Fill::Input(i)),
            (Some(i), _) => {
                diff.push(format!(
                    "~ {:<24} table: {:<28} input: {}",
                    col.name,
                    col.type_text(),
                    input.field(i).data_type()
                ));
                fills.push(Fill::Null);
            }
            (None, _) => match partition {
                Some((p, v)) if p.eq_ignore_ascii_case(&col.name) => fills.push(Fill::Value(v.to_string())),
                _ if col.nullable => fills.push(Fill::Null),
                _ => {
                    diff.push(format!(
                        "- {:<24} table: {:<28} input: (missing; the column is NOT NULL)",
                        col.name,
                        col.type_text()
                    ));
                    fills.push(Fill::Null);
                }
            },
        }
        fields.push(Field::new(col.name.clone(), staged.unwrap_or(DataType::Utf8), true));
    }
    for f in input.fields() {
        if !target.iter().any(|c| c.name.eq_ignore_ascii_case(f.name())) {
            diff.push(format!(
                "+ {:<24} table: {:<28} input: {}",
                f.name(),
                "(missing)",
                f.data_type()
            ));
        }
    }
    if !diff.is_empty() {
        bail!(
            "the columns of table `{table}` do not match the input, so nothing was loaded:\n{}\n\
             (- only in the table, + only in the input, ~ types that cannot be loaded into each other); \
             change the table (ALTER TABLE) or the data (transform.clean renames and casts) so that they agree",
            diff.join("\n")
        );
    }
    Ok(Mapping {
        columns: target.to_vec(),
        fills,
        schema: Arc::new(Schema::new(fields)),
    })
}

impl Mapping {
    /// `batch` in the target's column order and types. A value that does
    /// not fit (an integer too large for the column) fails with the column
    /// and the row.
    pub fn convert(&self, batch: &RecordBatch, first_row: u64) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let opts = CastOptions {
            safe: false,
            ..Default::default()
        };
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.fills.len());
        for (fill, field) in self.fills.iter().zip(self.schema.fields()) {
            let ty = field.data_type();
            let col = match fill {
                Fill::Input(i) => {
                    let c = batch.column(*i);
                    if c.data_type() == ty {
                        c.clone()
                    } else {
                        cast_with_options(c, ty, &opts).map_err(|e| {
                            anyhow::anyhow!(
                                "column `{}` (rows {}..{}): cannot convert {} to the table's {}: {e}",
                                field.name(),
                                first_row + 1,
                                first_row + n as u64,
                                c.data_type(),
                                ty
                            )
                        })?
                    }
                }
                Fill::Value(v) => {
                    let text: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v.as_str(), n)));
                    cast_with_options(&text, ty, &opts)
                        .with_context(|| format!("partition value `{v}` for column `{}`", field.name()))?
                }
                Fill::Null => new_null_array(ty, n),
            };
            cols.push(col);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> TargetColumn {
        TargetColumn {
            name: name.into(),
            data_type: ty.into(),
            nullable,
            char_len: (ty == "character varying").then_some(20),
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn a_mismatch_is_refused_with_a_diff() {
        let t = TableName::parse("orders").unwrap();
        let target = [
            col("id", "bigint", false),
            col("name", "character varying", true),
            col("code", "integer", false),
        ];
        let input = Schema::new(vec![
            Field::new("ID", DataType::Int64, false),
            Field::new("name", DataType::Int64, true),
            Field::new("extra", DataType::Utf8, true),
        ]);
        let err = map_columns(&t, &target, &input, None).unwrap_err().to_string();
        assert!(err.contains("~ name") && err.contains("character varying(20)"), "{err}");
        assert!(err.contains("- code") && err.contains("NOT NULL"), "{err}");
        assert!(err.contains("+ extra"), "{err}");
        assert!(!err.contains("id "), "{err}");
    }

    #[test]
    fn converts_to_the_target_order_and_types() {
        let t = TableName::parse("orders").unwrap();
        let target = [
            col("day", "date", false),
            col("id", "integer", false),
            col("note", "text", true),
        ];
        let input = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let m = map_columns(&t, &target, &input, Some(("day", "2010-12-01"))).unwrap();
        let batch = RecordBatch::try_new(
            Arc::new(input),
            vec![Arc::new(arrow::array::Int64Array::from(vec![1, 3_000_000_000]))],
        )
        .unwrap();
        let err = m.convert(&batch, 10).unwrap_err().to_string();
        assert!(err.contains("column `id` (rows 11..12)"), "{err}");
        let ok = m.convert(&batch.slice(0, 1), 0).unwrap();
        assert_eq!(ok.schema().field(0).data_type(), &DataType::Date32);
        assert_eq!(ok.column(2).null_count(), 1);
    }
}
