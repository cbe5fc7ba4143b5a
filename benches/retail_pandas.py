#!/usr/bin/env python3
"""The pandas baseline of the data-plane benchmark (docs/benchmarks.md,
"Data plane"): the same pipeline as benches/dags/retail_year.toml, written
the way a data engineer would write it in pandas.

    python3 benches/retail_pandas.py <folder of YYYY-MM-DD.csv> <out.db>

- read every CSV with pd.read_csv (same column types as the nightjar job's
  [columns]) and concat them;
- parse InvoiceDate with the same format, "%Y-%m-%d %H:%M:%S";
- cancelled invoices (InvoiceNo starting with "C") go to their own table,
  `cancelled_orders`; the other rows are deduplicated (exact duplicate
  rows, first kept) into `orders` -- transform.clean's keep_apart runs
  before its dedupe, so the cancelled rows are not deduplicated there
  either;
- to_sql into a fresh SQLite file with if_exists="replace".

CustomerID is written as a float ("17850.0") and empty for guest checkouts:
it is read as a float and made a nullable integer (Int64), as nightjar's
`CustomerID = "int64"` does.
"""

import glob
import os
import sqlite3
import sys

import pandas as pd

DTYPES = {
    "InvoiceNo": "string",
    "StockCode": "string",
    "Description": "string",
    "Quantity": "int64",
    "UnitPrice": "float64",
    "CustomerID": "float64",
    "Country": "string",
}


def main(folder: str, db: str) -> None:
    files = sorted(glob.glob(os.path.join(folder, "*.csv")))
    if not files:
        sys.exit(f"no CSV file in {folder}")
    df = pd.concat((pd.read_csv(f, dtype=DTYPES) for f in files), ignore_index=True)
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    df["CustomerID"] = df["CustomerID"].astype("Int64")

    cancelled = df["InvoiceNo"].str.startswith("C", na=False)
    orders = df[~cancelled].drop_duplicates()
    cancelled_orders = df[cancelled]

    with sqlite3.connect(db) as conn:
        orders.to_sql("orders", conn, if_exists="replace", index=False)
        cancelled_orders.to_sql("cancelled_orders", conn, if_exists="replace", index=False)
    print(
        f"pandas {pd.__version__}: {len(files)} files, {len(df)} rows read, "
        f"{len(orders)} orders, {len(cancelled_orders)} cancelled, "
        f"{int((~cancelled).sum()) - len(orders)} duplicates dropped"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
