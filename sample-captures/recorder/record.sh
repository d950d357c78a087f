#!/usr/bin/env bash
# Records Tapline's sample captures, real servers driven by real clients, captured by tcpdump on
# loopback:
# - shop: the shop API (shop_server.py) driven by shop_client.py (http.client) and curl;
# - catalog: the catalog API (catalog_server.py), whose OpenAPI document is the ground truth of
#   discovery, driven by catalog_client.py;
# - abuse: the shop API again, customers among abusive clients (abuse_client.py): credential
#   stuffing, scraping, enumeration, broken authentication, an error spike.
#
# - shop-holdout: the shop API with another cast and an administrator (shop_holdout_client.py),
#   for security tests generated from traffic they were not tuned on.
# - library: a Flask API keyed by user names and book titles (library_server.py), driven by
#   library_client.py and curl, recorded three times with different identifiers (one tuned on,
#   two held out).
#
#   sample-captures/recorder/record.sh [shop|catalog|abuse|shop-holdout|library|all]   # rewrites sample-captures/<name>-api.*
#
# Needs root (or CAP_NET_RAW) for tcpdump, and python3, tcpdump, curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); out=$(dirname "$here")
what=${1:-all}
for t in python3 tcpdump curl; do command -v $t >/dev/null || { echo "missing $t (apt-get install -y $t)" >&2; exit 2; }; done
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

record_shop() {
port=18088
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
}

# record NAME SERVER PORT HEALTH_PATH CLIENT [ARG…]: runs SERVER on PORT, captures CLIENT's
# traffic into sample-captures/NAME-api.pcap with its ground truth NAME-api.expected.jsonl.
record() {
local name=$1 server_py=$2 port=$3 health=$4 client_py=$5; shift 5
python3 "$here/$server_py" 127.0.0.1 "$port" & server=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port$health" && break; sleep 0.1; done
tcpdump -i lo -s 0 -U -w "$work/$name.pcap" "tcp port $port" 2>"$work/tcpdump.log" & td=$!
sleep 1
python3 "$here/$client_py" 127.0.0.1 "$port" "$work/$name.jsonl" "$@"
sleep 1
kill -INT $td; wait $td || true
kill $server; wait $server 2>/dev/null || true
cp "$work/$name.pcap" "$out/$name-api.pcap"
cp "$work/$name.jsonl" "$out/$name-api.expected.jsonl"
}

record_catalog() {
record catalog catalog_server.py 18089 /api/v1/health catalog_client.py
python3 "$here/catalog_server.py" --spec "$out/catalog-api.openapi.json"
ls -l "$out"/catalog-api.*
}

# The shop again, with customers and an administrator the tests were not tuned on: security
# tests generated from it are judged against the shop and its fixed twin (held out).
record_shop_holdout() {
record shop-holdout shop_server.py 18094 /health shop_holdout_client.py
ls -l "$out"/shop-holdout-api.*
}

record_abuse() {
record abuse shop_server.py 18090 /health abuse_client.py
ls -l "$out"/abuse-api.*
}

# The library API (Flask; python3-flask): string identifiers. Two recordings with different
# seeds share no user name or title: "library" is tuned on, "library-holdout" and
# "library-small" (three users: few values per parameter) only measured.
record_library() {
python3 -c 'import flask' 2>/dev/null || { echo "missing Flask (apt-get install -y python3-flask)" >&2; exit 2; }
record library library_server.py 18091 /health library_client.py 1
record library-holdout library_server.py 18092 /health library_client.py 2
record library-small library_server.py 18093 /health library_client.py 3 3
python3 "$here/library_server.py" --routes "$out/library-api.routes.json"
ls -l "$out"/library-*
}

case "$what" in
  shop) record_shop ;;
  catalog) record_catalog ;;
  abuse) record_abuse ;;
  shop-holdout) record_shop_holdout ;;
  library) record_library ;;
  all) record_shop; record_catalog; record_abuse; record_shop_holdout; record_library ;;
  *) echo "usage: $0 [shop|catalog|abuse|shop-holdout|library|all]" >&2; exit 2 ;;
esac
