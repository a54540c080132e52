#!/usr/bin/env bash
# One home system as one node and as two nodes on PostgreSQL behind HAProxy, measured by
# `mcx bench --running` in one run on one machine: the same deployment (home, two
# partners), the same scenarios, the same durable PostgreSQL (fsync and synchronous
# commit on), one node then two.
#
#   bench/two-nodes/run.sh [OUT]     (default ./bench-two-nodes; needs a release build:
#                                     cargo build --release, or MCX=path/to/mcx)
# Scenarios and duration: SCENARIOS ("baseline affiliate-local affiliate-partner"),
# DURATION (10 s). The reports are OUT/nodes-1.json and OUT/nodes-2.json.
set -euo pipefail

OUT="${1:-bench-two-nodes}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
MCX="${MCX:-$REPO/target/release/mcx}"
SCENARIOS="${SCENARIOS:-baseline affiliate-local affiliate-partner}"
DURATION="${DURATION:-10}"
[ -x "$MCX" ] || { echo "no mcx at $MCX: cargo build --release first, or set MCX" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=""
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

PGDATA_DIR="$(mktemp -d /var/tmp/mcx-bench-pg.XXXXXX)"
PGPORT=5460
[ "$(id -u)" -eq 0 ] && chown postgres "$PGDATA_DIR"
as_pg "$PGBIN/initdb" -D "$PGDATA_DIR/db" -A trust -U postgres >/dev/null
# Durable as in production: fsync and synchronous_commit stay on.
as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR/db" -l "$PGDATA_DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA_DIR -c max_connections=300" start >/dev/null
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR/db" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PGDATA_DIR"
}
trap cleanup EXIT

answering() {
  for _ in $(seq 1 200); do curl -fs "$1/v1/system" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "nothing answers at $1" >&2; exit 1
}

run() { # nodes
  local nodes="$1" dir="$OUT/nodes-$1"
  rm -rf "$dir"
  "$MCX" bench --prepare "$dir" --partners 2 --base-port 7600 >/dev/null
  "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "drop database if exists bench_$nodes" -c "create database bench_$nodes"
  local home="$dir/home.example.toml"
  local api ic
  api="$(grep -m1 '^listen = ' "$home" | sed 's/.*:\([0-9]*\)"/\1/')"
  ic="$(sed -n '/^\[interconnection\]/,/^\[/p' "$home" | grep -m1 '^listen = ' | sed 's/.*:\([0-9]*\)"/\1/')"
  local endpoints="" k
  for k in $(seq 1 "$nodes"); do
    sed -e "0,/^listen = \"127.0.0.1:$api\"/s//listen = \"127.0.0.1:$((7700 + 2 * k))\"/" \
        -e "s|^listen = \"127.0.0.1:$ic\"|listen = \"127.0.0.1:$((7701 + 2 * k))\"|" \
        -e "s|^data-dir = .*|data-dir = \"home-$k-data\"\nstorage-url = \"postgres://postgres@127.0.0.1:$PGPORT/bench_$nodes\"\nstorage-key = \"home.key\"|" \
        "$home" > "$dir/home-$k.toml"
    endpoints="$endpoints${endpoints:+, }\"https://127.0.0.1:$((7701 + 2 * k))\""
  done
  for partner in "$dir"/partner*.toml; do
    sed -i "s|endpoint = \"https://127.0.0.1:$ic\"|endpoint = [$endpoints]|" "$partner"
    "$MCX" serve --config "$partner" >"$partner.log" 2>&1 &
    PIDS+=($!)
  done
  local servers=""
  for k in $(seq 1 "$nodes"); do
    "$MCX" serve --config "$dir/home-$k.toml" >"$dir/home-$k.log" 2>&1 &
    PIDS+=($!)
    answering "http://127.0.0.1:$((7700 + 2 * k))"
    servers="$servers  server n$k 127.0.0.1:$((7700 + 2 * k)) check
"
  done
  cat > "$dir/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
listen home
  bind 127.0.0.1:7690
  balance roundrobin
  option httpchk GET /v1/system
  http-reuse always
$servers
EOF
  "$HAPROXY" -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  PIDS+=($!)
  answering http://127.0.0.1:7690
  python3 - "$dir/deployment.json" <<'EOF'
import json, sys
path = sys.argv[1]
manifest = json.load(open(path))
manifest["urls"]["home.example"] = "http://127.0.0.1:7690"
json.dump(manifest, open(path, "w"), indent=2)
EOF
  echo "== home.example on $nodes node(s) behind HAProxy, PostgreSQL durable"
  # shellcheck disable=SC2086
  "$MCX" bench --running "$dir" $SCENARIOS --duration "$DURATION" --warmup 2 --json "$OUT/nodes-$nodes.json"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}

run 1
run 2
echo "reports: $OUT/nodes-1.json $OUT/nodes-2.json"
