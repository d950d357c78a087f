#!/usr/bin/env python3
"""Phone-number cases for tests/tests/phone_accuracy.rs, generated from libphonenumber's own
metadata (PyPI `phonenumbers`, 9.0.43 when recorded): for 28 countries, example mobile and
fixed-line numbers with varied subscriber digits, written in E.164, international and national
form inside short texts; and negatives an API carries that are not phones (ids, dates,
amounts, versions, order numbers, timestamps, ZIP+4). Each case is put in the `dev` or `test`
half by a hash of its text: tune on `dev`, report both.

usage: python3 generate.py > cases.jsonl   (needs: pip install phonenumbers)
"""
import phonenumbers as p, json, hashlib, random, sys
from phonenumbers import PhoneNumberFormat as F, PhoneNumberType as T
rng = random.Random(7)
regions = ['US','CA','GB','DE','FR','IT','ES','NL','IL','IN','BR','TR','PH','AU','MX','JP','PL','SE','CH','ZA','NG','KR','AR','CO','EG','ID','PK','VN']
templates = ["call me at {}", "phone: {}", "{}", "Tel {} (office)", '{{"contact": "{}"}}']
pos = []
for r in regions:
    for t in [T.MOBILE, T.FIXED_LINE]:
        ex = p.example_number_for_type(r, t)
        if not ex: continue
        # vary the subscriber digits while keeping validity
        nums = [ex]
        s = str(ex.national_number)
        for _ in range(6):
            cand = s[:-3] + "".join(rng.choice("0123456789") for _ in range(3))
            n = p.parse("+" + str(ex.country_code) + cand)
            if p.is_valid_number(n): nums.append(n)
        for n in nums:
            for f in [F.INTERNATIONAL, F.E164, F.NATIONAL]:
                text = p.format_number(n, f)
                pos.append({"text": rng.choice(templates).format(text), "want": text, "region": r, "format": f})
neg = []
for _ in range(600):
    kind = rng.choice(["id", "date", "amount", "version", "order", "ts", "zip"])
    if kind == "id": v = str(rng.randint(10**8, 10**11))
    elif kind == "date": v = f"{rng.randint(1990,2030)}-{rng.randint(1,12):02}-{rng.randint(1,28):02}"
    elif kind == "amount": v = f"{rng.randint(1000,9999999)}.{rng.randint(0,99):02}"
    elif kind == "version": v = f"{rng.randint(1,20)}.{rng.randint(0,30)}.{rng.randint(0,300)}"
    elif kind == "order": v = f"ORD-{rng.randint(10**6,10**9)}"
    elif kind == "ts": v = str(rng.randint(1_600_000_000, 1_800_000_000))
    else: v = f"{rng.randint(10000,99999)}-{rng.randint(1000,9999)}"
    neg.append({"text": rng.choice(["id {}", "{}", "at {} we", "{{\"value\": \"{}\"}}"]).format(v), "want": None, "kind": kind})
FORMATS = {F.E164: "e164", F.INTERNATIONAL: "international", F.NATIONAL: "national"}
for row in pos + neg:
    out = {"text": row["text"], "phone": row["want"]}
    out["half"] = "dev" if int(hashlib.sha1(row["text"].encode()).hexdigest(), 16) % 2 else "test"
    if row["want"]:
        out["region"], out["format"] = row["region"], FORMATS[row["format"]]
    else:
        out["kind"] = row["kind"]
    sys.stdout.write(json.dumps(out) + "\n")
