#!/usr/bin/env bash
# A local high-availability MC system on one machine, from Debian's packages:
#   etcd (one member) and two PostgreSQL 15 servers managed by Patroni (a primary and a
#   synchronous streaming replica), HAProxy in front of PostgreSQL (the primary only, by
#   Patroni's REST check) and in front of three `mcx serve` nodes of police.example, and
#   one partner system, fire.example, reaching police through all three nodes.
#
#   deploy/local-ha/run.sh up [DIR]        start everything under DIR (default ./mcx-ha)
#   deploy/local-ha/run.sh failover [DIR]  drive load, kill the PostgreSQL primary (its
#                                          Patroni and its postmaster, SIGKILL), measure
#   deploy/local-ha/run.sh status [DIR]    who is primary, what answers
#   deploy/local-ha/run.sh down [DIR]      stop everything (DIR is kept)
#
# Ports (loopback): etcd 2379/2380; PostgreSQL 5441 and 5442, Patroni REST 8008 and 8009,
# HAProxy 5440 (PostgreSQL primary) and 7480 (police's client API); police nodes 7400,
# 7404, 7406 (client API) and 7401, 7405, 7407 (interconnection); fire 7402 and 7403.
# Needs root for apt-get (or the packages installed already): etcd-server, patroni,
# postgresql, haproxy. Figures of a run are in docs/OPERATIONS.md.
set -euo pipefail

command="${1:-up}"
DIR="${2:-mcx-ha}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
MCX="${MCX:-$REPO/target/release/mcx}"
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
PGPASS="pg-local-ha"
STORAGE_URL="postgres://postgres:$PGPASS@127.0.0.1:5440/mcx"
POLICE_NODES=(7400 7404 7406)

say() { echo "== $*"; }
fail() { echo "local-ha: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
# PostgreSQL refuses to run as root: as root, its servers run as Debian's postgres user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install_packages() {
  local missing=""
  command -v etcd >/dev/null 2>&1 || missing="$missing etcd-server"
  command -v patroni >/dev/null 2>&1 || missing="$missing patroni"
  [ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] || missing="$missing postgresql"
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
  command -v curl >/dev/null 2>&1 || missing="$missing curl"
  if [ -n "$missing" ]; then
    say "installing$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
}

# PostgreSQL's files must be reachable by the postgres user: under DIR if it can reach
# DIR, else in a directory of its own under /var/tmp (named in DIR/pg-root).
pg_root() {
  if [ -f "$DIR/pg-root" ]; then cat "$DIR/pg-root"; return; fi
  local root="$DIR/pg"
  mkdir -p "$root"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$root"
    runuser -u postgres -- test -w "$root" 2>/dev/null || {
      root="$(mktemp -d /var/tmp/mcx-ha-pg.XXXXXX)"
      chown postgres "$root"
    }
  fi
  echo "$root" > "$DIR/pg-root"
  echo "$root"
}

start() { # name, command...: in the background, its pid in DIR/run/name.pid
  local name="$1"; shift
  mkdir -p "$DIR/run" "$DIR/log"
  "$@" >"$DIR/log/$name.log" 2>&1 &
  echo $! > "$DIR/run/$name.pid"
}

