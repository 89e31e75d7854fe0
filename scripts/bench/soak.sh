#!/usr/bin/env bash
# Relay soak (issue "The gate holds against strangers"): pomdev relay with
# --http-auth owner and one tunnel (the stock OpenSSH client) whose owner's
# token drives a request loop, while scripts/bench/strangers attacks the
# front from 127.0.0.2-254 for DURATION: connections reset after 40
# pipelined requests, stalled bodies, 10 MB forms, pending-request floods
# and registration floods, all at once. It passes when the loop saw only
# 200s, the relay's peak RSS stayed under RSS_LIMIT MiB and the relay is up
# at the end (it also must not have logged "relay stopped").
# Usage: [RSS_LIMIT=256] scripts/bench/soak.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-60s}
RSS_LIMIT=${RSS_LIMIT:-256}
. scripts/bench/lib.sh
go build -o "$work/pomdev" ./cmd/pomdev
go build -o "$work/origin" ./scripts/bench/origin
go build -o "$work/strangers" ./scripts/bench/strangers
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
SSHOPTS=(-F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

OP=$(free_port); SP=$(free_port); HP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > "$work/origin.log" 2>&1 & pids+=($!)
"$work/pomdev" relay --state-dir "$work/state" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:$HP" \
  --http-auth owner --log-level warn > "$work/relay.out" 2> "$work/relay.err" & RELAY=$!; pids+=($RELAY)
wait_for "grep -q Connect '$work/relay.out'"
ssh "${SSHOPTS[@]}" -p "$SP" -T -o "SetEnv=POMDEV_TARGET=127.0.0.1:$OP POMDEV_PUBLIC_PATHS=/widgets/**" -R 0 127.0.0.1 < /dev/null > "$work/ssh.out" 2>&1 & pids+=($!)
wait_for "grep -q Remote: '$work/ssh.out'"
URL=$(grep Remote: "$work/ssh.out" | head -1 | awk '{print $2}' | tr -d '\r')
TOKEN=$(ssh "${SSHOPTS[@]}" -p "$SP" -T 127.0.0.1 pomdev-access token < /dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["token"])')
echo "tunnel $URL (relay pid $RELAY, RSS before: $(awk '/VmRSS/ {print int($2/1024)}' /proc/$RELAY/status) MiB)"
status=0
"$work/strangers" -front "http://127.0.0.1:$HP" -url "$URL" -token "$TOKEN" -pid "$RELAY" -duration "$DUR" -rss-limit "$RSS_LIMIT" || status=$?
if ! kill -0 "$RELAY" 2>/dev/null || grep -q "relay stopped" "$work/relay.err"; then
  echo "FAIL: the relay stopped:"; tail -5 "$work/relay.err"; status=1
fi
echo "relay warnings logged: $(grep -c . "$work/relay.err" || true)"
exit $status
