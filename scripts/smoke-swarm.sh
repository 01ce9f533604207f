#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || bad`: ok only logs, it cannot fail
# Single-node swarm check of the layout twip renders (scripts/smoke/stack.yml + haproxy.cfg):
# web (2 replicas, endpoint_mode dnsrr, journal on a named volume), static (dnsrr), and HAProxy
# published in host mode, finding the tasks through Docker's DNS. Checks routing, both web tasks
# answering, the shared journal, and a rolling update of web under sequential load with no failed
# request. Then removes the stack, and leaves the swarm if this script created it.
# Needs scripts/engine-up.sh and the images scripts/smoke-images.sh pushes (:smoke tags).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REG="localhost:${TWIP_REGISTRY_ADDR##*:}"
TAG="${TWIP_SMOKE_TAG:-smoke}"
STACK="${TWIP_SMOKE_STACK:-twip-smoke}"
export TWIP_SMOKE_WEB_IMAGE="$REG/twip/web:$TAG"
export TWIP_SMOKE_STATIC_IMAGE="$REG/twip/static:$TAG"
export TWIP_SMOKE_PROXY_IMAGE="$REG/twip/proxy:$TAG"
export TWIP_SMOKE_WEB_VERSION="${TWIP_SMOKE_VERSION:-1.0.0}"
# Host-mode ports: the first free ones from 28080 and 28936 unless set.
TWIP_SMOKE_HTTP_PORT="${TWIP_SMOKE_HTTP_PORT:-$(free_port 28080)}"
TWIP_SMOKE_STATS_PORT="${TWIP_SMOKE_STATS_PORT:-$(free_port 28936)}"
export TWIP_SMOKE_HTTP_PORT TWIP_SMOKE_STATS_PORT
URL="http://127.0.0.1:$TWIP_SMOKE_HTTP_PORT"
SMOKE_DIR="$TWIP_SCRIPTS_DIR/smoke"
WE_INITED=0
FAILS=0
ok() { log "ok: $*"; }
bad() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }

engine_answers || die "no engine answers; run scripts/engine-up.sh first"
for img in "$TWIP_SMOKE_WEB_IMAGE" "$TWIP_SMOKE_STATIC_IMAGE" "$TWIP_SMOKE_PROXY_IMAGE"; do
  docker buildx imagetools inspect "$img" >/dev/null 2>&1 || die "$img not in the registry; run scripts/smoke-images.sh first"
done

cleanup() {
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  # stack rm returns before the tasks are gone; the network and volume go once they are.
  local i
  for ((i = 0; i < 60; i++)); do
    [[ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ]] &&
      [[ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]] && break
    sleep 0.5
  done
  docker volume rm "${STACK}_data" >/dev/null 2>&1 || true
  if ((WE_INITED)); then docker swarm leave --force >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [[ "$(docker info -f '{{.Swarm.LocalNodeState}}')" != active ]]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  WE_INITED=1
  ok "swarm initialised (this script will leave it)"
else
  log "swarm already active: using it, and leaving it as it is afterwards"
fi

t=$(now_s)
(cd "$SMOKE_DIR" && timeout 300 docker stack deploy --detach=false -c stack.yml "$STACK") >"$TWIP_LOG_DIR/smoke-swarm-deploy.log" 2>&1 ||
  { tail -n 20 "$TWIP_LOG_DIR/smoke-swarm-deploy.log" >&2; docker stack ps --no-trunc "$STACK" >&2 || true
    die "docker stack deploy failed or did not converge in 300s"; }
ok "ports: http 127.0.0.1:$TWIP_SMOKE_HTTP_PORT, stats 127.0.0.1:$TWIP_SMOKE_STATS_PORT"
ok "stack deployed in $(elapsed "$t")s"

# Both web tasks up behind the proxy (HAProxy's CSV stats: column 18 is the status).
web_up() { curl -s -m 2 "http://127.0.0.1:$TWIP_SMOKE_STATS_PORT/;csv" | awk -F, '$1 == "web" && $18 == "UP"' | wc -l; }
for ((i = 0; i < 120; i++)); do
  [[ "$(web_up)" -ge 2 && "$(http_status "$URL/styles/site.css")" == 200 ]] && break
  sleep 0.5
done
[[ "$(web_up)" -ge 2 ]] && ok "HAProxy sees 2 web servers UP after $(elapsed "$t")s" || bad "HAProxy sees $(web_up) web servers UP"

st=$(http_status "$URL/")
[[ "$st" == 200 ]] && ok "GET / through the proxy -> 200" || bad "GET / through the proxy -> $st"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$URL/styles/site.css")
[[ "$ctype" == text/css* ]] && ok "/styles/site.css routed to static ($ctype)" || bad "/styles/site.css -> '$ctype'"

for ((i = 1; i <= 10; i++)); do
  curl -s -o /dev/null -H 'Content-Type: application/json' -d "{\"title\":\"item $i\"}" "$URL/news"
done
served=$(for ((i = 0; i < 20; i++)); do curl -s -D - -o /dev/null "$URL/news" | tr -d '\r' | awk 'tolower($1) == "x-served-by:" {print $2}'; done | sort -u | wc -l)
[[ "$served" -ge 2 ]] && ok "$served distinct web tasks answered 20 requests" || bad "only $served web task(s) answered"
ids=$(curl -s "$URL/news" | jq -r '[.[].id] | join(",")')
[[ "$ids" == "1,2,3,4,5,6,7,8,9,10" ]] && ok "10 posts through 2 tasks: one journal, ids $ids" || bad "journal ids: $ids"

# Rolling update under sequential load: every request must succeed.
t=$(now_s)
docker service update --detach --env-add APP_VERSION=1.0.1-smoke "${STACK}_web" >/dev/null
total=0 failed=0
while :; do
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$URL/news" || true)
  total=$((total + 1))
  [[ "$code" == 200 ]] || failed=$((failed + 1))
  state=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${STACK}_web")
  [[ "$state" == completed || "$state" == rollback_completed || "$state" == paused ]] && break
  awk -v a="$t" -v b="$(now_s)" 'BEGIN{exit !(b-a > 180)}' && { bad "update did not finish in 180s (state $state)"; break; }
done
vers=$(for ((i = 0; i < 10; i++)); do curl -s -D - -o /dev/null "$URL/" | tr -d '\r' | awk 'tolower($1) == "x-app-version:" {print $2}'; done | sort -u | paste -sd, -)
if [[ "$state" == completed && "$failed" -eq 0 && "$vers" == 1.0.1-smoke ]]; then
  ok "rolling update of web in $(elapsed "$t")s: $total requests, 0 failed; now serving $vers"
else
  bad "rolling update: state '$state', $failed of $total requests failed, versions now '$vers'"
fi
ids=$(curl -s "$URL/news" | jq -r 'length')
[[ "$ids" == 10 ]] && ok "journal kept its 10 items across the update" || bad "journal has $ids items after the update"

log "---- smoke-swarm: $FAILS failure(s) ----"
((FAILS == 0))
