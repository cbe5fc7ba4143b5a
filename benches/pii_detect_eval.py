#!/usr/bin/env python3
"""Detection quality of `nightjar pii scan`, column level and value level.

1. A labelled table that a package ships: presidio-evaluator's
   FakeNameGenerator.com_3000.csv (pip download presidio-evaluator; the CSV
   is read from the wheel as data). Scanned twice: with its real header
   (name hints count) and with the header replaced by col_1.. (values only).
2. A table generated here with known labels: one column per PII kind, and
   look-alike columns that are not PII (16-digit order numbers failing Luhn,
   dates, prices, product codes, IPv4-like version strings, times).

    python3 benches/pii_detect_eval.py NIGHTJAR_BIN [FNG_CSV]
"""

import csv
import json
import os
import random
import subprocess
import sys
import tempfile

BIN = sys.argv[1]
FNG = sys.argv[2] if len(sys.argv) > 2 else None

# Ground truth for the FakeNameGenerator columns: direct identifiers and
# contact data. City, State, Age, CCType, Gender... are not PII alone.
FNG_PII = {"GivenName", "Surname", "StreetAddress", "ZipCode", "EmailAddress", "Username",
           "TelephoneNumber", "MothersMaiden", "Birthday", "CCNumber", "NationalID", "Password", "CVV2"}


