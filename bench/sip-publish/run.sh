#!/usr/bin/env bash
# PUBLISH affiliations at rising rates, sipp against mcx (durable: SQLite, synchronous=FULL)
# and against Kamailio's presence server (in memory), one after the other on this machine;
# prints, for each, the highest offered rate answered with < 0.1 % failures and its p99,
# and what each grants for Expires: 4294967295. Issue 15; figures in docs/PERFORMANCE.md.
#
#   bench/sip-publish/run.sh            # rates 250 500 1000 2000 4000 8000, 10 s each
#   RATES="500 1000" SECONDS_PER_RATE=5 SYSTEMS=mcx bench/sip-publish/run.sh
#   MCX_BIN=../mcx-before SYSTEMS=mcx bench/sip-publish/run.sh
#
# Needs sipp (Debian sip-tester) and kamailio + kamailio-presence-modules (installed with
# apt-get when missing), and builds mcx in release mode.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rates=${RATES:-250 500 1000 2000 4000 8000}
per_rate=${SECONDS_PER_RATE:-10}
users=${USERS:-200}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${kamailio_pid:-}" ] && kill "$kamailio_pid" 2>/dev/null; rm -rf "$work"' EXIT

need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2" >&2; sudo=; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y $2 >/dev/null; }; }
need sipp sip-tester
need kamailio "kamailio kamailio-presence-modules"
# MCX_BIN=path runs that build instead (an earlier release, built beside this one).
if [ -n "${MCX_BIN:-}" ]; then
  mcx=$(realpath "$MCX_BIN")
else
  (cd "$repo" && cargo build --release --quiet --bin mcx)
  mcx="${CARGO_TARGET_DIR:-$repo/target}/release/mcx"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port); sip_port=$(free_port); kam_port=$(free_port)

# An MC system of $users officers, each a member of ops and patrol (N2 = 2).
{
  echo '[system]'; echo 'domain = "police.example"'; echo 'name = "Police (bench)"'; echo 'development = true'
  echo '[server]'; echo "listen = \"127.0.0.1:$http_port\""; echo "data-dir = \"$work/data\""
  echo '[sip]'; echo "listen = \"127.0.0.1:$sip_port\""
  for i in $(seq -w 1 "$users"); do
    echo '[[users]]'; echo "mc-service-id = \"sip:u$i@police.example\""; echo 'password = "pw"'
    echo '[users.services.mcptt]'; echo 'groups = ["sip:ops@police.example", "sip:patrol@police.example"]'; echo 'max-affiliations-n2 = 2'
  done
  for g in ops patrol; do
    echo '[[groups]]'; echo "mc-service-group-id = \"sip:$g@police.example\""
    echo '[groups.configuration]'; echo "display-name = \"$g\""; echo 'supported-services = ["mcptt"]'
    echo -n 'list = ['
    for i in $(seq -w 1 "$users"); do echo -n "{ uri = \"sip:u$i@police.example\" },"; done
    echo ']'
  done
} > "$work/mcx.toml"
"$mcx" serve --config "$work/mcx.toml" > "$work/mcx.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/v1/openapi.json" >/dev/null 2>&1 && break; sleep 0.1; done

