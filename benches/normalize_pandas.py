"""The normalize step's split in pandas (drop_duplicates + merge), for
benches/normalize.sh: the same entities and policies as
jobs/retail/normalize.toml, from the same Parquet input (the clean task's
artifact), written to Parquet. Prints one JSON line: seconds (read, split
and write, as the nightjar task does), split_seconds (without the read) and
counts."""
import json
import sys
import time

import pandas as pd

src, out = sys.argv[1], sys.argv[2]
# Timed from before the read: nightjar's figure is its task's whole run,
# Parquet in to four Parquet tables out, and this is the same work.
# "split_seconds" leaves the read out (informational).
t0 = time.perf_counter()
df = pd.read_parquet(src)
t_read = time.perf_counter()


def most_frequent(frame, key, attrs):
    """One row per key: its most frequent attribute values (ties: first seen)."""
    g = frame.groupby(key + attrs, dropna=False, sort=False).size().reset_index(name="_n")
    keys_breaking = g[key].duplicated(keep=False)
    violating = int(g.loc[keys_breaking, key].drop_duplicates().shape[0])
    g = g.sort_values("_n", ascending=False, kind="stable").drop_duplicates(key)
    return g[key + attrs], violating


customers, cust_viol = most_frequent(df[df.CustomerID.notna()], ["CustomerID"], ["Country"])
products, prod_viol = most_frequent(df, ["StockCode"], ["Description"])
products.insert(0, "product_id", (pd.util.hash_array(products.StockCode.to_numpy(dtype=object)) >> 1).astype("int64"))
inv_all = df[["InvoiceNo", "InvoiceDate", "order_date", "CustomerID"]]
inv_viol = int(inv_all.drop_duplicates().InvoiceNo.duplicated().sum())
invoices = inv_all.drop_duplicates("InvoiceNo")
lines = df[["InvoiceNo", "StockCode", "Quantity", "UnitPrice"]].copy()
lines.insert(1, "line_no", lines.groupby("InvoiceNo", sort=False).cumcount() + 1)
lines = lines.merge(products[["StockCode", "product_id"]], on="StockCode", how="left").drop(columns="StockCode")
# Foreign keys checked, as the step does.
orphans = int((~lines.InvoiceNo.isin(invoices.InvoiceNo)).sum()) + int(
    (invoices.CustomerID.notna() & ~invoices.CustomerID.isin(customers.CustomerID)).sum()
)
for name, frame in [("customers", customers), ("products", products), ("invoices", invoices), ("invoice_lines", lines)]:
    frame.to_parquet(f"{out}/{name}.parquet", index=False)
t1 = time.perf_counter()
print(json.dumps({
    "seconds": t1 - t0,
    "split_seconds": t1 - t_read,
    "customers": len(customers), "products": len(products), "invoices": len(invoices), "invoice_lines": len(lines),
    "products_violating_keys": prod_viol, "orphans": orphans,
}))
