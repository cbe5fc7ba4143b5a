//! A small typed expression language over Arrow record batches, for
//! filters (`Quantity > 0`) and derived columns (`Quantity * UnitPrice`).
//!
//! ```toml
//! kind = "transform.clean"
//! filter = ["Quantity > 0", "InvoiceNo not like 'C%'"]
//! derive = { revenue = "Quantity * UnitPrice", month = "date_trunc('month', InvoiceDate)" }
//! ```
//!
//! The syntax is SQL's: keywords are case-insensitive, strings use single
//! quotes, and nulls follow SQL's three-valued logic. An expression is
//! parsed once ([`Expr::parse`]), type-checked against the input's schema
//! ([`Expr::data_type`], so mistakes surface at `nightjar validate` time),
//! and evaluated a whole batch at a time with Arrow kernels
//! ([`Expr::eval`], [`Expr::eval_predicate`]).
//!
//! # Values
//!
//! | write | type |
//! | --- | --- |
//! | `42`, `-7` | int64 |
//! | `2.5`, `1e3`, `.5` | float64 |
//! | `'United Kingdom'`, `'it''s'` (`''` is a quote) | string |
//! | `true`, `false` | boolean |
//! | `null` | null (takes the type around it) |
//! | `date '2010-12-01'` | date |
//! | `timestamp '2010-12-01 08:26:00'` (also `T`, fractions, `HH:MM`) | timestamp |
//! | `Quantity`, `"Unit Price"`, `` `customer.address.city` `` | a column |
//!
//! Bare column names are case-sensitive and may not be keywords; quote a
//! name with `"double quotes"` or `` `backticks` `` when it has spaces, dots
//! or other characters, or is a keyword (`"end"`). Doubling the quote
//! character escapes it inside the name.
//!
//! # Operators
//!
//! Loosest first; operators on one line bind equally tight and group left
//! to right, except comparisons, which cannot be chained (`a < b < c` is an
//! error: write `a < b and b < c`).
//!
//! | operators | meaning |
//! | --- | --- |
//! | `a or b` | logical or (three-valued: `true or null` is true) |
//! | `a and b` | logical and (`false and null` is false) |
//! | `not a` | negation (`not null` is null) |
//! | `= == != <> < <= > >=` | comparisons; null on either side gives null |
//! | `s [not] like p`, `s [not] ilike p` | SQL patterns: `%` any run, `_` one character, `\` escapes; `ilike` ignores case |
//! | `x [not] in (a, b, ...)` | membership, SQL null rules (`1 in (2, null)` is null) |
//! | `x is null`, `x is not null` | null tests (never null themselves) |
//! | `x [not] between a and b` | `a <= x and x <= b` |
//! | `a \|\| b` | string concatenation; non-strings are converted, null gives null |
//! | `+ -` | addition, subtraction |
//! | `* / // %` | multiplication, division, integer division, remainder |
//! | `-x` | negation |
//! | `( ... )` | grouping |
//!
//! # Functions
//!
//! Function names are case-insensitive. Every function returns null for a
//! null argument, except `concat`, `coalesce`, `nullif` and `if`.
//!
//! | function | result |
//! | --- | --- |
//! | `upper(s)`, `lower(s)` | string in upper / lower case |
//! | `trim(s)`, `ltrim(s)`, `rtrim(s)` | whitespace removed at both ends / the start / the end |
//! | `length(s)` | int64: length in characters |
//! | `concat(a, b, ...)` | string: the arguments joined; null arguments count as `''` |
//! | `substr(s, start[, len])` (also `substring`) | characters from `start` (1-based), `len` of them or to the end |
//! | `replace(s, from, to)` | every `from` replaced by `to` |
//! | `coalesce(a, b, ...)` | the first argument that is not null |
//! | `nullif(a, b)` | null where `a = b`, else `a` (`nullif(Description, '')`) |
//! | `if(c, a, b)` | `a` where `c` is true, else `b` (null `c` gives `b`) |
//! | `case when c then a [when ...] [else b] end` | the first matching branch; no match and no `else` gives null |
//! | `case x when v then a ... end` | shorthand for `case when x = v then a ... end` |
//! | `abs(x)` | absolute value, same type |
//! | `round(x[, digits])` | rounded half away from zero; `digits` is a literal, may be negative (`round(x, -2)` to hundreds) |
//! | `floor(x)`, `ceil(x)` (also `ceiling`) | rounded down / up to a whole number |
//! | `year(d)`, `quarter(d)`, `month(d)`, `day(d)` | int64 parts of a date or timestamp |
//! | `hour(t)`, `minute(t)`, `second(t)` | int64 parts of a timestamp |
//! | `weekday(d)` (also `dayofweek`) | int64 ISO day of week: Monday = 1 .. Sunday = 7 |
//! | `date(t)` | the date of a timestamp (in its time zone), or a `'YYYY-MM-DD'` string read as a date |
//! | `date_trunc(unit, d)` | start of the `'year'`, `'quarter'`, `'month'`, `'week'` (Monday), `'day'`, `'hour'`, `'minute'` or `'second'`; keeps the input's type (a date stays a date) |
//! | `cast(x as T)` | conversion to `int64` (`bigint`, `int`, `integer`), `float64` (`double`, `float`, `real`), `string` (`text`, `varchar`), `bool` (`boolean`), `date`, `timestamp`, `decimal(p,s)` (`numeric`) |
//!
//! # Types
//!
//! Expressions compute in int64, float64, string, boolean, date,
//! timestamp (microseconds, with or without a time zone) and
//! decimal128(p,s). Input columns of other widths are converted when read:
//! int8..int32 and unsigned integers become int64 (a uint64 above the int64
//! range becomes null), float16/float32 become float64, large and view
//! strings and string dictionaries become string, date64 becomes date,
//! timestamps in seconds, milliseconds or nanoseconds become microseconds
//! (nanoseconds are truncated), decimal32/64 become decimal128, and
//! decimal256 becomes decimal128 when its precision is at most 38, float64
//! otherwise. Lists, structs, binaries, times and durations cannot be used.
//! A derived column that is just a column (`derive = { q = "Quantity" }`)
//! therefore has the converted type.
//!
//! Decisions worth knowing:
//!
//! - **Division** `/` always divides exactly and returns float64, also
//!   for two integers (`7 / 2` is `3.5`, as in DuckDB and Spark). For
//!   integer division write `7 // 2` (`3`, truncated toward zero); `//`
//!   needs two int64s.
//! - **Division by zero** (`/`, `//`, `%`) gives null, never an error,
//!   infinity or NaN.
//! - **Integer overflow** (`+ - *` on int64, `abs`) is an error naming the
//!   expression; cast to float64 first when values can be that large.
//! - **Mixing numbers**: int64 with float64 gives float64. A decimal with a
//!   decimal or an int64 stays exact for `+ - *` (an int64 counts as
//!   decimal(19,0); the result's precision and scale follow the usual SQL
//!   rules: `+ -` keep the larger scale, `*` adds the scales, precision is
//!   capped at 38; a product whose scale would exceed 38 falls back to
//!   float64). A decimal with a float64, and any decimal `/` or `%`, gives
//!   float64. So `Quantity * UnitPrice` with `UnitPrice` a decimal(10,2)
//!   is an exact decimal(30,2).
//! - **Comparisons** convert both sides to a common type: int64 and
//!   float64 compare as float64, decimals compare exactly (as float64 when
//!   no decimal128 holds both), a date compared with a timestamp is
//!   midnight (local midnight for a zoned timestamp). Strings, booleans and
//!   numbers do not mix: `Quantity > 'abc'` is a type error.
//! - **Date and timestamp literals as strings**: a string literal compared
//!   with (or listed in `in`/`between`, or mixed in `case`/`coalesce`
//!   with) a date or timestamp is read as one: `InvoiceDate >= '2011-01-01'`.
//!   Against a timestamp with a time zone, a string without an offset is
//!   wall-clock time in that zone. An unreadable literal is a type error.
//! - **Null** compared with anything is null; arithmetic with null is null;
//!   filters keep only rows where the condition is true (null drops the
//!   row, like SQL's `WHERE`). `x != 'a'` drops rows where `x` is null: write
//!   `x is null or x != 'a'` to keep them.
//! - **`cast`** never fails a run: a value that cannot be converted
//!   (`cast('abc' as int64)`, an out-of-range number) becomes null, like
//!   `TRY_CAST`. Casting a float to int64 truncates toward zero.
//!   `cast(x as timestamp)` keeps a zoned timestamp's zone.
//! - **Strings** compare byte-wise (code point order), case-sensitively;
//!   use `ilike` or `lower()` to ignore case. `trim` removes all Unicode
//!   whitespace. `length` counts characters, not bytes.
//! - **`||` versus `concat`**: `'a' || null` is null, `concat('a', null)`
//!   is `'a'`.
//! - **Time zones**: `hour`, `day`, `date`, `date_trunc`, ... read a zoned
//!   timestamp on its local wall clock (`date_trunc('day', t)` is local
//!   midnight, returned as the same zoned type).
//!
//! # Errors
//!
//! Every error carries the 0-based character position it is about, a
//! message quoting the offending part, and usually a hint:
//!
//! ```text
//! UnitPrice * Quantiy
//!   at character 12: unknown column `Quantiy` (hint: did you mean `Quantity`?)
//! Quantity > 'abc'
//!   at character 9: cannot compare int64 with string: `Quantity > 'abc'`
//!   (hint: 'abc' is a string; compare int64 with a number)
//! date_trunc('mnth', InvoiceDate)
//!   at character 11: unknown date_trunc unit 'mnth' (hint: did you mean 'month'?)
//! ```
//!
//! Syntax errors are found by [`Expr::parse`]; unknown columns and type
//! errors by [`Expr::data_type`] (which is what `validate` should call with
//! the input schema); [`Expr::eval`] reports them too, and adds the only
//! run-time error, integer overflow.
//!
//! [`ExprError::caret`] draws the source with a marker under the position.

