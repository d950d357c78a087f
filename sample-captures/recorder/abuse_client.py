#!/usr/bin/env python3
"""Drives the shop API with ordinary customers and, among them, abusive clients whose
behaviour (not payloads) is the attack, and writes every exchange as the capture's ground truth:

- credential stuffing from 127.0.0.99: a leaked list of 30 accounts tried once each; two work;
- scraping from 127.0.0.88: the product catalogue fetched page after page, 150 times;
- enumeration from 127.0.0.89: a logged-in user guessing 80 order ids (mostly 404);
- broken authentication from 127.0.0.55: refused without a token, then reading three users'
  orders with the support header `X-User-Id` instead;
- an error spike from 127.0.0.44: 20 malformed orders, each a 500.

usage: abuse_client.py HOST PORT EXPECTED.jsonl
"""
import sys
import uuid

from client_session import from_argv, write_expected

session, expected, OUT = from_argv()


def order(uid, n):
    return str(uuid.UUID(int=uid * 1000 + n))


USERS = {2: "bob", 3: "carol", 4: "dave", 5: "erin", 6: "frank", 7: "grace", 8: "heidi"}

# Ordinary customers, each browsing a little, reading their own orders and ordering.
customers = []
for uid, user in USERS.items():
    s = session()
    s.login(user, f"pw-{user}-2024")
    customers.append((uid, user, s))
for round_ in range(2):
    for uid, user, s in customers:
        s.call("GET", f"/api/v1/products?page={round_ + 1}", "normal", headers={"Accept-Encoding": "gzip"})
        s.call("GET", f"/api/v1/users/{uid}/orders", "normal")
        s.call("GET", f"/api/v1/orders/{order(uid, round_)}", "normal")
        if round_ == 0:
            s.call("POST", "/api/v1/orders", "normal", {"items": [{"sku": "SKU-100", "qty": 1}]})

# Credential stuffing: one try per account from a leaked list; dave's and frank's passwords
# were reused, so those two succeed.
stuffer = session(source="127.0.0.99", agent="python-requests/2.31")
leaked = [f"customer{n:02d}" for n in range(1, 27)] + ["bob", "carol", "dave", "frank"]
for name in leaked:
    good = name in ("dave", "frank")
    stuffer.login(name, f"pw-{name}-2024" if good else "Summer2024!", tag="credential_stuffing")
    stuffer.token = None
stuffer.close()

# Scraping: the whole catalogue, again and again, far faster than any customer.
scraper = session(source="127.0.0.88", agent="Mozilla/5.0 (compatible; DataHarvester/1.2)")
for n in range(150):
    scraper.call("GET", f"/api/v1/products?page={n % 3 + 1}", "scraping", headers={"Accept-Encoding": "gzip"})
scraper.close()

# Enumeration: a logged-in user guessing order ids.
enum = session(source="127.0.0.89", agent="okhttp/4.12.0")
enum.login("grace", "pw-grace-2024")
for n in range(80):
    enum.call("GET", f"/api/v1/orders/{uuid.UUID(int=7_000_000 + n * 7919)}", "enumeration")
enum.close()

# Broken authentication: refused without a token, then in through the support header.
intruder = session(source="127.0.0.55", agent="curl/8.5.0")
intruder.call("GET", "/api/v1/users/4/orders", "broken_auth_refused")
for uid in (4, 6, 8):
    intruder.call("GET", f"/api/v1/users/{uid}/orders", "broken_auth", headers={"X-User-Id": str(uid)})
intruder.close()

# An error spike: a buggy integration posting malformed orders.
buggy = session(source="127.0.0.44", agent="shop-sync/0.9")
buggy.login("heidi", "pw-heidi-2024")
for n in range(20):
    buggy.call("POST", "/api/v1/orders", "error_spike", {"items": "SKU-200"})
buggy.close()

for _, _, s in customers:
    s.close()
write_expected(OUT, expected)
print(f"{len(expected)} exchanges", file=sys.stderr)
