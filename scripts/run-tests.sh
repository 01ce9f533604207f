#!/usr/bin/env bash
# Runs the built test binaries in two lanes side by side, and prints a summary.
#
#   scripts/run-tests.sh BINARIES LOGDIR
#
# BINARIES: one line per test binary, "SOURCE EXECUTABLE" (SOURCE relative to the repository:
# tests/lab.rs, src/lib.rs), as scripts/test.sh writes it from `cargo test --no-run
# --message-format=json`. Each binary runs from the repository's root, as cargo runs it, with
# its whole output in LOGDIR/bin/NAME.log.
#
# Why lanes: much of the engine tests' time is waiting (a swarm converging, a job's next
# minute, a node declared down), so two binaries side by side each take about as long as alone
# (0-20% longer): on the 2-core CI machine 2630 s of tests one after another, 1483 s in two
# lanes (docs/notes/test-infra.md). The failover test (SOLO below) runs first, alone. Then the
# tests that count failed requests under load (LANE_A) run one at a time, in lane A; every other
# binary is in the shared queue, which lane B runs from the front and lane A joins when its own
# list is done. So at most one measuring test runs at any moment, beside at most one other
# binary. TWIP_TEST_LANES=1 runs everything in one lane (SOLO, lane A's list, then the queue).
#
# Exits 1 when a binary failed (non-zero exit, or no result line), 0 otherwise.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
list=$1
logdir=$2
mkdir -p "$logdir/bin" "$logdir/claimed"
: >"$logdir/results"

# Alone, before the lanes: the failover of the floating address, whose client sends 200
# requests/s through a lab of 5 nodes and counts every failure before the kill. Beside drift's
# service updates, requests were held 1.5-2.5 s and answered 503 by a loaded proxy (twice in
# three rehearsals with it in lane A; never when it ran alone).
SOLO=(tests/lab_failover.rs)
# The binaries that measure: 0 failed requests across an update, a certificate roll-out, the
# autoscaler under load, the vote app's counts. Longest first.
LANE_A=(tests/example_vote.rs tests/lab_reliability.rs tests/acme_hot.rs tests/zero_downtime.rs
  tests/https.rs tests/hot_swap.rs)
# The shared queue starts with the longest of the others (from the CI's timings), so that the
# lanes end near each other; the rest follow in name order.
FIRST=(tests/lab_agent.rs tests/lifecycle.rs tests/drift.rs tests/lab_managers.rs
  tests/release_tasks.rs tests/lab.rs tests/jobs.rs tests/acme.rs tests/ops.rs tests/exec.rs
  tests/example_counter.rs tests/images.rs tests/example_bidder.rs tests/agent.rs)

declare -A exe=()
while read -r src path; do
  [[ -n "$src" ]] && exe[$src]=$path
done <"$list"
if ((${#exe[@]} == 0)); then
  echo "run-tests: no test binaries listed in $list" >&2
  exit 1
fi

in_list() { # in_list ITEM LIST...
  local x=$1
  shift
  local y
  for y in "$@"; do [[ "$x" == "$y" ]] && return 0; done
  return 1
}

solo=()
for s in "${SOLO[@]}"; do [[ -n "${exe[$s]:-}" ]] && solo+=("$s"); done
lane_a=()
for s in "${LANE_A[@]}"; do [[ -n "${exe[$s]:-}" ]] && lane_a+=("$s"); done
queue=()
for s in "${FIRST[@]}"; do [[ -n "${exe[$s]:-}" ]] && queue+=("$s"); done
while read -r s; do
  in_list "$s" "${SOLO[@]}" "${LANE_A[@]}" "${FIRST[@]}" || queue+=("$s")
done < <(printf '%s\n' "${!exe[@]}" | sort)

now() { date +%s.%N; }
T0=$(now)
# run LANE SOURCE: one binary; its verdict line goes to LOGDIR/results and stderr.
run() {
  local lane=$1 src=$2 name log start rc secs verdict counts
  name=${src//\//_}
  name=${name%.rs}
  log="$logdir/bin/$name.log"
  start=$(now)
  # cargo runs a test binary from the package's root; insta must never write snapshots here.
  INSTA_UPDATE=no "${exe[$src]}" >"$log" 2>&1 </dev/null
  rc=$?
  secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
  counts=$(grep -E '^test result: ' "$log" | tail -n 1 | sed -E 's/^test result: [A-Za-z]+\. //; s/; [0-9]+ ignored.*//')
  if ((rc == 0)) && [[ -n "$counts" ]]; then
    verdict=ok
  elif [[ -z "$counts" ]]; then
    verdict=CRASHED
  else
    verdict=FAILED
  fi
  printf '%-32s %-8s %7s s  lane %s  at %5.0f s  %s\n' "$src" "$verdict" "$secs" "$lane" \
    "$(awk -v a="$T0" -v b="$start" 'BEGIN{print b-a}')" "$counts" | tee -a "$logdir/results" >&2
  if [[ "$verdict" != ok ]]; then
    {
      echo "----- $src: $verdict (exit $rc); its output ($log):"
      cat "$log"
      echo "----- end of $src"
    } >&2
  fi
}
# claim SOURCE: true for the one lane that takes it first (mkdir is atomic).
claim() { mkdir "$logdir/claimed/${1//\//_}" 2>/dev/null; }
drain() { # drain LANE: the shared queue, in order, what no other lane took.
  local s
  for s in "${queue[@]}"; do
    if claim "$s"; then run "$1" "$s"; fi
  done
}

for s in "${solo[@]}"; do run solo "$s"; done
if [[ "${TWIP_TEST_LANES:-2}" == 1 ]]; then
  for s in "${lane_a[@]}"; do run A "$s"; done
  drain A
else
  (
    for s in "${lane_a[@]}"; do run A "$s"; done
    drain A
  ) &
  a=$!
  drain B &
  b=$!
  wait "$a" "$b"
fi

missing=0
for s in "${!exe[@]}"; do
  grep -q "^$s " "$logdir/results" || {
    echo "run-tests: $s did not run" >&2
    missing=1
  }
done
if grep -qvE '^\S+ +ok ' "$logdir/results" || ((missing)); then
  exit 1
fi
exit 0
