#!/usr/bin/env bash
# Recovery figures on a local lab, with requests through the manager's proxy counted the whole
# time (printed, not asserted):
# - killed tasks: `docker kill` of one web task's container, with web at 4 replicas and at 1;
#   seconds until swarm runs a replacement and until the app answers 20 times in a row;
# - a killed node: `docker kill` of a worker node's container; seconds until the swarm marks
#   the node Down, until the tasks it ran run on other nodes, and until the app answers.
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

# Requests through ADDR's proxy until TERM; then "ok failed" in $work/load.
start_loader() {
  (
    ok=0 bad=0
    trap 'echo "$ok $bad" >"$work/load"; exit 0' TERM
    while :; do
      for p in / /styles/site.css; do
        if [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$1$p")" == 200 ]]; then
          ok=$((ok + 1))
        else
          bad=$((bad + 1))
        fi
      done
    done
  ) &
  loader=$!
}
# Stops the loader; sets ok and bad.
stop_loader() {
  kill -TERM "$loader"
  wait "$loader" || true
  loader=
  read -r ok bad <"$work/load"
}
# 20 answers in a row from the app through ADDR's proxy.
answered() {
  local i
  for i in $(seq 20); do
    [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$1/")" == 200 ]] || return 1
  done
}

# Kill one running web task's container (on whichever node runs it); wait for a replacement.
kill_task() {
  local replicas=$1 task node cid engine t0 t_run t_answer
  "$twip" --project-dir "$work" scale recovery "web=$replicas" --lab "$lab" -q
  sleep 3
  read -r task node < <(d service ps recovery_web --no-trunc --filter desired-state=running --format '{{.ID}} {{.Node}}' | head -n 1)
  engine=$(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .engine' "$TWIP_LAB_DIR/$lab.json")
  cid=$(docker -H "$engine" ps -q --filter "label=com.docker.swarm.task.id=$task")
  start_loader "$addr"
  sleep 2
  t0=$(now)
  docker -H "$engine" kill "$cid" >/dev/null
  # A replacement: as many running tasks as wanted, none of them the killed one.
  until [[ "$(d service ps recovery_web --no-trunc --filter desired-state=running --format '{{.ID}} {{.CurrentState}}' |
    grep -v "^$task " | grep -c ' Running ')" -ge "$replicas" ]]; do sleep 0.2; done
  t_run=$(since "$t0")
  until answered "$addr"; do sleep 0.2; done
  t_answer=$(since "$t0")
  sleep 1
  stop_loader
  printf '%5d  killed task, web=%-2s  replacement running %5s s  app answers %5s s  requests ok/failed %s/%s\n' \
    "$r" "$replicas" "$t_run" "$t_answer" "$ok" "$bad"
}

for r in $(seq "$rounds"); do
  "$twip" lab up --name "$lab" --nodes 3 -q
  "$twip" --project-dir "$work" up recovery --lab "$lab" -q --timeout 5m
  manager=$(jq -r '.nodes[0].engine' "$TWIP_LAB_DIR/$lab.json")
  addr=$(jq -r '.nodes[0].address' "$TWIP_LAB_DIR/$lab.json")
  victim="$lab-worker-2"
  d() { docker -H "$manager" "$@"; }
  kill_task 4
  kill_task 1
  "$twip" --project-dir "$work" scale recovery web=4 --lab "$lab" -q
  # What runs on the victim (replicated services only; the global proxy just stops there).
  mapfile -t moved < <(d node ps "$victim" --filter desired-state=running --format '{{.Name}}' |
    sed 's/\.[0-9]*$//' | grep -v '_proxy' | sort -u)
  # Requests through the manager's proxy for the whole measurement.
  start_loader "$addr"
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
  until answered "$addr"; do sleep 0.2; done
  t_answer=$(since "$t0")
  sleep 1
  stop_loader
  printf '%5d  killed node       node Down %5s s  tasks elsewhere %5s s  app answers %5s s  requests ok/failed %s/%s  (moved: %s)\n' \
    "$r" "$t_down" "$t_tasks" "$t_answer" "$ok" "$bad" "${moved[*]}"
  "$twip" lab down --name "$lab" -q
done