stop() { # name [signal]
  local pidfile="$DIR/run/$1.pid"
  [ -f "$pidfile" ] || return 0
  kill "-${2:-TERM}" "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

wait_for() { # what, seconds, command...
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$what: not within $seconds s (logs in $DIR/log)"
    sleep 0.2
  done
}

patroni_config() { # n: 1 or 2
  local n="$1" root; root="$(pg_root)"
  mkdir -p "$root/sock$n"
  [ "$(id -u)" -eq 0 ] && chown postgres "$root/sock$n"
  cat > "$root/patroni$n.yml" <<EOF
scope: mcx-local
namespace: /mcx-local/
name: pg$n
restapi:
  listen: 127.0.0.1:$((8007 + n))
  connect_address: 127.0.0.1:$((8007 + n))
etcd3:
  hosts: 127.0.0.1:2379
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    # Commits wait for the replica: a promoted replica has every acknowledged commit.
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        max_connections: 200
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: 127.0.0.1:$((5440 + n))
  connect_address: 127.0.0.1:$((5440 + n))
  data_dir: $root/data$n
  bin_dir: $PGBIN
  pgpass: $root/pgpass$n
  authentication:
    superuser: {username: postgres, password: $PGPASS}
    replication: {username: replicator, password: $PGPASS-replication}
    rewind: {username: rewinder, password: $PGPASS-rewind}
  parameters:
    unix_socket_directories: $root/sock$n
EOF
  [ "$(id -u)" -eq 0 ] && chown postgres "$root/patroni$n.yml"
  echo "$root/patroni$n.yml"
}

haproxy_config() {
  local servers="" i=1
  for port in "${POLICE_NODES[@]}"; do
    servers="$servers  server n$i 127.0.0.1:$port check
"
    i=$((i + 1))
  done
  cat > "$DIR/haproxy.cfg" <<EOF
global
  maxconn 2048
defaults
  timeout connect 2s
  timeout client 1h
  timeout server 1h
# PostgreSQL: only the server Patroni reports as primary (GET /primary answers 200).
listen postgres
  bind 127.0.0.1:5440
  mode tcp
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
  server pg1 127.0.0.1:5441 check port 8008
  server pg2 127.0.0.1:5442 check port 8009
# police.example's client API on three nodes.
listen mcx
  bind 127.0.0.1:7480
  mode http
  balance roundrobin
  option httpchk GET /v1/system
  retries 3
  option redispatch
  default-server inter 500ms fall 2 rise 2
$servers
EOF
}

mcx_configs() {
  [ -f "$DIR/fed/police.example.toml" ] && return
  "$MCX" config federation "$DIR/fed" police.example fire.example --base-port 7400 >/dev/null
  local police="$DIR/fed/police.example.toml" n=1
  for port in "${POLICE_NODES[@]}"; do
    sed -e "s|listen = \"127.0.0.1:7400\"|listen = \"127.0.0.1:$port\"|" \
        -e "s|listen = \"127.0.0.1:7401\"|listen = \"127.0.0.1:$((port + 1))\"|" \
        -e "s|data-dir = \"police.example-data\"|data-dir = \"police-$n-data\"\nstorage-url = \"$STORAGE_URL\"\nstorage-key = \"police.key\"|" \
        "$police" > "$DIR/fed/police-$n.toml"
    n=$((n + 1))
  done
  sed -i -e 's|endpoint = "https://127.0.0.1:7401"|endpoint = ["https://127.0.0.1:7401", "https://127.0.0.1:7405", "https://127.0.0.1:7407"]|' \
    "$DIR/fed/fire.example.toml"
}

primary() { # the Patroni member whose REST API says primary: 1 or 2
  for n in 1 2; do
    if curl -fs "http://127.0.0.1:$((8007 + n))/primary" >/dev/null 2>&1; then echo "$n"; return; fi
  done
  return 1
}

up() {
  install_packages
  [ -x "$MCX" ] || { say "building mcx (release)"; (cd "$REPO" && cargo build --release --locked -q); }
  local root; root="$(pg_root)"
  say "etcd"
  start etcd etcd --name local --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster local=http://127.0.0.1:2380
  wait_for "etcd" 20 curl -fs http://127.0.0.1:2379/health
  say "PostgreSQL under Patroni: pg1 and pg2, one primary and its replica"
  start patroni1 as_pg patroni "$(patroni_config 1)"
  # On a first start pg1 bootstraps the cluster alone; on a restart either may be ahead,
  # so both start and Patroni elects the one with the latest timeline.
  [ -d "$root/data2" ] || wait_for "a primary" 60 primary
  start patroni2 as_pg patroni "$(patroni_config 2)"
  wait_for "a primary" 60 primary
  local standby=$((3 - $(primary)))
  wait_for "the replica streaming" 90 curl -fs "http://127.0.0.1:$((8007 + standby))/replica"
  # Until Patroni names the replica synchronous, commits do not wait for it, and Patroni
  # would rightly refuse to promote it (it may lack acknowledged commits).
  wait_for "the replica synchronous" 60 curl -fs "http://127.0.0.1:$((8007 + standby))/synchronous"
  say "HAProxy: 5440 to the primary, 7480 to police's nodes"
  haproxy_config
  start haproxy "$HAPROXY" -db -f "$DIR/haproxy.cfg"
  wait_for "PostgreSQL through HAProxy" 20 env PGPASSWORD="$PGPASS" "$PGBIN/psql" -h 127.0.0.1 -p 5440 -U postgres -d postgres -Atc "select 1"
  env PGPASSWORD="$PGPASS" "$PGBIN/psql" -h 127.0.0.1 -p 5440 -U postgres -d postgres -Atc \
    "select 1 from pg_database where datname = 'mcx'" | grep -q 1 ||
    env PGPASSWORD="$PGPASS" "$PGBIN/psql" -h 127.0.0.1 -p 5440 -U postgres -d postgres -qc "create database mcx"
  mcx_configs
  say "mcx: police on three nodes, fire alone"
  local n=1
  for port in "${POLICE_NODES[@]}"; do
    start "police-$n" "$MCX" serve --config "$DIR/fed/police-$n.toml"
    wait_for "police node $n" 30 curl -fs "http://127.0.0.1:$port/v1/system"
    n=$((n + 1))
  done
  start fire env -u MCX_STORAGE_URL "$MCX" serve --config "$DIR/fed/fire.example.toml"
  wait_for "fire" 30 curl -fs http://127.0.0.1:7402/v1/system
  wait_for "police through HAProxy" 20 curl -fs http://127.0.0.1:7480/v1/system
  status
  echo "police: http://127.0.0.1:7480 (console at /console; users in $DIR/fed/police.example.toml, password = name)"
}

status() {
  local p; p="$(primary || true)"
  if [ -n "$p" ]; then echo "PostgreSQL primary: pg$p (port $((5440 + p)))"; else echo "PostgreSQL primary: none"; fi
  for port in "${POLICE_NODES[@]}" 7402 7480; do
    if curl -fs "http://127.0.0.1:$port/v1/system" >/dev/null 2>&1; then echo "  :$port answers"; else echo "  :$port does not answer"; fi
  done
}

down() {
  for name in fire police-3 police-2 police-1 haproxy; do stop "$name"; done
  # Patroni runs under runuser as root: found by its configuration, not by a pid.
  pkill -f "patroni $(pg_root)/patroni" 2>/dev/null || true
  sleep 2
  # A Patroni killed outright leaves its postmaster behind.
  pkill -f "$(pg_root)/data" 2>/dev/null || true
  rm -f "$DIR/run/patroni1.pid" "$DIR/run/patroni2.pid"
  stop etcd
  say "stopped (data kept in $DIR)"
}

# Creates groups through HAProxy as fast as they are answered while the primary is
# killed; every creation acknowledged must be there afterwards. Prints the figures.
failover() {
  command -v python3 >/dev/null || fail "the measurement needs python3"
  local p; p="$(primary)" || fail "no PostgreSQL primary: run 'up' first"
  curl -fs "http://127.0.0.1:$((8010 - p))/synchronous" >/dev/null ||
    fail "pg$((3 - p)) is not a synchronous replica (yet): a failover now could lose commits, and Patroni would refuse it"
  local admin="sip:admin@police.example"
  export MCX_SESSION_FILE="$DIR/sessions.json" MCX_SERVER=http://127.0.0.1:7480
  MCX_PASSWORD=admin "$MCX" login --user "$admin" >/dev/null
  local log="$DIR/failover.log" run; run="$(date +%s)"
  : > "$log"
  say "load: one group created at a time through HAProxy; the primary is pg$p"
  (
    i=0
    while [ ! -f "$DIR/run/stop-load" ]; do
      i=$((i + 1))
      group="sip:f$run-$i@police.example"
      if "$MCX" group create "$group" --display-name "f$i" --service mcptt >/dev/null 2>&1; then
        echo "$(date +%s.%N) ok $group" >> "$log"
      else
        echo "$(date +%s.%N) failed $group" >> "$log"
        sleep 0.1
      fi
    done
  ) &
  local load=$!
  sleep 5
  say "killing pg$p: its Patroni, then its postmaster (SIGKILL)"
  local killed_at; killed_at="$(date +%s.%N)"
  pkill -9 -f "patroni $(pg_root)/patroni$p.yml" || true
  pkill -9 -f "$(pg_root)/data$p" || true
  rm -f "$DIR/run/patroni$p.pid"
  wait_for "a new primary" 60 primary
  local promoted_at; promoted_at="$(date +%s.%N)"
  say "pg$(primary) is primary; load goes on for 10 s"
  sleep 10
  touch "$DIR/run/stop-load"; wait "$load"; rm -f "$DIR/run/stop-load"
  "$MCX" group list --json > "$DIR/groups-after.json"
  python3 - "$log" "$DIR/groups-after.json" "$killed_at" "$promoted_at" <<'EOF'
import json, sys
log, after, killed, promoted = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [l.split() for l in open(log) if l.strip()]
ok = [(float(t), g) for t, s, g in rows if s == "ok"]
failed = [(float(t), g) for t, s, g in rows if s == "failed"]
listed = json.load(open(after))
listed = listed["groups"] if isinstance(listed, dict) else listed
stored = {g["mc-service-group-id"] for g in listed}
lost = [g for _, g in ok if g not in stored]
times = sorted(t for t, _ in ok)
gaps = [(b - a, a) for a, b in zip(times, times[1:])]
gap, gap_from = max(gaps) if gaps else (float("nan"), killed)
print(f"acknowledged creations: {len(ok)}, failed attempts: {len(failed)}")
print(f"primary killed -> replica promoted (Patroni): {promoted - killed:.1f} s")
print(f"longest time without an acknowledged request: {gap:.1f} s, from {gap_from - killed:+.1f} s after the kill")
print(f"acknowledged but lost: {len(lost)}")
sys.exit(1 if lost else 0)
EOF
  say "pg$p is down; 'run.sh down' then 'run.sh up' brings it back as a replica"
}

case "$command" in
  up) up ;;
  down) down ;;
  status) status ;;
  failover) failover ;;
  *) fail "unknown command '$command' (up, failover, status, down)" ;;
esac
