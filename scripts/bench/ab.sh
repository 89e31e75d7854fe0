#!/usr/bin/env bash
# Two pomdev builds side by side (docs/PERFORMANCE.md): relay A from the
# commit or binary given first, relay B from the work tree (or a second
# binary), each with a stock OpenSSH tunnel (ssh -T -R 0) to the same tiny
# origin; wrk -t2 -c32 through each, interleaved round by round, with each
# relay's CPU time per request (from /proc) and the B / A ratio per round.
# Then SSE delay added by each, interleaved. Rates on this machine drift
# between runs; compare only figures of one run.
# Usage: [ROUNDS=5] scripts/bench/ab.sh A(commit|binary) [B(binary)] [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 A(commit|binary) [B(binary)] [duration]" >&2; exit 2; }
A=$1; B=${2:-}; DUR=${3:-5s}
ROUNDS=${ROUNDS:-5}
. scripts/bench/lib.sh
build_all
if [ -x "$A" ]; then cp "$A" "$work/pomdev-a"; else
  git worktree add -q --detach "$work/a" "$A"
  (cd "$work/a" && go build -o "$work/pomdev-a" ./cmd/pomdev)
  git worktree remove --force "$work/a"
fi
if [ -n "$B" ]; then cp "$B" "$work/pomdev-b"; else cp "$work/pomdev" "$work/pomdev-b"; fi
SSHOPTS=(-F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

OP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" & pids+=($!)
declare -A HP HOST RPID rates cpus URLS
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local v=$1 c0 out reqs c; shift
  c0=$(cpu "${RPID[$v]}")
  out=$(wrk -t2 -c32 -d "$DUR" --latency "$@")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  c=$(awk -v a="$c0" -v b="$(cpu "${RPID[$v]}")" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)/hz*1e6/n}')
  rates[$v]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "; cpus[$v]+="$c "
  echo "$v: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s, p99 $(echo "$out" | awk '/ 99%/ {print $2}'), relay CPU $c us/request$(echo "$out" | grep -o 'Non-2xx.*' || true)"
}
for v in a b; do
  SP=$(free_port); HP[$v]=$(free_port)
  "$work/pomdev-$v" relay --state-dir "$work/state-$v" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:${HP[$v]}" \
    --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay-$v.out" 2> "$work/relay-$v.err" & pids+=($!); RPID[$v]=$!
  wait_for "grep -q Connect '$work/relay-$v.out'"
  ssh "${SSHOPTS[@]}" -p "$SP" -T -R 0 127.0.0.1 < /dev/null > "$work/ssh-$v.out" 2>&1 & pids+=($!)
  wait_for "grep -q Remote: '$work/ssh-$v.out'"
  URLS[$v]=$(grep Remote: "$work/ssh-$v.out" | head -1 | awk '{print $2}' | tr -d '\r')
  HOST[$v]=${URLS[$v]#http://}
done
for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  # Alternate which goes first, so that drift does not favour one.
  if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for v in $order; do run "$v" -H "Host: ${HOST[$v]}" "http://127.0.0.1:${HP[$v]}/"; done
done
sse=()
for r in $(seq "$ROUNDS"); do
  for v in a b; do
    out=$("$work/tunnels" -mode sse -url "${URLS[$v]}" -http "127.0.0.1:${HP[$v]}" -origin "http://127.0.0.1:$OP" -events 300)
    echo "SSE $v: $out"; sse+=("$v=${out##* }")
  done
done
python3 - "${rates[a]}" "${rates[b]}" "${cpus[a]}" "${cpus[b]}" "${sse[@]}" <<'PY'
import re, statistics, sys
a, b, ca, cb = ([float(x) for x in s.split()] for s in sys.argv[1:5])
r = [y / x for x, y in zip(a, b)]
print("B / A throughput per round:", " ".join(f"{x:.3f}" for x in r), f"(median {statistics.median(r):.3f})")
print(f"relay CPU per request, median: A {statistics.median(ca):.1f} us, B {statistics.median(cb):.1f} us")
def us(s):
    m = re.match(r"([0-9.]+)(µs|ms|ns)", s)
    return float(m[1]) * {"µs": 1, "ms": 1000, "ns": 0.001}[m[2]]
sse = {"a": [], "b": []}
for kv in sys.argv[5:]:
    k, v = kv.split("=", 1); sse[k].append(us(v))
if sse["a"]:
    print(f"SSE added, median: A {statistics.median(sse['a']):.0f} us, B {statistics.median(sse['b']):.0f} us")
PY
