#!/bin/sh
# pomdev inspect --login as the client of the MCP conformance suite's auth
# scenarios (conformance client --suite auth --command this-script): the
# suite appends the server URL, names the scenario in
# MCP_CONFORMANCE_SCENARIO and gives pre-registered credentials in
# MCP_CONFORMANCE_CONTEXT. Its authorization server approves at once, so
# the headless stand-in follows the authorization URL; every scenario's
# server offers test-tool, which the check calls (step-up scenarios ask
# for more scope on that call). POMDEV_BIN is the pomdev to run.
set -eu
XDG_CONFIG_HOME=$(mktemp -d)
export XDG_CONFIG_HOME
trap 'rm -rf "$XDG_CONFIG_HOME"' EXIT
export POMDEV_LOGIN_BROWSER=follow
set -- --login --call test-tool --timeout 20s "$@"
if [ -n "${MCP_CONFORMANCE_CONTEXT:-}" ]; then
  id=$(printf '%s' "$MCP_CONFORMANCE_CONTEXT" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
  secret=$(printf '%s' "$MCP_CONFORMANCE_CONTEXT" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
  if [ -n "$id" ]; then
    set -- --oauth-client-id "$id" "$@"
    if [ -n "$secret" ]; then
      printf '%s\n' "$secret" > "$XDG_CONFIG_HOME/secret"
      set -- --oauth-client-secret-file "$XDG_CONFIG_HOME/secret" "$@"
    fi
  fi
fi
"${POMDEV_BIN:-pomdev}" inspect "$@"
