#!/usr/bin/env python3
"""A small JSON shop API used to record Tapline's sample captures.

Deliberately realistic and deliberately flawed: responses carry personal data, any logged-in
user can read any other user's record (BOLA), search reflects its query, a support header left
in place opens a user's orders without a token (broken authentication), any logged-in user may
list every user at /admin/users (broken function-level authorisation), and a malformed order
crashes the handler (500). Standard library
only; HTTP/1.1 with keep-alive, gzip and chunked responses.

`--fixed` serves the same API with every flaw mended — the twin security tests are judged
against (no finding may appear there): owners only read their own records, tokens only from
signed JWTs, the search does not reflect markup, malformed orders are a 400, login failures say
the same whatever was wrong and are limited to 5 a minute per client, and responses carry the
usual security headers, and user records leave out identity and card numbers.
"""
import base64
import gzip
import hashlib
import hmac
import json
import re
import html
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SECRET = b"sample-capture-secret"
FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Uma", "Victor", "Walter"]
# Luhn-valid published test card numbers.
CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
         "4012888888881881", "5105105105105100"]
USERS = {}
for i, name in enumerate(FIRST, start=1):
    USERS[i] = {
        "id": i,
        "username": name.lower(),
        "name": f"{name} Example",
        "email": f"{name.lower()}@example.com",
        "phone": f"+1-202-555-{100 + i:04d}",
        "ssn": f"{123 + i:03d}-45-{6700 + i:04d}",
        "card": CARDS[i % len(CARDS)],
        "role": "admin" if i == 1 else "customer",
    }
PASSWORDS = {u["username"]: f"pw-{u['username']}-2024" for u in USERS.values()}
ORDERS = {}
for uid in USERS:
    for n in range(2):
        oid = str(uuid.UUID(int=uid * 1000 + n))
        ORDERS[oid] = {"id": oid, "user_id": uid, "total": round(19.99 * (n + 1) + uid, 2),
                       "items": [{"sku": f"SKU-{uid:02d}{n}", "qty": n + 1}], "status": "shipped"}
FIXED = False
LOGIN_FAILURES = {}  # (client address, user name) -> failure times (fixed mode's rate limit)
PRODUCTS = [{"id": i, "name": f"Product {i}", "price": round(3.5 * i, 2),
             "description": "A sturdy, well-reviewed item. " * 3} for i in range(1, 61)]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(uid: int) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": str(uid), "role": USERS[uid]["role"], "iat": 1700000000}).encode())
    sig = b64url(hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest())
    return f"{header}.{claims}.{sig}"


def public(user):
    """A user as the API shows it: everything (excessive data exposure), or in fixed mode
    without the identity and card numbers."""
    if not FIXED:
        return user
    return {k: v for k, v in user.items() if k not in ("ssn", "card")}


