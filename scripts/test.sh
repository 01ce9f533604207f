#!/usr/bin/env bash
# The test command (README, and what CI runs through .ci/run).
# Installs what the tests need on a fresh machine, idempotently, then runs formatting, lints and
# every test. Nothing is skipped: a missing tool is installed or the run fails.
# Phases, each timed: tools, fmt, clippy, engine (scripts/engine-up.sh without bases), then the
# test bases (scripts/make-test-bases.sh all) in the background while cargo builds the tests,
# then every test binary through scripts/run-tests.sh (two lanes side by side; every binary
# runs even when one fails; TWIP_TEST_LANES=1 for one lane). At the end: the time of each
# phase, each test binary's result, time and lane, and the binaries that failed.
# Exits non-zero when anything failed. Stops what it started (dockerd, registries), also on failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"

say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
phases=()
T_ALL=$(now)
phase_start=
begin() {
  phase_start=$(now)
  say "$1"
}
end() { # end NAME
  phases+=("$(awk -v a="$phase_start" -v b="$(now)" -v n="$1" 'BEGIN{printf "%-36s %7.1f s", n, b-a}')")
}
logdir=$(mktemp -d "${TMPDIR:-/tmp}/twip-test.XXXXXX")
bases_pid=
engine_started=0
cache_lock=
cleanup() {
  local rc=$?
  if [[ -n "$bases_pid" ]] && kill -0 "$bases_pid" 2>/dev/null; then
    kill -TERM "$bases_pid" 2>/dev/null || true
    wait "$bases_pid" 2>/dev/null || true
  fi
  # Stop what engine-up started (dockerd, registries; caches stay).
  if ((engine_started)); then
    bash "$root/scripts/engine-down.sh" || true
  fi
  if [[ -n "$cache_lock" ]]; then
    rm -rf "$cache_lock"
  fi
  exit "$rc"
}
trap cleanup EXIT

begin "checking tools the tests use"
need_apt haproxy haproxy # tests/render.rs: the rendered configs pass `haproxy -c`
need_docker_cli          # tests/render.rs: `docker stack config` (needs no engine)
need_apt jq jq           # scripts/test.sh: the test binaries from cargo's JSON
end "tools"

# The build cache: TWIP_TARGET_CACHE=DIR (.ci/run sets it) builds in DIR instead of ./target. CI
# starts from a clean clone, so without it every run compiles every dependency twice (clippy,
# then the tests); warm, clippy took 25 s instead of 150 s and the test build 47 s instead of
# 225 s. Cargo decides what is fresh (a new clone's sources are newer than their artifacts, so
# twip itself is always rebuilt). One run at a time uses the cache (a lock directory naming its
# process; a stale one is taken over); a run that finds it held, or cannot create it, builds in
# ./target. Over 20 GB it is cleared first. An explicit CARGO_TARGET_DIR wins.
if [[ -n "${TWIP_TARGET_CACHE:-}" && -z "${CARGO_TARGET_DIR:-}" ]]; then
  lock="$TWIP_TARGET_CACHE.lock"
  got=0
  why="is in use by another run"
  if ! mkdir -p "$TWIP_TARGET_CACHE" 2>/dev/null; then
    why="cannot be created"
  elif mkdir "$lock" 2>/dev/null; then
    got=1
  else
    # Held by a run that ended without its cleanup (its process is gone, or it never wrote
    # its pid within a minute): taken over.
    holder=$(cat "$lock/pid" 2>/dev/null || true)
    if { [[ -n "$holder" ]] && ! kill -0 "$holder" 2>/dev/null; } ||
      { [[ -z "$holder" ]] && [[ -n "$(find "$lock" -maxdepth 0 -mmin +1)" ]]; }; then
      rm -rf "$lock"
      mkdir "$lock" 2>/dev/null && got=1
    fi
  fi
  if ((got)); then
    echo $$ >"$lock/pid"
    cache_lock=$lock
    if (($(du -sk "$TWIP_TARGET_CACHE" | cut -f1) > 20 * 1024 * 1024)); then
      say "the build cache $TWIP_TARGET_CACHE is over 20 GB: clearing it"
      find "$TWIP_TARGET_CACHE" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    fi
    export CARGO_TARGET_DIR="$TWIP_TARGET_CACHE"
    say "building in the build cache $CARGO_TARGET_DIR"
  else
    say "the build cache $TWIP_TARGET_CACHE $why: building in ./target"
  fi
fi
# Not for the tests: twip hands its TWIP_* variables to hooks (tests/fake_hooks.rs lists them).
unset TWIP_TARGET_CACHE

begin "cargo fmt --check"
cargo fmt --all -- --check
end "cargo fmt --check"

begin "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
end "cargo clippy"

begin "engine and registries (scripts/engine-up.sh, TWIP_BASES=none)"
engine_started=1
TWIP_BASES=none bash "$root/scripts/engine-up.sh"
end "engine (packages, dockerd, registries)"

# The bases (debootstrap, much of it emulated arm64) and the test build overlap.
say "test bases (scripts/make-test-bases.sh all) in the background, log $logdir/bases.log"
bases_start=$(now)
bash "$root/scripts/make-test-bases.sh" all >"$logdir/bases.log" 2>&1 &
bases_pid=$!

begin "cargo test --no-run (build)"
# The build's diagnostics on stderr as usual; its JSON (one line per artifact) names each test
# binary for scripts/run-tests.sh.
cargo test --locked --all-targets --no-run --message-format=json-render-diagnostics >"$logdir/build.json"
jq -r --arg root "$root/" 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null)
  | "\(.target.src_path | ltrimstr($root)) \(.executable)"' "$logdir/build.json" >"$logdir/binaries"
end "build of the tests"

say "waiting for the test bases"
if ! wait "$bases_pid"; then
  bases_pid=
  tail -n 40 "$logdir/bases.log" >&2
  say "the test bases failed (log above); not running the tests"
  exit 1
fi
bases_pid=
phases+=("$(awk -v a="$bases_start" -v b="$(now)" 'BEGIN{printf "%-36s %7.1f s", "test bases (beside the build)", b-a}')")
cat "$logdir/bases.log" >&2

begin "tests (scripts/run-tests.sh: two lanes)"
# Every binary runs, also when one fails; each one's verdict and time as it ends, the whole
# output of a failed one. insta never writes snapshots here: a changed output is a failure.
set +e
bash "$root/scripts/run-tests.sh" "$logdir/binaries" "$logdir"
test_rc=$?
set -e
end "tests"

{
  echo
  echo "---- phases ----"
  printf '%s\n' "${phases[@]}"
  awk -v a="$T_ALL" -v b="$(now)" 'BEGIN{printf "%-36s %7.1f s\n", "total", b-a}'
  echo "---- test binaries (result, time, lane, start; in the order they ended) ----"
  cat "$logdir/results"
  failed=$(awk '$2 != "ok" {printf " %s", $1}' "$logdir/results")
  if [[ -n "$failed" ]]; then
    echo "---- failed test binaries:$failed"
  fi
  if ((test_rc != 0)); then
    echo "tests failed (each binary's output in $logdir/bin/)"
  else
    echo "all tests passed"
  fi
} >&2
exit "$test_rc"
