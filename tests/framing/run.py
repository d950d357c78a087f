#!/usr/bin/env python3
"""Response framing, differentially: what real HTTP clients deliver as the body of oddly
framed responses, and whether Tapline's decode of the recorded traffic delivers the same.

A raw TCP server on loopback answers GET /v/ID?c=CLIENT with variant ID of a grammar of
framings (status-line versions, Transfer-Encoding name spellings, values and repeats,
Content-Length beside it; chunk-size forms, extensions, bare-LF lines and trailers, sent
whole or in TCP segments cut inside the framing), then closes. Headless Chromium (the reference: where clients
disagree, Tapline follows it), curl, Python's http.client and Node's http fetch every variant
while tcpdump records loopback; `tapline decode` reads the recording; the bodies are
compared per client. Variants are split into a development and a held-out half by a hash of
their id (decided before any tuning); both halves are reported.

usage: run.py --tapline PATH [--out DIR] [--limit N]   (needs root for tcpdump)
"""

import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client

from common import accept_each, arguments, half

BODY = b"HELLO-FRAMING-BODY"


def chunked(data: bytes) -> bytes:
    parts = [data[:5], data[5:11], data[11:]]
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return out + b"0\r\n\r\n"


def variants():
    versions = ["HTTP/1.1", "HTTP/1.0", "http/1.1", "HTTP/1.2"]
    names = ["Transfer-Encoding", "transfer-encoding", "Transfer-Encoding ", "Transfer_Encoding",
             " Transfer-Encoding", "TRANSFER-ENCODING"]
    values = [["chunked"], ["Chunked"], ["  chunked  "], ["gzip, chunked"], ["chunked, gzip"],
              ["identity, chunked"], ["xchunked"], ["chunkedx"], ["chunked;q=1"], [""],
              ["gzip", "chunked"], ["chunked", "gzip"], ["chunked", "chunked"], ["\tchunked"]]
    wire = chunked(BODY)
    lengths = [None, len(wire), len(BODY), 7]
    for n, (ver, name, vals, cl) in enumerate(itertools.product(versions, names, values, lengths)):
        head = [f"{ver} 200 OK", "Content-Type: text/plain", "Connection: close"]
        head += [f"{name}: {v}" for v in vals]
        if cl is not None:
            head.append(f"Content-Length: {cl}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + wire
        desc = {"version": ver, "te_name": name, "te_values": vals, "content_length": cl}
        yield f"v{n}", raw, desc
    yield from chunk_variants(n + 1)


def chunk_variants(first):
    """Chunk-size forms and TCP segmentation: a plain `Transfer-Encoding: chunked` response
    whose chunk lines vary (case, leading zeros, `0x`, whitespace, extensions, bare LF, a
    trailer), sent whole or in segments cut inside the framing."""
    sizes = {"hex": b"%x", "HEX": b"%X", "zeros": b"%04x", "0x": b"0x%x", "space": b"%x ",
             "tab": b"%x\t", "lead": b" %x"}
    exts = [b"", b";a=b", b"; a=b", b";", b';a="x;y"']
    eols = [b"\r\n", b"\n"]
    trailers = [b"", b"X-T: 1\r\n"]
    cuts = ["whole", "segments"]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    for n, ((sname, size), ext, eol, trailer, cut) in enumerate(
            itertools.product(sizes.items(), exts, eols, trailers, cuts), start=first):
        parts = [BODY[:5], BODY[5:11], BODY[11:]]
        wire = b"".join((size % len(p)) + ext + eol + p + eol for p in parts)
        wire += (size % 0) + eol + trailer + eol
        raw = head + wire
        if cut == "segments":
            # Cut inside the chunk lines: after each size digit run and inside line ends.
            at = sorted({len(head) + 1, len(head) + 2, len(raw) - 3, len(raw) - 1})
            raw = [raw[a:b] for a, b in zip([0] + at, at + [len(raw)])]
        desc = {"chunk_size": sname, "ext": ext.decode(), "eol": "LF" if eol == b"\n" else "CRLF",
                "trailer": bool(trailer), "sent": cut}
        yield f"v{n}", raw, desc


def serve(sock, table, stop):
    def one(conn):
        try:
            conn.settimeout(5)
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                req += chunk
            path = req.split(b" ")[1].decode()
            if path.startswith("/runner"):
                page = RUNNER.replace("IDS", json.dumps(sorted(table, key=lambda v: int(v[1:]))))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(page), page.encode()))
            elif path.startswith("/results"):
                head, _, body = req.partition(b"\r\n\r\n")
                n = int([l.split(b":")[1] for l in head.split(b"\r\n")
                         if l.lower().startswith(b"content-length:")][0])
                while len(body) < n:
                    body += conn.recv(65536)
                RESULTS["chromium"] = json.loads(body)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            else:
                vid = path.split("/v/")[1].split("?")[0]
                raw = table[vid]
                if isinstance(raw, list):
                    # In TCP segments: each written alone, a pause between them.
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for seg in raw:
                        conn.sendall(seg)
                        time.sleep(0.02)
                else:
                    conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.05)
        except Exception:
            pass
        finally:
            conn.close()

    accept_each(sock, stop, one)


RESULTS = {}

# Fetched by headless Chromium: every variant through the browser's own network stack
# (fetch() parses responses as navigation does), results posted back.
RUNNER = """<!doctype html><script>
(async () => {
  const out = {};
  for (const id of IDS) {
    try {
      const r = await fetch(`/v/${id}?c=chromium`, {cache: 'no-store'});
      const b = new Uint8Array(await r.arrayBuffer());
      let s = ''; for (const x of b) s += String.fromCharCode(x);
      out[id] = btoa(s);
    } catch (e) { out[id] = null; }
  }
  await fetch('/results', {method: 'POST', body: JSON.stringify(out)});
  document.title = 'done';
})();
</script>"""


