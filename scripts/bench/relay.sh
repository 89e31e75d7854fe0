#!/usr/bin/env bash
# Relay benchmark (docs/PERFORMANCE.md): wrk -t2 -c32 against a tiny origin
# answering 1.3 KB of JSON, direct and through pomdev relay with the stock
# OpenSSH client (ssh -R 0); SSE delay added; relay RSS per idle tunnel.
# Needs wrk and ssh. Usage: scripts/bench/relay.sh [duration] [idle-tunnels]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
IDLE=${2:-1000}
. scripts/bench/lib.sh
build_all

OP=$(free_port); SP=$(free_port); HP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" & pids+=($!)
GOGC=${RELAY_GOGC:-100} "$work/pomdev" relay --state-dir "$work/state" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:$HP" \
  --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay.out" 2> "$work/relay.err" & RELAY=$!; pids+=($RELAY)
wait_for "grep -q Connect '$work/relay.out'"
ssh -F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -p "$SP" -T -R 0 127.0.0.1 < /dev/null > "$work/ssh.out" 2>&1 & pids+=($!)
wait_for "grep -q Remote: '$work/ssh.out'"
URL=$(grep Remote: "$work/ssh.out" | head -1 | awk '{print $2}' | tr -d '\r')
HOST=${URL#http://}
echo "tunnel $URL"

echo "== direct"
wrk -t2 -c32 -d "$DUR" --latency "http://127.0.0.1:$OP/" | grep -E "Requests/sec|50%|99%"
echo "== through pomdev relay (OpenSSH client, ssh -R 0)"
wrk -t2 -c32 -d "$DUR" --latency -H "Host: $HOST" "http://127.0.0.1:$HP/" | grep -E "Requests/sec|50%|99%|Non-2xx"

echo "== SSE"
"$work/tunnels" -mode sse -url "$URL" -http "127.0.0.1:$HP" -origin "http://127.0.0.1:$OP" -events 300

echo "== idle tunnels (relay in a child process, after GC and FreeOSMemory)"
"$work/tunnels" -mode idle -n "$IDLE"
echo "== idle tunnels (the pomdev binary above, RSS 10 s after connecting, no forced GC)"
"$work/tunnels" -mode idle -ssh "127.0.0.1:$SP" -pid "$RELAY" -n "$IDLE"
