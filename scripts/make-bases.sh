#!/usr/bin/env bash
# Build twip's offline base image without Docker Hub: a debootstrap --variant=minbase Debian rootfs per
# architecture with the packages the sample images need already installed (so image builds need no
# network and no emulated apt), imported into the engine and assembled into ONE multi-platform image
#   localhost:5000/twip/base:bookworm          (index: linux/amd64, linux/arm64[, linux/arm/v7])
#   localhost:5000/twip/base:bookworm-<arch>   (one per architecture)
#   twip/base:bookworm                          (amd64, in the local engine, for --load builds)
#   localhost:5000/twip/base:bookworm-r<recipe> (the same index, named after the recipe that made it)
# Rootfs tarballs are cached in $TWIP_CACHE/bases/; every step is skipped when its result exists and
# was made by the current recipe (suite, package list, RECIPE_VERSION below).
# Called by engine-up.sh (which starts dockerd and the registry first).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root

# What the images in images/ need: nginx (static), haproxy (proxy), python3 stdlib (web).
: "${TWIP_BASE_PACKAGES:=nginx-light,haproxy,python3}"
# The image's repository name; engine-up also makes twip/examples-base (examples/: flask, redis, postgres)
# by running this script with TWIP_BASE_NAME, TWIP_BASE_PACKAGES and TWIP_BASE_ARCHES set.
: "${TWIP_BASE_NAME:=twip/base}"
# Files in the cache are named after the image (twip/base keeps its original, unprefixed names).
SLUG=""
[[ "$TWIP_BASE_NAME" == twip/base ]] || SLUG="${TWIP_BASE_NAME//\//-}-"

BASES_DIR="$TWIP_CACHE/bases"
REG_PORT="${TWIP_REGISTRY_ADDR##*:}"
REPO="localhost:${REG_PORT}/$TWIP_BASE_NAME"
REF="$REPO:$TWIP_BASE_SUITE"
LOCAL_REF="$TWIP_BASE_NAME:$TWIP_BASE_SUITE"
# Bump when the rootfs post-processing below changes: cached tarballs and images are then rebuilt.
RECIPE_VERSION=2
RECIPE=$(printf '%s\n' "$RECIPE_VERSION" "$TWIP_BASE_SUITE" "$TWIP_BASE_PACKAGES" | sha256sum | cut -c1-12)
RECIPE_REF="$REPO:$TWIP_BASE_SUITE-r$RECIPE"
read -r -a ARCHES <<<"$TWIP_BASE_ARCHES"
[[ " ${ARCHES[*]} " == *" amd64 "* ]] || die "TWIP_BASE_ARCHES must include amd64 (the local $LOCAL_REF is amd64)"
mkdir -p "$BASES_DIR"

tarball() { echo "$BASES_DIR/$SLUG$TWIP_BASE_SUITE-$1.tar"; }
tarball_current() { [[ -s "$(tarball "$1")" && "$(cat "$(tarball "$1").recipe" 2>/dev/null)" == "$RECIPE" ]]; }
image_recipe() { docker image inspect -f '{{index .Config.Labels "org.twip.base.recipe"}}' "$1" 2>/dev/null; }

# Unmount whatever a killed debootstrap left mounted under DIR, then remove DIR without crossing mounts.
clean_workdir() {
  local dir=$1 m
  [[ -e "$dir" ]] || return 0
  while read -r m; do
    if [[ -n "$m" ]]; then umount -l "$m" 2>/dev/null || true; fi
  done < <(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r)
  rm -rf --one-file-system "$dir"
}

