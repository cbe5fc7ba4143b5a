//! Comparing a warehouse's views with their SQLite twins, row by row: the
//! PostgreSQL and Redshift views (`sql/*/views.{postgres,redshift}.sql`)
//! must give the rows the SQLite views give on the same tables.

/// Values equal as text, or as numbers to the cent.
pub fn same(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() < 0.0051,
            _ => false,
        }
}

/// Asserts that `view` gives the same rows, ordered by `order`, in SQLite
/// and in PostgreSQL (whose session must see the view through its
/// search_path). Returns how many rows were compared (never zero).
pub async fn compare(sqlite: &rusqlite::Connection, pg: &tokio_postgres::Client, view: &str, order: &str) -> usize {
    let cols: Vec<String> = sqlite
        .prepare(&format!("SELECT name FROM pragma_table_info('{view}')"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|c| c.unwrap().to_lowercase())
        .collect();
    assert!(!cols.is_empty(), "no SQLite view {view}");
    // Aliased, so that ORDER BY names the view's columns, not their text
    // (PostgreSQL names a cast after its column).
    let list = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("CAST({c} AS TEXT) AS c{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!("SELECT {list} FROM {view} ORDER BY {order}");
    let mut st = sqlite.prepare(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let lite: Vec<Vec<Option<String>>> = st
        .query_map([], |r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let theirs: Vec<Vec<Option<String>>> = pg
        .query(&query, &[])
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .iter()
        .map(|r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect();
    assert_eq!(lite.len(), theirs.len(), "{view}: row counts");
    for (a, b) in lite.iter().zip(&theirs) {
        let equal = a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => same(x, y),
            (None, None) => true,
            _ => false,
        });
        assert!(equal, "{view}: SQLite {a:?} vs PostgreSQL {b:?}");
    }
    assert!(!lite.is_empty(), "{view} is empty");
    lite.len()
}

/// The retail views and an order that makes their rows comparable.
pub const RETAIL: &[(&str, &str)] = &[
    ("sales_per_hour", "1"),
    ("sales_per_day", "1"),
    ("sales_per_month", "1"),
    ("top_products_per_month", "sales_month, product_rank, stockcode"),
    ("invoice_totals", "invoiceno"),
    ("highest_invoices", "revenue DESC, invoiceno"),
    ("customer_purchase_history", "customerid, invoiceno"),
    ("customer_lifetime_value", "customerid"),
];

/// The café views and an order that makes their rows comparable.
pub const CAFE: &[(&str, &str)] = &[
    ("cafe_revenue_per_branch_day", "branch, order_date"),
    ("cafe_product_sales", "product, size"),
    ("cafe_best_selling_products", "sales_rank, product, size"),
    ("cafe_worst_selling_products", "sales_rank, product, size"),
    ("cafe_spend_per_payment_type", "payment_type"),
    ("cafe_busiest_hours", "hour"),
];
