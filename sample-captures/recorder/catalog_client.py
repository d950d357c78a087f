#!/usr/bin/env python3
"""Walks the catalog API (catalog_server.py) the way its web and mobile clients would, and
writes the ground truth of the capture: one JSON object a line with the request, the status and
the operation of the API (`GET /api/v1/products/{productId}`) it exercised.

usage: catalog_client.py HOST PORT EXPECTED.jsonl
"""
import base64
import http.client
import json
import random
import sys
import uuid
from urllib.parse import quote

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from catalog_server import API_KEY, ARTICLES, CATEGORIES, SESSION, USERNAMES  # noqa: E402

HOST, PORT, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(20261123)
expected = []


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def jwt(sub):
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': sub, 'scope': 'shop', 'exp': 1900000000})}.c2lnbmF0dXJl"


class Client:
    def __init__(self, agent, source="127.0.0.1"):
        self.conn = http.client.HTTPConnection(HOST, PORT, source_address=(source, 0), timeout=10)
        self.agent = agent
        self.source = source

    def call(self, method, operation, uri, body=None, auth=None):
        h = {"User-Agent": self.agent, "Accept": "application/json"}
        if auth == "bearer":
            h["Authorization"] = f"Bearer {jwt(str(rng.randint(1, 20)))}"
        elif auth == "apikey":
            h["X-API-Key"] = API_KEY
        elif auth == "cookie":
            h["Cookie"] = f"session={SESSION}; theme=dark"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.conn.request(method, uri, body=data, headers=h)
        resp = self.conn.getresponse()
        resp.read()
        expected.append({"method": method, "uri": uri, "status": resp.status,
                         "operation": f"{method} {operation}", "client": self.source})


web = Client("catalog-web/5.2")
mobile = Client("CatalogApp/3.1 (Android 14)")
ops = []


def op(weight, fn):
    ops.append((weight, fn))


def pid():
    return rng.randint(1, 5000)


op(2, lambda c: c.call("GET", "/api/v1/health", "/api/v1/health"))
op(2, lambda c: c.call("POST", "/api/v1/auth/login", "/api/v1/auth/login",
                       {"username": rng.choice(USERNAMES), "password": "correct horse"}))
op(1, lambda c: c.call("POST", "/api/v1/auth/logout", "/api/v1/auth/logout", auth="bearer"))
op(6, lambda c: c.call("GET", "/api/v1/products",
                       f"/api/v1/products?page={rng.randint(1, 9)}&limit=20"
                       + rng.choice(["", "&sort=price", "&sort=name"])))
op(1, lambda c: c.call("POST", "/api/v1/products", "/api/v1/products",
                       {"name": "Lamp", "price": 19.5, "category": "lighting"}, auth="bearer"))
op(3, lambda c: c.call("GET", "/api/v1/products/featured", "/api/v1/products/featured"))
op(8, lambda c: c.call("GET", "/api/v1/products/{productId}", f"/api/v1/products/{pid()}"))
op(1, lambda c: c.call("PUT", "/api/v1/products/{productId}", f"/api/v1/products/{pid()}",
                       {"name": "Lamp XL", "price": 24.0}, auth="bearer"))
op(1, lambda c: c.call("DELETE", "/api/v1/products/{productId}", f"/api/v1/products/{pid()}",
                       auth="bearer"))
op(3, lambda c: c.call("GET", "/api/v1/products/{productId}/reviews",
                       f"/api/v1/products/{pid()}/reviews?page={rng.randint(1, 3)}"))
op(1, lambda c: c.call("POST", "/api/v1/products/{productId}/reviews",
                       f"/api/v1/products/{pid()}/reviews", {"rating": 4, "text": "Good"},
                       auth="bearer"))
op(2, lambda c: c.call("GET", "/api/v1/products/{productId}/reviews/{reviewId}",
                       f"/api/v1/products/{pid()}/reviews/{rng.randint(1, 300)}"))
op(2, lambda c: c.call("GET", "/api/v1/categories", "/api/v1/categories"))
op(4, lambda c: c.call("GET", "/api/v1/categories/{categorySlug}",
                       f"/api/v1/categories/{rng.choice(CATEGORIES)}"))
op(3, lambda c: c.call("GET", "/api/v1/categories/{categorySlug}/products",
                       f"/api/v1/categories/{rng.choice(CATEGORIES)}/products?page=1"))