def scan(path, rows=100000):
    out = subprocess.run([BIN, "--json", "pii", "scan", path, "--rows", str(rows)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["columns"]


def column_metrics(reports, truth):
    flagged = {r["column"] for r in reports if r["kind"]}
    tp, fp, fn = len(flagged & truth), len(flagged - truth), len(truth - flagged)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, sorted(flagged - truth), sorted(truth - flagged)


def luhn_complete(prefix, n, rng):
    d = [int(c) for c in prefix]
    while len(d) < n - 1:
        d.append(rng.randrange(10))
    t = 0
    for i, x in enumerate(reversed(d)):
        if i % 2 == 0:
            x *= 2
            x -= 9 if x > 9 else 0
        t += x
    d.append((10 - t % 10) % 10)
    return "".join(map(str, d))


def iban(rng):
    bban = "WEST" + "".join(str(rng.randrange(10)) for _ in range(14))
    num = int("".join(str(int(c, 36)) for c in bban + "GB00"))
    return f"GB{98 - num % 97:02d}{bban}"


def generated(path, n=2000, seed=3):
    rng = random.Random(seed)
    first = ["Sarah", "James", "Aisha", "Wei", "Olivia", "Tomasz", "Emily", "Noah", "Priya", "George"]
    last = ["Jones", "Smith", "Khan", "Zhang", "Nowak", "Patel", "Brown", "Evans"]
    cols = {
        # PII
        "c_email": lambda: f"{rng.choice(first).lower()}.{rng.choice(last).lower()}{rng.randrange(99)}@example.{rng.choice(['com', 'co.uk', 'org'])}",
        "c_phone": lambda: rng.choice([f"+44 20 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}", f"0{rng.randrange(1000, 9999)} {rng.randrange(100000, 999999)}", f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"]),
        "c_card": lambda: luhn_complete(rng.choice(["4", "51", "37", "6011"]), rng.choice([16, 16, 15]), rng),
        "c_iban": lambda: iban(rng),
        "c_ssn": lambda: f"{rng.randrange(1, 665):03d}-{rng.randrange(1, 99):02d}-{rng.randrange(1, 9999):04d}",
        "c_ni": lambda: f"{rng.choice('ABCEGHJKLMNPRSTWXYZ')}{rng.choice('ABCEGHJKLMNPRSTWXYZ')}{rng.randrange(100000, 999999)}{rng.choice('ABCD')}",
        "c_ipv4": lambda: ".".join(str(rng.randrange(1, 255)) for _ in range(4)),
        "c_ipv6": lambda: ":".join(f"{rng.randrange(65536):x}" for _ in range(8)),
        "c_fullname": lambda: f"{rng.choice(first)} {rng.choice(last)}",
        "c_address": lambda: f"{rng.randrange(1, 300)} {rng.choice(['Mill', 'Church', 'Station', 'Park'])} {rng.choice(['Road', 'Street', 'Lane', 'Avenue'])}",
        "c_notes": lambda: rng.choice(["please call back", "ok", f"mail me at {rng.choice(first).lower()}@example.com", "delivered", f"ring {'+44 20 7946 ' + str(rng.randrange(1000, 9999))}"]),
        # not PII (look-alikes)
        "n_order16": lambda: (lambda s: s[:-1] + str((int(s[-1]) + 1) % 10))(luhn_complete("4", 16, rng)),
        "n_date": lambda: f"2021-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}",
        "n_price": lambda: f"{rng.randrange(0, 9999) / 100:.2f}",
        "n_stock": lambda: f"{rng.randrange(10000, 99999)}{rng.choice(['', 'A', 'B'])}",
        "n_version": lambda: f"{rng.randrange(1, 9)}.{rng.randrange(0, 20)}.{rng.randrange(0, 99)}",
        "n_time": lambda: f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}",
        "n_product": lambda: rng.choice(["WHITE HANGING HEART T-LIGHT HOLDER", "Flat white", "Speciality Tea - Camomile", "SET 7 BABUSHKA NESTING BOXES"]),
        "n_country": lambda: rng.choice(["United Kingdom", "France", "Isle of Wight", "New Zealand"]),
        "n_customer_id": lambda: str(rng.randrange(12000, 18999)),
    }
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for _ in range(n):
            w.writerow([g() for g in cols.values()])
    return {c for c in cols if c.startswith("c_")}


def value_metrics(reports, truth):
    """Per-value: a PII column's values matched (any kind) are true
    positives, the rest false negatives; matches in non-PII columns are
    false positives."""
    tp = fn = fp = 0
    for r in reports:
        hits = sum(r["matches"].values()) + r["text_with_pii"]
        if r["column"] in truth:
            tp += hits
            fn += r["sampled"] - hits
        else:
            fp += hits
    return tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0


def main():
    print(f"{'dataset':44} {'col P':>6} {'col R':>6} {'val P':>6} {'val R':>6}  misses / false alarms")
    with tempfile.TemporaryDirectory() as d:
        if FNG:
            reps = scan(FNG)
            p, r, fps, fns = column_metrics(reps, FNG_PII)
            vp, vr = value_metrics(reps, FNG_PII)
            print(f"{'FakeNameGenerator 3000 (header: names count)':44} {p:6.2f} {r:6.2f} {vp:6.2f} {vr:6.2f}  missed {fns}; false {fps}")
            # Same data, header replaced: values only.
            anon = os.path.join(d, "fng_anon.csv")
            with open(FNG, encoding="utf-8-sig") as src, open(anon, "w", newline="") as dst:
                rd = csv.reader(src)
                hdr = next(rd)
                w = csv.writer(dst)
                w.writerow([f"col_{i + 1}" for i in range(len(hdr))])
                w.writerows(rd)
            mapping = {f"col_{i + 1}": h for i, h in enumerate(hdr)}
            reps = scan(anon)
            truth = {c for c, h in mapping.items() if h in FNG_PII}
            p, r, fps, fns = column_metrics(reps, truth)
            vp, vr = value_metrics(reps, truth)
            print(f"{'FakeNameGenerator 3000 (values only)':44} {p:6.2f} {r:6.2f} {vp:6.2f} {vr:6.2f}  missed {[mapping[c] for c in fns]}; false {[mapping[c] for c in fps]}")
        gen = os.path.join(d, "generated.csv")
        truth = generated(gen)
        reps = scan(gen)
        p, r, fps, fns = column_metrics(reps, truth)
        vp, vr = value_metrics(reps, truth)
        print(f"{'generated 2000 rows, 11 PII + 9 look-alike':44} {p:6.2f} {r:6.2f} {vp:6.2f} {vr:6.2f}  missed {fns}; false {fps}")
        for rep in reps:
            if rep["column"] in truth:
                hits = sum(rep["matches"].values()) + rep["text_with_pii"]
                print(f"    {rep['column']:12} {hits / max(rep['sampled'], 1):6.1%} of values detected")


if __name__ == "__main__":
    main()