def fetch_chromium(port, timeout=900):
    """Runs the runner page in headless Chromium; its bodies by variant (None: refused)."""
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={profile}", "--remote-debugging-port=0",
                              f"http://127.0.0.1:{port}/runner"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while "chromium" not in RESULTS and time.time() < deadline and p.poll() is None:
            time.sleep(0.2)
        p.kill()
        p.wait()
    got = RESULTS.get("chromium", {})
    return {k: (base64.b64decode(v) if v is not None else None) for k, v in got.items()}


def fetch_curl(port, vid):
    r = subprocess.run(["curl", "-s", "--http1.1", "--max-time", "5", "-o", "-",
                        f"http://127.0.0.1:{port}/v/{vid}?c=curl"], capture_output=True)
    return r.stdout if r.returncode == 0 else None


def fetch_python(port, vid):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", f"/v/{vid}?c=python")
        body = c.getresponse().read()
        c.close()
        return body
    except Exception:
        return None


NODE = r"""
const http = require('http');
const ids = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const port = parseInt(process.argv[process.argv.length - 1]);
const out = {};
function next(i) {
  if (i >= ids.length) { process.stdout.write(JSON.stringify(out)); return; }
  const id = ids[i];
  let done = false;
  const finish = (v) => { if (!done) { done = true; out[id] = v; setImmediate(() => next(i + 1)); } };
  const req = http.get({host: '127.0.0.1', port, path: `/v/${id}?c=node`, insecureHTTPParser: false}, (res) => {
    const parts = [];
    res.on('data', (d) => parts.push(d));
    res.on('end', () => finish(Buffer.concat(parts).toString('base64')));
    res.on('error', () => finish(null));
  });
  req.on('error', (e) => { process.stderr.write(String(e)+'\n'); finish(null); });
  req.setTimeout(5000, () => { req.destroy(); finish(null); });
}
next(0);
"""


def fetch_node(port, ids):
    r = subprocess.run(["node", "-e", NODE, str(port)], input=json.dumps(ids).encode(),
                       capture_output=True, timeout=600)
    got = json.loads(r.stdout or b"{}")
    return {k: (base64.b64decode(v) if v is not None else None) for k, v in got.items()}


def main():
    tapline, out, limit = arguments("framing-")
    vs = list(variants())
    if limit:
        vs = vs[:limit]
    table = {vid: raw for vid, raw, _ in vs}
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    port = sock.getsockname()[1]
    stop = threading.Event()
    threading.Thread(target=serve, args=(sock, table, stop), daemon=True).start()
    pcap = os.path.join(out, "framing.pcap")
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", pcap,
                           f"tcp port {port}"], stderr=subprocess.PIPE)
    time.sleep(1.0)
    clients = {"curl": {}, "python": {}}
    for vid, _, _ in vs:
        clients["curl"][vid] = fetch_curl(port, vid)
        clients["python"][vid] = fetch_python(port, vid)
    clients["node"] = fetch_node(port, [vid for vid, _, _ in vs])
    clients["chromium"] = fetch_chromium(port)
    time.sleep(1.0)
    td.terminate()
    _, err = td.communicate()
    stop.set()
    dropped = [l for l in err.decode().splitlines() if "dropped by kernel" in l]
    dec = subprocess.run([tapline, "decode", pcap], capture_output=True)
    tap = {}
    for line in dec.stdout.decode().splitlines():
        t = json.loads(line)
        uri = t.get("uri") or ""
        if "/v/" in uri and "?c=" in uri:
            vid, client = uri.split("/v/")[1].split("?c=")
            body = base64.b64decode(t.get("response_body_b64") or "")
            tap[(vid, client)] = (body, t.get("anomalies", []))
    report(vs, clients, tap, dropped, out)


def report(vs, clients, tap, dropped, out):
    rows = []
    stats = {}
    disagreements = []
    for vid, _, desc in vs:
        delivered = {c: clients[c].get(vid) for c in clients}
        bodies = {c: b for c, b in delivered.items() if b is not None}
        if len(set(bodies.values())) > 1:
            disagreements.append((vid, desc, {c: (b.decode("latin-1") if b is not None else "error")
                                               for c, b in delivered.items()}))
        h = half(vid)
        for c, b in delivered.items():
            s = stats.setdefault((h, c), [0, 0, 0])
            if b is None:
                s[2] += 1
                continue
            s[0] += 1
            got = tap.get((vid, c))
            if got is not None and got[0] == b:
                s[1] += 1
            else:
                rows.append({"variant": vid, **desc, "client": c,
                             "client_body": b.decode("latin-1"),
                             "tapline_body": got[0].decode("latin-1") if got else None,
                             "tapline_anomalies": got[1] if got else None})
    with open(os.path.join(out, "mismatches.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(out, "disagreements.jsonl"), "w") as f:
        for d in disagreements:
            f.write(json.dumps({"variant": d[0], **d[1], "bodies": d[2]}) + "\n")
    print(f"{len(vs)} variants; tcpdump: {'; '.join(dropped)}; details in {out}")
    print("| half | client | bodies delivered | Tapline agrees | agreement | client refused |")
    print("|---|---|---:|---:|---:|---:|")
    for (h, c), (n, ok, refused) in sorted(stats.items()):
        print(f"| {h} | {c} | {n} | {ok} | {100.0 * ok / max(n, 1):.1f}% | {refused} |")
    print(f"variants where the clients disagree: {len(disagreements)}")


if __name__ == "__main__":
    sys.exit(main())
