#!/usr/bin/env bash
# The 003 write-up's question, "do 10 instances give 10x?", in numbers: for each layout, deploy
# it, run `twip bench LAYOUT --service web --replicas 1,10 --plot` (the same load at 1 and at 10
# app tasks, with the app's CPU from the engine's stats), and remove it.
#   1x1    1 app + 1 redis        at --replicas 1,10: 1x1, then 10x1 (one key)
#   10x1   10 app + 1 redis       the same service set, deployed at 10 first
#   10x10  10 app + 10 redis      a redis in each app task (ten keys): 1+1, then 10+10
# Usage: examples/counter/bench.sh [LAYOUT...]   (default: all three)
# Variables: DURATION (default 10s), CONNS (50), REPLICAS (1,10), OUT (charts; default
# docs/examples/ of the repository), TWIP (the twip binary; default a release build of this
# repository), TWIP_HTTP_PORT / TWIP_STATS_PORT (default 8080 / 1937).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"
layouts=("$@")
((${#layouts[@]})) || layouts=(1x1 10x1 10x10)
duration=${DURATION:-10s}
conns=${CONNS:-50}
replicas=${REPLICAS:-1,10}
out=${OUT:-$root/docs/examples}
if [[ -z ${TWIP:-} ]]; then
  (cd "$root" && cargo build --release --quiet)
  TWIP=${CARGO_TARGET_DIR:-$root/target}/release/twip
fi
mkdir -p "$out"

current=""
cleanup() { [[ -z $current ]] || "$TWIP" down "$current" -q || true; }
trap cleanup EXIT

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# twip bench LAYOUT --service web --replicas $replicas -z $duration -c $conns"
for layout in "${layouts[@]}"; do
  current=$layout
  "$TWIP" up "$layout" -q
  sleep 3   # HAProxy's health checks find every task
  echo
  echo "## $layout"
  "$TWIP" bench "$layout" --service web --replicas "$replicas" -z "$duration" -c "$conns" \
    --plot "$out/counter-$layout.svg" -q
  "$TWIP" down "$layout" -q
  current=""
done
