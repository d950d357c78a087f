#!/usr/bin/env bash
# Tapline developer setup: system packages, the prebuilt DuckDB library, then an optional job.
#
#   installers/setup.sh          set up only
#   installers/setup.sh run      set up, build, and open the workbench on the sample captures
#                                (without a display: under Xvfb, saving a screenshot)
#   installers/setup.sh test     set up and run the whole test suite
#
# Idempotent: each step checks first and says what it does. Safe to re-run; fast when done.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

DUCKDB_NPM_VERSION=1.5.6-r.1   # matches crate duckdb =1.10506.1 (DuckDB 1.5.6)
duck_dir="$repo/.duckdb-lib"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31msetup: error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- system packages --------------------------------------------------------------------------
# libpcap-dev: the sensor links libpcap. xvfb + GL/X libraries: GUI tests run headless.
# python3-venv: the OpenAPI validator the tests run on exported documents.
# rsyslog: the syslog receiver alerts are tested against (run by the test, on loopback).
# nftables, nginx-light (+ its ModSecurity module), haproxy, iproute2, curl: block lists and the
# decision endpoint are checked live against the programs that enforce them; the CrowdSec
# bouncers poll the hub as they would a CrowdSec Local API (without CrowdSec itself: no
# recommends).
packages=(libpcap-dev pkg-config python3 python3-venv rsyslog nftables nginx-light libnginx-mod-http-modsecurity haproxy iproute2 curl crowdsec-custom-bouncer crowdsec-firewall-bouncer xvfb xauth libxkbcommon-x11-0 libgl1-mesa-dri libegl-mesa0 libegl1 libxcursor1 libxrandr2 libxi6)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    die "need root to install ${missing[*]}: run 'apt-get install -y ${missing[*]}' as root, then re-run"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2 || say "apt-get update failed; trying the install anyway"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
else
  say "system packages present"
fi

# --- DuckDB -----------------------------------------------------------------------------------
# Link the official prebuilt libduckdb.so (from DuckDB's npm package) rather than compiling
# DuckDB from source (~25 min). .cargo/config.toml points DUCKDB_LIB_DIR at .duckdb-lib.
cargo_features=()
case "$(uname -m)" in
  x86_64) npm_arch=x64 ;;
  aarch64|arm64) npm_arch=arm64 ;;
  *) npm_arch="" ;;
esac
if [ -f "$duck_dir/libduckdb.so" ] && [ "$(cat "$duck_dir/VERSION" 2>/dev/null)" = "$DUCKDB_NPM_VERSION" ]; then
  say "prebuilt DuckDB $DUCKDB_NPM_VERSION present in .duckdb-lib"
elif [ -n "$npm_arch" ] && command -v npm >/dev/null && command -v tar >/dev/null; then
  say "fetching prebuilt DuckDB $DUCKDB_NPM_VERSION (npm @duckdb/node-bindings-linux-$npm_arch)"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@duckdb/node-bindings-linux-$npm_arch@$DUCKDB_NPM_VERSION" >/dev/null) \
    || die "npm pack @duckdb/node-bindings-linux-$npm_arch@$DUCKDB_NPM_VERSION failed (no registry access?)"
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/libduckdb.so || die "the npm package holds no libduckdb.so"
  mkdir -p "$duck_dir"
  mv "$tmp/package/libduckdb.so" "$duck_dir/libduckdb.so"
  echo "$DUCKDB_NPM_VERSION" > "$duck_dir/VERSION"
  say "libduckdb.so installed in .duckdb-lib ($(du -h "$duck_dir/libduckdb.so" | cut -f1))"
else
  say "npm not available: DuckDB will be compiled from source (cargo feature 'bundled', ~25 min)"
  cargo_features=(--features tapline-store/bundled)
fi

# --- OpenAPI validator ------------------------------------------------------------------------
# Exported OpenAPI documents are checked in the tests by openapi-spec-validator (PyPI), the
# reference validator for OpenAPI 3.0/3.1, kept in an ignored virtualenv.
OPENAPI_VALIDATOR_VERSION=0.9.0
venv="$repo/.tools/openapi-venv"
if [ -x "$venv/bin/openapi-spec-validator" ] && [ "$(cat "$venv/VERSION" 2>/dev/null)" = "$OPENAPI_VALIDATOR_VERSION" ]; then
  say "openapi-spec-validator $OPENAPI_VALIDATOR_VERSION present"
