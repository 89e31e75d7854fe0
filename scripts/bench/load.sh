#!/usr/bin/env bash
# Relay soak test (docs/PERFORMANCE.md): 1,000 idle tunnels, 200 concurrent
# requests over 100 of them for 60 s, all on loopback; passes with 0 errors,
# RSS flat over the last half and the relay's goroutines back to the
# baseline after the clients leave. Usage: scripts/bench/load.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-60s}
. scripts/bench/lib.sh
go build -o "$work/tunnels" ./scripts/bench/tunnels
"$work/tunnels" -mode load -n 1000 -busy 100 -workers 200 -duration "$DUR"
