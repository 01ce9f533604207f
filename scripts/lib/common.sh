# shellcheck shell=bash
# Shared helpers for twip's test-infrastructure scripts. Source it; don't run it.
# Every path and setting has an environment override; the defaults are what CI uses.

TWIP_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
TWIP_REPO_ROOT="$(cd "${TWIP_SCRIPTS_DIR}/.." && pwd)"

: "${TWIP_CACHE:=/var/cache/twip}"          # slow things kept across runs: base rootfs tarballs, registry storage
: "${TWIP_STATE_DIR:=/run/twip-ci}"         # what engine-up started (pidfiles, markers); gone after a reboot
: "${TWIP_LOG_DIR:=/var/log/twip-ci}"       # dockerd and registry logs
: "${TWIP_REGISTRY_ADDR:=127.0.0.1:5000}"   # open registry
: "${TWIP_AUTH_REGISTRY_ADDR:=127.0.0.1:5001}"  # htpasswd registry
: "${TWIP_TEST_REGISTRY_USER:=twip}"
: "${TWIP_TEST_REGISTRY_PASSWORD:=twip-test-password}"
: "${TWIP_DEBIAN_MIRROR:=http://deb.debian.org/debian}"
: "${TWIP_BASE_SUITE:=bookworm}"
# Debian architectures of the base image; armhf (linux/arm/v7) is opt-in, see docs/notes/test-infra.md.
: "${TWIP_BASE_ARCHES:=amd64 arm64}"
: "${TWIP_DOCKERD_WAIT:=90}"                # seconds to wait for `docker info` after starting dockerd

# The engine these scripts manage is the local one, whatever the caller's environment says.
export DOCKER_HOST=unix:///var/run/docker.sock
unset DOCKER_CONTEXT
export DEBIAN_FRONTEND=noninteractive

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

require_root() {
  [[ "$(id -u)" -eq 0 ]] || die "$(basename "$0") must run as root (it installs packages and starts dockerd)"
}

# Debian arch -> OCI platform.
arch_platform() {
  case "$1" in
    amd64) echo linux/amd64 ;;
    arm64) echo linux/arm64 ;;
    armhf) echo linux/arm/v7 ;;
    *) die "unsupported Debian architecture: $1" ;;
  esac
}

# Debian arch -> qemu binfmt name (empty for the host arch).
arch_qemu() {
  case "$1" in
    amd64) echo "" ;;
    arm64) echo qemu-aarch64 ;;
    armhf) echo qemu-arm ;;
  esac
}

engine_answers() { timeout 15 docker info >/dev/null 2>&1; }

# running PID: the process exists and is not a zombie (an exited daemon whose parent, e.g. a
# container's PID 1 that is no init, never reaps it would otherwise look alive forever).
running() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# pid_alive PIDFILE [COMM]: true when the pidfile names a live process (with that comm, if given).
pid_alive() {
  local pidfile=$1 comm=${2:-} pid
  [[ -s "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  if [[ -n "$comm" ]]; then
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
  fi
}

# stop_pid PIDFILE COMM [TIMEOUT]: TERM, wait, then KILL. Only touches a process whose comm matches.
stop_pid() {
  local pidfile=$1 comm=$2 timeout=${3:-30} pid i
  if ! pid_alive "$pidfile" "$comm"; then
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    running "$pid" || return 0
    sleep 0.1
  done
  log "$comm (pid $pid) did not stop in ${timeout}s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

# HTTP status of a URL (000 when nothing answers).
http_status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN{printf "%.1f", b-a}'; }

# free_port START: the first TCP port >= START that nothing listens on (any address).
free_port() {
  local p=$1
  while [[ -n "$(ss -Htln "sport = :$p" 2>/dev/null)" ]]; do p=$((p + 1)); done
  echo "$p"
}
