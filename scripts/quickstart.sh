#!/usr/bin/env bash
# Quick start, step 1: from a fresh machine (Debian 12, root, no Docker engine, no Docker Hub) to
# a running training environment that answers on http://127.0.0.1/.
#  - scripts/engine-up.sh installs and starts the Docker engine, emulation, local registries and
#    the offline base image (cached: a second run takes seconds);
#  - twip is built, the local engine becomes a single-node swarm, and `twip train up` builds the
#    sample images from the offline base and deploys them.
# Stop the engine with scripts/engine-down.sh (after `twip train down`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '==> %s\n' "$*" >&2; }

say "engine, emulation, registries, offline base images (scripts/engine-up.sh)"
bash scripts/engine-up.sh
say "building twip (release)"
cargo build --release --locked --quiet
twip="$root/target/release/twip"
# No Docker Hub here: the sample images build on the offline base engine-up made.
export TWIP_BASE_IMAGE=${TWIP_BASE_IMAGE:-twip/base:bookworm}
say "twip swarm init training"
"$twip" swarm init training
say "twip train up"
"$twip" train up
say "twip train test"
"$twip" train test
cat >&2 <<MSG

The training environment runs: open http://127.0.0.1/ (the news app; /styles/ and /images/ come
from nginx) and http://127.0.0.1:1936/ (HAProxy's stats). Then try:
  $twip status training        $twip train scale web=3        $twip train down
MSG
