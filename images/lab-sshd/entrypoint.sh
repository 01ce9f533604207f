#!/bin/sh
# Fresh host keys for every container (so no two hosts share a key), the public key given in
# TWIP_AUTHORIZED_KEY for root, then sshd in the foreground.
set -eu
ssh-keygen -A >/dev/null
if [ -n "${TWIP_AUTHORIZED_KEY:-}" ]; then
  printf '%s\n' "$TWIP_AUTHORIZED_KEY" >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
mount --make-rshared / 2>/dev/null || true
exec /usr/sbin/sshd -D -e
