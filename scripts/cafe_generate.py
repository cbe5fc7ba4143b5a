#!/usr/bin/env python3
"""Generate realistic café branch exports for the `cafe_branches` DAG.

One CSV per branch per day, named YYYY-MM-DD-<branch-slug>.csv, no header:

    timestamp, branch, customer name, basket, payment type, total, card

The basket is a flat list of `size,product,price` triples (size may be
empty, which gives the real files' leading comma); card is "cardtype,number"
or None (cash). Prices are written the way the real till wrote them, with
one decimal when the second is zero ("1.3"). Card numbers are random but
Luhn-valid, with real issuer prefixes, so PII detectors treat them as cards.

    python3 scripts/cafe_generate.py --out data/sample/cafe --start 2021-02-22 --days 3
"""

import argparse
import csv
import datetime as dt
import random

BRANCHES = ["Isle of Wight", "Chesterfield", "Leeds", "Uppingham", "Longridge"]
FIRST = ["Morgan", "Sarah", "John", "Aisha", "Wei", "Olivia", "Liam", "Chloe", "Tomasz", "Priya",
         "James", "Emily", "Daniel", "Grace", "Mohammed", "Sophie", "Oliver", "Hannah", "Lucy", "Noah"]
LAST = ["Berry", "Jones", "Smith", "Khan", "Zhang", "Brown", "Taylor", "Wilson", "Nowak", "Patel",
        "Evans", "Walker", "Hughes", "Wright", "Ali", "Clarke", "Hall", "Green", "Wood", "Price"]
# (product, price for Regular, price for Large); products without sizes
# have one price and an empty size.
SIZED = [("Latte", 2.15, 2.45), ("Flavoured latte - Hazelnut", 2.55, 2.85),
         ("Cappuccino", 2.15, 2.45), ("Flat white", 2.15, 2.45), ("Hot chocolate", 2.20, 2.90),
         ("Mocha", 2.30, 2.70), ("Chai latte", 2.30, 2.60), ("Frappes - Coffee", 2.75, 3.25)]
UNSIZED = [("Speciality Tea - Camomile", 1.30), ("Speciality Tea - Peppermint", 1.30),
           ("Glass of milk", 0.70), ("Espresso", 1.50), ("Filter coffee", 1.50),
           ("Smoothies - Berry Beautiful", 2.00)]
CARDS = [("visa16", "4", 16), ("visa13", "4", 13), ("mastercard16", "51", 16),
         ("americanexpress15", "37", 15), ("discover16", "6011", 16)]


def till_price(p):
    """2.50 -> '2.5', 1.30 -> '1.3', 2.45 -> '2.45' (the real till's way)."""
    s = f"{p:.2f}"
    return s[:-1] if s.endswith("0") else s


def luhn_complete(prefix, length, rng):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(rng.randrange(10))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def order(rng, when, branch):
    items = []
    total = 0.0
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        if rng.random() < 0.7:
            name, reg, large = rng.choice(SIZED)
            size = rng.choice(["Regular", "Large"])
            price = reg if size == "Regular" else large
        else:
            name, price = rng.choice(UNSIZED)
            size = ""
        items += [size, name, till_price(price)]
        total += price
    cash = rng.random() < 0.35
    if cash:
        payment, card = "CASH", "None"
    else:
        ctype, prefix, length = rng.choice(CARDS)
        payment, card = "CARD", f"{ctype},{luhn_complete(prefix, length, rng)}"
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return [when.strftime("%Y-%m-%d %H:%M:%S"), branch, name, ",".join(items), payment, till_price(total), card]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--start", default="2021-02-22")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--branches", type=int, default=3)
    ap.add_argument("--orders", type=int, default=40, help="orders per branch per day (about)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    import os
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    start = dt.date.fromisoformat(a.start)
    for d in range(a.days):
        day = start + dt.timedelta(days=d)
        for branch in BRANCHES[: a.branches]:
            slug = branch.lower().replace(" ", "-")
            n = max(1, int(rng.gauss(a.orders, a.orders / 5)))
            t = dt.datetime.combine(day, dt.time(8, 0))
            rows = []
            for _ in range(n):
                t += dt.timedelta(seconds=rng.randrange(30, 600))
                rows.append(order(rng, t, branch))
            with open(os.path.join(a.out, f"{day}-{slug}.csv"), "w", newline="") as f:
                csv.writer(f).writerows(rows)


if __name__ == "__main__":
    main()
