#!/usr/bin/env python3
"""Drives the shop API the way real clients would, then the way attackers would, and writes
what it sent and what came back (one JSON object a line) as the capture's ground truth.

usage: shop_client.py HOST PORT EXPECTED.jsonl
"""
import sys
import uuid
from urllib.parse import quote

from client_session import from_argv, write_expected

Session, expected, OUT = from_argv()


def order_id(uid, n):
    return str(uuid.UUID(int=uid * 1000 + n))


# Ordinary customers.
for uid, user in [(2, "bob"), (3, "carol"), (5, "erin")]:
    s = Session(agent="shop-web/2.3")
    s.login(user, f"pw-{user}-2024")
    s.call("GET", "/api/v1/users/me", "pii")
    s.call("GET", f"/api/v1/users/{uid}", "pii")
    s.call("GET", f"/api/v1/users/{uid}/orders", "normal")
    s.call("GET", f"/api/v1/orders/{order_id(uid, 0)}", "normal")
    s.call("GET", "/api/v1/products?page=1", "normal", headers={"Accept-Encoding": "gzip"})
    s.call("GET", "/api/v1/products?page=2", "normal", headers={"Accept-Encoding": "gzip"})
    s.call("GET", "/api/v1/search?q=product%201", "normal")
    s.call("POST", "/api/v1/orders", "pii", {
        "items": [{"sku": "SKU-100", "qty": 1}],
        "shipping": {"name": f"{user.title()} Example", "email": f"{user}@example.com",
                     "card": "4111111111111111", "phone": "+1-202-555-0142"}})
    s.close()

# The administrator.
admin = Session(agent="shop-admin/1.0")
admin.login("alice", "pw-alice-2024")
admin.call("GET", "/admin/stats", "normal")
admin.call("GET", "/api/v1/users/7", "pii")
admin.close()

# An attacker with a real account (mallory, user 11) from 127.0.0.66.
m = Session(source="127.0.0.66", agent="Mozilla/5.0 (X11; Linux x86_64)")
m.login("mallory", "pw-mallory-2024")
m.call("GET", "/api/v1/search?q=" + quote("' OR '1'='1' --"), "sqli")
m.call("GET", "/api/v1/search?q=" + quote("1 UNION SELECT username, password FROM users--"), "sqli")
m.call("GET", "/api/v1/search?q=" + quote("<script>alert(document.cookie)</script>"), "xss")
m.call("GET", "/api/v1/search?q=" + quote('"><img src=x onerror=alert(1)>'), "xss")
m.call("GET", "/api/v1/files?name=" + quote("../../../../etc/passwd"), "traversal")
m.call("GET", "/api/v1/files?name=..%2f..%2f..%2fetc%2fshadow", "traversal")
m.call("GET", "/admin/stats", "forbidden")
# BOLA: walking other users' records by id.
for uid in range(1, 21):
    if uid != 11:
        m.call("GET", f"/api/v1/users/{uid}", "bola")
m.close()

# Credential stuffing / brute force against one account from 127.0.0.77.
b = Session(source="127.0.0.77", agent="python-requests/2.31")
for i, guess in enumerate(["123456", "password", "qwerty", "letmein", "alice2024", "admin",
                           "welcome1", "iloveyou", "monkey", "dragon", "sunshine", "princess",
                           "football", "baseball", "shadow", "master", "trustno1", "hello123",
                           "freedom", "whatever", "superman", "batman", "starwars", "pass123"]):
    b.login("alice", guess, tag="brute_force")
b.close()

write_expected(OUT, expected)
print(f"{len(expected)} exchanges", file=sys.stderr)
