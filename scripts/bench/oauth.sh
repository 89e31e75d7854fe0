#!/usr/bin/env bash
# OAuth gate cost (docs/PERFORMANCE.md): two pomdev relays side by side in
# one run, one with --http-auth none and one with --http-auth owner, each
# with a stock OpenSSH tunnel (ssh -T -R 0) to the same tiny origin; wrk
# -t2 -c32 through each, round by round, the gated one with a valid token
# (minted for the owner with ssh RELAY pomdev-access token). Target: gated
# throughput >= 0.9x open. Needs wrk and ssh.
# Each round also prints the relay process's CPU time per request (user +
# system, from /proc). CONNS sets wrk's connections (32).
# Usage: [ROUNDS=3] [CONNS=32] scripts/bench/oauth.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
. scripts/bench/lib.sh
build_all
SSHOPTS=(-F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

OP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" & pids+=($!)
declare -A HP HOST RPID ratesum
# cpu PID: the process's user + system time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run MODE ARGS...: wrk through the relay of MODE, then its CPU per request.
run() {
  local mode=$1 c0 out reqs; shift
  c0=$(cpu "${RPID[$mode]}")
  out=$(wrk -t2 -c"$CONNS" -d "$DUR" --latency "$@")
  echo "$out" | grep -E "Requests/sec|50%|99%|Non-2xx"
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  ratesum[$mode]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
  awk -v a="$c0" -v b="$(cpu "${RPID[$mode]}")" -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "relay CPU per request: %.1f us\n", (b-a)/hz*1e6/n}'
}
for mode in none owner; do
  SP=$(free_port); HP[$mode]=$(free_port)
  "$work/pomdev" relay --state-dir "$work/state-$mode" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:${HP[$mode]}" \
    --http-auth "$mode" --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay-$mode.out" 2> "$work/relay-$mode.err" & pids+=($!); RPID[$mode]=$!
  wait_for "grep -q Connect '$work/relay-$mode.out'"
  ssh "${SSHOPTS[@]}" -p "$SP" -T -R 0 127.0.0.1 < /dev/null > "$work/ssh-$mode.out" 2>&1 & pids+=($!)
  wait_for "grep -q Remote: '$work/ssh-$mode.out'"
  URL=$(grep Remote: "$work/ssh-$mode.out" | head -1 | awk '{print $2}' | tr -d '\r')
  HOST[$mode]=${URL#http://}
  if [ "$mode" = owner ]; then
    TOKEN=$(ssh "${SSHOPTS[@]}" -p "$SP" 127.0.0.1 pomdev-access token | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["token"])')
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: ${HOST[$mode]}" "http://127.0.0.1:${HP[$mode]}/")
    [ "$code" = 401 ] || { echo "gated relay answered $code without a token" >&2; exit 1; }
  fi
done

for r in $(seq "$ROUNDS"); do
  echo "== round $r: --http-auth none"
  run none -H "Host: ${HOST[none]}" "http://127.0.0.1:${HP[none]}/"
  echo "== round $r: --http-auth owner, valid token"
  run owner -H "Host: ${HOST[owner]}" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${HP[owner]}/"
done
python3 - "${ratesum[none]}" "${ratesum[owner]}" <<'PY'
import statistics, sys
n, o = ([float(x) for x in a.split()] for a in sys.argv[1:3])
r = [b / a for a, b in zip(n, o)]
print("owner / none per round:", " ".join(f"{x:.3f}" for x in r), f"(median {statistics.median(r):.3f})")
PY
