#!/usr/bin/env bash
# Measures wall time of `twip validate ENV` and `twip render ENV` (release build) for each
# environment; the goal is under 20 ms each. Prints the mean and the worst of N runs.
# Usage: scripts/bench-manifest.sh [RUNS]   (default 50)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-50}
cargo build --release --quiet
bin="$root/target/release/twip"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() { # label, command...
  local label=$1; shift
  "$@" >/dev/null 2>&1 || { echo "error: $label failed: $*" >&2; exit 1; }
  local total=0 worst=0 t0 t1 dt
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    dt=$(( (t1 - t0) / 1000 ))
    total=$(( total + dt ))
    [ "$dt" -gt "$worst" ] && worst=$dt
  done
  local mean=$(( total / runs ))
  local verdict="ok"
  [ "$mean" -ge 20000 ] && verdict="OVER 20 ms"
  printf '%-22s mean %6.2f ms   worst %6.2f ms   %s\n' "$label" "$(awk "BEGIN{print $mean/1000}")" "$(awk "BEGIN{print $worst/1000}")" "$verdict"
}

echo "twip $("$bin" --version | cut -d' ' -f2), $runs runs each, $(nproc) cores"
for env in $("$bin" validate --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(e["name"] for e in json.load(sys.stdin)["environments"]))'); do
  measure "validate $env" "$bin" validate "$env"
  measure "render $env" "$bin" render "$env" -o "$out/$env"
done
