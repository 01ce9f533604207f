# Installs packages the scripts need, only when missing (apt-get update once, on demand).
# Sourced by scripts/*.sh.

_apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: need to install $* but not running as root; install it and retry" >&2
    return 1
  fi
  if [ "$_apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# need_apt COMMAND PACKAGE: install PACKAGE when COMMAND is not on PATH.
need_apt() {
  command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 || apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || export PATH="$PATH:/usr/sbin:/sbin"
}

# The docker CLI: the machine ships one; otherwise Debian's docker-cli (or docker.io).
need_docker_cli() {
  command -v docker >/dev/null 2>&1 && return 0
  apt_install docker-cli 2>/dev/null || apt_install docker.io
}
