#!/usr/bin/env bash
# Builds the page of `pomdev preview` from web/preview (TypeScript, with
# the official host-side bridge of @modelcontextprotocol/ext-apps) into
# internal/preview/assets, which the binary embeds. The output is
# committed, so building pomdev never needs Node; CI runs this with
# --check, which fails when the committed files are not what the sources
# build.
#
#   scripts/build-preview.sh          # type-check and rebuild the assets
#   scripts/build-preview.sh --check  # fail if the assets are out of date
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/web/preview"
assets="$root/internal/preview/assets"
out="$assets"
if [ "${1:-}" = "--check" ]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
cd "$web"
# The lockfile pins every package; npm ci installs exactly it.
npm ci --no-audit --no-fund --silent
./node_modules/.bin/tsc -p .
common=(--bundle --minify --target=es2022 --legal-comments=none --log-level=warning)
./node_modules/.bin/esbuild src/host.ts "${common[@]}" --format=esm --outfile="$out/host.js"
./node_modules/.bin/esbuild src/sandbox.ts "${common[@]}" --format=iife --outfile="$out/sandbox.js"
if [ "$out" != "$assets" ]; then
  for f in host.js sandbox.js; do
    if ! cmp -s "$out/$f" "$assets/$f"; then
      echo "internal/preview/assets/$f is not what web/preview builds: run scripts/build-preview.sh and commit the result" >&2
      exit 1
    fi
  done
  echo "preview assets up to date"
fi
