#!/usr/bin/env bash
# Timings of the generated mcp-app (docs/PERFORMANCE.md): pomdev init
# --no-install, npm install (warm npm cache), server start to healthy (built
# and development entry), the template's own `npm run dev` to healthy
# against `pomdev up --relay local` to the URL and to the check through the
# tunnel, reload latency (a write to server/src/tools.ts to the restarted
# server ready), and dashboard CPU while idle.
# Needs node/npm and ports 8080 and 4444 free (the template's defaults).
# Usage: scripts/bench/node_app.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
. scripts/bench/lib.sh
go build -o "$work/pomdev" ./cmd/pomdev
go build -o "$work/tunnels" ./scripts/bench/tunnels
export XDG_CONFIG_HOME="$work/config"
healthy() { curl -sf -o /dev/null "http://127.0.0.1:$1/health"; }

echo "== pomdev init --no-install --no-git"
if command -v hyperfine >/dev/null; then
  hyperfine -N -w 3 -r 20 --prepare "rm -rf $work/i" "$work/pomdev init $work/i --no-install --no-git" 2>&1 | grep -E 'Time|Range'
else
  t0=$(now); for i in $(seq 20); do "$work/pomdev" init "$work/i$i" --no-install --no-git >/dev/null; done
  echo "mean $(( $(ms "$t0" "$(now)") / 20 )) ms"
fi

echo "== npm install (warm cache)"
"$work/pomdev" init "$work/app" --no-install --no-git >/dev/null
cd "$work/app"
t0=$(now); npm install --no-audit --no-fund >/dev/null 2>&1; echo "npm install: $(ms "$t0" "$(now)") ms"
t0=$(now); npm run build >/dev/null 2>&1; echo "npm run build: $(ms "$t0" "$(now)") ms"

echo "== server start to healthy"
for entry in "node server/dist/index.js" "node --import tsx server/src/dev.ts"; do
  times=()
  for i in $(seq "$RUNS"); do
    P=$(free_port)
    t0=$(now); PORT=$P $entry >/dev/null 2>&1 & pid=$!
    until healthy "$P"; do sleep 0.005; done
    times+=("$(ms "$t0" "$(now)")"); kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  echo "$entry: ${times[*]} ms"
done

echo "== npm run dev to healthy (server /health and widgets :4444)"
times=()
for i in $(seq "$RUNS"); do
  t0=$(now); setsid npm run dev >/dev/null 2>&1 & pid=$!
  until healthy 8080 && curl -sf -o /dev/null http://127.0.0.1:4444/echo.html; do sleep 0.005; done
  times+=("$(ms "$t0" "$(now)")"); kill -INT -- "-$pid"; wait "$pid" 2>/dev/null || true
  while curl -s -o /dev/null http://127.0.0.1:8080/health || curl -s -o /dev/null http://127.0.0.1:4444/; do sleep 0.05; done
done
echo "npm run dev: ${times[*]} ms"

echo "== pomdev up --relay local"
for prefix in "Remote URL:" "server ready" "check (server ready): local OK" "check: through the tunnel OK"; do
  "$work/tunnels" -mode firstline -prefix "$prefix" -n "$RUNS" -- "$work/pomdev" up --relay local --no-tui
done

echo "== reload: write server/src/tools.ts -> restarted server ready, -> check through the tunnel"
for i in $(seq "$RUNS"); do
  "$work/pomdev" up --relay local --no-tui > up.out 2>&1 & up=$!
  wait_for "grep -q 'through the tunnel OK' up.out"
  t0=$(now); echo "// touched $i" >> server/src/tools.ts
  wait_for "[ \$(grep -c '^server ready' up.out) -ge 2 ]"; t1=$(now)
  wait_for "[ \$(grep -c 'through the tunnel OK' up.out) -ge 2 ]"; t2=$(now)
  echo "reload $i: ready $(ms "$t0" "$t1") ms, checked through the tunnel $(ms "$t0" "$t2") ms (150 ms debounce included)"
  kill -INT "$up"; wait "$up" || true
done

if command -v tmux >/dev/null; then
  echo "== dashboard CPU while idle (tmux 100x30, 10 s)"
  sock="$work/tmux.sock"
  tmux -S "$sock" new-session -d -x 100 -y 30 "XDG_CONFIG_HOME=$XDG_CONFIG_HOME $work/pomdev up --relay local"
  wait_for "tmux -S $sock capture-pane -p | grep -q 'through the tunnel'"
  sleep 2
  pid=$(pgrep -f "^$work/pomdev up --relay local" | head -1)
  hz=$(getconf CLK_TCK)
  a=$(awk '{print $14+$15}' "/proc/$pid/stat"); sleep 10; b=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "pomdev (dashboard) CPU: $(( (b - a) * 1000 / hz / 10 ))‰ of a core over 10 s"
  tmux -S "$sock" send-keys q
  wait_for "! pgrep -f '^$work/pomdev up --relay local' >/dev/null"
  tmux -S "$sock" kill-server 2>/dev/null || true
fi
