#!/usr/bin/env bash
# Live capture benchmark: nginx serving a JSON API on loopback under a wrk load, the sensor
# (release build) capturing on `lo` and decoding every exchange into its spool. Prints wrk's
# request rate, what the sensor decoded, and the kernel's and interface's drop counts.
#
# usage: tests/bench/live_capture.sh [SECONDS=20] [CONNECTIONS=64] [SENSOR_WORKERS=1]
# needs: nginx, wrk (apt-get install -y nginx-light wrk), capture rights on lo (root or
#        CAP_NET_RAW), and `cargo build --release -p tapline-sensor`.
set -euo pipefail
secs=${1:-20}; conns=${2:-64}; workers=${3:-1}; port=${PORT:-18081}
repo=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
sensor="$target/release/tapline-sensor"
[ -x "$sensor" ] || { echo "build it first: cargo build --release -p tapline-sensor" >&2; exit 2; }
for t in nginx wrk; do command -v $t >/dev/null || { echo "missing $t: apt-get install -y nginx-light wrk" >&2; exit 2; }; done
work=$(mktemp -d)
cleanup() { kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; kill -INT "${sp:-0}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port;
    default_type application/json;
    location ~ ^/api/v1/users/(\d+)$ { return 200 '{"id":\$1,"name":"user \$1","email":"user\$1@example.com","roles":["reader"]}'; }
    location / { return 404 '{"error":"not found"}'; }
  }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5
"$sensor" --interface lo --filter "tcp port $port" --workers "$workers" --spool "$work/spool" \
  --name bench 2>"$work/sensor.log" & sp=$!
sleep 1
wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/api/v1/users/42" | tee "$work/wrk.log"
sleep 1
kill -INT $sp; wait $sp || true; sp=
reqs=$(awk '/requests in/ {print $1}' "$work/wrk.log")
rate=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.log")
echo "--- sensor"
cat "$work/sensor.log"
tx=$(sed -n 's/.* connections, \([0-9]*\) transactions.*/\1/p' "$work/sensor.log")
drops=$(sed -n 's/.* received, \([0-9]*\) dropped by the kernel, \([0-9]*\) by the interface/\1 \2/p' "$work/sensor.log")
echo "--- live_capture: wrk ${rate} requests/s (${reqs} requests, ${conns} connections, ${secs}s); sensor decoded ${tx} transactions with ${workers} worker(s); kernel/interface drops: ${drops}"
