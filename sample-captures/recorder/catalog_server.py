#!/usr/bin/env python3
"""A catalog API with a known shape, for measuring Tapline's API discovery.

Every route lives in one table (ROUTES) that both serves requests and writes the API's own
OpenAPI 3.1 document, so the spec is the ground truth of what the server exposes: versioned
paths (/api/v1, /api/v2), nested resources, integer, UUID, ObjectId, date, email and token
identifiers, slugs and user names, literal words beside identifiers (/products/featured beside
/products/{productId}, /users/me beside /users/{userId}), file extensions. Two documented
operations are never called by the client (zombies); one route is served but left out of the
spec (a shadow endpoint). Standard library only; HTTP/1.1 keep-alive.

usage: catalog_server.py HOST PORT          serve
       catalog_server.py --spec FILE        write the OpenAPI document
"""
import json
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "ck_live_5f1b2c3d4e5f60718293a4b5"
SESSION = "s3ss10n-7d41c0ffee"

CATEGORIES = ["garden-tools", "kitchen", "outdoor-furniture", "lighting", "bath", "bedding",
              "office-chairs", "storage", "rugs", "wall-art", "kids-room", "pet-supplies"]
ARTICLES = [f"{a}-{b}-guide" for a in ("tent", "stove", "lamp", "chair", "desk", "rug", "shelf",
                                       "sofa", "bed", "grill")
            for b in ("buying", "care", "repair")]
USERNAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
             "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "uma", "victor",
             "walter"]


def obj(props, required=None):
    return {"type": "object", "properties": props, "required": required or list(props)}


