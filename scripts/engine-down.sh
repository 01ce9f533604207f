#!/usr/bin/env bash
# Stop what scripts/engine-up.sh started: the two registries, and dockerd if engine-up started it.
# A dockerd that was already running before engine-up is left alone. Caches ($TWIP_CACHE: base
# tarballs, registry storage) and /var/lib/docker are kept. Safe to run when nothing runs.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root
[[ -d "$TWIP_STATE_DIR" ]] || { log "engine-down: nothing was started by engine-up"; exit 0; }

exec 9>"$TWIP_STATE_DIR/engine-up.lock"
flock -w 600 9 || die "engine-up.sh is still running (lock $TWIP_STATE_DIR/engine-up.lock)"

for name in open auth; do
  pidfile="$TWIP_STATE_DIR/registry-$name.pid"
  if pid_alive "$pidfile" docker-registry; then
    log "engine-down: stopping registry $name (pid $(<"$pidfile"))"
    stop_pid "$pidfile" docker-registry 15
  fi
  rm -f "$pidfile"
done

mark="$TWIP_STATE_DIR/started-dockerd"
if pid_alive "$mark" dockerd; then
  log "engine-down: stopping dockerd (pid $(<"$mark"), started by engine-up)"
  # dockerd stops its containers (10 s grace each, in parallel) and its managed containerd.
  stop_pid "$mark" dockerd 60
elif engine_answers; then
  log "engine-down: leaving dockerd running (engine-up did not start it)"
fi
rm -f "$mark"
log "engine-down: done"
