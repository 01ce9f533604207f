#!/usr/bin/env bash
# Quick start, step 1: from a fresh machine (Debian 12, root, Rust installed, no Docker engine,
# no Docker Hub) to a running training environment that answers on http://127.0.0.1/.
#  - scripts/engine-up.sh with TWIP_BASES=training installs and starts the Docker engine, the
#    local registries and the one base image training needs (Debian amd64 with nginx, haproxy
#    and python3, debootstrapped offline; cached: a second run takes seconds). Meanwhile twip
#    is built (release), in parallel;
#  - the local engine becomes a single-node swarm, and `twip train up` builds the sample images
#    from the offline base and deploys them.
# The bases only the test suite needs (arm64, the examples' base, the lab images) are not made
# here: scripts/test.sh makes them (or scripts/make-test-bases.sh all).
# Prints the time of each step. Stop with `twip train down`, then scripts/engine-down.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
T0=$(now)
times=()
took() { times+=("$(awk -v a="$1" -v b="$(now)" -v n="$2" 'BEGIN{printf "%-44s %6.1f s", n, b-a}')"); }

logdir=$(mktemp -d "${TMPDIR:-/tmp}/twip-quickstart.XXXXXX")
say "building twip (release) in the background, log $logdir/cargo.log"
t_build=$(now)
cargo build --release --locked --quiet >"$logdir/cargo.log" 2>&1 &
build_pid=$!
trap 'kill "$build_pid" 2>/dev/null || true' EXIT

say "engine, registries, the amd64 base (scripts/engine-up.sh, TWIP_BASES=training)"
t=$(now)
TWIP_BASES=training bash scripts/engine-up.sh
took "$t" "engine, registries, amd64 base"

say "waiting for the twip build"
if ! wait "$build_pid"; then
  cat "$logdir/cargo.log" >&2
  echo "error: cargo build --release failed (above)" >&2
  exit 1
fi
trap - EXIT
took "$t_build" "cargo build --release (beside the engine)"
twip="$root/target/release/twip"
# No Docker Hub here: the sample images build on the offline base engine-up made.
export TWIP_BASE_IMAGE=${TWIP_BASE_IMAGE:-twip/base:bookworm}
say "twip swarm init training"
t=$(now)
"$twip" swarm init training
took "$t" "twip swarm init"
say "twip train up"
t=$(now)
"$twip" train up
took "$t" "twip train up (build 3 images, deploy)"
say "twip train test"
t=$(now)
"$twip" train test
took "$t" "twip train test"
{
  echo "---- quick start times ----"
  printf '%s\n' "${times[@]}"
  awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%-44s %6.1f s\n", "total", b-a}'
} >&2
cat >&2 <<MSG

The training environment runs: open http://127.0.0.1/ (the news app; /styles/ and /images/ come
from nginx) and http://127.0.0.1:1936/ (HAProxy's stats). Then try:
  $twip status training        $twip train scale web=3        $twip train down
MSG
