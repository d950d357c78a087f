"""What the framing harnesses share: the split of variants into halves (decided once, before
any tuning) and the command line."""
import argparse
import hashlib
import os
import tempfile


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
