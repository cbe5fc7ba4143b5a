//! Why a COPY failed, from Redshift's load error tables:
//! `SYS_LOAD_ERROR_DETAIL` (Serverless and provisioned) and, on
//! provisioned clusters, `STL_LOAD_ERRORS` when SYS has nothing.

use std::time::Duration;

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use tokio_util::sync::CancellationToken;

use super::data_api::DataApi;
use crate::warehouse::literal;

/// One rejected row.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub line: String,
    pub column: String,
    pub column_type: String,
    pub reason: String,
    pub value: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "file {}, line {}, column `{}` ({}): {}",
            self.file, self.line, self.column, self.column_type, self.reason
        )?;
        if !self.value.is_empty() {
            write!(f, " (value `{}`)", self.value)?;
        }
        Ok(())
    }
}

/// The rows rejected by COPY query `query_id`, or by any COPY of the
/// files under `prefix` (staged files are unique to one load attempt).
pub async fn find(api: &DataApi, provisioned: bool, query_id: Option<i64>, prefix: &str) -> Result<Vec<LoadError>> {
    let by_query = query_id.filter(|q| *q > 0).map(|q| q.to_string());
    let like = literal(&format!("{prefix}%"));
    let sys = format!(
        "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(column_type), TRIM(error_message), \
         TRIM(raw_field_value) FROM sys_load_error_detail WHERE {} ORDER BY line_number LIMIT 10",
        match &by_query {
            Some(q) => format!("(query_id = {q} OR file_name LIKE {like})"),
            None => format!("file_name LIKE {like}"),
        }
    );
    let mut found = query(api, &sys).await?;
    if found.is_empty() && provisioned {
        let stl = format!(
            "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(type), TRIM(err_reason), TRIM(raw_field_value) \
             FROM stl_load_errors WHERE {} ORDER BY line_number LIMIT 10",
            match &by_query {
                Some(q) => format!("(query = {q} OR filename LIKE {like})"),
                None => format!("filename LIKE {like}"),
            }
        );
        found = query(api, &stl).await?;
    }
    Ok(found)
}

async fn query(api: &DataApi, sql: &str) -> Result<Vec<LoadError>> {
    let done = api.run(sql, Duration::from_secs(60), &CancellationToken::new()).await?;
    let batch = api.result(&done.id).await?;
    let text = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Utf8);
    let cols = (0..6).map(text).collect::<Result<Vec<_>, _>>()?;
    let cell = |c: usize, r: usize| {
        let a = cols[c].as_string::<i32>();
        if a.is_null(r) {
            String::new()
        } else {
            a.value(r).to_string()
        }
    };
    Ok((0..batch.num_rows())
        .map(|r| LoadError {
            file: cell(0, r),
            line: cell(1, r),
            column: cell(2, r),
            column_type: cell(3, r),
            reason: cell(4, r),
            value: cell(5, r),
        })
        .collect())
}
