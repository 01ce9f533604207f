#!/usr/bin/env bash
# Prepare and start everything twip's integration tests need on a fresh test machine:
# packages (docker.io 26 + buildx from trixie, qemu/binfmt, debootstrap, docker-registry),
# dockerd with the containerd image store, two local registries (open on :5000, htpasswd on :5001)
# and the offline base images (scripts/make-test-bases.sh), as many as TWIP_BASES says:
#   TWIP_BASES=all       (default) what the whole test suite needs: the multi-platform base
#                        localhost:5000/twip/base:bookworm (amd64 + arm64), the examples' base,
#                        the lab images
#   TWIP_BASES=training  the amd64 base only: what `twip train up` needs (scripts/quickstart.sh)
#   TWIP_BASES=none      no base (TWIP_SKIP_BASES=1 means the same)
# Idempotent: a second run only checks, and starts what is not running. See docs/notes/test-infra.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root
T0=$(now_s)
: "${TWIP_BASES:=all}"
[[ "${TWIP_SKIP_BASES:-0}" == 1 ]] && TWIP_BASES=none
case "$TWIP_BASES" in
  all | training | none) ;;
  *) die "TWIP_BASES must be all, training or none (got '$TWIP_BASES')" ;;
esac
mkdir -p "$TWIP_STATE_DIR" "$TWIP_LOG_DIR" "$TWIP_CACHE"

# One engine-up at a time (two test runs starting together must not race on dockerd or the registries).
exec 9>"$TWIP_STATE_DIR/engine-up.lock"
flock -w 1800 9 || die "another engine-up.sh holds $TWIP_STATE_DIR/engine-up.lock"

# ---------------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------------
# From bookworm: the tools, and docker.io's own dependencies (runc, tini, iptables), so that nothing
# pulls trixie's libc6. From trixie, by explicit per-package selection (pkg/trixie) and NOT with
# `-t trixie` (which makes every trixie package the candidate and upgrades libc6, dpkg and base-files):
# docker.io 26 (API 1.45), its cli, buildx 0.13 and containerd 1.7 (all need only libc6 >= 2.34).
BOOKWORM_PKGS=(qemu-user-static binfmt-support debootstrap docker-registry apache2-utils iproute2 curl jq
  runc tini iptables pebble)

pkg_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

pkg_version_ge() { # pkg_version_ge PKG MIN
  local v
  v=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$2"
}

