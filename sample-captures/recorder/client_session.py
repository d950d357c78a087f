"""One keep-alive HTTP client connection from one source address, recording every exchange
(method, URI, status, tag, client) as the capture's ground truth. Shared by the recorders'
clients."""
import http.client
import json
import sys


class Session:
    """One keep-alive connection from one client address."""

    def __init__(self, host, port, expected, source="127.0.0.1", agent="shop-web/2.3"):
        self.conn = http.client.HTTPConnection(host, port, source_address=(source, 0), timeout=10)
        self.expected = expected
        self.source = source
        self.agent = agent
        self.token = None

    def call(self, method, uri, tag, body=None, headers=None):
        h = {"User-Agent": self.agent, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        self.conn.request(method, uri, body=data, headers=h)
        resp = self.conn.getresponse()
        payload = resp.read()
        self.expected.append({"method": method, "uri": uri, "status": resp.status, "tag": tag,
                              "client": self.source})
        return resp.status, payload

    def login(self, user, password, tag="normal"):
        status, payload = self.call("POST", "/api/v1/login", tag, {"username": user, "password": password})
        if status == 200:
            self.token = json.loads(payload)["token"]
        return status

    def close(self):
        self.conn.close()


def write_expected(path, expected):
    with open(path, "w") as f:
        for e in expected:
            f.write(json.dumps(e) + "\n")


def from_argv():
    """`CLIENT.py HOST PORT EXPECTED.jsonl` → (a Session factory bound to HOST:PORT that records
    into one list, that list, the output path)."""
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    expected = []

    def session(source="127.0.0.1", agent="shop-web/2.3"):
        return Session(host, port, expected, source, agent)

    return session, expected, out
