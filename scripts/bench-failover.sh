#!/usr/bin/env bash
# Failover figures of the floating entrypoint (proxy.vip) on a lab of 3 managers and 2 workers:
# each round runs tests/lab_failover.rs on a fresh lab (an independent client at 200 requests/s
# through the floating address for 90 s; the node that holds it and leads the swarm killed at
# 20 s, a worker running app tasks at 55 s; the same client sent to the killed node's own
# address as the negative control) and prints, per round:
# - failed requests around the leader's kill, the longest run of failures, and the seconds from
#   the kill until the address answered again (the address moved to another node);
# - the seconds until a surviving manager answered `twip status` with a new leader;
# - failed requests around the worker's kill; the negative control's failures.
# Needs the engine and the lab images (scripts/engine-up.sh). Each round makes its own lab and
# removes it. Usage: scripts/bench-failover.sh [ROUNDS]   (default 3)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rounds=${1:-3}
cargo test --quiet --no-run --test lab_failover 2>/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
failed=0
for r in $(seq 1 "$rounds"); do
  log=$(mktemp)
  if ! cargo test --quiet --test lab_failover -- --nocapture >"$log" 2>&1; then
    echo "round $r: the test failed:"
    tail -n 40 "$log"
    failed=1
  fi
  grep '^failover:' "$log" | sed "s/^failover:/round $r:/" || true
  rm -f "$log"
done
exit "$failed"