ensure_packages() {
  local missing=() p t sim
  for p in "${BOOKWORM_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  # Debian 12's own docker.io is 20.10 and its containerd 1.6: too old for the containerd image store.
  pkg_installed docker.io && pkg_version_ge docker.io 26 || missing+=(docker.io/trixie)
  pkg_installed docker-cli || missing+=(docker-cli/trixie)
  pkg_installed docker-buildx || missing+=(docker-buildx/trixie)
  pkg_installed containerd && pkg_version_ge containerd 1.7 || missing+=(containerd/trixie)
  if ((${#missing[@]} == 0)); then
    log "packages: all present"
    return 0
  fi
  t=$(now_s)
  log "packages: installing ${missing[*]}"
  # trixie with a low pin: nothing comes from it unless asked for by name.
  local list=/etc/apt/sources.list.d/twip-trixie.list pin=/etc/apt/preferences.d/twip-trixie
  local want_list want_pin
  want_list="deb ${TWIP_DEBIAN_MIRROR} trixie main"
  want_pin=$'Package: *\nPin: release n=trixie\nPin-Priority: 100'
  [[ -f "$list" && "$(<"$list")" == "$want_list" ]] || printf '%s\n' "$want_list" >"$list"
  [[ -f "$pin" && "$(<"$pin")" == "$want_pin" ]] || printf '%s\n' "$want_pin" >"$pin"
  apt-get update -qq
  local apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # Refuse anything that would replace the machine's libc or dpkg (the trap `-t trixie` falls into).
  sim=$(apt-get -s "${apt_opts[@]}" install "${missing[@]}" 2>&1) ||
    { printf '%s\n' "$sim" | tail -n 30 >&2; die "apt-get cannot resolve: ${missing[*]}"; }
  if grep -E '^Inst (libc6|libc-bin|dpkg|base-files) ' <<<"$sim" >&2; then
    die "installing ${missing[*]} would upgrade the packages above from trixie; refusing"
  fi
  apt-get install "${apt_opts[@]}" "${missing[@]}" >"$TWIP_LOG_DIR/apt.log" 2>&1 ||
    { tail -n 30 "$TWIP_LOG_DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $TWIP_LOG_DIR/apt.log)"; }
  log "packages: done in $(elapsed "$t")s"
}

# ---------------------------------------------------------------------------------------------
# 2. /etc/docker/daemon.json: containerd image store (multi-platform images and builds)
# ---------------------------------------------------------------------------------------------
DAEMON_JSON_CHANGED=0
ensure_daemon_json() {
  local f=/etc/docker/daemon.json cur new
  mkdir -p /etc/docker
  if [[ -s "$f" ]]; then
    cur=$(jq -S . "$f") || die "$f is not valid JSON; fix or remove it"
  else
    cur='{}'
  fi
  new=$(jq -S '. * {"features":{"containerd-snapshotter":true}}' <<<"$cur")
  if [[ ! -s "$f" ]] || [[ "$(jq -S . <<<"$cur")" != "$new" ]]; then
    printf '%s\n' "$new" >"$f.tmp" && mv "$f.tmp" "$f"
    DAEMON_JSON_CHANGED=1
    log "daemon.json: written ($f)"
  fi
}

# ---------------------------------------------------------------------------------------------
# 3. binfmt_misc + qemu: run arm64 (and armhf) binaries in builds and containers
# ---------------------------------------------------------------------------------------------
ensure_binfmt() {
  if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    update-binfmts --enable >/dev/null 2>&1 || true
  fi
  local name
  for name in qemu-aarch64 qemu-arm; do
    [[ -e /proc/sys/fs/binfmt_misc/$name ]] || die "binfmt entry $name missing after update-binfmts --enable"
    grep -qx enabled "/proc/sys/fs/binfmt_misc/$name" || die "binfmt entry $name is disabled"
    # F (fix binary): the interpreter is opened at registration, so it works inside containers and chroots.
    grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/$name" ||
      die "binfmt entry $name lacks the F flag: emulation would not work inside containers"
  done
}

# ---------------------------------------------------------------------------------------------
# 4. dockerd
# ---------------------------------------------------------------------------------------------
STARTED_MARK="$TWIP_STATE_DIR/started-dockerd"
DOCKERD_LOG="$TWIP_LOG_DIR/dockerd.log"

start_dockerd() {
  local t i
  t=$(now_s)
  log "dockerd: starting (log: $DOCKERD_LOG)"
  command -v dockerd >/dev/null || die "dockerd not found; package docker.io is not installed"
  # setsid + nohup: dockerd outlives this script and the shell that ran it.
  setsid nohup dockerd --pidfile /var/run/docker.pid </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
  echo $! >"$STARTED_MARK"
  for ((i = 0; i < TWIP_DOCKERD_WAIT; i++)); do
    if engine_answers; then
      log "dockerd: up in $(elapsed "$t")s"
      return 0
    fi
    if ! running "$(<"$STARTED_MARK")"; then
      tail -n 30 "$DOCKERD_LOG" >&2
      rm -f "$STARTED_MARK"
      die "dockerd exited during startup (log: $DOCKERD_LOG)"
    fi
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2
  die "dockerd did not answer 'docker info' within ${TWIP_DOCKERD_WAIT}s (log: $DOCKERD_LOG)"
}

stop_our_dockerd() {
  log "dockerd: stopping the one engine-up started"
  cp "$STARTED_MARK" "$TWIP_STATE_DIR/dockerd.pid.tmp"
  stop_pid "$TWIP_STATE_DIR/dockerd.pid.tmp" dockerd 60
  rm -f "$TWIP_STATE_DIR/dockerd.pid.tmp" "$STARTED_MARK"
}

ensure_dockerd() {
  if engine_answers; then
    if ((DAEMON_JSON_CHANGED)) && pid_alive "$STARTED_MARK" dockerd; then
      stop_our_dockerd
      start_dockerd
    elif ! ip link show docker0 >/dev/null 2>&1 && pid_alive "$STARTED_MARK" dockerd; then
      # Another dockerd started on this host with `--bridge none` deletes the host's docker0
      # (moby removes the default bridge interface by name); builds and `docker run` then fail
      # with "adding interface vethX to bridge docker0 failed". A restart recreates it.
      log "dockerd: docker0 is gone (another dockerd with --bridge none?); restarting ours to recreate it"
      stop_our_dockerd
      start_dockerd
    elif ! docker info -f '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
      log "WARNING: the running engine was not started by engine-up and does not use the containerd" \
        "image store; multi-platform builds will fail until it is restarted with $(</etc/docker/daemon.json)"
    else
      log "dockerd: already running"
    fi
    return 0
  fi
  # Nothing answers. A marker from a dead dockerd is stale.
  rm -f "$STARTED_MARK"
  if pid_alive /var/run/docker.pid dockerd; then
    die "a dockerd (pid $(</var/run/docker.pid)) runs but does not answer; stop it or look at its log"
  fi
  start_dockerd
}

# ---------------------------------------------------------------------------------------------
# 5. Registries (Debian's docker-registry, distribution 2.8, as plain processes)
# ---------------------------------------------------------------------------------------------
REG_DIR="$TWIP_CACHE/registry"

write_if_changed() { # write_if_changed FILE CONTENT -> returns 0 when it wrote
  local f=$1 content=$2
  if [[ -f "$f" && "$(<"$f")" == "$content" ]]; then return 1; fi
  printf '%s\n' "$content" >"$f.tmp" && mv "$f.tmp" "$f"
  return 0
}

registry_config() { # registry_config NAME ADDR [HTPASSWD]
  local name=$1 addr=$2 htpasswd=${3:-}
  cat <<YAML
# Written by scripts/engine-up.sh; edits are overwritten.
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${REG_DIR}/${name}/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: ${addr}
  secret: twip-test-registry-${name}
YAML
  if [[ -n "$htpasswd" ]]; then
    cat <<YAML
auth:
  htpasswd:
    realm: twip-test-registry
    path: ${htpasswd}
YAML
  fi
}

ensure_registry() { # ensure_registry NAME ADDR EXPECTED_V2_STATUS [HTPASSWD]
  local name=$1 addr=$2 want=$3 htpasswd=${4:-}
  local dir="$REG_DIR/$name" pidfile="$TWIP_STATE_DIR/registry-$name.pid" changed=0 i st
  mkdir -p "$dir/data"
  write_if_changed "$dir/config.yml" "$(registry_config "$name" "$addr" "$htpasswd")" && changed=1
  [[ -n "$htpasswd" && "$HTPASSWD_CHANGED" -eq 1 ]] && changed=1
  if pid_alive "$pidfile" docker-registry; then
    if ((changed)); then
      log "registry $name: config changed, restarting"
      stop_pid "$pidfile" docker-registry 15
    else
      st=$(http_status "http://$addr/v2/")
      [[ "$st" == "$want" ]] || die "registry $name (pid $(<"$pidfile")) answers /v2/ with $st, expected $want"
      log "registry $name: already running on $addr"
      return 0
    fi
  fi
  rm -f "$pidfile"
  st=$(http_status "http://$addr/v2/")
  if [[ "$st" != 000 ]]; then
    [[ "$st" == "$want" ]] || die "something not started by engine-up answers on $addr (/v2/ -> $st, expected $want)"
    log "registry $name: a registry not started by engine-up already answers on $addr; using it"
    return 0
  fi
  setsid nohup docker-registry serve "$dir/config.yml" </dev/null >>"$TWIP_LOG_DIR/registry-$name.log" 2>&1 9>&- &
  echo $! >"$pidfile"
  for ((i = 0; i < 100; i++)); do
    st=$(http_status "http://$addr/v2/")
    if [[ "$st" == "$want" ]]; then
      log "registry $name: up on $addr"
      return 0
    fi
    running "$(<"$pidfile")" || break
    sleep 0.1
  done
  tail -n 20 "$TWIP_LOG_DIR/registry-$name.log" >&2
  die "registry $name did not come up on $addr (log: $TWIP_LOG_DIR/registry-$name.log)"
}

HTPASSWD_CHANGED=0
ensure_htpasswd() {
  local f="$REG_DIR/auth.htpasswd"
  mkdir -p "$REG_DIR"
  if [[ -s "$f" ]] && htpasswd -vb "$f" "$TWIP_TEST_REGISTRY_USER" "$TWIP_TEST_REGISTRY_PASSWORD" >/dev/null 2>&1 &&
    [[ "$(wc -l <"$f")" -eq 1 ]]; then
    return 0
  fi
  # bcrypt (-B) is the only hash distribution's htpasswd backend accepts.
  htpasswd -Bbn "$TWIP_TEST_REGISTRY_USER" "$TWIP_TEST_REGISTRY_PASSWORD" | sed '/^$/d' >"$f.tmp"
  mv "$f.tmp" "$f"
  HTPASSWD_CHANGED=1
}

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
ensure_packages
ensure_daemon_json
ensure_binfmt
ensure_dockerd
ensure_htpasswd
ensure_registry open "$TWIP_REGISTRY_ADDR" 200
ensure_registry auth "$TWIP_AUTH_REGISTRY_ADDR" 401 "$REG_DIR/auth.htpasswd"

if [[ "$TWIP_BASES" != none ]]; then
  "$TWIP_SCRIPTS_DIR/make-test-bases.sh" "$TWIP_BASES"
fi

# ---------------------------------------------------------------------------------------------
# Summary (stderr)
# ---------------------------------------------------------------------------------------------
{
  echo "---- twip test engine ready in $(elapsed "$T0")s ----"
  docker version -f 'engine:     {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}' 2>/dev/null || true
  echo "buildx:     $(docker buildx version 2>/dev/null | awk '{print $2}')"
  echo "store:      $(docker info -f '{{range .DriverStatus}}{{index . 1}} {{end}}' 2>/dev/null)"
  if [[ -f "$STARTED_MARK" ]]; then
    echo "dockerd:    started by engine-up (pid $(<"$STARTED_MARK"), log $DOCKERD_LOG)"
  else
    echo "dockerd:    already running, not started by engine-up"
  fi
  echo "registries: open http://$TWIP_REGISTRY_ADDR  auth http://$TWIP_AUTH_REGISTRY_ADDR (user \$TWIP_TEST_REGISTRY_USER=$TWIP_TEST_REGISTRY_USER)"
  if [[ "$TWIP_BASES" != none ]]; then
    echo "bases:      localhost:${TWIP_REGISTRY_ADDR##*:}/twip/base:$TWIP_BASE_SUITE ($(
      docker buildx imagetools inspect --raw "localhost:${TWIP_REGISTRY_ADDR##*:}/twip/base:$TWIP_BASE_SUITE" 2>/dev/null |
        jq -r '[.manifests[].platform | "\(.os)/\(.architecture)\(if .variant then "/"+.variant else "" end)"] | join(",")'
    )); local twip/base:$TWIP_BASE_SUITE ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "twip/base:$TWIP_BASE_SUITE" 2>/dev/null))"
  fi
  if [[ "$TWIP_BASES" == all && "${TWIP_SKIP_EXAMPLES:-0}" != 1 ]]; then
    echo "examples:   localhost:${TWIP_REGISTRY_ADDR##*:}/twip/examples-base:$TWIP_BASE_SUITE and twip/examples-base:$TWIP_BASE_SUITE (amd64)"
  fi
  if [[ "$TWIP_BASES" == all && "${TWIP_SKIP_LAB:-0}" != 1 ]]; then
    echo "lab:        twip/lab-node:$TWIP_BASE_SUITE, twip/lab-sshd:$TWIP_BASE_SUITE"
  fi
  if [[ "$TWIP_BASES" != all ]]; then
    echo "not made:   the bases the test suite needs besides (TWIP_BASES=$TWIP_BASES): $TWIP_SCRIPTS_DIR/make-test-bases.sh all"
  fi
  echo "stop with:  $TWIP_SCRIPTS_DIR/engine-down.sh"
} >&2
