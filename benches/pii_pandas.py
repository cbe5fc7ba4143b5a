#!/usr/bin/env python3
"""The same PII redaction as benches/pii.rs, written the way a pandas
pipeline would: hashlib/hmac for pseudonyms, string ops for the mask, `re`
with the same validators (Luhn, mod-97, email shape, octets, NI/SSN rules)
for redact_text. Prints the same keys as the Rust side."""

import glob
import hashlib
import hmac
import ipaddress
import os
import re
import sys
import time

import pandas as pd

KEY = b"benchmark key, 32 bytes long...!"

def luhn(s):
    d = [int(c) for c in s if c.isdigit()][::-1]
    t = 0
    for i, x in enumerate(d):
        if i % 2:
            x *= 2
            if x > 9:
                x -= 9
        t += x
    return len(d) > 0 and t % 10 == 0

def known_issuer(d):
    p = lambda n: int(d[:n])
    f = d[0]
    return (f == "4" or (f == "5" and (51 <= p(2) <= 58 or p(2) == 50)) or (f == "2" and 2221 <= p(4) <= 2720)
            or (f == "3" and (p(2) in (34, 37, 36, 38, 39, 30) or 3528 <= p(4) <= 3589))
            or (f == "6" and (p(4) == 6011 or p(2) in (65, 62, 67) or 644 <= p(3) <= 649)))

def is_card(s):
    digits = re.sub(r"[ -]", "", s)
    return digits.isdigit() and 13 <= len(digits) <= 19 and known_issuer(digits) and luhn(digits)

def is_iban(s):
    c = s.replace(" ", "").upper()
    if not (15 <= len(c) <= 34 and c.isalnum() and c[:2].isalpha() and c[2:4].isdigit()):
        return False
    r = c[4:] + c[:4]
    return int("".join(str(int(ch, 36)) for ch in r)) % 97 == 1

EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
def is_email(s):
    local, _, domain = s.rpartition("@")
    if not local or not EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and labels[-1].isalpha() and len(labels[-1]) >= 2 and all(
        l and len(l) <= 63 and not l.startswith("-") and not l.endswith("-") and re.match(r"^[A-Za-z0-9-]+$", l) for l in labels)

def is_ipv4(s):
    parts = s.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and not (len(p) > 1 and p[0] == "0") and int(p) <= 255 for p in parts)

def is_ipv6(s):
    if s.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(s)
        return True
    except ValueError:
        return False

def is_ni(s):
    c = s.replace(" ", "").upper()
    return (len(c) == 9 and c[0] not in "DFIQUV" and c[1] not in "DFIQUVO" and c[:2] not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ")
            and c[:2].isalpha() and c[2:8].isdigit() and c[8] in "ABCD")

def is_ssn(s):
    d = s[:3] + s[4:6] + s[7:]
    return d.isdigit() and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"

def is_phone(s):
    digits = re.sub(r"\D", "", s)
    if not 7 <= len(digits) <= 15:
        return False
    if s.startswith("+") or digits.startswith("00"):
        return len(digits) >= 8
    if digits.startswith("0"):
        return 10 <= len(digits) <= 11
    groups = [len(g) for g in re.split(r"\D+", s) if g]
    return len(digits) == 10 and groups == [3, 3, 4]

KINDS = [
    ("[EMAIL]", re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), is_email),
    ("[CARD]", re.compile(r"\b[0-9](?:[ -]?[0-9]){12,18}\b"), is_card),
    ("[IBAN]", re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b"), is_iban),
    ("[IP]", re.compile(r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b"), is_ipv4),
    ("[IP]", re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"), is_ipv6),
    ("[NI]", re.compile(r"\b[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]\b"), is_ni),
    ("[SSN]", re.compile(r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b"), is_ssn),
    ("[PHONE]", re.compile(r"(?:\+|\(|\b[0-9])[0-9 ().-]{5,20}[0-9]\b"), is_phone),
]

def redact(text, counter):
    for label, rx, ok in KINDS:
        def sub(m):
            if ok(m.group(0)):
                counter[0] += 1
                return label
            return m.group(0)
        text = rx.sub(sub, text)
    return text

def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NIGHTJAR_RETAIL_DIR", "../shared/data/online-retail/by-day")
    files = sorted(glob.glob(os.path.join(d, "*.csv")))
    nbytes = sum(os.path.getsize(f) for f in files)
    df = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
    ids = df["CustomerID"].str.replace(r"\.0$", "", regex=True).replace("", None)
    best = lambda f: min((lambda s: (f(), time.perf_counter() - s))(time.perf_counter())[1] for _ in range(3))
    t_pseudo = best(lambda: ids.map(lambda v: None if v is None else hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()[:16], na_action="ignore"))
    t_mask = best(lambda: df["InvoiceNo"].map(lambda v: "*" * len(v) if len(v) <= 2 else "*" * (len(v) - 2) + v[-2:]))
    counter = [0]
    def run_redact():
        counter[0] = 0
        return df["Description"].map(lambda v: redact(v, counter))
    t_redact = best(run_redact)
    first = next(v for v in ids if v is not None)
    mb = nbytes / 1e6
    print(f"rows\t{len(df)}")
    print(f"input_mb\t{mb:.1f}")
    print(f"pseudonymize_s\t{t_pseudo:.3f}")
    print(f"mask_s\t{t_mask:.3f}")
    print(f"redact_text_s\t{t_redact:.3f}")
    print(f"column_actions_mb_s\t{mb / (t_pseudo + t_mask):.0f}")
    print(f"all_three_mb_s\t{mb / (t_pseudo + t_mask + t_redact):.0f}")
    print(f"redact_spans\t{counter[0]}")
    print(f"first_pseudonym\t{hmac.new(KEY, first.encode(), hashlib.sha256).hexdigest()[:16]}")

if __name__ == "__main__":
    main()
