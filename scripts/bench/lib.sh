# Shared by the benchmark scripts: a work directory removed on exit with
# every process started in the background, a free loopback port, clock
# readings in ms, a bounded wait, and the binaries built once.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }                           # nanoseconds
ms() { echo $(( ($2 - $1) / 1000000 )); }       # ms from $1 to $2 (both from now)
wait_for() { for _ in $(seq 200); do if eval "$1"; then return 0; fi; sleep 0.05; done; echo "timeout: $1" >&2; exit 1; }
build_all() {
  go build -o "$work/pomdev" ./cmd/pomdev
  go build -o "$work/origin" ./scripts/bench/origin
  go build -o "$work/tunnels" ./scripts/bench/tunnels
  ssh-keygen -q -t ed25519 -N '' -f "$work/key"
}
