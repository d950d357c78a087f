#!/usr/bin/env python3
"""Request framing, differentially: how real HTTP servers read oddly framed requests (where
request smuggling lives), and whether Tapline's decode of the recorded traffic reads them the
way the servers' majority does.

Each variant is one request with an odd framing (Content-Length spellings and repeats,
Transfer-Encoding spellings beside or instead of it, chunk-size forms, bare-LF line ends,
HTTP/1.0) followed on the same connection by a canary request. It is sent raw to four
servers on loopback — Python's http.server, Node's http, h11, and nginx (proxying to an echo
backend) — each answering every request it reads with what it read (method, target, body).
tcpdump records loopback; `tapline decode` reads the recording. Per variant and server the
*reading* is the list of requests the server answered; Tapline agrees with a server when it
decoded the same list on that connection. The reference is the servers' majority; variants
where servers disagree are listed with whether Tapline flagged the request. Variants are split
into a development and a held-out half by a hash of their id.

usage: requests.py --tapline PATH [--out DIR] [--limit N]
       (needs root for tcpdump; python3-h11 or `pip install h11`, node, nginx)
"""

import base64
import collections
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import accept_each, arguments, half

BODY = b"HELLO=SMUGGLE"
CANARY = b"GET /canary HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def chunked(data, size=lambda n: b"%x" % n, eol=b"\r\n", ext=b""):
    parts = [data[:5], data[5:]]
    out = b"".join(size(len(p)) + ext + eol + p + eol for p in parts)
    return out + size(0) + eol + eol


def variants():
    """(id, raw request bytes, description)."""
    out = []
    te_names = ["Transfer-Encoding", "transfer-encoding", "Transfer-Encoding ", "Transfer_Encoding",
                " Transfer-Encoding", "TRANSFER-ENCODING"]
    te_values = [["chunked"], ["Chunked"], [" chunked "], ["gzip, chunked"], ["chunked, gzip"],
                 ["identity, chunked"], ["xchunked"], ["chunked;q=1"], [""], ["gzip", "chunked"],
                 ["chunked", "chunked"], ["\tchunked"]]
    cls = [None, "len", "short"]
    for version, name, vals, cl in itertools.product(["HTTP/1.1", "HTTP/1.0"], te_names, te_values,
                                                     cls):
        wire = chunked(BODY)
        head = [f"POST /r HTTP/{version[5:]}", "Host: t"] + [f"{name}: {v}" for v in vals]
        if cl == "len":
            head.append(f"Content-Length: {len(wire)}")
        elif cl == "short":
            head.append("Content-Length: 4")
        out.append(({"framing": "te", "version": version, "te_name": name, "te_values": vals,
                     "content_length": cl}, head, wire))
    for version, value in itertools.product(
            ["HTTP/1.1", "HTTP/1.0"],
            ["13", " 13", "13 ", "+13", "013", "13, 13", "13,13", "0x0d", "13.0", "-13", "1e1",
             "", "abc", "4"]):
        head = [f"POST /r {version}", "Host: t", f"Content-Length: {value}"]
        out.append(({"framing": "cl", "version": version, "content_length": [value]}, head, BODY))
    for a, b in [("13", "13"), ("13", "4"), ("4", "13"), ("13", "")]:
        head = ["POST /r HTTP/1.1", "Host: t", f"Content-Length: {a}", f"Content-Length: {b}"]
        out.append(({"framing": "cl", "version": "HTTP/1.1", "content_length": [a, b]}, head, BODY))
    sizes = {"hex": lambda n: b"%x" % n, "HEX": lambda n: b"%X" % n,
             "zeros": lambda n: b"%04x" % n, "0x": lambda n: b"0x%x" % n,
             "space": lambda n: b"%x " % n, "tab": lambda n: b"%x\t" % n,
             "plus": lambda n: b"+%x" % n}
    for (sname, size), ext, eol in itertools.product(sizes.items(), [b"", b";a=b", b"; a=b", b";"],
                                                     [b"\r\n", b"\n"]):
        head = ["POST /r HTTP/1.1", "Host: t", "Transfer-Encoding: chunked"]
        wire = chunked(BODY, size, eol, ext)
        out.append(({"framing": "chunk", "size": sname, "ext": ext.decode(),
                     "eol": "LF" if eol == b"\n" else "CRLF"}, head, wire))
    for eol in [b"\r\n", b"\n"]:
        for fold in [False, True]:
            te = "Transfer-Encoding:\r\n chunked" if fold else "Transfer-Encoding: chunked"
            head = ["POST /r HTTP/1.1", "Host: t", te]
            raw = eol.join(h.encode() for h in head) + eol + eol + chunked(BODY)
            out.append(({"framing": "head", "eol": "LF" if eol == b"\n" else "CRLF",
                         "obs_fold": fold}, None, raw))
    res = []
    for n, (desc, head, wire) in enumerate(out):
        raw = wire if head is None else ("\r\n".join(head) + "\r\n\r\n").encode() + wire
        res.append((f"q{n}", raw + CANARY, desc))
    return res