debootstrap_arch() {
  local arch=$1 out work t
  out=$(tarball "$arch")
  work="$BASES_DIR/work/$SLUG$TWIP_BASE_SUITE-$arch"
  t=$(now_s)
  clean_workdir "$work"
  mkdir -p "$work" "$BASES_DIR/debs/$arch"
  # For a foreign arch debootstrap runs the second stage in the chroot through qemu-user-static + binfmt.
  # A second try covers a mirror hiccup (seen once: "Failed getting release file").
  local try
  for try in 1 2; do
    if debootstrap --arch="$arch" --variant=minbase --include="$TWIP_BASE_PACKAGES" \
      --cache-dir="$BASES_DIR/debs/$arch" \
      "$TWIP_BASE_SUITE" "$work" "$TWIP_DEBIAN_MIRROR" >"$TWIP_LOG_DIR/debootstrap-$SLUG$arch.log" 2>&1; then
      break
    fi
    tail -n 30 "$TWIP_LOG_DIR/debootstrap-$SLUG$arch.log" >&2
    clean_workdir "$work"
    ((try == 1)) || return 1
    log "bases: debootstrap $arch failed; trying once more in 5s"
    sleep 5
    mkdir -p "$work"
  done
  # Slim down (as Debian's -slim images do: no docs but copyrights, no man pages, no translations)
  # and neutralise host-specific files; docker provides hostname/hosts/resolv.conf.
  rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin "$work"/var/cache/apt/archives/*.deb
  rm -rf "$work"/usr/share/man/* "$work"/usr/share/info/* "$work"/usr/share/locale/*
  find "$work/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$work/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$work/var/log" -type f -delete
  cat >"$work/etc/dpkg/dpkg.cfg.d/twip-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
  : >"$work/etc/resolv.conf"
  : >"$work/etc/machine-id"
  echo localhost >"$work/etc/hostname"
  # As in Debian's official images: apt-get install inside a build never tries to start services.
  printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
  chmod 755 "$work/usr/sbin/policy-rc.d"
  tar --numeric-owner -C "$work" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  echo "$RECIPE" >"$out.recipe"
  clean_workdir "$work"
  log "bases: $arch rootfs in $(elapsed "$t")s -> $out ($(du -h "$out" | cut -f1))"
}

ACCEPT_INDEX='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json'

# Platforms in the registry's index for TAG (one per line, os/arch[/variant]).
registry_platforms() {
  curl -fsS -m 10 -H "Accept: $ACCEPT_INDEX" "http://${TWIP_REGISTRY_ADDR}/v2/$TWIP_BASE_NAME/manifests/$1" 2>/dev/null |
    jq -r '.manifests[]?.platform | "\(.os)/\(.architecture)\(if .variant then "/"+.variant else "" end)"' 2>/dev/null
}

registry_digest() {
  curl -fsS -m 10 -o /dev/null -I -H "Accept: $ACCEPT_INDEX" -D - \
    "http://${TWIP_REGISTRY_ADDR}/v2/$TWIP_BASE_NAME/manifests/$1" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

# Complete: the recipe's index has every platform, :bookworm is that index, the local amd64 copy is current.
base_complete() {
  local have arch d
  have=$(registry_platforms "$TWIP_BASE_SUITE-r$RECIPE") || return 1
  for arch in "${ARCHES[@]}"; do
    grep -qx "$(arch_platform "$arch")" <<<"$have" || return 1
  done
  d=$(registry_digest "$TWIP_BASE_SUITE-r$RECIPE")
  [[ -n "$d" && "$d" == "$(registry_digest "$TWIP_BASE_SUITE")" ]] || return 1
  [[ "$(image_recipe "$LOCAL_REF")" == "$RECIPE" ]]
}

T0=$(now_s)
if base_complete; then
  log "bases: $REF (recipe $RECIPE) has ${ARCHES[*]} and $LOCAL_REF is loaded; nothing to do"
  exit 0
fi

# 1. Root filesystems (in parallel: downloads overlap, the emulated second stage gets its own core).
pids=()
for arch in "${ARCHES[@]}"; do
  if tarball_current "$arch"; then
    log "bases: $arch rootfs cached ($(tarball "$arch"))"
    continue
  fi
  q=$(arch_qemu "$arch")
  if [[ -n "$q" ]] && ! grep -qx enabled "/proc/sys/fs/binfmt_misc/$q" 2>/dev/null; then
    die "binfmt for $arch ($q) is not enabled; run engine-up.sh"
  fi
  log "bases: debootstrap $TWIP_BASE_SUITE $arch (+$TWIP_BASE_PACKAGES), log $TWIP_LOG_DIR/debootstrap-$SLUG$arch.log"
  debootstrap_arch "$arch" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
((fail == 0)) || die "debootstrap failed (logs: $TWIP_LOG_DIR/debootstrap-*.log)"

# 2. Import, push per-arch tags, assemble the index.
engine_answers || die "no engine answers; run engine-up.sh"
srcs=()
for arch in "${ARCHES[@]}"; do
  platform=$(arch_platform "$arch")
  tag="$REPO:$TWIP_BASE_SUITE-$arch"
  if [[ "$(image_recipe "$tag")" != "$RECIPE" ]]; then
    t=$(now_s)
    docker import --platform "$platform" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --change "LABEL org.opencontainers.image.title=${TWIP_BASE_NAME//\//-} org.twip.base.recipe=$RECIPE org.twip.base.packages=$TWIP_BASE_PACKAGES" \
      "$(tarball "$arch")" "$tag" >/dev/null
    log "bases: imported $tag ($platform) in $(elapsed "$t")s"
  fi
  docker push -q "$tag" >/dev/null
  srcs+=("$tag")
done
docker buildx imagetools create -t "$RECIPE_REF" -t "$REF" "${srcs[@]}" >/dev/null 2>"$TWIP_LOG_DIR/imagetools-$SLUG.log" ||
  { cat "$TWIP_LOG_DIR/imagetools-$SLUG.log" >&2; die "docker buildx imagetools create -t $REF failed"; }
docker tag "$REPO:$TWIP_BASE_SUITE-amd64" "$LOCAL_REF"
base_complete || die "$REF is incomplete after assembly: $(registry_platforms "$TWIP_BASE_SUITE" | tr '\n' ' ')"
log "bases: $REF = $RECIPE_REF ($(registry_platforms "$TWIP_BASE_SUITE" | paste -sd, -)) and $LOCAL_REF ready in $(elapsed "$T0")s"