def user_from_token(auth: str):
    if not auth or not auth.startswith("Bearer "):
        return None
    token = auth[7:]
    try:
        header, claims, sig = token.split(".")
        good = b64url(hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(good, sig):
            return None
        pad = "=" * (-len(claims) % 4)
        return USERS.get(int(json.loads(base64.urlsafe_b64decode(claims + pad))["sub"]))
    except (ValueError, KeyError, json.JSONDecodeError):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ShopAPI/1.0"
    # Headers and body leave in separate writes: without this, Nagle holds the body until the
    # client's delayed ACK (40 ms a request on loopback).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # keep the recorder's output quiet
        pass

    def send_json(self, status, obj, chunked=False):
        body = json.dumps(obj).encode()
        gz = "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 512
        if gz:
            body = gzip.compress(body, mtime=0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if FIXED:
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", "default-src 'none'")
            self.send_header("Strict-Transport-Security", "max-age=31536000")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 700):
                part = body[i:i + 700]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        path = url.path
        me = user_from_token(self.headers.get("Authorization", ""))
        if path == "/health":
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/api/v1/products":
            page = int(q.get("page", ["1"])[0]) if q.get("page", ["1"])[0].isdigit() else 1
            items = PRODUCTS[(page - 1) * 20: page * 20]
            return self.send_json(200, {"page": page, "items": items}, chunked=True)
        if path == "/api/v1/search":
            term = q.get("q", [""])[0]
            hits = [p for p in PRODUCTS if term.lower() in p["name"].lower()][:5]
            # Reflects the query unescaped: the XSS in the sample capture lands here.
            return self.send_json(200, {"query": html.escape(term) if FIXED else term, "results": hits})
        if path == "/api/v1/files":
            name = q.get("name", [""])[0]
            if ".." in name or name.startswith("/"):
                return self.send_json(400, {"error": "invalid file name"})
            return self.send_json(404, {"error": "no such file", "name": name})
        m = re.fullmatch(r"/api/v1/users/(\d+)/orders", path)
        if not FIXED and me is None and m and self.headers.get("X-User-Id") == m.group(1):
            # Broken authentication: a support tool's header, trusted instead of a token.
            me = USERS.get(int(m.group(1)))
        if me is None and path.startswith(("/api/v1/users", "/api/v1/orders", "/admin")):
            return self.send_json(401, {"error": "authentication required"})
        if path == "/admin/users":
            # Broken function-level authorisation: any logged-in user may list every user
            # (the fixed twin asks for the admin role, as /admin/stats always did).
            if FIXED and me["role"] != "admin":
                return self.send_json(403, {"error": "forbidden"})
            return self.send_json(200, [public(u) for u in USERS.values()])
        if path == "/admin/stats":
            if me["role"] != "admin":
                return self.send_json(403, {"error": "forbidden"})
            return self.send_json(200, {"users": len(USERS), "orders": len(ORDERS)})
        if path == "/api/v1/users/me":
            return self.send_json(200, public(me))
        m = re.fullmatch(r"/api/v1/users/(\d+)", path)
        if m:
            user = USERS.get(int(m.group(1)))
            # BOLA: no check that the caller owns this record.
            if FIXED and user and user["id"] != me["id"] and me["role"] != "admin":
                return self.send_json(403, {"error": "forbidden"})
            return self.send_json(200, public(user)) if user else self.send_json(404, {"error": "no such user"})
        m = re.fullmatch(r"/api/v1/users/(\d+)/orders", path)
        if m:
            uid = int(m.group(1))
            if FIXED and uid != me["id"] and me["role"] != "admin":
                return self.send_json(403, {"error": "forbidden"})
            return self.send_json(200, [o for o in ORDERS.values() if o["user_id"] == uid])
        m = re.fullmatch(r"/api/v1/orders/([0-9a-f-]{36})", path)
        if m:
            order = ORDERS.get(m.group(1))
            if FIXED and order and order["user_id"] != me["id"] and me["role"] != "admin":
                return self.send_json(403, {"error": "forbidden"})
            return self.send_json(200, order) if order else self.send_json(404, {"error": "no such order"})
        return self.send_json(404, {"error": "not found"})

    def do_POST(self):
        path = urlsplit(self.path).path
        raw = self.read_body()
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self.send_json(400, {"error": "body is not JSON"})
        if path == "/api/v1/login":
            user = data.get("username", "")
            if FIXED and self.login_limited(user):
                return self.send_json(429, {"error": "too many attempts; try again later"})
            if PASSWORDS.get(user) == data.get("password"):
                uid = next(u["id"] for u in USERS.values() if u["username"] == user)
                return self.send_json(200, {"token": make_token(uid), "user_id": uid})
            if FIXED:
                LOGIN_FAILURES.setdefault((self.client_address[0], user), []).append(time.monotonic())
            elif user not in PASSWORDS:
                # User enumeration: unknown names get their own message (same status).
                return self.send_json(401, {"error": "no such user"})
            return self.send_json(401, {"error": "invalid credentials"})
        me = user_from_token(self.headers.get("Authorization", ""))
        if me is None:
            return self.send_json(401, {"error": "authentication required"})
        if path == "/api/v1/orders":
            try:
                sum(int(i.get("qty", 1)) for i in data.get("items", []))
            except (AttributeError, TypeError, ValueError):
                # The handler's unguarded validation: a malformed order is a server error.
                if FIXED:
                    return self.send_json(400, {"error": "items must be a list of {sku, qty}"})
                return self.send_json(500, {"error": "internal server error"})
            oid = str(uuid.UUID(int=me["id"] * 1000 + 500 + len(ORDERS)))
            order = {"id": oid, "user_id": me["id"], "items": data.get("items", []), "status": "new",
                     "shipping": data.get("shipping", {})}
            if not FIXED:
                # Mass assignment: any field the client sends lands on the order.
                order.update({k: v for k, v in data.items() if k not in ("id", "user_id")})
            ORDERS[oid] = order
            return self.send_json(201, order)
        return self.send_json(404, {"error": "not found"})


    def login_limited(self, user):
        key = (self.client_address[0], user)
        now = time.monotonic()
        recent = [t for t in LOGIN_FAILURES.get(key, []) if now - t < 60]
        LOGIN_FAILURES[key] = recent
        return len(recent) >= 5


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    FIXED = "--fixed" in sys.argv[3:]
    ThreadingHTTPServer((host, port), Handler).serve_forever()
