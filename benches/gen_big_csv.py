#!/usr/bin/env python3
"""Writes a large Online Retail CSV for the streaming part of the data-plane
benchmark (docs/benchmarks.md, "Data plane").

    python3 benches/gen_big_csv.py <folder of YYYY-MM-DD.csv> <out.csv> [target bytes]

The year's rows (all daily files, header once) are repeated until the file
reaches the target size (default 2e9 bytes). Copy k adds k * 1,000,000 to
every invoice number, keeping its letter prefix (C536379 -> C1536379), so
the copies are distinct rows: the exact duplicates left in the output are
the ones the original year holds, once per copy.
"""

import glob
import os
import re
import sys

INVOICE = re.compile(rb"^([A-Z]?)(\d+),", re.MULTILINE)


def main(folder: str, out: str, target: int) -> None:
    files = sorted(glob.glob(os.path.join(folder, "*.csv")))
    if not files:
        sys.exit(f"no CSV file in {folder}")
    header = None
    body = []
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        if not data.endswith(b"\n"):
            data += b"\n"
        first, _, rest = data.partition(b"\n")
        header = header or first
        body.append(rest)
    year = b"".join(body)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    written = 0
    copies = 0
    with open(out, "wb") as fh:
        fh.write(header + b"\n")
        written += len(header) + 1
        while written < target:
            shift = copies * 1_000_000
            chunk = year if shift == 0 else INVOICE.sub(
                lambda m: m.group(1) + str(int(m.group(2)) + shift).encode() + b",", year
            )
            fh.write(chunk)
            written += len(chunk)
            copies += 1
    print(f"gen_big_csv copies={copies} bytes={written} path={out}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(float(sys.argv[3])) if len(sys.argv) == 4 else 2_000_000_000)
