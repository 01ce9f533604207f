#!/usr/bin/env bash
# Quick start, step 1: build twip, check every environment, and render the training
# environment (its stack file, HAProxy and Prometheus configs) into build/training/.
# When the lifecycle lands (issue #4) this step becomes `twip train up`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
echo "==> building twip (release)" >&2
cargo build --release --locked --quiet
twip="$root/target/release/twip"
echo "==> twip validate" >&2
"$twip" validate
echo "==> twip train render" >&2
"$twip" train render
echo >&2
echo "The training stack is in build/training/ (stack.yml, haproxy.cfg)." >&2
echo "Try: $twip render training -o -      or      $twip --help" >&2
