#!/usr/bin/env bash
# pomdev up timings (docs/PERFORMANCE.md) with the go-sdk test server of
# the end-to-end scripts as the app: start to "Remote URL:", to the server
# ready, to the check through the tunnel OK, and reload latency from a
# watched file's write to the restarted server ready.
# Usage: scripts/bench/up.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
. scripts/bench/lib.sh
go build -o "$work/pomdev" ./cmd/pomdev
go build -o "$work/tunnels" ./scripts/bench/tunnels
# The test binary serves as "mcptestserver" when called by that name.
go test -c -o "$work/mcptestserver" ./cmd/pomdev
app="$work/app"; mkdir -p "$app"; cd "$app"
export XDG_CONFIG_HOME="$work/config"
P=$(free_port)
printf 'echo\n' > tools.txt
printf 'processes:\n  - name: server\n    command: exec %s\n    env: {PORT: "%s"}\n    port: %s\n    health: http://127.0.0.1:%s/health\n    watch: ["tools.txt"]\ntunnel:\n  target: 127.0.0.1:%s\n' \
  "$work/mcptestserver" "$P" "$P" "$P" "$P" > pomdev.yaml
for prefix in "Remote URL:" "server ready" "check: through the tunnel OK"; do
  "$work/tunnels" -mode firstline -prefix "$prefix" -n "$RUNS" -- "$work/pomdev" up --relay local
done
for i in $(seq "$RUNS"); do
  printf 'echo\n' > tools.txt
  "$work/pomdev" up --relay local > up.out 2>&1 & up=$!
  wait_for "grep -q 'through the tunnel OK' up.out"
  t0=$(now); printf 'echo\ngreet\n' > tools.txt
  wait_for "[ \$(grep -c '^server ready' up.out) -ge 2 ]"
  t1=$(now)
  echo "reload $i: $(ms "$t0" "$t1") ms (write -> restarted server ready; includes the 150 ms debounce)"
  kill -INT "$up"; wait "$up" || true
done
