#!/usr/bin/env bash
# Memory per idle tunnel as the issue measures it: the RSS slope of a
# relay from BASE to BASE+N stock OpenSSH clients (`ssh -N -R 0`, a key
# each), read 10 s after the last one connected. With SISH=/path/to/sish
# the same clients go to sish too (`ssh -N -R idle-K:80:...`, HTTP routes),
# one relay after the other in each round, both fresh processes.
# POMDEV=/path/to/pomdev measures that binary instead of building this tree.
# Usage: [ROUNDS=3] [SISH=...] [POMDEV=...] scripts/bench/idle.sh [N] [BASE]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-500}
BASE=${2:-20}
ROUNDS=${ROUNDS:-1}
. scripts/bench/lib.sh
if [ -n "${POMDEV:-}" ]; then cp "$POMDEV" "$work/pomdev"; else go build -o "$work/pomdev" ./cmd/pomdev; fi
for i in $(seq $((BASE + N))); do ssh-keygen -q -t ed25519 -N '' -f "$work/key$i"; done
OP=$(free_port)
SSHOPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes)

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }

# clients PORT FROM TO KIND: starts clients FROM..TO one after the other,
# each once the relay holds the one before (so handshakes never pile up
# past the relays' limits of handshakes in flight from one address); a
# client turned away connects again.
clients() {
  local port=$1 from=$2 to=$3 kind=$4 fwd
  for i in $(seq "$from" "$to"); do
    if [ "$kind" = sish ]; then fwd="idle-$i:80:127.0.0.1:$OP"; else fwd=0; fi
    (while :; do ssh "${SSHOPTS[@]}" -i "$work/key$i" -p "$port" -N -R "$fwd" 127.0.0.1 < /dev/null > /dev/null 2>&1; sleep 0.2; done) & cpids+=($!)
    for _ in $(seq 1000); do (( $(established "$port") >= i )) && break; sleep 0.01; done
  done
  for _ in $(seq 400); do (( $(established "$port") >= to )) && return 0; sleep 0.05; done
  echo "only $(established "$port") of $to clients connected" >&2; return 1
}

stop_clients() {
  kill "${cpids[@]}" 2>/dev/null || true
  wait "${cpids[@]}" 2>/dev/null || true
  pkill -f -- "-i $work/key" 2>/dev/null || true
  cpids=()
}
cpids=()
trap 'stop_clients; cleanup' EXIT

measure() {
  local kind=$1 SP HP pid
  SP=$(free_port); HP=$(free_port)
  rm -rf "$work/state" "$work/sk" "$work/sp"; mkdir -p "$work/sk" "$work/sp"
  if [ "$kind" = sish ]; then
    "$SISH" --ssh-address "127.0.0.1:$SP" --http-address "127.0.0.1:$HP" --domain localhost --authentication=false \
      --private-keys-directory "$work/sk" --authentication-keys-directory "$work/sp" --load-templates=false \
      --bind-random-subdomains=false --idle-connection=false --log-to-client=false --log-to-stdout=false > "$work/relay.log" 2>&1 & pid=$!
  else
    "$work/pomdev" relay --state-dir "$work/state" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:$HP" \
      --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay.log" 2>&1 & pid=$!
  fi
  wait_for "ssh-keyscan -p $SP 127.0.0.1 >/dev/null 2>&1"
  cpids=()
  clients "$SP" 1 "$BASE" "$kind"
  sleep 10
  local r0; r0=$(rss $pid)
  clients "$SP" $((BASE + 1)) $((BASE + N)) "$kind"
  sleep 10
  local r1; r1=$(rss $pid)
  awk -v k="$kind" -v a="$r0" -v b="$r1" -v n="$N" -v base="$BASE" \
    'BEGIN {printf "%s: RSS %d KiB with %d clients, %d KiB with %d: %.1f KiB per tunnel\n", k, a, base, b, base+n, (b-a)/n}'
  stop_clients
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  measure pomdev
  if [ -n "${SISH:-}" ]; then measure sish; fi
done
