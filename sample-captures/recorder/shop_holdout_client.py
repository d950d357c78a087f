#!/usr/bin/env python3
"""Drives the shop API with a cast the tests were not tuned on: other customers, and an
administrator who lists the users. No attacks: the security tests generated from this capture
must find the shop's flaws by themselves. Held out from development.

usage: shop_holdout_client.py HOST PORT EXPECTED.jsonl
"""
import uuid

from client_session import from_argv, write_expected

Session, expected, OUT = from_argv()

for uid, user in [(4, "dave"), (6, "frank"), (7, "grace"), (9, "ivan")]:
    s = Session(agent="shop-mobile/5.1")
    s.login(user, f"pw-{user}-2024")
    s.call("GET", "/api/v1/users/me", "pii")
    s.call("GET", f"/api/v1/users/{uid}", "pii")
    s.call("GET", f"/api/v1/users/{uid}/orders", "normal")
    s.call("GET", f"/api/v1/orders/{uuid.UUID(int=uid * 1000 + 1)}", "normal")
    s.call("GET", "/api/v1/search?q=product%20" + str(uid), "normal")
    s.call("GET", "/api/v1/products?page=" + str(uid % 3 + 1), "normal")
    s.call("POST", "/api/v1/orders", "pii", {
        "items": [{"sku": f"SKU-{uid:02d}7", "qty": 2}],
        "shipping": {"name": f"{user.title()} Example", "email": f"{user}@example.com",
                     "card": "5555555555554444", "phone": "+1-202-555-0177"}})
    s.close()

admin = Session(agent="shop-admin/1.0")
admin.login("alice", "pw-alice-2024")
admin.call("GET", "/admin/users", "pii")
admin.call("GET", "/admin/stats", "normal")
admin.close()

write_expected(OUT, expected)
