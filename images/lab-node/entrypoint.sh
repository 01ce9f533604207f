#!/bin/sh
# Starts the node's engine in the foreground: the unix socket inside, plain TCP 2375 on the lab's
# bridge. `--tls=false` is explicit: without it a 20.10 engine on plain TCP waits ~15 s first.
set -eu
# Mounts made by the inner engine (volumes, secrets) must propagate like on a host.
mount --make-rshared / 2>/dev/null || true
# A stale pid file from a previous start of this container would stop dockerd.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
exec dockerd \
  -H unix:///var/run/docker.sock \
  -H tcp://0.0.0.0:2375 \
  --tls=false \
  --log-level "${TWIP_LAB_LOG_LEVEL:-warn}" \
  "$@"
