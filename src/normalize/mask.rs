//! Which columns' values are masked in violation reports (metrics, `show`,
//! the task log) and in the quarantine.
//!
//! Hook for PII declarations: today a column is masked when the job lists
//! it in `pii = [...]` or when its name hints at personal data (see
//! [`NAME_HINTS`]). When project-wide PII declarations exist, they are
//! added in [`PiiColumns::new`] (the one place that decides), and every
//! report follows.

use std::collections::BTreeSet;

/// Parts of column names that suggest personal data (compared lowercase,
/// without `_`, `-` and spaces).
pub const NAME_HINTS: &[&str] = &[
    "name", "email", "mail", "phone", "mobile", "address", "street", "postcode", "postal", "zip", "customer", "client",
    "user", "person", "ssn", "birth", "dob", "passport", "iban", "card", "ipaddr", "ip",
];

/// The text written instead of a masked value.
pub const MASK: &str = "<masked>";

/// The columns whose values reports must not show.
#[derive(Debug, Clone, Default)]
pub struct PiiColumns {
    declared: BTreeSet<String>,
}

impl PiiColumns {
    /// `declared`: columns the job declares as PII.
    pub fn new(declared: impl IntoIterator<Item = String>) -> Self {
        Self {
            declared: declared.into_iter().collect(),
        }
    }

    pub fn is_pii(&self, column: &str) -> bool {
        if self.declared.contains(column) {
            return true;
        }
        let n: String = column
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        NAME_HINTS
            .iter()
            .any(|h| if *h == "ip" { n == "ip" } else { n.contains(h) })
    }

    /// `value`, or the mask when `column` is PII.
    pub fn show(&self, column: &str, value: Option<String>) -> serde_json::Value {
        match value {
            None => serde_json::Value::Null,
            Some(_) if self.is_pii(column) => MASK.into(),
            Some(v) => v.into(),
        }
    }

    /// The PII columns among `columns`.
    pub fn among<'a>(&self, columns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        columns
            .into_iter()
            .filter(|c| self.is_pii(c))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_and_hinted_columns_are_masked() {
        let p = PiiColumns::new(["Notes".to_string()]);
        for c in ["CustomerID", "e-mail", "First Name", "ip", "Notes"] {
            assert!(p.is_pii(c), "{c}");
        }
        for c in ["StockCode", "Description", "Country", "ship_date"] {
            assert!(!p.is_pii(c), "{c}");
        }
        assert_eq!(p.show("CustomerID", Some("17850".into())), MASK);
        assert_eq!(p.show("Country", Some("France".into())), "France");
    }
}