# One log-on per user; two injection lines per user, one per group, so that consecutive
# PUBLISHes of a user change its set.
echo SEQUENTIAL > "$work/mcx.csv"
echo SEQUENTIAL > "$work/kamailio.csv"
for i in $(seq -w 1 "$users"); do
  token=$(curl -sf -X POST "http://127.0.0.1:$http_port/v1/session" -H 'content-type: application/json' \
    -d "{\"mc-service-id\":\"sip:u$i@police.example\",\"password\":\"pw\",\"client-id\":\"phone\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  for g in ops patrol; do
    echo "sip:u$i@police.example;$token;phone;sip:$g@police.example" >> "$work/mcx.csv"
    echo "sip:u$i@127.0.0.1:$kam_port;x;phone;sip:$g@police.example" >> "$work/kamailio.csv"
  done
done

mkdir -p "$work/dbtext"
sed -e "s/KAMAILIO_PORT/$kam_port/g" -e "s#DBTEXT_DIR#$work/dbtext#g" "$here/kamailio.cfg" > "$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -P "$work/kamailio.pid" -DD -E > "$work/kamailio.log" 2>&1 &
kamailio_pid=$!
sleep 1

# One rate: "<offered> <calls> <failed> <p99 ms>".
run_rate() { # name scenario port csv rate
  local dir="$work/$1-$5"; mkdir -p "$dir"
  (cd "$dir" && sipp -sf "$here/$2" -inf "$work/$4" -r "$5" -m $(( $5 * per_rate )) -l 20000 \
     -t u1 -p "$(free_port)" -bg -nostdin -trace_rtt -rtt_freq 100 -trace_stat -fd 1 \
     -timeout $(( per_rate + 30 ))s "127.0.0.1:$3" >/dev/null 2>&1 || true)
  # -bg forks: wait for it to finish.
  sleep "$per_rate"; while pgrep -f "sipp -sf $here/$2" >/dev/null; do sleep 0.5; done
  python3 - "$dir" "$5" <<'PY'
import csv, glob, sys
d, rate = sys.argv[1], sys.argv[2]
rtts = []
for f in glob.glob(d + "/*_rtt.csv"):
    for row in csv.reader(open(f), delimiter=";"):
        if len(row) >= 3 and row[1].replace(".", "", 1).isdigit():
            rtts.append(float(row[1]))
ok = failed = 0
for f in glob.glob(d + "/*_.csv"):
    rows = list(csv.reader(open(f), delimiter=";"))
    if len(rows) >= 2:
        head, last = rows[0], rows[-1]
        ok = int(last[head.index("SuccessfulCall(C)")])
        failed = int(last[head.index("FailedCall(C)")])
rtts.sort()
p99 = rtts[int(len(rtts) * 0.99) - 1] if rtts else float("nan")
print(rate, ok + failed, failed, f"{p99:.1f}")
PY
}

report() { # name scenario port csv
  local best="none" best_p99="-"
  echo "== $1: offered/s, calls, failed, p99 ms"
  for rate in $rates; do
    read -r offered calls failed p99 < <(run_rate "$1" "$2" "$3" "$4" "$rate")
    echo "   $offered $calls $failed $p99"
    if [ "$calls" -gt 0 ] && [ $(( failed * 1000 )) -lt "$calls" ]; then best=$offered; best_p99=$p99; else break; fi
  done
  echo "   highest rate with < 0.1 % failures: $best/s (p99 $best_p99 ms)"
}

# What each grants for Expires: 4294967295 (one PUBLISH, the 200 kept).
expires_granted() { # name scenario port csv
  local dir="$work/$1-expires"; mkdir -p "$dir"
  (cd "$dir" && sipp -sf "$here/$2" -inf "$work/$4" -m 1 -t u1 -p "$(free_port)" -nostdin \
     -trace_msg -timeout 10s "127.0.0.1:$3" >/dev/null 2>&1 || true)
  grep -h -i -A30 '^SIP/2.0 200' "$dir"/*_messages.log | grep -i -m1 '^ *Expires:' | tr -d '\r' || echo "no 200"
}

echo "machine: $(nproc) cores, $(uname -sr); mcx $(cd "$repo" && git rev-parse --short HEAD); kamailio $(kamailio -v | head -1 | cut -d' ' -f3)"
# What each keeps after that PUBLISH: mcx, the affiliation its JSON API shows (held for
# the session, not for a SIP timer); Kamailio, the presentity's expiry in its memory.
mcx_keeps() {
  local line token
  line=$(sed -n 2p "$work/mcx.csv"); token=$(echo "$line" | cut -d';' -f2)
  curl -sf "http://127.0.0.1:$http_port/v1/affiliations" -H "authorization: Bearer $token" \
    > "$work/mcx-keeps.json" || true
  python3 - "$work/mcx-keeps.json" "${line%%;*}" <<'PY'
import json, sys
try:
    held = json.load(open(sys.argv[1]))["affiliations"]
except (OSError, ValueError, KeyError):
    held = None
if held is None:
    print("the JSON API did not answer")
else:
    shown = ["%s %s (%s)" % (a["mc-service-group-id"], a["status"], ",".join(a["clients"])) for a in held]
    print(sys.argv[2] + ": " + ("; ".join(shown) or "nothing held"))
PY
}
kamailio_keeps() {
  local user; user=$(sed -n 2p "$work/kamailio.csv" | cut -d';' -f1 | sed -e 's/^sip://' -e 's/@.*//')
  kamcmd -s "unix:$work/dbtext/kamailio.ctl" presence.presentity_list > "$work/kamailio-keeps.txt" 2>&1 || true
  python3 - "$work/kamailio-keeps.txt" "$user" <<'PY'
import re, sys, time
text = open(sys.argv[1]).read()
for record in text.split("}"):
    if re.search(r"user: " + re.escape(sys.argv[2]) + r"\b", record):
        expires = re.search(r"expires: (\d+)", record)
        if expires:
            print("presentity %s expires in %d s" % (sys.argv[2], int(expires.group(1)) - int(time.time())))
            break
else:
    print("no presentity kept")
PY
}
echo "Expires: 4294967295 -> mcx grants: $(expires_granted mcx mcx_publish.xml "$sip_port" mcx.csv)"
echo "   mcx then holds (JSON API): $(mcx_keeps)"
echo "Expires: 4294967295 -> kamailio grants: $(expires_granted kamailio kamailio_publish.xml "$kam_port" kamailio.csv)"
echo "   kamailio then keeps (kamcmd presence.presentity_list): $(kamailio_keeps)"
for system in ${SYSTEMS:-mcx kamailio}; do
  case $system in
    mcx) report mcx mcx_publish.xml "$sip_port" mcx.csv ;;
    kamailio) report kamailio kamailio_publish.xml "$kam_port" kamailio.csv ;;
  esac
done
