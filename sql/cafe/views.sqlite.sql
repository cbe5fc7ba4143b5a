-- Café views over cafe_branches, cafe_products, cafe_orders and
-- cafe_order_items, re-created by the `views` task of
-- dags/cafe_branches.toml after every load (views read the tables live).
-- The same view names and columns for PostgreSQL / Redshift are in
-- views.postgres.sql. Money is the till's: an order's `total`, an item's
-- `price` (what was paid for it).

-- Revenue per branch per day.
DROP VIEW IF EXISTS cafe_revenue_per_branch_day;
CREATE VIEW cafe_revenue_per_branch_day AS
SELECT o.branch AS branch,
       o.order_date AS order_date,
       COUNT(*) AS orders,
       ROUND(SUM(o.total), 2) AS revenue
FROM cafe_orders o
GROUP BY 1, 2;

-- Items sold per product (a product is a size + a name) with its rank from
-- the best seller (best_rank 1) and from the worst (worst_rank 1); ties
-- share a rank.
DROP VIEW IF EXISTS cafe_product_sales;
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

DROP VIEW IF EXISTS cafe_best_selling_products;
CREATE VIEW cafe_best_selling_products AS
SELECT best_rank AS sales_rank, product_id, size, product, items_sold, revenue
FROM cafe_product_sales
WHERE best_rank <= 10;

DROP VIEW IF EXISTS cafe_worst_selling_products;
CREATE VIEW cafe_worst_selling_products AS
SELECT worst_rank AS sales_rank, product_id, size, product, items_sold, revenue
FROM cafe_product_sales
WHERE worst_rank <= 10;

-- Average spend (order total) per payment type (CASH, CARD).
DROP VIEW IF EXISTS cafe_spend_per_payment_type;
CREATE VIEW cafe_spend_per_payment_type AS
SELECT payment_type,
       COUNT(*) AS orders,
       ROUND(AVG(total), 2) AS average_spend
FROM cafe_orders
GROUP BY 1;

-- Orders and revenue per hour of the day (0-23), over every branch and day.
DROP VIEW IF EXISTS cafe_busiest_hours;
CREATE VIEW cafe_busiest_hours AS
SELECT CAST(strftime('%H', timestamp) AS INTEGER) AS hour,
       COUNT(*) AS orders,
       ROUND(SUM(total), 2) AS revenue
FROM cafe_orders
GROUP BY 1;
