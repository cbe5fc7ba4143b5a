-- Redshift: the PostgreSQL file of the same views, checked only through the
-- Data API test server over PostgreSQL (docs/aws.md lists what it does not cover).
-- Business views over the normalized retail tables, for PostgreSQL and
-- Redshift: the same view names and columns as views.sqlite.sql (see
-- there). Loads fold identifiers to lower case, and so does PostgreSQL for
-- unquoted names, so the names below are written unquoted. Types differ
-- where the databases do: sales_hour is a TIMESTAMP and sales_day a DATE
-- here (text in SQLite); sales_month is 'YYYY-MM' text in both.

DROP VIEW IF EXISTS customer_lifetime_value;
DROP VIEW IF EXISTS customer_purchase_history;
DROP VIEW IF EXISTS highest_invoices;
DROP VIEW IF EXISTS invoice_totals;
DROP VIEW IF EXISTS top_products_per_month;
DROP VIEW IF EXISTS sales_per_month;
DROP VIEW IF EXISTS sales_per_day;
DROP VIEW IF EXISTS sales_per_hour;

CREATE VIEW sales_per_hour AS
SELECT date_trunc('hour', i.invoicedate) AS sales_hour,
       COUNT(DISTINCT i.invoiceno) AS invoices,
       COUNT(*) AS lines,
       SUM(l.quantity) AS units,
       ROUND(SUM(l.quantity * l.unitprice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.invoiceno = l.invoiceno
GROUP BY 1;

CREATE VIEW sales_per_day AS
SELECT i.order_date AS sales_day,
       COUNT(DISTINCT i.invoiceno) AS invoices,
       COUNT(*) AS lines,
       SUM(l.quantity) AS units,
       ROUND(SUM(l.quantity * l.unitprice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.invoiceno = l.invoiceno
GROUP BY 1;

CREATE VIEW sales_per_month AS
SELECT to_char(i.order_date, 'YYYY-MM') AS sales_month,
       COUNT(DISTINCT i.invoiceno) AS invoices,
       COUNT(*) AS lines,
       SUM(l.quantity) AS units,
       ROUND(SUM(l.quantity * l.unitprice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.invoiceno = l.invoiceno
GROUP BY 1;

CREATE VIEW top_products_per_month AS
SELECT sales_month, product_rank, product_id, stockcode, description, units, revenue
FROM (
    SELECT to_char(i.order_date, 'YYYY-MM') AS sales_month,
           p.product_id AS product_id,
           p.stockcode AS stockcode,
           p.description AS description,
           SUM(l.quantity) AS units,
           ROUND(SUM(l.quantity * l.unitprice), 2) AS revenue,
           RANK() OVER (PARTITION BY to_char(i.order_date, 'YYYY-MM') ORDER BY SUM(l.quantity) DESC) AS product_rank
    FROM invoice_lines l
    JOIN invoices i ON i.invoiceno = l.invoiceno
    JOIN products p ON p.product_id = l.product_id
    GROUP BY 1, 2, 3, 4
) ranked;

CREATE VIEW invoice_totals AS
SELECT i.invoiceno AS invoiceno,
       i.invoicedate AS invoicedate,
       i.customerid AS customerid,
       COUNT(*) AS lines,
       SUM(l.quantity) AS units,
       ROUND(SUM(l.quantity * l.unitprice), 2) AS revenue
FROM invoice_lines l
JOIN invoices i ON i.invoiceno = l.invoiceno
GROUP BY 1, 2, 3;

CREATE VIEW highest_invoices AS
SELECT invoiceno, invoicedate, customerid, lines, units, revenue
FROM invoice_totals
ORDER BY revenue DESC, invoiceno
LIMIT 100;

CREATE VIEW customer_purchase_history AS
SELECT customerid, invoiceno, invoicedate, lines, units, revenue
FROM invoice_totals
WHERE customerid IS NOT NULL;

CREATE VIEW customer_lifetime_value AS
SELECT i.customerid AS customerid,
       c.country AS country,
       COUNT(DISTINCT i.invoiceno) AS invoices,
       MIN(i.invoicedate) AS first_purchase,
       MAX(i.invoicedate) AS last_purchase,
       SUM(l.quantity) AS units,
       ROUND(SUM(l.quantity * l.unitprice), 2) AS lifetime_value
FROM invoice_lines l
JOIN invoices i ON i.invoiceno = l.invoiceno
LEFT JOIN customers c ON c.customerid = i.customerid
WHERE i.customerid IS NOT NULL
GROUP BY 1, 2;
