#!/usr/bin/env bash
# The offline base images, by what needs them:
#   make-test-bases.sh training   the amd64 base only (localhost:5000/twip/base:bookworm and the
#                                 local twip/base:bookworm): all `twip train up` and the sample
#                                 images' --load builds need; what scripts/quickstart.sh makes
#   make-test-bases.sh all        (default) everything the test suite needs: the base for every
#                                 arch of TWIP_BASE_ARCHES (amd64 + arm64, checked by running an
#                                 arm64 container), the examples' base (twip/examples-base, amd64)
#                                 and the lab images (twip/lab-node, twip/lab-sshd)
# Idempotent and cached (each part does nothing when current, ~1 s in all); one run at a time
# (a lock), so two test runs starting together do not build the same base twice. Needs the
# engine and the open registry (scripts/engine-up.sh; engine-up.sh runs this script itself
# with TWIP_BASES). A `training` run followed by an `all` run adds what is missing: the amd64
# rootfs is reused from the cache.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root
what=${1:-all}
case "$what" in
  training | all) ;;
  *) die "usage: $(basename "$0") [training|all] (got '$what')" ;;
esac
mkdir -p "$TWIP_STATE_DIR" "$TWIP_LOG_DIR"
exec 8>"$TWIP_STATE_DIR/bases.lock"
flock -w 3600 8 || die "another make-test-bases.sh holds $TWIP_STATE_DIR/bases.lock"
engine_answers || die "no engine answers; run scripts/engine-up.sh"

T0=$(now_s)
REG_PORT="${TWIP_REGISTRY_ADDR##*:}"

if [[ "$what" == training ]]; then
  TWIP_BASE_ARCHES=amd64 "$TWIP_SCRIPTS_DIR/make-bases.sh"
  log "bases (training: amd64 base only) ready in $(elapsed "$T0")s"
  exit 0
fi

t=$(now_s)
"$TWIP_SCRIPTS_DIR/make-bases.sh"
# Emulation end to end: an arm64 container of the base runs on this amd64 host.
if [[ " $TWIP_BASE_ARCHES " == *" arm64 "* ]]; then
  m=$(docker run --rm --platform linux/arm64 "localhost:$REG_PORT/twip/base:$TWIP_BASE_SUITE" uname -m \
    2>"$TWIP_LOG_DIR/arm64-check.log") ||
    die "an arm64 container of the base does not run: $(tail -n 5 "$TWIP_LOG_DIR/arm64-check.log")"
  [[ "$m" == aarch64 ]] || die "an arm64 container of the base reports '$m', want aarch64"
fi
log "bases: twip/base ($TWIP_BASE_ARCHES) in $(elapsed "$t")s"
# The examples' base (examples/: flask and gunicorn apps, redis, postgres), amd64, made the same way.
if [[ "${TWIP_SKIP_EXAMPLES:-0}" != 1 ]]; then
  t=$(now_s)
  TWIP_BASE_NAME=twip/examples-base TWIP_BASE_ARCHES=amd64 \
    TWIP_BASE_PACKAGES="${TWIP_EXAMPLES_PACKAGES:-python3,python3-flask,python3-redis,python3-psycopg2,gunicorn,redis-server,postgresql}" \
    "$TWIP_SCRIPTS_DIR/make-bases.sh"
  log "bases: twip/examples-base in $(elapsed "$t")s"
fi
# The lab's node image (and the bootstrap tests' sshd host), built on the base; cached by recipe.
if [[ "${TWIP_SKIP_LAB:-0}" != 1 ]]; then
  t=$(now_s)
  "$TWIP_SCRIPTS_DIR/make-lab-node.sh"
  log "bases: lab images in $(elapsed "$t")s"
fi
log "bases (all) ready in $(elapsed "$T0")s"