INT = {"type": "integer"}
STR = {"type": "string"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
PRODUCT = obj({"id": INT, "name": STR, "price": NUM, "category": STR, "in_stock": BOOL})
REVIEW = obj({"id": INT, "product_id": INT, "rating": INT, "text": STR})
USER = obj({"id": INT, "username": STR, "email": {"type": "string", "format": "email"},
            "created_at": {"type": "string", "format": "date-time"}})
ORDER = obj({"id": {"type": "string", "format": "uuid"}, "user_id": INT, "total": NUM,
             "status": STR})
ITEM = obj({"id": INT, "sku": STR, "qty": INT})
ARTICLE = obj({"slug": STR, "title": STR, "body": STR})
COMMENT = obj({"id": INT, "author": STR, "text": STR})
ERROR = obj({"error": STR})


def listing(item):
    return obj({"page": INT, "items": {"type": "array", "items": item}})


# (method, path, query parameters, request body schema, response schema, security, documented)
ROUTES = [
    ("GET", "/api/v1/health", [], None, obj({"status": STR}), None, True),
    ("POST", "/api/v1/auth/login", [], obj({"username": STR, "password": STR}),
     obj({"token": STR}), None, True),
    ("POST", "/api/v1/auth/logout", [], None, obj({"ok": BOOL}), "bearer", True),
    ("GET", "/api/v1/products", ["page", "limit", "sort"], None, listing(PRODUCT), None, True),
    ("POST", "/api/v1/products", [], obj({"name": STR, "price": NUM, "category": STR}),
     PRODUCT, "bearer", True),
    ("GET", "/api/v1/products/featured", [], None, listing(PRODUCT), None, True),
    ("GET", "/api/v1/products/{productId}", [], None, PRODUCT, None, True),
    ("PUT", "/api/v1/products/{productId}", [], obj({"name": STR, "price": NUM}), PRODUCT,
     "bearer", True),
    ("DELETE", "/api/v1/products/{productId}", [], None, obj({"deleted": BOOL}), "bearer", True),
    ("GET", "/api/v1/products/{productId}/reviews", ["page"], None, listing(REVIEW), None, True),
    ("POST", "/api/v1/products/{productId}/reviews", [], obj({"rating": INT, "text": STR}),
     REVIEW, "bearer", True),
    ("GET", "/api/v1/products/{productId}/reviews/{reviewId}", [], None, REVIEW, None, True),
    ("GET", "/api/v1/categories", [], None, {"type": "array", "items": STR}, None, True),
    ("GET", "/api/v1/categories/{categorySlug}", [], None, obj({"slug": STR, "count": INT}),
     None, True),
    ("GET", "/api/v1/categories/{categorySlug}/products", ["page"], None, listing(PRODUCT),
     None, True),
    ("GET", "/api/v1/articles/{slug}", [], None, ARTICLE, None, True),
    ("GET", "/api/v1/articles/{slug}/comments", [], None, {"type": "array", "items": COMMENT},
     None, True),
    ("POST", "/api/v1/articles/{slug}/comments", [], obj({"text": STR}), COMMENT, "cookie", True),
    ("GET", "/api/v1/users/me", [], None, USER, "bearer", True),
    ("PATCH", "/api/v1/users/me", [], obj({"email": {"type": "string", "format": "email"}}),
     USER, "bearer", True),
    ("GET", "/api/v1/users/{userId}", [], None, USER, "bearer", True),
    ("DELETE", "/api/v1/users/{userId}", [], None, obj({"deleted": BOOL}), "bearer", True),
    ("GET", "/api/v1/users/{userId}/orders", [], None, {"type": "array", "items": ORDER},
     "bearer", True),
    ("POST", "/api/v1/orders", [], obj({"items": {"type": "array", "items": ITEM}}), ORDER,
     "bearer", True),
    ("GET", "/api/v1/orders/{orderId}", [], None, ORDER, "bearer", True),
    ("POST", "/api/v1/orders/{orderId}/cancel", [], None, ORDER, "bearer", True),
    ("GET", "/api/v1/orders/{orderId}/items/{itemId}", [], None, ITEM, "bearer", True),
    ("GET", "/api/v1/files/{fileId}/download", [], None, obj({"url": STR}), "bearer", True),
    ("GET", "/api/v1/events/{date}", [], None, {"type": "array", "items": STR}, None, True),
    ("GET", "/api/v1/invites/{email}", [], None, obj({"email": STR, "pending": BOOL}), "bearer",
     True),
    ("GET", "/api/v1/shares/{shareToken}", [], None, obj({"resource": STR}), None, True),
    ("GET", "/api/v1/reports/summary.csv", [], None, None, "bearer", True),
    ("GET", "/api/v1/reports/summary.pdf", [], None, None, "bearer", True),
    ("GET", "/api/v1/search", ["q", "limit"], None, listing(PRODUCT), None, True),
    ("GET", "/api/v1/admin/audit", [], None, {"type": "array", "items": STR}, "bearer", True),
    ("GET", "/api/v2/products/{sku}", [], None, PRODUCT, "apikey", True),
    ("GET", "/api/v2/products/{sku}/stock", [], None, obj({"sku": STR, "stock": INT}), "apikey",
     True),
    ("GET", "/api/v2/users/{username}", [], None, USER, "apikey", True),
    ("GET", "/api/v1/internal/debug", [], None, obj({"threads": INT}), None, False),
]


def pattern(path):
    return re.compile("^" + re.sub(r"\\{[^}]+\\}", "([^/]+)", re.escape(path)) + "$")


# Literal routes win over parameter routes (/products/featured before /products/{productId}).
COMPILED = sorted(((m, p, pattern(p), r) for (m, p, *_r) in ROUTES for r in [_r]),
                  key=lambda t: (t[1].count("{"), t[1]))


def example(schema, n=1):
    """A response body that follows `schema`."""
    t = schema.get("type")
    if t == "object":
        return {k: example(v, n) for k, v in schema["properties"].items()}
    if t == "array":
        return [example(schema["items"], n + i) for i in range(2)]
    if t == "integer":
        return n
    if t == "number":
        return round(n * 2.5, 2)
    if t == "boolean":
        return n % 2 == 0
    fmt = schema.get("format")
    if fmt == "email":
        return f"user{n}@example.com"
    if fmt == "date-time":
        return "2024-05-01T10:00:00Z"
    if fmt == "uuid":
        return str(uuid.UUID(int=n))
    return f"text {n}"


def spec():
    paths = {}
    for method, path, query, body, resp, security, documented in ROUTES:
        if not documented:
            continue
        op = {"operationId": (method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path)).strip("_"),
              "responses": {}}
        params = [{"name": name, "in": "path", "required": True, "schema": STR}
                  for name in re.findall(r"{([^}]+)}", path)]
        params += [{"name": q, "in": "query", "required": False, "schema": STR} for q in query]
        if params:
            op["parameters"] = params
        if body:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": body}}}
        ok = "201" if method == "POST" and path in ("/api/v1/orders", "/api/v1/products") else "200"
        content = ({"application/json": {"schema": resp}} if resp
                   else {"text/plain": {"schema": STR}})
        op["responses"][ok] = {"description": "OK", "content": content}
        op["responses"]["404"] = {"description": "Not found",
                                  "content": {"application/json": {"schema": ERROR}}}
        if security:
            op["security"] = [{security: []}]
            op["responses"]["401"] = {"description": "Unauthorized",
                                      "content": {"application/json": {"schema": ERROR}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Catalog API", "version": "1.4.0"},
        "servers": [{"url": "http://127.0.0.1:18089"}],
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apikey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "session"},
        }},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CatalogAPI/1.4"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self, security):
        if security == "bearer":
            return self.headers.get("Authorization", "").startswith("Bearer ey")
        if security == "apikey":
            return self.headers.get("X-API-Key") == API_KEY
        if security == "cookie":
            return f"session={SESSION}" in self.headers.get("Cookie", "")
        return True

    def handle_any(self):
        url = urlsplit(self.path)
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n:
            self.rfile.read(n)
        for method, path, rx, (query, body, resp, security, _doc) in COMPILED:
            m = rx.match(url.path)
            if method != self.command or not m:
                continue
            if not self.authorised(security):
                return self.reply(401, {"error": "authentication required"})
            seed = sum(ord(c) for c in url.path) % 97 + 1
            if resp is None:
                return self.reply(200, b"id,total\n1,10.5\n", "text/plain")
            status = 201 if method == "POST" and path in ("/api/v1/orders",
                                                          "/api/v1/products") else 200
            return self.reply(status, example(resp, seed))
        return self.reply(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


if __name__ == "__main__":
    if sys.argv[1] == "--spec":
        with open(sys.argv[2], "w") as f:
            json.dump(spec(), f, indent=2)
            f.write("\n")
    else:
        ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
