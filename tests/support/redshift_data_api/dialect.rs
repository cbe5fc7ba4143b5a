//! Redshift SQL -> PostgreSQL SQL: the clauses PostgreSQL does not know are
//! removed (they only steer Redshift's storage), and `COPY ... FROM 's3://'`
//! is recognised so that the server can run it itself.

use std::sync::LazyLock;

use regex::Regex;

/// Redshift-only clauses, removed before PostgreSQL sees the statement.
static REDSHIFT_ONLY: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // Table attributes.
        r"(?i)\bDISTSTYLE\s+(AUTO|EVEN|KEY|ALL)\b",
        r"(?i)\bDISTKEY\s*\(\s*[^)]*\)",
        r"(?i)\b(COMPOUND\s+|INTERLEAVED\s+)?SORTKEY\s*(AUTO\b|\([^)]*\))",
        r"(?i)\bBACKUP\s+(YES|NO)\b",
        r"(?i)\bENCODE\s+AUTO\b",
        // Column attributes.
        r"(?i)\bENCODE\s+\w+",
        r"(?i)\bDISTKEY\b",
        r"(?i)\bSORTKEY\b",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid pattern"))
    .collect()
});

/// `sql` without Redshift-only clauses.
pub fn strip_redshift_clauses(sql: &str) -> String {
    let mut out = sql.to_string();
    for re in REDSHIFT_ONLY.iter() {
        out = re.replace_all(&out, " ").into_owned();
    }
    // Redshift spells the type-name alias `TIMESTAMP WITHOUT TIME ZONE`
    // like PostgreSQL, but also accepts `VARCHAR(MAX)`.
    static MAX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\((\s*MAX\s*)\)").expect("valid"));
    MAX.replace_all(&out, "(65535)").into_owned()
}

/// A parsed `COPY table [(cols)] FROM 's3://...' ... FORMAT AS PARQUET`.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Copy {
    pub table: String,
    pub columns: Vec<String>,
    pub from: String,
    pub manifest: bool,
    pub parquet: bool,
    pub iam_role: Option<String>,
}

static COPY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)^\s*COPY\s+([\w."]+)\s*(\(([^)]*)\))?\s+FROM\s+'(s3://[^']+)'(.*)$"#).expect("valid")
});

/// The COPY from S3 in `sql`, if it is one.
pub fn parse_s3_copy(sql: &str) -> Option<S3Copy> {
    let c = COPY.captures(sql.trim().trim_end_matches(';'))?;
    let rest = c.get(5).map_or("", |m| m.as_str());
    let upper = rest.to_ascii_uppercase();
    let role = Regex::new(r"(?i)IAM_ROLE\s+'([^']*)'").expect("valid");
    Some(S3Copy {
        table: c[1].to_string(),
        columns: c
            .get(3)
            .map(|m| {
                m.as_str()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        from: c[4].to_string(),
        manifest: Regex::new(r"\bMANIFEST\b").expect("valid").is_match(&upper),
        parquet: Regex::new(r"\bFORMAT\s+(AS\s+)?PARQUET\b")
            .expect("valid")
            .is_match(&upper),
        iam_role: role.captures(rest).map(|r| r[1].to_string()),
    })
}

/// Whether the statement is a TRUNCATE, which Redshift commits at once.
pub fn is_truncate(sql: &str) -> bool {
    sql.trim_start()
        .get(..8)
        .is_some_and(|w| w.eq_ignore_ascii_case("TRUNCATE"))
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)] // benches include this module without its tests
    use super::*;

    #[test]
    fn strips_storage_clauses() {
        let sql = "CREATE TABLE t (a INT ENCODE az64 DISTKEY, b VARCHAR(MAX) ENCODE lzo) \
                   DISTSTYLE KEY COMPOUND SORTKEY (a, b)";
        let out = strip_redshift_clauses(sql);
        assert!(!out.to_uppercase().contains("ENCODE") && !out.to_uppercase().contains("SORTKEY"));
        assert!(out.contains("VARCHAR(65535)"), "{out}");
    }

    #[test]
    fn parses_copy() {
        let c = parse_s3_copy(
            "COPY stage (a, b) FROM 's3://b/p/manifest' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET MANIFEST;",
        )
        .unwrap();
        assert_eq!(c.table, "stage");
        assert_eq!(c.columns, ["a", "b"]);
        assert_eq!(c.from, "s3://b/p/manifest");
        assert!(c.manifest && c.parquet);
        assert_eq!(c.iam_role.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert!(parse_s3_copy("SELECT 1").is_none());
    }
}
