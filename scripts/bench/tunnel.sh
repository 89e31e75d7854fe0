#!/usr/bin/env bash
# Tunnel client benchmark (docs/PERFORMANCE.md): through one pomdev relay,
# side by side in one run, wrk -t2 -c32 against a 1.3 KB JSON origin
# directly, through the stock OpenSSH client (ssh -R 0, raw SOCKS splice)
# and through pomdev tunnel (HTTP-aware local end); SSE delay added through
# the relay by each client; time from start to "Remote URL:" with a known
# host key.
# Needs wrk and ssh. Usage: scripts/bench/tunnel.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
. scripts/bench/lib.sh
build_all
export XDG_CONFIG_HOME="$work/config"

OP=$(free_port); SP=$(free_port); HP=$(free_port)
"$work/origin" -addr "127.0.0.1:$OP" > /dev/null & pids+=($!)
"$work/pomdev" relay --state-dir "$work/state" --ssh-addr "127.0.0.1:$SP" --http-addr "127.0.0.1:$HP" \
  --default-target "127.0.0.1:$OP" --log-level warn > "$work/relay.out" 2>&1 & pids+=($!)
wait_for "grep -q Connect '$work/relay.out'"

through() { # $1 = label, $2 = file with the Remote line
  local url host
  url=$(grep -m1 -E "^Remote( URL)?:" "$2" | awk '{print $NF}' | tr -d '\r')
  host=${url#http://}
  echo "== $1 ($url)"
  wrk -t2 -c32 -d "$DUR" --latency -H "Host: $host" "http://127.0.0.1:$HP/" | grep -E "Requests/sec|50%|99%|Non-2xx"
}

echo "== direct"
wrk -t2 -c32 -d "$DUR" --latency "http://127.0.0.1:$OP/" | grep -E "Requests/sec|50%|99%"

ssh -F /dev/null -i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -p "$SP" -T -R 0 127.0.0.1 < /dev/null > "$work/ssh.out" 2>&1 & pids+=($!); SSH=$!
wait_for "grep -q Remote: '$work/ssh.out'"
GOGC=${TUNNEL_GOGC:-100} "$work/pomdev" tunnel --relay "127.0.0.1:$SP" --target "127.0.0.1:$OP" --no-browser > "$work/tunnel.out" 2>&1 & pids+=($!); TUN=$!
wait_for "grep -q 'Remote URL:' '$work/tunnel.out'"
through "OpenSSH client (ssh -R 0)" "$work/ssh.out"
through "pomdev tunnel" "$work/tunnel.out"

# SSE after the load, alternating the two clients, 300 events per round.
SURL=$(grep -m1 -E "^Remote:" "$work/ssh.out" | awk '{print $NF}' | tr -d '\r')
URL=$(grep -m1 "Remote URL:" "$work/tunnel.out" | awk '{print $NF}')
for round in 1 2 3; do
  for c in "OpenSSH $SURL" "pomdev $URL"; do
    echo -n "SSE round $round, ${c%% *}: "
    "$work/tunnels" -mode sse -url "${c#* }" -http "127.0.0.1:$HP" -origin "http://127.0.0.1:$OP" -events 300
  done
done
kill "$SSH" "$TUN" 2>/dev/null || true

echo "== start to Remote URL (known host key, no sign-in)"
"$work/tunnels" -mode firstline -n 10 -- "$work/pomdev" tunnel --relay "127.0.0.1:$SP" --target "127.0.0.1:$OP" --no-browser
