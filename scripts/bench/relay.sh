#!/usr/bin/env bash
# Relay benchmark (docs/PERFORMANCE.md): wrk -t2 -c32 against a tiny origin
# answering 1.3 KB of JSON, direct and through pomdev relay with the stock
# OpenSSH client, both as a developer runs it (ssh -T -R 0, a session that
# prints a line per request) and as sish is run below (ssh -N -R
# bench:80:..., no session); SSE delay added; relay RSS per idle tunnel.
# With SISH=/path/to/sish the same runs go through sish too (ssh -N -R
# bench:80:...), interleaved round by round; this script does not fetch or
# build sish. Needs wrk and ssh.
# IDLE_CIPHER=chacha20-poly1305@openssh.com makes the idle clients choose
# OpenSSH's cipher. Usage: [ROUNDS=5] [SISH=...] scripts/bench/relay.sh [duration] [idle-tunnels]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
IDLE=${2:-1000}
ROUNDS=${ROUNDS:-1}
. scripts/bench/lib.sh
build_all
SSHOPTS=(-F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

OP=$(free_port); SP=$(free_port); HP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" & pids+=($!)
GOGC=${RELAY_GOGC:-100} "$work/pomdev" relay --state-dir "$work/state" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:$HP" \
  --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay.out" 2> "$work/relay.err" & RELAY=$!; pids+=($RELAY)
wait_for "grep -q Connect '$work/relay.out'"
ssh "${SSHOPTS[@]}" -p "$SP" -T -R 0 127.0.0.1 < /dev/null > "$work/ssh.out" 2>&1 & pids+=($!)
wait_for "grep -q Remote: '$work/ssh.out'"
URL=$(grep Remote: "$work/ssh.out" | head -1 | awk '{print $2}' | tr -d '\r')
HOST=${URL#http://}
echo "tunnel $URL"
# The same relay, a second tunnel without a session, as sish is run.
ssh "${SSHOPTS[@]}" -p "$SP" -N -R "bench:80:127.0.0.1:$OP" 127.0.0.1 < /dev/null > "$work/ssh-n.out" 2>&1 & pids+=($!)
NHOST=bench.${HOST#*.}
wait_for "curl -sf -H 'Host: $NHOST' http://127.0.0.1:$HP/ >/dev/null"

if [ -n "${SISH:-}" ]; then
  XSP=$(free_port); XHP=$(free_port)
  mkdir -p "$work/sish-keys" "$work/sish-pubkeys"
  "$SISH" --ssh-address "127.0.0.1:$XSP" --http-address "127.0.0.1:$XHP" --domain localhost --authentication=false \
    --private-keys-directory "$work/sish-keys" --authentication-keys-directory "$work/sish-pubkeys" --load-templates=false \
    --bind-random-subdomains=false --idle-connection=false \
    --log-to-client=false --log-to-stdout=false > "$work/sish.log" 2>&1 & SISHPID=$!; pids+=($SISHPID)
  wait_for "ssh-keyscan -p $XSP 127.0.0.1 >/dev/null 2>&1"
  ssh "${SSHOPTS[@]}" -p "$XSP" -N -R "bench:80:127.0.0.1:$OP" 127.0.0.1 < /dev/null > "$work/sish-ssh.out" 2>&1 & pids+=($!)
  wait_for "curl -sf -H 'Host: bench.localhost' http://127.0.0.1:$XHP/ >/dev/null"
fi

# bench NAME ARGS...: one wrk run, its latency and rate lines printed, the
# rate kept in rates[NAME] (space-separated, one per round).
declare -A rates
bench() {
  local name=$1 out; shift
  out=$(wrk -t2 -c32 -d "$DUR" --latency "$@")
  echo "$out" | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
  rates[$name]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
}
for r in $(seq "$ROUNDS"); do
  echo "== round $r: direct"
  bench direct "http://127.0.0.1:$OP/"
  echo "== round $r: through pomdev relay (OpenSSH client, ssh -T -R 0)"
  bench pomdev -H "Host: $HOST" "http://127.0.0.1:$HP/"
  echo "== round $r: through pomdev relay (OpenSSH client, ssh -N -R bench:80:...)"
  bench pomdevN -H "Host: $NHOST" "http://127.0.0.1:$HP/"
  if [ -n "${SISH:-}" ]; then
    echo "== round $r: through sish (OpenSSH client, ssh -N -R bench:80:...)"
    bench sish -H "Host: bench.localhost" "http://127.0.0.1:$XHP/"
  fi
done
# Ratios per round and their medians.
python3 - "${rates[direct]}" "${rates[pomdev]}" "${rates[pomdevN]}" "${rates[sish]:-}" <<'PY'
import statistics, sys
d, p, n = ([float(x) for x in a.split()] for a in sys.argv[1:4])
s = [float(x) for x in sys.argv[4].split()]
def show(label, v, fmt):
    print(f"{label:<34}", " ".join(format(x, fmt) for x in v), f"(median {format(statistics.median(v), fmt)})")
show("pomdev -T / direct per round:", [b / a for a, b in zip(d, p)], ".3f")
show("pomdev -N / direct per round:", [b / a for a, b in zip(d, n)], ".3f")
if s:
    show("pomdev -T / sish per round:", [a / b for a, b in zip(p, s)], ".2f")
    show("pomdev -N / sish per round:", [a / b for a, b in zip(n, s)], ".2f")
PY

sse_added=""; sish_added=""
for r in $(seq "$ROUNDS"); do
  echo "== round $r: SSE, pomdev relay"
  out=$("$work/tunnels" -mode sse -url "$URL" -http "127.0.0.1:$HP" -origin "http://127.0.0.1:$OP" -events 300)
  echo "$out"; sse_added+="${out##* } "
  if [ -n "${SISH:-}" ]; then
    echo "== round $r: SSE, sish"
    out=$("$work/tunnels" -mode sse -url "http://bench.localhost" -http "127.0.0.1:$XHP" -origin "http://127.0.0.1:$OP" -events 300)
    echo "$out"; sish_added+="${out##* } "
  fi
done
echo "SSE added per round: pomdev $sse_added${SISH:+| sish $sish_added}"

echo "== idle tunnels (relay in a child process, after GC and FreeOSMemory)"
"$work/tunnels" -mode idle -n "$IDLE" ${IDLE_CIPHER:+-cipher "$IDLE_CIPHER"}
echo "== idle tunnels (the pomdev binary above, RSS 10 s after connecting, no forced GC)"
"$work/tunnels" -mode idle -ssh "127.0.0.1:$SP" -pid "$RELAY" -n "$IDLE" ${IDLE_CIPHER:+-cipher "$IDLE_CIPHER"}
if [ -n "${SISH:-}" ]; then
  echo "== idle tunnels (sish, RSS 10 s after connecting, HTTP routes idle-N)"
  "$work/tunnels" -mode idle -ssh "127.0.0.1:$XSP" -pid "$SISHPID" -n "$IDLE" -bind "idle-%d:80" ${IDLE_CIPHER:+-cipher "$IDLE_CIPHER"}
fi
