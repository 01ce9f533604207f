#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || bad`: ok only logs, it cannot fail
# Check the sample images against the engine engine-up.sh prepared:
#  1. multi-platform build + push of images/{static,web,proxy} to the open registry, platforms listed;
#     a second, no-change build of web (cache) timed too;
#  2. web's arm64 variant runs under emulation and answers /healthz on a published 127.0.0.1 port,
#     and stops gracefully (exit 0) on `docker stop`; static and proxy answer on amd64;
#  3. a single-platform --load build from the local base twip/base:bookworm;
#  4. the htpasswd registry refuses a push without login and accepts one after (engine and buildx).
# Run scripts/engine-up.sh first. Leaves the pushed images in the registry; removes its containers.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REG="localhost:${TWIP_REGISTRY_ADDR##*:}"
AUTH_REG="$TWIP_AUTH_REGISTRY_ADDR"
BASE="$REG/twip/base:$TWIP_BASE_SUITE"
TAG="${TWIP_SMOKE_TAG:-smoke}"
VERSION="${TWIP_SMOKE_VERSION:-1.0.0}"
PLATFORMS="${TWIP_SMOKE_PLATFORMS:-linux/amd64,linux/arm64}"
IMAGES="$TWIP_REPO_ROOT/images"
LOGS=$(mktemp -d /tmp/twip-smoke.XXXXXX)
CONTAINERS=(twip-smoke-web-arm64 twip-smoke-static twip-smoke-proxy)
# Our own client config: docker login in step 4 never touches the caller's ~/.docker.
DOCKER_CONFIG=$(mktemp -d /tmp/twip-smoke-docker.XXXXXX)
export DOCKER_CONFIG

cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do docker rm -f -v "$c" >/dev/null 2>&1 || true; done
  docker logout "$AUTH_REG" >/dev/null 2>&1 || true
  rm -rf "$DOCKER_CONFIG"
}
trap cleanup EXIT

engine_answers || die "no engine answers; run scripts/engine-up.sh first"
FAILS=0
ok() { log "ok: $*"; }
bad() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }

platforms_of() { # sorted, attestation entries (unknown/unknown) left out
  docker buildx imagetools inspect --raw "$1" |
    jq -r '.manifests[].platform | select(.os != "unknown") | "\(.os)/\(.architecture)\(if .variant then "/"+.variant else "" end)"' |
    sort | paste -sd, -
}

build_push() { # build_push NAME -> seconds
  local name=$1 t
  t=$(now_s)
  docker buildx build --platform "$PLATFORMS" --build-arg BASE="$BASE" --build-arg VERSION="$VERSION" \
    -t "$REG/twip/$name:$TAG" --push "$IMAGES/$name" >"$LOGS/build-$name.log" 2>&1 ||
    { tail -n 30 "$LOGS/build-$name.log" >&2; die "build of images/$name failed (log $LOGS/build-$name.log)"; }
  elapsed "$t"
}

wait_http() { # wait_http URL SECONDS -> 0 when it answered 200
  local url=$1 secs=$2 i
  for ((i = 0; i < secs * 4; i++)); do
    [[ "$(http_status "$url")" == 200 ]] && return 0
    sleep 0.25
  done
  return 1
}

run_published() { # run_published NAME PLATFORM IMAGE CONTAINER_PORT -> host port
  local name=$1 platform=$2 image=$3 cport=$4
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --platform "$platform" -p "127.0.0.1::$cport" "$image" >/dev/null
  docker port "$name" "$cport/tcp" | head -n1 | sed 's/.*://'
}

# 1. Multi-platform builds ---------------------------------------------------------------------
if [[ "${TWIP_SMOKE_COLD:-0}" == 1 ]]; then
  log "TWIP_SMOKE_COLD=1: dropping the build cache first"
  docker buildx prune -af >/dev/null
fi
want=$(tr , '\n' <<<"$PLATFORMS" | sort | paste -sd, -)
declare -A BUILD_S
for name in static web proxy; do
  BUILD_S[$name]=$(build_push "$name")
  got=$(platforms_of "$REG/twip/$name:$TAG")
  if [[ "$got" == "$want" ]]; then ok "$REG/twip/$name:$TAG has $got (built in ${BUILD_S[$name]}s)"; else bad "$REG/twip/$name:$TAG has '$got', want '$want'"; fi
done
REBUILD_S=$(build_push web)
ok "no-change rebuild of web: ${REBUILD_S}s"

