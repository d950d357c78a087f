#!/usr/bin/env bash
# Starts the desktop workbench under a virtual X server (Xvfb, software OpenGL) on the sample
# captures, waits until they are imported and every view's data is loaded, saves a PNG of the
# window and checks it. Run by CI; also how the README's screenshot is made.
#
#   tests/gui/screenshot.sh [OUT.png] [CAPTURE...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-"${CARGO_TARGET_DIR:-$repo/target}/tapline-overview.png"}
shift || true
captures=("$@")
[ ${#captures[@]} -gt 0 ] || captures=("$repo/sample-captures/shop-api.pcap" "$repo/sample-captures/abuse-api.pcap")

command -v xvfb-run >/dev/null || { echo "screenshot: xvfb-run missing (installers/setup.sh installs it)" >&2; exit 1; }
bin="${TAPLINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet -p tapline --bin tapline ${TAPLINE_CARGO_FEATURES:-}
  bin="${CARGO_TARGET_DIR:-$repo/target}/debug/tapline"
fi

# A throwaway data directory: the case, eframe's saved window state and the identity.
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
rm -f "$out"
# Software rendering: no GPU here. The app quits by itself once the screenshot is saved.
XDG_DATA_HOME="$scratch" LIBGL_ALWAYS_SOFTWARE=1 timeout 300 \
  xvfb-run -a -s "-screen 0 1600x1000x24" "$bin" open "${captures[@]}" --screenshot "$out" 2>&1 \
  | tee "$scratch/log" >&2
[ -s "$out" ] || { echo "screenshot: no image was saved" >&2; exit 1; }
# A real frame: PNG signature, the window's size, and more than a blank screen's bytes.
python3 - "$out" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1440, 900), f"unexpected size {w}x{h}"
# Decode and count distinct colours: a blank or black frame has one or two.
idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
raw = zlib.decompress(idat)
stride = 1 + w * 4
colours = {raw[r * stride + 1 + c * 4: r * stride + 1 + c * 4 + 3]
           for r in range(0, h, 7) for c in range(0, w, 5)}
assert len(colours) > 20, f"only {len(colours)} colours: an empty frame"
print(f"screenshot: {sys.argv[1]} {w}x{h}, {len(colours)} colours sampled")
PY
grep -q "screenshot .* saved" "$scratch/log"