def answer(method, target, body):
    return json.dumps({"m": method, "u": target, "b": base64.b64encode(body).decode()}).encode()


class Echo(BaseHTTPRequestHandler):
    """Python's http.server: reads Content-Length bodies (it does not implement chunked)."""
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        n = self.headers.get("Content-Length")
        try:
            body = self.rfile.read(int(n)) if n else b""
        except ValueError:
            self.send_error(400)
            return
        out = answer(self.command, self.path, body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = handle_any

    def log_message(self, *a):
        pass


def h11_server(sock, stop):
    import h11

    def one(conn):
        c = h11.Connection(h11.SERVER)
        conn.settimeout(2)
        req, body = None, b""
        try:
            while True:
                ev = c.next_event()
                if ev is h11.NEED_DATA:
                    data = conn.recv(65536)
                    c.receive_data(data)
                    if not data and c.their_state is not h11.SEND_BODY:
                        pass
                    continue
                if isinstance(ev, h11.Request):
                    req, body = ev, b""
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    out = answer(req.method.decode(), req.target.decode(), body)
                    conn.sendall(c.send(h11.Response(status_code=200, headers=[
                        ("Content-Length", str(len(out)))])) + c.send(h11.Data(data=out))
                        + c.send(h11.EndOfMessage()))
                    if c.our_state is h11.MUST_CLOSE:
                        break
                    c.start_next_cycle()
                elif ev is h11.PAUSED:
                    c.start_next_cycle()
                else:
                    break
        except h11.RemoteProtocolError:
            try:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        except Exception:
            pass
        finally:
            conn.close()

    accept_each(sock, stop, one)


NODE = r"""
const http = require('http');
const port = parseInt(process.argv[process.argv.length - 1]);
http.createServer((req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const out = JSON.stringify({m: req.method, u: req.url, b: Buffer.concat(parts).toString('base64')});
    res.writeHead(200, {'Content-Length': Buffer.byteLength(out)});
    res.end(out);
  });
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
"""

NGINX = """
daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off; client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{backend}; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_servers(work):
    """The servers by name: (port, stop function)."""
    servers = {}
    py = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=py.serve_forever, daemon=True).start()
    servers["python"] = (py.server_address[1], py.shutdown)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    stop = threading.Event()
    threading.Thread(target=h11_server, args=(sock, stop), daemon=True).start()
    servers["h11"] = (sock.getsockname()[1], stop.set)
    port = free_port()
    node = subprocess.Popen(["node", "-e", NODE, str(port)], stdout=subprocess.PIPE)
    node.stdout.readline()
    servers["node"] = (port, node.kill)
    # nginx proxies to its own http.server backend, so its reading is what nginx forwarded.
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    ndir = os.path.join(work, "nginx")
    os.makedirs(ndir, exist_ok=True)
    conf = os.path.join(ndir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX.format(dir=ndir, port=port, backend=backend.server_address[1]))
    ngx = subprocess.Popen(["nginx", "-p", ndir, "-c", conf], stderr=subprocess.DEVNULL)
    if wait_port(port):
        servers["nginx"] = (port, lambda: (ngx.terminate(), backend.shutdown()))
    return servers


def send(port, raw):
    """Sends `raw`, reads until the server closes (or a second of silence): (local port, the
    requests the server answered, [(method, target, body)], and the statuses of refusals)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    local = s.getsockname()[1]
    s.settimeout(1.0)
    got = b""
    try:
        s.sendall(raw)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    finally:
        s.close()
    answered = [(j["m"], j["u"], base64.b64decode(j["b"]))
                for j in map(json.loads, re.findall(rb'\{"m": ?"[^"]*", ?"u": ?"[^"]*", ?"b": ?"[^"]*"\}', got))]
    refused = [r.decode() for r in re.findall(rb"HTTP/1\.[01] (4\d\d|5\d\d)", got)]
    # A server that closed before the canary (after an HTTP/1.0 request, say) read no further.
    if not answered or answered[-1][1] != "/canary":
        refused.append("closed")
    return local, answered, refused


def main():
    tapline, out, limit = arguments("request-framing-")
    vs = variants()
    if limit:
        vs = vs[:limit]
    work = tempfile.mkdtemp(prefix="servers-")
    servers = start_servers(work)
    ports = " or ".join(f"tcp port {p}" for p, _ in servers.values())
    pcap = os.path.join(out, "requests.pcap")
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", pcap, ports],
                          stderr=subprocess.PIPE)
    time.sleep(1.0)
    readings = {}

    def drive(name, port):
        for vid, raw, _ in vs:
            readings[(vid, name)] = send(port, raw)

    threads = [threading.Thread(target=drive, args=(n, p)) for n, (p, _) in servers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.0)
    td.terminate()
    _, err = td.communicate()
    for _, stop in servers.values():
        stop()
    shutil.rmtree(work, ignore_errors=True)
    dropped = [l for l in err.decode().splitlines() if "dropped by kernel" in l]
    dec = subprocess.run([tapline, "decode", pcap], capture_output=True)
    tap = collections.defaultdict(list)
    for line in dec.stdout.decode().splitlines():
        t = json.loads(line)
        client = t.get("client") or ""
        port = int(client.rsplit(":", 1)[1]) if ":" in client else 0
        server = t.get("server") or ""
        sport = int(server.rsplit(":", 1)[1]) if ":" in server else 0
        if t.get("method"):
            body = base64.b64decode(t.get("request_body_b64") or "")
            tap[(port, sport)].append(((t["method"], t.get("uri") or "", body),
                                       t.get("anomalies", [])))
    report(vs, servers, readings, tap, dropped, out)


