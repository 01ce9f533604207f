#!/usr/bin/env bash
# Time-to-converged of the production environment, deployed by twip and by
# `docker stack deploy --detach=false` from the same rendered stack file, in one run; and the wall
# time of `twip status` on a stack of 20 services. Prints the figures and the ratio.
# Needs a running engine in swarm mode (scripts/engine-up.sh; `twip swarm init production`) and
# the sample images (a first `twip up` builds them).
# Usage: scripts/bench-deploy.sh [ROUNDS]   (default 3)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rounds=${1:-3}
export TWIP_HTTP_PORT=${TWIP_HTTP_PORT:-38080} TWIP_STATS_PORT=${TWIP_STATS_PORT:-39360}
export TWIP_BASE_IMAGE=${TWIP_BASE_IMAGE:-twip/base:bookworm}
cargo build --release --quiet
twip="$root/target/release/twip"
work=$(mktemp -d)
cleanup() {
  "$twip" --project-dir "$work" down bench -q >/dev/null 2>&1 || true
  docker stack rm benchstack >/dev/null 2>&1 || true
  "$twip" --project-dir "$work" down many -q >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A copy of the project whose production stack is named `bench` (so a real `production` is untouched).
mkdir -p "$work/environments"
ln -s "$root/images" "$work/images"
cp environments/training.yaml "$work/environments/training.yaml"
{ cat environments/production.yaml; echo "stack: bench"; } >"$work/environments/bench.yaml"
"$twip" --project-dir "$work" up bench -q --timeout 10m   # builds missing images once
"$twip" --project-dir "$work" down bench -q
gone() { while docker service ls -q --filter "label=com.docker.stack.namespace=$1" | grep -q .; do sleep 0.5; done; }
now() { date +%s.%N; }

printf 'round  twip up (s)  docker stack deploy (s)\n'
tw_total=0; ds_total=0
for r in $(seq "$rounds"); do
  t0=$(now); "$twip" --project-dir "$work" up bench -q --timeout 10m; t1=$(now)
  tw=$(echo "$t1 - $t0" | awk '{print $1 - $3}')
  "$twip" --project-dir "$work" down bench -q
  # The same rendered stack file, deployed by docker's own client.
  "$twip" --project-dir "$work" render bench -o "$work/rendered" >/dev/null
  t0=$(now); (cd "$work/rendered" && docker stack deploy --detach=false -c stack.yml benchstack >/dev/null); t1=$(now)
  ds=$(echo "$t1 - $t0" | awk '{print $1 - $3}')
  docker stack rm benchstack >/dev/null; gone benchstack
  sleep 2
  printf '%5d  %11.2f  %23.2f\n' "$r" "$tw" "$ds"
  tw_total=$(awk -v a="$tw_total" -v b="$tw" 'BEGIN{print a+b}')
  ds_total=$(awk -v a="$ds_total" -v b="$ds" 'BEGIN{print a+b}')
done
awk -v t="$tw_total" -v d="$ds_total" -v n="$rounds" 'BEGIN{printf "mean   %11.2f  %23.2f   twip/docker = %.2f (below 1: twip is faster)\n", t/n, d/n, t/d}'

# twip status on a stack of 20 services.
{
  echo "stack: many"
  echo "services:"
  for i in $(seq -w 1 20); do
    printf '  s%s:\n    image: %s\n    command: ["sleep", "infinity"]\n' "$i" "$TWIP_BASE_IMAGE"
  done
} >"$work/environments/many.yaml"
"$twip" --project-dir "$work" up many -q --timeout 10m
"$twip" --project-dir "$work" status many >/dev/null
n=10; t0=$(now)
for _ in $(seq $n); do "$twip" --project-dir "$work" status many >/dev/null; done
t1=$(now)
awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN{printf "twip status, 20 services: %.0f ms per call (mean of %d; target under 300 ms)\n", (b-a)*1000/n, n}'
t0=$(now)
for _ in $(seq $n); do docker service ls >/dev/null; done
t1=$(now)
awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN{printf "docker service ls, same stack: %.0f ms per call\n", (b-a)*1000/n}'
