#!/usr/bin/env python3
"""A deliberately flawed library API keyed by strings, served by Flask (a real framework).

Users are addressed by user name and books by title — identifiers that are neither numbers nor
UUIDs — with literal siblings beside them (/users/v1/login, /users/v1/_debug) and a version
segment after the resource (/books/v1/{title}). Its flaws, for the detectors:
- GET /users/v1/_debug answers anyone, without credentials, with every user's password;
- GET /books/v1/{title} returns any book's secret to any logged-in user (BOLA: the owner is
  whoever added the book);
- PUT /users/v1/{username}/password lets any logged-in user change anyone's password.
Flask's own route table is the ground truth of discovery (`--routes FILE`).

usage: library_server.py HOST PORT        serve (HTTP/1.1 keep-alive, threaded)
       library_server.py --routes FILE    write the route table as JSON
"""
import base64
import hashlib
import hmac
import json
import sys
import time

from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler

KEY = b"library-demo-signing-key"
app = Flask(__name__)
USERS = {}  # username -> {"username", "email", "password", "admin"}
BOOKS = {}  # title -> {"book_title", "secret", "user"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(username: str) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    body = b64(json.dumps({"sub": username, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def caller():
    """The user name of a valid bearer token, or None."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return None
    try:
        head, body, sig = auth[7:].split(".")
        want = b64(hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, sig):
            return None
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return claims["sub"] if claims["sub"] in USERS else None
    except (ValueError, KeyError):
        return None


def public(u):
    return {"username": u["username"], "email": u["email"]}


def unauthorized():
    return jsonify({"status": "fail", "message": "Invalid token. Please log in again."}), 401


@app.get("/")
def root():
    return jsonify({"message": "Library API: see /users/v1 and /books/v1"})


@app.get("/health")
def health():
    return jsonify({"status": "ok", "users": len(USERS), "books": len(BOOKS)})


@app.get("/users/v1")
def list_users():
    return jsonify({"users": [public(u) for u in USERS.values()]})


@app.get("/users/v1/_debug")
def debug_users():
    return jsonify({"users": list(USERS.values())})


@app.post("/users/v1/register")
def register():
    body = request.get_json(silent=True) or {}
    name, pw, email = body.get("username"), body.get("password"), body.get("email")
    if not (name and pw and email):
        return jsonify({"status": "fail", "message": "username, password and email required"}), 400
    if name in USERS:
        return jsonify({"status": "fail", "message": "User already exists."}), 409
    USERS[name] = {"username": name, "email": email, "password": pw, "admin": False}
    return jsonify({"status": "success", "message": "Successfully registered."}), 201


@app.post("/users/v1/login")
def login():
    body = request.get_json(silent=True) or {}
    u = USERS.get(body.get("username", ""))
    if not u or u["password"] != body.get("password"):
        return jsonify({"status": "fail", "message": "Username or password incorrect."}), 401
    return jsonify({"status": "success", "auth_token": token(u["username"])})


@app.get("/users/v1/<username>")
def get_user(username):
    u = USERS.get(username)
    if not u:
        return jsonify({"status": "fail", "message": "User not found"}), 404
    return jsonify(public(u))


@app.delete("/users/v1/<username>")
def delete_user(username):
    who = caller()
    if not who:
        return unauthorized()
    if not USERS[who]["admin"]:
        return jsonify({"status": "fail", "message": "Only admins may delete users."}), 401
    if USERS.pop(username, None) is None:
        return jsonify({"status": "fail", "message": "User not found"}), 404
    return jsonify({"status": "success", "message": "User deleted."})


@app.put("/users/v1/<username>/email")
def update_email(username):
    who = caller()
    if not who:
        return unauthorized()
    if who != username:
        return jsonify({"status": "fail", "message": "Not your account."}), 403
    USERS[who]["email"] = (request.get_json(silent=True) or {}).get("email", "")
    return "", 204


@app.put("/users/v1/<username>/password")
def update_password(username):
    who = caller()
    if not who:
        return unauthorized()
    u = USERS.get(username)
    if not u:
        return jsonify({"status": "fail", "message": "User not found"}), 404
    u["password"] = (request.get_json(silent=True) or {}).get("password", "")
    return "", 204


@app.get("/books/v1")
def list_books():
    return jsonify({"books": [{"book_title": b["book_title"], "user": b["user"]}
                              for b in BOOKS.values()]})


@app.post("/books/v1")
def add_book():
    who = caller()
    if not who:
        return unauthorized()
    body = request.get_json(silent=True) or {}
    title = body.get("book_title")
    if not title or title in BOOKS:
        return jsonify({"status": "fail", "message": "Book missing or already exists."}), 400
    BOOKS[title] = {"book_title": title, "secret": body.get("secret", ""), "user": who}
    return jsonify({"status": "success", "message": "Book has been added."}), 201


@app.get("/books/v1/<book_title>")
def get_book(book_title):
    if not caller():
        return unauthorized()
    b = BOOKS.get(book_title)
    if not b:
        return jsonify({"status": "fail", "message": "Book not found!"}), 404
    return jsonify({"book_title": b["book_title"], "owner": b["user"], "secret": b["secret"]})


def routes():
    """Flask's route table as `METHOD /path/{param}` operations."""
    ops = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        ops += [f"{m} {path}" for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(ops)


def seed():
    USERS["admin"] = {"username": "admin", "email": "admin@library.test",
                      "password": "pass1", "admin": True}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--routes"]:
        with open(sys.argv[2], "w") as f:
            json.dump({"operations": routes()}, f, indent=1)
            f.write("\n")
        sys.exit(0)
    seed()
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    app.run(host=sys.argv[1], port=int(sys.argv[2]), threaded=True)