op(5, lambda c: c.call("GET", "/api/v1/articles/{slug}",
                       f"/api/v1/articles/{rng.choice(ARTICLES)}"))
op(3, lambda c: c.call("GET", "/api/v1/articles/{slug}/comments",
                       f"/api/v1/articles/{rng.choice(ARTICLES)}/comments"))
op(1, lambda c: c.call("POST", "/api/v1/articles/{slug}/comments",
                       f"/api/v1/articles/{rng.choice(ARTICLES)}/comments", {"text": "Thanks!"},
                       auth="cookie"))
op(4, lambda c: c.call("GET", "/api/v1/users/me", "/api/v1/users/me", auth="bearer"))
op(1, lambda c: c.call("PATCH", "/api/v1/users/me", "/api/v1/users/me",
                       {"email": "new@example.com"}, auth="bearer"))
op(3, lambda c: c.call("GET", "/api/v1/users/{userId}", f"/api/v1/users/{rng.randint(1, 900)}",
                       auth="bearer"))
op(2, lambda c: c.call("GET", "/api/v1/users/{userId}/orders",
                       f"/api/v1/users/{rng.randint(1, 900)}/orders", auth="bearer"))
op(2, lambda c: c.call("POST", "/api/v1/orders", "/api/v1/orders",
                       {"items": [{"id": 1, "sku": "SKU-1", "qty": 2}]}, auth="bearer"))
op(3, lambda c: c.call("GET", "/api/v1/orders/{orderId}", f"/api/v1/orders/{uuid.UUID(int=rng.getrandbits(128))}",
                       auth="bearer"))
op(1, lambda c: c.call("POST", "/api/v1/orders/{orderId}/cancel",
                       f"/api/v1/orders/{uuid.UUID(int=rng.getrandbits(128))}/cancel", auth="bearer"))
op(2, lambda c: c.call("GET", "/api/v1/orders/{orderId}/items/{itemId}",
                       f"/api/v1/orders/{uuid.UUID(int=rng.getrandbits(128))}/items/{rng.randint(1, 9)}",
                       auth="bearer"))
op(2, lambda c: c.call("GET", "/api/v1/files/{fileId}/download",
                       f"/api/v1/files/{rng.getrandbits(96):024x}/download", auth="bearer"))
op(2, lambda c: c.call("GET", "/api/v1/events/{date}",
                       f"/api/v1/events/2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"))
op(1, lambda c: c.call("GET", "/api/v1/invites/{email}",
                       f"/api/v1/invites/{rng.choice(USERNAMES)}{rng.randint(1, 99)}@example.org",
                       auth="bearer"))
op(1, lambda c: c.call("GET", "/api/v1/shares/{shareToken}",
                       "/api/v1/shares/" + base64.urlsafe_b64encode(rng.randbytes(18)).decode()))
op(1, lambda c: c.call("GET", "/api/v1/reports/summary.csv", "/api/v1/reports/summary.csv",
                       auth="bearer"))
op(1, lambda c: c.call("GET", "/api/v1/reports/summary.pdf", "/api/v1/reports/summary.pdf",
                       auth="bearer"))
op(3, lambda c: c.call("GET", "/api/v1/search",
                       f"/api/v1/search?q={quote(rng.choice(['lamp', 'oak desk', 'tent']))}&limit=10"))
op(3, lambda c: c.call("GET", "/api/v2/products/{sku}",
                       f"/api/v2/products/SKU-{rng.randint(1, 99999):05d}", auth="apikey"))
op(2, lambda c: c.call("GET", "/api/v2/products/{sku}/stock",
                       f"/api/v2/products/SKU-{rng.randint(1, 99999):05d}/stock", auth="apikey"))
op(3, lambda c: c.call("GET", "/api/v2/users/{username}",
                       f"/api/v2/users/{rng.choice(USERNAMES)}", auth="apikey"))
op(1, lambda c: c.call("GET", "/api/v1/internal/debug", "/api/v1/internal/debug"))

# Every operation at least twice, then a weighted random walk.
for _, fn in ops:
    for _ in range(2):
        fn(rng.choice([web, mobile]))
weights = [w for w, _ in ops]
for _ in range(420):
    fn = rng.choices([f for _, f in ops], weights)[0]
    fn(rng.choice([web, mobile]))
web.conn.close()
mobile.conn.close()

with open(OUT, "w") as f:
    for e in expected:
        f.write(json.dumps(e) + "\n")