#: Tapline's flags about how a request was framed (not about what is missing around it).
NOT_FRAMING = {"missing_response", "missing_request", "truncated", "gap"}


def key(reading):
    return json.dumps([[m, u, base64.b64encode(b).decode()] for m, u, b in reading])


def verdict(answered, refused):
    """What a server did with a connection: the requests it read and whether it then refused
    what followed (an error status, and nothing more read)."""
    return json.dumps({"read": json.loads(key(answered)), "refused": bool(refused)})


def agrees(server, mine, flags):
    """A server's verdict and Tapline's: the same requests read; where the server refused what
    followed, Tapline may read on (a passive decoder cannot refuse, it records what was sent)
    but must flag the framing."""
    v = json.loads(server)
    read = json.loads(key(mine))
    if not v["refused"]:
        return read == v["read"]
    return read[: len(v["read"])] == v["read"] and (len(read) == len(v["read"]) or bool(flags))


def report(vs, servers, readings, tap, dropped, out):
    stats = collections.defaultdict(lambda: [0, 0])
    majority_stats = collections.defaultdict(lambda: [0, 0, 0, 0])
    rows, disagreements = [], []
    for vid, _, desc in vs:
        h = half(vid)
        verdicts, mine_by = {}, {}
        for name in servers:
            local, answered, refused = readings[(vid, name)]
            seen = tap.get((local, servers[name][0]), [])
            mine = [r for r, _ in seen]
            flags = sorted({f for _, fs in seen for f in fs} - NOT_FRAMING)
            verdicts[name] = verdict(answered, refused)
            mine_by[name] = (mine, flags)
            s = stats[(h, name)]
            s[0] += 1
            s[1] += agrees(verdicts[name], mine, flags)
        counts = collections.Counter(verdicts.values())
        top, n = counts.most_common(1)[0]
        # Tapline's reading of the request (the same bytes on every connection): the first.
        mine, flags = mine_by[next(iter(servers))]
        ms = majority_stats[h]
        if n * 2 > len(verdicts):
            ms[0] += 1
            ok = agrees(top, mine, flags)
            ms[1] += ok
            if not ok:
                rows.append({"variant": vid, **desc, "majority": json.loads(top),
                             "tapline": json.loads(key(mine)), "tapline_anomalies": flags})
        if len(counts) > 1:
            ms[2] += 1
            ms[3] += bool(flags)
            disagreements.append({"variant": vid, **desc, "tapline_anomalies": flags,
                                  "servers": {k: json.loads(v) for k, v in verdicts.items()}})
    with open(os.path.join(out, "mismatches.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(out, "disagreements.jsonl"), "w") as f:
        for d in disagreements:
            f.write(json.dumps(d) + "\n")
    print(f"{len(vs)} variants x {len(servers)} servers; tcpdump: {'; '.join(dropped)}; details in {out}")
    print("| half | server | connections | Tapline agrees | agreement |")
    print("|---|---|---:|---:|---:|")
    for (h, name), (n, ok) in sorted(stats.items()):
        print(f"| {h} | {name} | {n} | {ok} | {100.0 * ok / max(n, 1):.1f}% |")
    print("| half | variants with a servers' majority | Tapline agrees with it | agreement | servers disagree | of those flagged |")
    print("|---|---:|---:|---:|---:|---:|")
    for h, (n, ok, dis, fl) in sorted(majority_stats.items()):
        print(f"| {h} | {n} | {ok} | {100.0 * ok / max(n, 1):.1f}% | {dis} | {fl} |")


if __name__ == "__main__":
    sys.exit(main())
