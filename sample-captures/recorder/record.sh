#!/usr/bin/env bash
# Records Tapline's sample captures: the shop API (shop_server.py, a real HTTP server) driven by
# real clients (shop_client.py over http.client, and curl), captured by tcpdump on loopback.
#
#   sample-captures/recorder/record.sh        # rewrites sample-captures/shop-api.{pcap,pcapng,expected.jsonl}
#
# Needs root (or CAP_NET_RAW) for tcpdump, and python3, tcpdump, curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); out=$(dirname "$here")
port=${PORT:-18088}
for t in python3 tcpdump curl; do command -v $t >/dev/null || { echo "missing $t (apt-get install -y $t)" >&2; exit 2; }; done
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

python3 "$here/shop_server.py" 127.0.0.1 "$port" & server=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done

tcpdump -i lo -s 0 -U -w "$work/shop.pcap" "tcp port $port" 2>"$work/tcpdump.log" & td=$!
sleep 1
python3 "$here/shop_client.py" 127.0.0.1 "$port" "$work/expected.jsonl"
# A different real client: curl, one connection per request.
curl -s -o /dev/null -H 'User-Agent: curl/7.88.1' "http://127.0.0.1:$port/health"
echo '{"method": "GET", "uri": "/health", "status": 200, "tag": "normal", "client": "127.0.0.1"}' >> "$work/expected.jsonl"
curl -s -o /dev/null --compressed "http://127.0.0.1:$port/api/v1/products?page=3"
echo '{"method": "GET", "uri": "/api/v1/products?page=3", "status": 200, "tag": "normal", "client": "127.0.0.1"}' >> "$work/expected.jsonl"
sleep 1
kill -INT $td; wait $td || true
kill $server; wait $server 2>/dev/null || true

cp "$work/shop.pcap" "$out/shop-api.pcap"
python3 "$here/to_pcapng.py" "$out/shop-api.pcap" "$out/shop-api.pcapng"
cp "$work/expected.jsonl" "$out/shop-api.expected.jsonl"
ls -l "$out"/shop-api.*
