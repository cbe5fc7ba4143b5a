//! `cafe_branches` with `--env local` over tests/fixtures/cafe (the real
//! files' quirks: leading and doubled commas in baskets, `None` cards,
//! one-decimal prices): the 3NF tables' row counts, no customer name or
//! card number under `.nightjar/` or in the warehouse, and the views' rows
//! against the figures worked out by hand in tests/fixtures/cafe/README.md.

use crate::support::project::{Project, assert_absent, count, everything_stored, rows};

#[test]
fn cafe_branches_fixture_into_tables_and_views_without_pii() {
    let p = Project::new().with("tests/fixtures/cafe");
    for date in ["2021-02-23", "2021-02-24"] {
        p.ok(&[
            "run",
            "cafe_branches",
            "--date",
            date,
            "--var",
            "input=tests/fixtures/cafe",
        ]);
    }
    let db = p.warehouse();
    for (table, n) in [
        ("cafe_branches", 2),
        ("cafe_products", 5),
        ("cafe_orders", 6),
        ("cafe_order_items", 10),
    ] {
        assert_eq!(count(&db, table), n, "rows of {table}");
    }
    // Every item refers to an order and a product; the masked card keeps its type.
    assert_eq!(
        rows(
            &db,
            "SELECT COUNT(*) FROM cafe_order_items i \
             WHERE i.order_id NOT IN (SELECT order_id FROM cafe_orders) \
             OR i.product_id NOT IN (SELECT product_id FROM cafe_products)"
        ),
        ["0"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT card_type, card_number FROM cafe_orders WHERE card_type IS NOT NULL ORDER BY timestamp"
        ),
        [
            "visa16|************1111",
            "amex15|***********0005",
            "mastercard16|************5100"
        ]
    );

    let names = [
        "Morgan Fakename",
        "Riley Testperson",
        "Jordan Sample",
        "Alex Madeup",
        "Sam Invented",
    ];
    let cards = ["4111111111111111", "5105105105105100", "378282246310005"];
    let needles: Vec<String> = names.iter().chain(&cards).map(|s| s.to_string()).collect();
    assert_absent(&everything_stored(&p.path().join(".nightjar")), &needles, false);

    assert_eq!(
        rows(
            &db,
            "SELECT branch, order_date, orders, revenue FROM cafe_revenue_per_branch_day ORDER BY order_date, branch"
        ),
        [
            "Isle of Wight|2021-02-23|3|10.95",
            "Leeds|2021-02-23|2|7.9",
            "Leeds|2021-02-24|1|2.45"
        ]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT sales_rank, size, product, items_sold, revenue FROM cafe_best_selling_products ORDER BY sales_rank, revenue DESC LIMIT 4"
        ),
        [
            "1|Regular|Latte|3|6.45",
            "2|Large|Hot chocolate|2|5.8",
            "2|Large|Chai latte|2|5.2",
            "2||Glass of milk|2|1.4"
        ]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT sales_rank, size, product, items_sold, revenue FROM cafe_worst_selling_products ORDER BY sales_rank LIMIT 1"
        ),
        ["1|Large|Latte|1|2.45"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT payment_type, orders, average_spend FROM cafe_spend_per_payment_type ORDER BY payment_type"
        ),
        ["CARD|3|4.37", "CASH|3|2.73"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT hour, orders, revenue FROM cafe_busiest_hours ORDER BY orders DESC, hour"
        ),
        ["9|4|16.25", "13|1|2.6", "16|1|2.45"]
    );

    // Forced re-run of a date: the same rows, not doubled.
    p.ok(&[
        "run",
        "cafe_branches",
        "--date",
        "2021-02-23",
        "--force",
        "--var",
        "input=tests/fixtures/cafe",
    ]);
    let db = p.warehouse();
    assert_eq!(count(&db, "cafe_order_items"), 10);
    assert_eq!(count(&db, "cafe_products"), 5);
}