use std::collections::BTreeSet;
use std::fmt;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod temporal;
mod typecheck;

#[cfg(test)]
mod testutil;

/// A parse, type or evaluation error, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    /// What is wrong, quoting the offending part of the expression.
    pub message: String,
    /// 0-based character offset in the source, when the error has one.
    pub position: Option<usize>,
    /// A suggestion: did-you-mean, the expected form, a conversion.
    pub hint: Option<String>,
}

impl ExprError {
    pub(crate) fn at(position: usize, message: impl Into<String>) -> Self {
        ExprError {
            message: message.into(),
            position: Some(position),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The source line with a `^` under the error position, for terminals:
    ///
    /// ```text
    /// Quantity * UnitPrize
    ///            ^
    /// ```
    pub fn caret(&self, source: &str) -> String {
        let pos = self.position.unwrap_or(0).min(source.chars().count());
        let line: String = source
            .chars()
            .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
            .collect();
        format!("{line}\n{}^", " ".repeat(pos))
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.position {
            write!(f, "at character {p}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

/// The closest candidate to a misspelt name, if any is close enough.
/// Case-insensitive equality wins; then the smallest edit distance within
/// a third of the name's length (at least 1, at most 3); then a candidate
/// containing the name or contained in it.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (lower.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let cl = c.to_lowercase();
        let score = if cl == lower {
            0
        } else {
            let d = strsim::damerau_levenshtein(&lower, &cl);
            if d <= limit {
                d
            } else if lower.chars().count() >= 3 && (cl.contains(&lower) || lower.contains(&cl)) {
                limit + 1
            } else {
                continue;
            }
        };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A parsed expression: its syntax tree and the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: ast::Node,
}

impl Expr {
    /// Parses an expression; syntax errors carry their position.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let root = parser::parse(src)?;
        Ok(Expr {
            source: src.to_string(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Column names the expression reads.
    pub fn columns(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.root.walk(&mut |n| {
            if let ast::NodeKind::Column(c) = &n.kind {
                out.insert(c.clone());
            }
        });
        out
    }

    /// Type-checks against a schema and returns the result type
    /// ([`DataType::Null`] for an expression that is always null).
    pub fn data_type(&self, schema: &Schema) -> Result<DataType, ExprError> {
        Ok(typecheck::check(&self.root, &self.source, schema)?.ty)
    }

    /// Evaluates over a batch: an array of `batch.num_rows()` values.
    pub fn eval(&self, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        let typed = typecheck::check(&self.root, &self.source, &batch.schema())?;
        self.run(&typed, batch)
    }

    fn run(&self, typed: &typecheck::Typed, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        let ev = eval::Evaluator {
            batch,
            src: &self.source,
        };
        ev.eval(typed)?
            .into_array(batch.num_rows())
            .map_err(|e| ExprError::at(self.root.pos, format!("cannot evaluate: {e}")))
    }

    /// Evaluates a boolean expression as a filter mask: rows where it is
    /// true (null counts as false, SQL semantics). The mask has no nulls.
    pub fn eval_predicate(&self, batch: &RecordBatch) -> Result<BooleanArray, ExprError> {
        let typed = typecheck::check(&self.root, &self.source, &batch.schema())?;
        match &typed.ty {
            DataType::Boolean => {}
            DataType::Null => return Ok(BooleanArray::from(vec![false; batch.num_rows()])),
            other => {
                let text = self.source.trim();
                return Err(ExprError::at(
                    self.root.start,
                    format!(
                        "a filter must be a true/false condition, but `{text}` is {}",
                        typecheck::type_name(other)
                    ),
                )
                .with_hint(format!("compare it, e.g. `{text} > 0` or `{text} is not null`")));
            }
        }
        let array = self.run(&typed, batch)?;
        let mask = array.as_boolean();
        Ok(match mask.nulls() {
            Some(nulls) if nulls.null_count() > 0 => BooleanArray::new(mask.values() & nulls.inner(), None),
            _ => BooleanArray::new(mask.values().clone(), None),
        })
    }
}

impl std::str::FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn mask(src: &str, b: &RecordBatch) -> Vec<bool> {
        Expr::parse(src)
            .unwrap()
            .eval_predicate(b)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .values()
            .iter()
            .collect()
    }

    #[test]
    fn online_retail_filters() {
        let b = retail();
        assert_eq!(mask("Quantity > 0", &b), [true, true, false, true, false]);
        assert_eq!(mask("InvoiceNo not like 'C%'", &b), [true, true, false, true, true]);
        assert_eq!(mask("CustomerID is not null", &b), [true, true, true, true, false]);
        assert_eq!(
            mask("Country in ('United Kingdom', 'France')", &b),
            [true, true, true, true, false]
        );
        assert_eq!(
            mask("UnitPrice between 0 and 10000", &b),
            [true, true, true, true, true]
        );
        assert_eq!(
            mask("InvoiceDate >= '2010-12-01 08:30' and InvoiceDate < '2011-01-01'", &b),
            [false, false, true, true, false]
        );
        assert_eq!(
            mask("Description ilike '%heart%' or StockCode = 'D'", &b),
            [true, false, true, false, false]
        );
        // Null Description: `not like` is null there, so the row is dropped.
        assert_eq!(
            mask("Description not like '%CLOCK%'", &b),
            [true, true, true, false, false]
        );
    }

    #[test]
    fn online_retail_derived_columns() {
        let b = retail();
        let revenue = floats(&eval("Quantity * UnitPrice", &b));
        let expected = [6.0 * 2.55, 6.0 * 1.85, -27.5, 24.0 * 3.75, 0.0];
        for (got, want) in revenue.iter().zip(expected) {
            assert!((got.unwrap() - want).abs() < 1e-9, "{got:?} vs {want}");
        }
        assert_eq!(
            ints(&eval("hour(InvoiceDate)", &b)),
            vec![Some(8), Some(8), Some(9), Some(8), Some(23)]
        );
        let month = eval("date_trunc('month', InvoiceDate)", &b);
        assert_eq!(month.data_type(), &ts_type());
        assert_eq!(
            texts(&month),
            vec![
                Some("2010-12-01T00:00:00".to_string()),
                Some("2010-12-01T00:00:00".to_string()),
                Some("2010-12-01T00:00:00".to_string()),
                Some("2010-12-01T00:00:00".to_string()),
                Some("2011-01-01T00:00:00".to_string()),
            ]
        );
        assert_eq!(
            strs(&eval("case when Quantity < 0 then 'return' else 'sale' end", &b))[2].as_deref(),
            Some("return")
        );
        assert_eq!(
            strs(&eval("coalesce(cast(CustomerID as string), 'guest')", &b))[4].as_deref(),
            Some("guest")
        );
    }

    #[test]
    fn exact_decimal_revenue() {
        // UnitPrice as decimal(10,2): revenue is an exact decimal(30,2).
        let b = batch(vec![
            ("Quantity", int(vec![Some(6), Some(3), None])),
            ("UnitPrice", decimal(vec![Some(255), Some(10), Some(1)], 10, 2)),
        ]);
        let e = Expr::parse("Quantity * UnitPrice").unwrap();
        assert_eq!(e.data_type(&b.schema()).unwrap(), DataType::Decimal128(30, 2));
        assert_eq!(decimals(&e.eval(&b).unwrap(), 30, 2), vec![Some(1530), Some(30), None]);
        assert_eq!(
            decimals(&eval("UnitPrice + 1", &b), 22, 2),
            vec![Some(355), Some(110), Some(101)]
        );
        assert_eq!(mask("UnitPrice between 0 and 10000", &b), [true, true, true]);
        assert_eq!(mask("UnitPrice > 1.5", &b), [true, false, false]);
        assert_eq!(mask("UnitPrice = 0.1", &b), [false, true, false]);
        let half = floats(&eval("UnitPrice / 2", &b));
        assert_eq!(half, vec![Some(1.275), Some(0.05), Some(0.005)]);
    }

    #[test]
    fn columns_read() {
        let e = Expr::parse("coalesce(\"customer.address.city\", Country) || upper(x) = 'a' and y between z and 1")
            .unwrap();
        let cols: Vec<String> = e.columns().into_iter().collect();
        assert_eq!(cols, ["Country", "customer.address.city", "x", "y", "z"]);
        assert!(Expr::parse("1 + 2").unwrap().columns().is_empty());
        let e = Expr::parse("case when a then b else c end in (d)").unwrap();
        assert_eq!(e.columns().len(), 4);
    }

    #[test]
    fn source_display_and_from_str() {
        let e: Expr = "Quantity  > 0".parse().unwrap();
        assert_eq!(e.source(), "Quantity  > 0");
        assert_eq!(e.to_string(), "Quantity  > 0");
        assert_eq!(e.clone(), e);
        assert!("Quantity >".parse::<Expr>().is_err());
    }

    #[test]
    fn error_display_and_caret() {
        let e = ExprError::at(12, "unknown column `Quantiy`").with_hint("did you mean `Quantity`?");
        assert_eq!(
            e.to_string(),
            "at character 12: unknown column `Quantiy` (hint: did you mean `Quantity`?)"
        );
        assert_eq!(e.caret("UnitPrice * Quantiy"), "UnitPrice * Quantiy\n            ^");
        let plain = ExprError {
            message: "boom".into(),
            position: None,
            hint: None,
        };
        assert_eq!(plain.to_string(), "boom");
        let boxed: Box<dyn std::error::Error> = Box::new(plain);
        assert_eq!(boxed.to_string(), "boom");
    }

    #[test]
    fn error_from_eval_has_position_and_hint() {
        let b = retail();
        let e = Expr::parse("Quantity * UnitPrize").unwrap().eval(&b).unwrap_err();
        assert_eq!(e.position, Some(11));
        assert_eq!(e.hint.as_deref(), Some("did you mean `UnitPrice`?"));
        let e = Expr::parse("Quantity > 'abc'").unwrap().eval_predicate(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at character 9: cannot compare int64 with string: `Quantity > 'abc'` \
             (hint: 'abc' is a string; compare int64 with a number)"
        );
    }

    #[test]
    fn odd_names_and_literals() {
        let b = batch(vec![
            ("Größe", int(vec![Some(1), Some(5)])),
            ("date", date(vec![Some("2010-12-01"), None])),
            ("ts", ts(vec![Some("2010-12-01 08:26:00"), Some("2010-12-02 00:00:00")])),
        ]);
        assert_eq!(mask("Größe > 2", &b), [false, true]);
        assert_eq!(mask("date = date '2010-12-01'", &b), [true, false]);
        assert_eq!(mask("date(ts) = date", &b), [true, false]);
        assert_eq!(mask("ts in ('2010-12-01 08:26:00', '2010-12-02')", &b), [true, true]);
        assert_eq!(
            mask("ts between date '2010-12-01' and '2010-12-01 23:59'", &b),
            [true, false]
        );
        assert_eq!(mask("year(date) = 2010 or date is null", &b), [true, true]);
    }

    #[test]
    fn expressions_are_shareable() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Expr>();
        send_sync::<ExprError>();
    }

    #[test]
    fn did_you_mean_ranking() {
        let cols = ["Quantity", "UnitPrice", "InvoiceDate", "CustomerID", "Country"];
        assert_eq!(did_you_mean("quantity", cols), Some("Quantity"));
        assert_eq!(did_you_mean("Quantiy", cols), Some("Quantity"));
        assert_eq!(did_you_mean("unit_price", cols), Some("UnitPrice"));
        assert_eq!(did_you_mean("Invoice", cols), Some("InvoiceDate"));
        assert_eq!(did_you_mean("Customer", cols), Some("CustomerID"));
        assert_eq!(did_you_mean("xyz", cols), None);
        assert_eq!(did_you_mean("a", ["b", "abc"]), Some("b"));
        assert_eq!(did_you_mean("anything", [] as [&str; 0]), None);
    }

    #[test]
    fn works_on_a_large_batch() {
        // One vectorized pass per operator, whatever the row count.
        let n = 200_000;
        let q: Vec<Option<i64>> = (0..n)
            .map(|i| if i % 7 == 0 { None } else { Some(i % 50 - 5) })
            .collect();
        let p: Vec<Option<f64>> = (0..n).map(|i| Some((i % 13) as f64 * 0.5)).collect();
        let c: Vec<Option<&str>> = (0..n)
            .map(|i| Some(if i % 3 == 0 { "C123" } else { "536365" }))
            .collect();
        let b = batch(vec![("q", int(q)), ("p", float(p)), ("c", string(c))]);
        let m = Expr::parse("q > 0 and c not like 'C%'")
            .unwrap()
            .eval_predicate(&b)
            .unwrap();
        let expected = (0..n).filter(|i| i % 7 != 0 && i % 50 - 5 > 0 && i % 3 != 0).count();
        assert_eq!(m.true_count(), expected);
        let r = eval("q * p", &b);
        assert_eq!(r.len(), n as usize);
        assert_eq!(r.null_count(), (0..n).filter(|i| i % 7 == 0).count());
    }
}
