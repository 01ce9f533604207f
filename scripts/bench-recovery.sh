#!/usr/bin/env bash
# Recovery figure on a local lab: after `docker kill` of a worker node's container, how many
# seconds until the swarm marks the node Down, and until the tasks it ran run on other nodes and
# the app answers through the proxy again. Also counts failed requests through the manager's
# proxy during the whole time (printed, not asserted).
# Needs the engine and the lab images (scripts/engine-up.sh). Makes its own lab and removes it.
# Usage: scripts/bench-recovery.sh [ROUNDS]   (default 1; each round is a fresh lab)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rounds=${1:-1}
cargo build --quiet
twip="${CARGO_TARGET_DIR:-$root/target}/debug/twip"
work=$(mktemp -d)
export TWIP_LAB_DIR="$work/labs"
lab="rec$$"
ns="twiprec$$"
cleanup() {
  if [[ -n "${loader:-}" ]]; then kill "$loader" 2>/dev/null || true; fi
  "$twip" lab down --name "$lab" -q >/dev/null 2>&1 || true
  for i in static:latest web:1.0.0 proxy:latest; do docker rmi -f "127.0.0.1:5000/$ns/$i" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# The scaled environment without Prometheus (not pullable here) and without web's per-node
# limit (so a worker's web tasks have somewhere to go when it dies).
mkdir -p "$work/environments"
ln -s "$root/images" "$work/images"
cp environments/{training,production,scaled}.yaml "$work/environments/"
cat >"$work/environments/recovery.yaml" <<YAML
extends: scaled
stack: recovery
registry:
  url: 127.0.0.1:5000
  namespace: $ns
monitoring:
  enabled: false
services:
  web:
    placement:
      max_replicas_per_node: null
YAML
for i in static:latest web:1.0.0 proxy:latest; do
  docker build -q --build-arg BASE=twip/base:bookworm --build-arg VERSION=1.0.0 \
    -t "127.0.0.1:5000/$ns/$i" "images/${i%%:*}" >/dev/null
done

printf 'round  node Down (s)  tasks running elsewhere (s)  app answers (s)  requests ok/failed\n'
for r in $(seq "$rounds"); do
  "$twip" lab up --name "$lab" --nodes 3 -q
  "$twip" --project-dir "$work" up recovery --lab "$lab" -q --timeout 5m
  manager=$(jq -r '.nodes[0].engine' "$TWIP_LAB_DIR/$lab.json")
  addr=$(jq -r '.nodes[0].address' "$TWIP_LAB_DIR/$lab.json")
  victim="$lab-worker-2"
  d() { docker -H "$manager" "$@"; }
  # What runs on the victim (replicated services only; the global proxy just stops there).
  mapfile -t moved < <(d node ps "$victim" --filter desired-state=running --format '{{.Name}}' |
    sed 's/\.[0-9]*$//' | grep -v '_proxy' | sort -u)
  # Requests through the manager's proxy for the whole measurement.
  (
    ok=0 bad=0
    trap 'echo "$ok $bad" >"$work/load"; exit 0' TERM
    while :; do
      for p in / /styles/site.css; do
        if [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$addr$p")" == 200 ]]; then
          ok=$((ok + 1))
        else
          bad=$((bad + 1))
        fi
      done
    done
  ) &
  loader=$!
  sleep 2
  t0=$(now)
  docker kill "$victim" >/dev/null
  until [[ "$(d node inspect "$victim" --format '{{.Status.State}}')" == down ]]; do sleep 0.2; done
  t_down=$(since "$t0")
  # Every replicated service that ran there is whole again, on the other nodes.
  whole() {
    local s want have
    for s in "${moved[@]}"; do
      want=$(d service inspect "$s" --format '{{.Spec.Mode.Replicated.Replicas}}')
      have=$(d service ps "$s" --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' |
        grep -v "^$victim " | grep -c ' Running ' || true)
      [[ "$have" -ge "$want" ]] || return 1
    done
  }
  until whole; do sleep 0.2; done
  t_tasks=$(since "$t0")
  # ... and the app answers through the proxy: 20 requests in a row.
  answered() {
    local i
    for i in $(seq 20); do
      [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$addr/")" == 200 ]] || return 1
    done
  }
  until answered; do sleep 0.2; done
  t_answer=$(since "$t0")
  sleep 1
  kill -TERM "$loader"
  wait "$loader" || true
  loader=
  read -r ok bad <"$work/load"
  printf '%5d  %13s  %27s  %15s  %s/%s   (moved: %s)\n' "$r" "$t_down" "$t_tasks" "$t_answer" "$ok" "$bad" "${moved[*]}"
  "$twip" lab down --name "$lab" -q
done