else
  say "installing openapi-spec-validator $OPENAPI_VALIDATOR_VERSION (PyPI) into .tools/openapi-venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" install -q "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION" >&2 \
    || die "pip install openapi-spec-validator failed (no PyPI access?)"
  echo "$OPENAPI_VALIDATOR_VERSION" > "$venv/VERSION"
fi

# --- report consumers -------------------------------------------------------------------------
# Security-test reports are checked by the programs that read them: junitparser (PyPI) loads
# the JUnit XML, and Microsoft's SARIF Multitool (npm, the SARIF SDK's validator, which ships
# the official 2.1.0 schema) validates the SARIF. jsonschema (already in the venv) checks the
# test format's own JSON Schema.
JUNITPARSER_VERSION=5.0.3
if [ "$(cat "$venv/EXTRAS" 2>/dev/null)" = "junitparser==$JUNITPARSER_VERSION" ]; then
  say "junitparser $JUNITPARSER_VERSION present"
else
  say "installing junitparser $JUNITPARSER_VERSION (PyPI) into .tools/openapi-venv"
  "$venv/bin/pip" install -q "junitparser==$JUNITPARSER_VERSION" jsonschema >&2 \
    || die "pip install junitparser failed (no PyPI access?)"
  echo "junitparser==$JUNITPARSER_VERSION" > "$venv/EXTRAS"
fi
SARIF_MULTITOOL_VERSION=5.7.0
sarif_dir="$repo/.tools/sarif-multitool"
if [ -x "$sarif_dir/Sarif.Multitool" ] && [ "$(cat "$sarif_dir/VERSION" 2>/dev/null)" = "$SARIF_MULTITOOL_VERSION" ]; then
  say "SARIF Multitool $SARIF_MULTITOOL_VERSION present"
elif [ "$(uname -m)" = x86_64 ] && command -v npm >/dev/null; then
  say "fetching SARIF Multitool $SARIF_MULTITOOL_VERSION (npm @microsoft/sarif-multitool-linux)"
  stmp=$(mktemp -d)
  (cd "$stmp" && npm pack --silent "@microsoft/sarif-multitool-linux@$SARIF_MULTITOOL_VERSION" >/dev/null) \
    || die "npm pack @microsoft/sarif-multitool-linux failed (no registry access?)"
  rm -rf "$sarif_dir" && mkdir -p "$sarif_dir"
  tar -xzf "$stmp"/*.tgz -C "$sarif_dir" --strip-components=1 || die "cannot unpack the SARIF Multitool"
  rm -rf "$stmp"
  chmod +x "$sarif_dir/Sarif.Multitool"
  echo "$SARIF_MULTITOOL_VERSION" > "$sarif_dir/VERSION"
else
  say "SARIF Multitool needs x86_64 and npm: the SARIF validation test will be skipped"
fi

export TAPLINE_CARGO_FEATURES="${cargo_features[*]:-}"

case "${1:-}" in
  "") say "done" ;;
  run)
    shift
    captures=("$@")
    [ ${#captures[@]} -gt 0 ] || captures=("$repo/sample-captures/shop-api.pcap" "$repo/sample-captures/abuse-api.pcap")
    say "building tapline"
    cargo build --quiet -p tapline --bin tapline ${cargo_features[@]+"${cargo_features[@]}"}
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      say "opening the workbench on ${captures[*]}"
      cargo run --quiet -p tapline --bin tapline ${cargo_features[@]+"${cargo_features[@]}"} -- open "${captures[@]}"
    else
      # No desktop here: run the app on a virtual screen and save what it shows.
      shot="$repo/target-screenshot.png"
      say "no display: running the workbench under Xvfb on ${captures[*]}; screenshot to $shot"
      TAPLINE_CARGO_FEATURES="${cargo_features[*]:-}" "$repo/tests/gui/screenshot.sh" "$shot" "${captures[@]}"
    fi
    ;;
  test)
    shift
    say "running the test suite"
    cargo test --workspace ${cargo_features[@]+"${cargo_features[@]}"} "$@"
    ;;
  *) die "unknown job '$1' (use: run | test)" ;;
esac
