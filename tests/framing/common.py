"""What the framing harnesses share: the split of variants into halves (decided once, before
any tuning) and the command line."""
import argparse
import hashlib
import os
import tempfile
import threading


def half(vid):
    """`development` or `held-out`, by a hash of the variant id."""
    return "held-out" if hashlib.sha256(vid.encode()).digest()[0] & 1 else "development"


def arguments(prefix):
    """`--tapline PATH [--out DIR] [--limit N]`: (tapline, output directory, limit)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tapline", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(out, exist_ok=True)
    return a.tapline, out, a.limit


def accept_each(sock, stop, serve_one):
    """Serves each connection `sock` accepts on its own thread until `stop` is set (`sock` has
    a timeout, so the loop sees `stop`)."""
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()
