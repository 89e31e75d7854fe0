#!/usr/bin/env bash
# pomdev inspect vs the MCP Inspector CLI (docs/PERFORMANCE.md): wall time
# of one check against @modelcontextprotocol/server-everything on loopback.
# pomdev also lists resources, templates and prompts, reads UI resources
# and lints; the Inspector CLI only lists tools. Needs node, npm, hyperfine.
# Usage: scripts/bench/inspect.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-20}
. scripts/bench/lib.sh
go build -o "$work/pomdev" ./cmd/pomdev
npm install --prefix "$work/npm" --no-audit --no-fund --silent \
  @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/inspector@2.12.0
PORT=$(free_port)
PORT=$PORT node "$work/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp > "$work/ev.log" 2>&1 & pids+=($!)
wait_for "grep -q listening '$work/ev.log'"
URL="http://127.0.0.1:$PORT/mcp"
hyperfine --warmup 2 --runs "$RUNS" -N \
  "$work/pomdev inspect $URL --json" \
  "$work/npm/node_modules/.bin/mcp-inspector --cli $URL --transport http --method tools/list" \
  "bash -c 'cd $work/npm && npx --no-install @modelcontextprotocol/inspector@2.12.0 --cli $URL --transport http --method tools/list'"
