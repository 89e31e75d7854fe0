#!/usr/bin/env bash
# Fleet benchmark (docs/PERFORMANCE.md, "A relay fleet on PostgreSQL"),
# side by side in one run, rounds interleaved:
#   sqlite  one relay on relay.db, wrk to it (the tunnel is there)
#   right   relay A on a PostgreSQL store, wrk to A (the tunnel is on A)
#   wrong   relay B on the same store, wrk to B (B passes each request to A)
# each with wrk -t2 -c32 (and -t1 -c1, for the hop's latency alone) against a
# tiny origin through stock OpenSSH
# (ssh -N -R bench:80:...). Then IDLE idle tunnels (x/crypto clients, one
# key each) on a relay.db relay and on a store relay: RSS per idle tunnel,
# and the relay's CPU over 30 s with them idle (keepalives, and on the
# store the node's beat). A throwaway PostgreSQL cluster is started with
# initdb/pg_ctl in the work directory (as the user postgres when root).
# Needs wrk, ssh and PostgreSQL's server binaries.
# GATED=1 runs the relays with --http-auth owner and wrk with an owner
# token minted on each tunnel's relay (pomdev-access token): its verdict is
# cached, so the store is off the request path.
# Usage: [ROUNDS=3] [GATED=1] [IDLE_ORDER="a lite"] scripts/bench/fleet.sh [duration] [idle-tunnels]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
IDLE=${2:-10000}
ROUNDS=${ROUNDS:-3}
. scripts/bench/lib.sh
build_all
ulimit -n "$(ulimit -Hn)" # 10,000 tunnels need as many descriptors in each process
SSHOPTS=(-F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
pg=(); if [ "$(id -u)" -eq 0 ]; then pg=(runuser -u postgres --); chown postgres "$work"; fi
mkdir -p "$work/pg" && { [ ${#pg[@]} -eq 0 ] || chown postgres "$work/pg"; }
"${pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" --auth=trust -U postgres -E UTF8 --locale=C >/dev/null
"${pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories=$work/pg -c max_connections=200" start >/dev/null
pgstop() { "${pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'pgstop; cleanup' EXIT
STORE="postgres:///postgres?host=$work/pg&user=postgres&sslmode=disable"
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), data fsync on"

OP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" & pids+=($!)

# relay NAME STORE: starts a relay; sets SP_NAME, HP_NAME, PID_NAME.
relay() {
  local name=$1 store=$2 sp hp
  sp=$(free_port); hp=$(free_port)
  "$work/pomdev" relay --state-dir "$work/state-$name" --ssh-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" \
    ${store:+--store "$store"} ${GATED:+--http-auth owner} --log-level warn > "$work/$name.out" 2> "$work/$name.err" & pids+=($!)
  printf -v "PID_$name" %s $!; printf -v "SP_$name" %s "$sp"; printf -v "HP_$name" %s "$hp"
  wait_for "grep -q Connect '$work/$name.out'"
}
relay lite ""
relay a "$STORE"
relay b "$STORE"
grep Fleet "$work/a.out" "$work/b.out"
for n in lite a; do
  sp=SP_$n
  ssh "${SSHOPTS[@]}" -p "${!sp}" -N -R "bench:80:127.0.0.1:$OP" 127.0.0.1 < /dev/null > "$work/ssh-$n.out" 2>&1 & pids+=($!)
done
declare -A AUTH
for n in lite a; do
  AUTH[$n]=""
  if [ -n "${GATED:-}" ]; then
    sp=SP_$n
    wait_for "ssh ${SSHOPTS[*]} -p ${!sp} 127.0.0.1 pomdev-access token > '$work/token-$n' 2>/dev/null"
    AUTH[$n]="Authorization: Bearer $(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["token"])' "$work/token-$n")"
  fi
done
AUTH[b]=${AUTH[a]} # one store: A's token passes B
wait_for "curl -sf -H 'Host: bench.localhost' ${AUTH[lite]:+-H \"${AUTH[lite]}\"} http://127.0.0.1:$HP_lite/ >/dev/null"
wait_for "curl -sf -H 'Host: bench.localhost' ${AUTH[b]:+-H \"${AUTH[b]}\"} http://127.0.0.1:$HP_b/ >/dev/null"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
HZ=$(getconf CLK_TCK)
declare -A rates p50
# bench NAME CONNS URL: one wrk run; its p50/p99 and rate, and the CPU per
# request of relays A and B (with the relay.db relay's as A for sqlite).
bench() {
  local name=$1 conns=$2 out a0 b0 reqs pa=$PID_a; shift 2
  [ "$name" = sqlite ] && pa=$PID_lite
  a0=$(cpu "$pa"); b0=$(cpu "$PID_b")
  out=$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d "$DUR" --latency -H 'Host: bench.localhost' "$@")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | grep -E "^ +(50|99)%|Requests/sec|Non-2xx|Socket errors"
  awk -v a0="$a0" -v a1="$(cpu "$pa")" -v b0="$b0" -v b1="$(cpu "$PID_b")" -v n="$reqs" -v hz="$HZ" \
    'BEGIN {printf "relay CPU per request: tunnel node %.1f us, other node %.1f us\n", (a1-a0)/hz*1e6/n, (b1-b0)/hz*1e6/n}'
  name=$name$conns
  rates[$name]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
  p50[$name]+="$(echo "$out" | awk '$1 == "50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}') "
}
for r in $(seq "$ROUNDS"); do
  for c in 32 1; do
    echo "== round $r, $c connection(s): one relay on relay.db"
    bench sqlite "$c" ${AUTH[lite]:+-H "${AUTH[lite]}"} "http://127.0.0.1:$HP_lite/"
    echo "== round $r, $c connection(s): store relay A, the tunnel's (right node)"
    bench right "$c" ${AUTH[a]:+-H "${AUTH[a]}"} "http://127.0.0.1:$HP_a/"
    echo "== round $r, $c connection(s): store relay B, passing to A (wrong node)"
    bench wrong "$c" ${AUTH[b]:+-H "${AUTH[b]}"} "http://127.0.0.1:$HP_b/"
  done
done
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== medians of $ROUNDS rounds"
for c in 32 1; do
  S=$(echo "${rates[sqlite$c]}" | med); R=$(echo "${rates[right$c]}" | med); W=$(echo "${rates[wrong$c]}" | med)
  PR=$(echo "${p50[right$c]}" | med); PW=$(echo "${p50[wrong$c]}" | med)
  echo "-c$c req/s: sqlite $S, right $R, wrong $W; right/sqlite $(awk -v a="$R" -v b="$S" 'BEGIN {printf "%.2f", a/b}'), wrong/right $(awk -v a="$W" -v b="$R" 'BEGIN {printf "%.2f", a/b}')"
  echo "-c$c p50 ms: right $PR, wrong $PW; wrong - right $(awk -v a="$PW" -v b="$PR" 'BEGIN {printf "%.3f", a-b}') ms"
done

# Idle tunnels: RSS per tunnel and CPU over 30 s, relay.db then store
# (IDLE_ORDER="a lite" the other way round).
[ "$IDLE" -gt 0 ] || exit 0
for n in ${IDLE_ORDER:-lite a}; do
  pid=PID_$n; sp=SP_$n
  echo "== $IDLE idle tunnels on relay $n"
  "$work/tunnels" -mode idle -ssh "127.0.0.1:${!sp}" -pid "${!pid}" -n "$IDLE" -settle 10s,45s > "$work/idle-$n.out" 2>&1 & IDLEPID=$!; pids+=($IDLEPID)
  for _ in $(seq 1200); do grep -q 'per tunnel' "$work/idle-$n.out" && break; sleep 0.5; done
  c0=$(cpu "${!pid}"); sleep 30; c1=$(cpu "${!pid}")
  wait "$IDLEPID" || { cat "$work/idle-$n.out"; exit 1; }
  cat "$work/idle-$n.out"
  echo "relay $n CPU with $IDLE idle tunnels: $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.2f", (b-a)/hz/30*100}')% of one core over 30 s"
done
