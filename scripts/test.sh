#!/usr/bin/env bash
# The test command (README quick start, and what CI runs through .ci/run).
# Installs what the tests need on a fresh machine, idempotently, then runs formatting, lints and
# every test. Nothing is skipped: a missing tool is installed or the run fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"

say() { printf '==> %s\n' "$*" >&2; }

say "checking tools the tests use"
need_apt haproxy haproxy       # tests/render.rs: the rendered configs pass `haproxy -c`
need_docker_cli                # tests/render.rs: `docker stack config` (needs no engine)

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

say "engine, registries and offline base images (scripts/engine-up.sh)"
bash "$root/scripts/engine-up.sh"
# Stop what engine-up started (dockerd, registries), also when a test fails; caches stay.
trap 'bash "$root/scripts/engine-down.sh" || true' EXIT

say "cargo test"
# insta: never write snapshots here; a changed output is a failure to review.
INSTA_UPDATE=no cargo test --locked --all-targets 2>&1