# 2. Run them ----------------------------------------------------------------------------------
port=$(run_published twip-smoke-web-arm64 linux/arm64 "$REG/twip/web:$TAG" 8080)
t=$(now_s)
if wait_http "http://127.0.0.1:$port/healthz" 60; then
  ok "web (linux/arm64, emulated) answers /healthz on 127.0.0.1:$port after $(elapsed "$t")s"
  arch=$(docker exec twip-smoke-web-arm64 uname -m)
  [[ "$arch" == aarch64 ]] && ok "web container runs as $arch" || bad "web container runs as $arch, want aarch64"
  hdr=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/" | tr -d '\r')
  grep -qx "X-App-Version: $VERSION" <<<"$hdr" && ok "X-App-Version: $VERSION" || bad "no X-App-Version: $VERSION in: $hdr"
  grep -q '^X-Served-By: ' <<<"$hdr" && ok "$(grep '^X-Served-By: ' <<<"$hdr")" || bad "no X-Served-By header"
  st=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"title":"smoke"}' "http://127.0.0.1:$port/news")
  [[ "$st" == 201 ]] && ok "POST /news -> 201" || bad "POST /news -> $st"
  t=$(now_s)
  docker stop twip-smoke-web-arm64 >/dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' twip-smoke-web-arm64)
  [[ "$code" == 0 ]] && ok "web stopped gracefully (exit 0) in $(elapsed "$t")s (lame duck 3s)" || bad "web exit code $code after docker stop"
else
  bad "web (linux/arm64) did not answer /healthz within 60s"
  docker logs twip-smoke-web-arm64 >&2 || true
fi

port=$(run_published twip-smoke-static linux/amd64 "$REG/twip/static:$TAG" 80)
if wait_http "http://127.0.0.1:$port/healthz" 20; then
  ctype=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port/styles/site.css")
  [[ "$ctype" == text/css* ]] && ok "static serves /styles/site.css as $ctype" || bad "static /styles/site.css content type '$ctype'"
  st=$(http_status "http://127.0.0.1:$port/images/logo.svg")
  [[ "$st" == 200 ]] && ok "static serves /images/logo.svg" || bad "static /images/logo.svg -> $st"
  curl -s -D - -o /dev/null "http://127.0.0.1:$port/healthz" | tr -d '\r' | grep -qx "X-App-Version: $VERSION" &&
    ok "static X-App-Version: $VERSION" || bad "static lacks X-App-Version: $VERSION"
else
  bad "static did not answer /healthz"
  docker logs twip-smoke-static >&2 || true
fi

port=$(run_published twip-smoke-proxy linux/amd64 "$REG/twip/proxy:$TAG" 1936)
if wait_http "http://127.0.0.1:$port/" 20; then ok "proxy (default config) serves its stats page on :1936"; else
  bad "proxy stats page did not answer"
  docker logs twip-smoke-proxy >&2 || true
fi

# 3. Single-platform --load from the local base --------------------------------------------------
t=$(now_s)
if docker buildx build --load --build-arg BASE="twip/base:$TWIP_BASE_SUITE" --build-arg VERSION="$VERSION" \
  -t "twip/web:$TAG-local" "$IMAGES/web" >"$LOGS/build-web-local.log" 2>&1; then
  ok "single-platform --load build from twip/base:$TWIP_BASE_SUITE in $(elapsed "$t")s ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "twip/web:$TAG-local"))"
else
  bad "single-platform --load build failed (log $LOGS/build-web-local.log)"
fi

# 4. The htpasswd registry ---------------------------------------------------------------------
docker tag "twip/web:$TAG-local" "$AUTH_REG/twip/web:$TAG"
if docker push "$AUTH_REG/twip/web:$TAG" >"$LOGS/push-noauth.log" 2>&1; then
  bad "push to $AUTH_REG succeeded without login"
else
  grep -q 'no basic auth credentials' "$LOGS/push-noauth.log" && ok "push to $AUTH_REG without login refused: no basic auth credentials" ||
    bad "push without login failed, but not for lack of credentials (log $LOGS/push-noauth.log)"
fi
if docker buildx build --platform "$PLATFORMS" --build-arg BASE="$BASE" -t "$AUTH_REG/twip/web:$TAG-bx" --push "$IMAGES/web" \
  >"$LOGS/bx-noauth.log" 2>&1; then
  bad "buildx push to $AUTH_REG succeeded without login"
else
  ok "buildx push to $AUTH_REG without login refused"
fi
docker login "$AUTH_REG" -u "$TWIP_TEST_REGISTRY_USER" --password-stdin <<<"$TWIP_TEST_REGISTRY_PASSWORD" >/dev/null 2>&1 ||
  bad "docker login $AUTH_REG failed"
docker push "$AUTH_REG/twip/web:$TAG" >"$LOGS/push-auth.log" 2>&1 && ok "push to $AUTH_REG after login accepted" ||
  bad "push after login failed (log $LOGS/push-auth.log)"
docker buildx build --platform "$PLATFORMS" --build-arg BASE="$BASE" -t "$AUTH_REG/twip/web:$TAG-bx" --push "$IMAGES/web" \
  >"$LOGS/bx-auth.log" 2>&1 && ok "buildx multi-platform push to $AUTH_REG after login accepted" ||
  bad "buildx push after login failed (log $LOGS/bx-auth.log)"
docker logout "$AUTH_REG" >/dev/null
docker image rm "$AUTH_REG/twip/web:$TAG" >/dev/null 2>&1 || true

{
  echo "---- smoke-images: $FAILS failure(s); logs in $LOGS ----"
  echo "cold-or-cached build+push ($PLATFORMS): static ${BUILD_S[static]}s, web ${BUILD_S[web]}s, proxy ${BUILD_S[proxy]}s; no-change web ${REBUILD_S}s"
} >&2
((FAILS == 0))
