#!/usr/bin/env bash
# Build the offline images `twip lab` and its tests use, from twip's base image and Debian's packages
# (no Docker Hub):
#   twip/lab-node:bookworm   a lab node: Debian's docker.io (20.10) started as dockerd on the unix
#                            socket and tcp://0.0.0.0:2375 with --tls=false (images/lab-node)
#   twip/lab-sshd:bookworm   a fresh host for bootstrap tests: sshd, no Docker (images/lab-sshd)
# Each image carries the hash of its build context and base (label org.twip.lab.recipe); a second run
# with nothing changed does nothing (well under a second). Called by engine-up.sh after make-bases.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root
: "${TWIP_LAB_BASE:=twip/base:$TWIP_BASE_SUITE}"

engine_answers || die "no engine answers; run engine-up.sh"
base_id=$(docker image inspect -f '{{.Id}}' "$TWIP_LAB_BASE" 2>/dev/null) ||
  die "the base image $TWIP_LAB_BASE is missing; run make-bases.sh (engine-up.sh does)"

# recipe DIR: a hash of the build context's files and the base image.
recipe() {
  (
    cd "$1"
    find . -type f | LC_ALL=C sort | xargs sha256sum
    echo "$base_id"
  ) | sha256sum | cut -c1-12
}

build() { # build NAME CONTEXT
  local name=$1 ctx=$2 want have t
  want=$(recipe "$ctx")
  have=$(docker image inspect -f '{{index .Config.Labels "org.twip.lab.recipe"}}' "$name" 2>/dev/null || true)
  if [[ "$have" == "$want" ]]; then
    log "lab: $name (recipe $want) is current; nothing to do"
    return 0
  fi
  t=$(now_s)
  log "lab: building $name (recipe $want), log $TWIP_LOG_DIR/lab-$(basename "$ctx").log"
  if ! docker build -q --build-arg "BASE=$TWIP_LAB_BASE" --label "org.twip.lab.recipe=$want" \
    -t "$name" "$ctx" >"$TWIP_LOG_DIR/lab-$(basename "$ctx").log" 2>&1; then
    tail -n 30 "$TWIP_LOG_DIR/lab-$(basename "$ctx").log" >&2
    die "building $name failed"
  fi
  log "lab: $name built in $(elapsed "$t")s"
}

mkdir -p "$TWIP_LOG_DIR"
build "twip/lab-node:$TWIP_BASE_SUITE" "$TWIP_REPO_ROOT/images/lab-node"
build "twip/lab-sshd:$TWIP_BASE_SUITE" "$TWIP_REPO_ROOT/images/lab-sshd"
