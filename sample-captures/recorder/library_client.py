#!/usr/bin/env python3
"""Drives the library API (library_server.py) like its users and one attacker would, and writes
the ground truth of every exchange.

usage: library_client.py HOST PORT EXPECTED.jsonl SEED [USERS]

The seed picks who uses the library and which books they add, so recordings with different
seeds share no identifier: one is tuned on, the others held out. USERS (default 8)
is how many register (at least 2).
"""
import json
import random
import subprocess
import sys
from urllib.parse import quote

from client_session import Session, write_expected

USERS = ["name1", "name2", "alice", "bob_smith", "carol.jones", "dave99", "erin", "frank-lee",
         "grace42", "heidi", "ivan_petrov", "judy.w", "olivia", "peggy2", "trent", "victor7",
         "walter.white", "xena", "yusuf_2000", "zoe"]
TITLES = ["bookTitle16", "bookTitle77", "The Hobbit", "dune-messiah", "clean_code", "sicp",
          "neuromancer", "war-and-peace", "1984", "moby dick", "Brave New World", "snow_crash",
          "bookTitle3", "the-pragmatic-programmer", "Godel Escher Bach", "hyperion", "ulysses",
          "catch-22", "bookTitle451", "solaris", "dracula", "emma", "the_road", "beloved",
          "middlemarch", "bookTitle95", "anathem", "kindred"]


class Reader(Session):
    def __init__(self, host, port, expected, source, agent, name):
        super().__init__(host, port, expected, source, agent)
        self.name = name

    def login(self, password, tag="normal"):
        status, payload = self.call("POST", "/users/v1/login", tag,
                                    {"username": self.name, "password": password})
        if status == 200:
            self.token = json.loads(payload)["auth_token"]
        return status


def path(*parts):
    return "/" + "/".join(quote(p, safe="") for p in parts)


def main():
    host, port, out, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    users = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    rng = random.Random(seed)
    expected = []
    names = rng.sample(USERS, users)
    titles = rng.sample(TITLES, 14)

    def reader(name, source="127.0.0.1", agent="library-web/1.4"):
        return Reader(host, port, expected, source, agent, name)

    anon = reader(None)
    for uri in ["/", "/health", "/users/v1", "/books/v1"]:
        anon.call("GET", uri, "normal")

    owners = {}
    sessions = []
    for i, name in enumerate(names):
        s = reader(name)
        s.call("POST", "/users/v1/register", "normal",
               {"username": name, "password": f"pw-{name}-{seed}", "email": f"{name}@mail.test"})
        s.login(f"pw-{name}-{seed}")
        s.call("GET", path("users", "v1", name), "normal")
        for _ in range(1 + i % 2):
            if not titles:
                break
            t = titles.pop()
            owners[t] = name
            s.call("POST", "/books/v1", "normal", {"book_title": t, "secret": f"secret of {t}"})
        sessions.append(s)
    # Owners come back to their own books; readers look at each other's public profiles.
    for s in sessions:
        for t in [t for t, o in owners.items() if o == s.name]:
            s.call("GET", path("books", "v1", t), "normal")
        other = rng.choice([n for n in names if n != s.name])
        s.call("GET", path("users", "v1", other), "normal")
        s.call("GET", "/books/v1", "normal")
    for s in sessions[:3]:
        s.call("PUT", path("users", "v1", s.name, "email"), "normal", {"email": f"{s.name}@new.test"})
    sessions[3 % len(sessions)].call("PUT", path("users", "v1", sessions[3 % len(sessions)].name, "password"), "normal",
                     {"password": "changed-1"})
    sessions[4 % len(sessions)].call("GET", path("users", "v1", "nobody-here"), "normal")
    sessions[4 % len(sessions)].call("GET", path("books", "v1", "no such book"), "normal")
    sessions[5 % len(sessions)].call("PUT", path("users", "v1", sessions[6 % len(sessions)].name, "email"), "forbidden",
                     {"email": "x@evil.test"})
    sessions[5 % len(sessions)].call("DELETE", path("users", "v1", sessions[6 % len(sessions)].name), "forbidden")

    admin = reader("admin", agent="library-admin/0.9")
    admin.login("pass1")
    admin.call("GET", "/users/v1", "normal")
    admin.call("DELETE", path("users", "v1", names[-1]), "normal")

    # The attacker: an anonymous client reads every password, then logs in as a fresh user and
    # reads every other user's book secrets and changes another user's password.
    mallory = reader("mallory", source="127.0.0.66", agent="python-requests/2.31")
    mallory.call("GET", "/users/v1/_debug", "exposure")
    mallory.call("POST", "/users/v1/register", "normal",
                 {"username": "mallory", "password": "m4ll0ry!", "email": "m@evil.test"})
    mallory.login("m4ll0ry!")
    mallory.call("GET", "/books/v1", "normal")
    for t, o in owners.items():
        mallory.call("GET", path("books", "v1", t), "bola")
    mallory.call("PUT", path("users", "v1", names[0], "password"), "bola", {"password": "pwned"})

    # A different real client: curl, one connection per request.
    for uri in ["/books/v1", path("users", "v1", names[1])]:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://{host}:{port}{uri}"], capture_output=True, text=True,
                           check=True)
        expected.append({"method": "GET", "uri": uri, "status": int(r.stdout), "tag": "normal",
                         "client": "127.0.0.1"})
    for s in sessions + [anon, admin, mallory]:
        s.close()
    write_expected(out, expected)


if __name__ == "__main__":
    main()
