-- Redshift: the PostgreSQL file of the same views, checked only through the
-- Data API test server over PostgreSQL (docs/aws.md lists what it does not cover).
-- Café views for PostgreSQL / Redshift: the same view names and columns as
-- views.sqlite.sql (see there).

DROP VIEW IF EXISTS cafe_busiest_hours;
DROP VIEW IF EXISTS cafe_spend_per_payment_type;
DROP VIEW IF EXISTS cafe_worst_selling_products;
DROP VIEW IF EXISTS cafe_best_selling_products;
DROP VIEW IF EXISTS cafe_product_sales;
DROP VIEW IF EXISTS cafe_revenue_per_branch_day;

CREATE VIEW cafe_revenue_per_branch_day AS
SELECT o.branch AS branch,
       o.order_date AS order_date,
       COUNT(*) AS orders,
       ROUND(SUM(o.total), 2) AS revenue
FROM cafe_orders o
GROUP BY 1, 2;

CREATE VIEW cafe_product_sales AS
SELECT product_id, size, product, items_sold, revenue,
       RANK() OVER (ORDER BY items_sold DESC) AS best_rank,
       RANK() OVER (ORDER BY items_sold ASC) AS worst_rank
FROM (
    SELECT p.product_id AS product_id,
           p.size AS size,
           p.product AS product,
           COUNT(*) AS items_sold,
           ROUND(SUM(i.price), 2) AS revenue
    FROM cafe_order_items i
    JOIN cafe_products p ON p.product_id = i.product_id
    GROUP BY 1, 2, 3
) sold;

CREATE VIEW cafe_best_selling_products AS
SELECT best_rank AS sales_rank, product_id, size, product, items_sold, revenue
FROM cafe_product_sales
WHERE best_rank <= 10;

CREATE VIEW cafe_worst_selling_products AS
SELECT worst_rank AS sales_rank, product_id, size, product, items_sold, revenue
FROM cafe_product_sales
WHERE worst_rank <= 10;

CREATE VIEW cafe_spend_per_payment_type AS
SELECT payment_type,
       COUNT(*) AS orders,
       ROUND(AVG(total), 2) AS average_spend
FROM cafe_orders
GROUP BY 1;

CREATE VIEW cafe_busiest_hours AS
SELECT CAST(EXTRACT(HOUR FROM "timestamp") AS INTEGER) AS hour,
       COUNT(*) AS orders,
       ROUND(SUM(total), 2) AS revenue
FROM cafe_orders
GROUP BY 1;
