-- Business views over the normalized retail tables (customers, products,
-- invoices, invoice_lines), refreshed by the `views` task of
-- dags/retail_nightly.toml after every load. Views, not tables: they always
-- read the current rows, so a re-run or a backfill needs no rebuild; the
-- task re-creates them so a changed definition applies on the next run.
-- The same view names and columns for PostgreSQL / Redshift are in
-- views.postgres.sql. Revenue is Quantity * UnitPrice of the kept
-- (non-cancelled, deduplicated) lines, rounded to pence: gross sales.
-- Cancellations are in cancelled_orders and are not netted here (the
-- year's two largest invoices, 581483 and 541431, were both cancelled
-- the same day).

DROP VIEW IF EXISTS sales_per_hour;
CREATE VIEW sales_per_hour AS
SELECT strftime('%Y-%m-%d %H:00:00', i.InvoiceDate) AS sales_hour,
       COUNT(DISTINCT i.InvoiceNo) AS invoices,
       COUNT(*) AS lines,
       SUM(l.Quantity) AS units,
       ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
GROUP BY 1;

DROP VIEW IF EXISTS sales_per_day;
CREATE VIEW sales_per_day AS
SELECT i.order_date AS sales_day,
       COUNT(DISTINCT i.InvoiceNo) AS invoices,
       COUNT(*) AS lines,
       SUM(l.Quantity) AS units,
       ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
GROUP BY 1;

DROP VIEW IF EXISTS sales_per_month;
CREATE VIEW sales_per_month AS
SELECT substr(i.order_date, 1, 7) AS sales_month,
       COUNT(DISTINCT i.InvoiceNo) AS invoices,
       COUNT(*) AS lines,
       SUM(l.Quantity) AS units,
       ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
GROUP BY 1;

-- Every product sold in a month with its rank by units sold (rank 1 = the
-- month's best seller; ties share a rank).
DROP VIEW IF EXISTS top_products_per_month;
CREATE VIEW top_products_per_month AS
SELECT sales_month, product_rank, product_id, StockCode, Description, units, revenue
FROM (
    SELECT substr(i.order_date, 1, 7) AS sales_month,
           p.product_id AS product_id,
           p.StockCode AS StockCode,
           p.Description AS Description,
           SUM(l.Quantity) AS units,
           ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS revenue,
           RANK() OVER (PARTITION BY substr(i.order_date, 1, 7) ORDER BY SUM(l.Quantity) DESC) AS product_rank
    FROM invoice_lines l
    JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
    JOIN products p ON p.product_id = l.product_id
    GROUP BY 1, 2, 3, 4
) ranked;

-- One row per invoice with its total: ORDER BY revenue DESC for the highest.
DROP VIEW IF EXISTS invoice_totals;
CREATE VIEW invoice_totals AS
SELECT i.InvoiceNo AS InvoiceNo,
       i.InvoiceDate AS InvoiceDate,
       i.CustomerID AS CustomerID,
       COUNT(*) AS lines,
       SUM(l.Quantity) AS units,
       ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
GROUP BY 1, 2, 3;

-- The highest invoices, largest first (top 100).
DROP VIEW IF EXISTS highest_invoices;
CREATE VIEW highest_invoices AS
SELECT InvoiceNo, InvoiceDate, CustomerID, lines, units, revenue
FROM invoice_totals
ORDER BY revenue DESC, InvoiceNo
LIMIT 100;

-- Each customer's invoices (CustomerID is the pseudonym), oldest first per
-- customer; guest checkouts (no CustomerID) are left out.
DROP VIEW IF EXISTS customer_purchase_history;
CREATE VIEW customer_purchase_history AS
SELECT CustomerID, InvoiceNo, InvoiceDate, lines, units, revenue
FROM invoice_totals
WHERE CustomerID IS NOT NULL;

-- Lifetime value: everything a customer bought, over every loaded day.
DROP VIEW IF EXISTS customer_lifetime_value;
CREATE VIEW customer_lifetime_value AS
SELECT i.CustomerID AS CustomerID,
       c.Country AS Country,
       COUNT(DISTINCT i.InvoiceNo) AS invoices,
       MIN(i.InvoiceDate) AS first_purchase,
       MAX(i.InvoiceDate) AS last_purchase,
       SUM(l.Quantity) AS units,
       ROUND(SUM(l.Quantity * l.UnitPrice), 2) AS lifetime_value
FROM invoice_lines l
JOIN invoices i ON i.InvoiceNo = l.InvoiceNo
LEFT JOIN customers c ON c.CustomerID = i.CustomerID
WHERE i.CustomerID IS NOT NULL
GROUP BY 1, 2;
