#!/usr/bin/env bash
# Benchmark `twip build` against plain `docker buildx build` doing the same work, in the same run:
#   cold:      `twip build scaled --push --no-cache` (every step runs again, emulated arm64 RUNs
#              included; the base image is already in the engine), linux/amd64 + linux/arm64;
#   no-change: the same build again, with the cache.
# The plain side runs the very commands twip ran (taken from `twip -v`, which prints each one as a
# pasteable line, and run with eval), all at once like twip, pushing to a namespace of its own. Rounds alternate which side goes first. Prints each time, the median of the per-round
# ratios twip/plain, and twip's own overhead measured inside the same run (its wall time minus
# the wall time of its buildx commands, from its summary line "N image(s) in Xs"), which a busy
# machine does not blur (targets: twip adds < 10%; no-change rebuild < 5 s).
#
# Needs the engine, the open registry and the base that scripts/engine-up.sh prepares.
# Env: TWIP_BENCH_ROUNDS (5), TWIP_BENCH_PLATFORMS (linux/amd64,linux/arm64), TWIP_BIN (default:
# cargo build, then target/debug/twip), TWIP_BENCH_ENV (scaled), TWIP_BENCH_KEEP=1 keeps the logs.
# Leaves nothing behind: its registry tags and local images are removed on exit.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROUNDS="${TWIP_BENCH_ROUNDS:-5}"
PLATFORMS="${TWIP_BENCH_PLATFORMS:-linux/amd64,linux/arm64}"
ENV_NAME="${TWIP_BENCH_ENV:-scaled}"
REG_PORT="${TWIP_REGISTRY_ADDR##*:}"
BASE="localhost:${REG_PORT}/twip/base:${TWIP_BASE_SUITE}"
NS_TWIP="twipbench-$$-twip"
NS_PLAIN="twipbench-$$-plain"
WORK=$(mktemp -d /tmp/twip-bench-build.XXXXXX)

engine_answers || die "no engine answers; run scripts/engine-up.sh first"
[[ "$(http_status "http://$TWIP_REGISTRY_ADDR/v2/")" == 200 ]] || die "no registry on $TWIP_REGISTRY_ADDR; run scripts/engine-up.sh first"
docker image inspect "$BASE" >/dev/null 2>&1 || docker buildx imagetools inspect "$BASE" >/dev/null 2>&1 ||
  die "no base image $BASE; run scripts/engine-up.sh first"

if [[ -z "${TWIP_BIN:-}" ]]; then
  (cd "$TWIP_REPO_ROOT" && cargo build -q --locked)
  TWIP_BIN="${CARGO_TARGET_DIR:-$TWIP_REPO_ROOT/target}/debug/twip"
fi
[[ -x "$TWIP_BIN" ]] || die "no twip binary at $TWIP_BIN"

cleanup() {
  local ns repo tag digest accept
  accept='Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
  for ns in "$NS_TWIP" "$NS_PLAIN"; do
    for repo in proxy static web; do
      for tag in $(curl -s -m 10 "http://$TWIP_REGISTRY_ADDR/v2/$ns/twip/$repo/tags/list" | jq -r '.tags[]?' 2>/dev/null); do
        digest=$(curl -s -m 10 -I -H "$accept" "http://$TWIP_REGISTRY_ADDR/v2/$ns/twip/$repo/manifests/$tag" |
          awk 'tolower($1) == "docker-content-digest:" {print $2}' | tr -d '\r')
        [[ -n "$digest" ]] && curl -s -m 10 -X DELETE -o /dev/null "http://$TWIP_REGISTRY_ADDR/v2/$ns/twip/$repo/manifests/$digest"
      done
    done
  done
  docker image ls --format '{{.Repository}}:{{.Tag}}' |
    grep -E "^${TWIP_REGISTRY_ADDR//./\\.}/twipbench-$$-" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  if [[ "${TWIP_BENCH_KEEP:-0}" == 1 ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# One twip build; prints its wall time; keeps the buildx commands it ran in $WORK/cmds-LABEL.
twip_run() { # twip_run LABEL [extra twip args]
  local label=$1 t s
  shift
  t=$(now_s)
  TWIP_REGISTRY="$TWIP_REGISTRY_ADDR/$NS_TWIP" TWIP_BASE_IMAGE="$BASE" NO_COLOR=1 \
    "$TWIP_BIN" -v --project-dir "$TWIP_REPO_ROOT" build "$ENV_NAME" --push --platform "$PLATFORMS" "$@" \
    >"$WORK/twip-$label.log" 2>&1 || { tail -n 40 "$WORK/twip-$label.log" >&2; die "twip build failed ($label)"; }
  s=$(elapsed "$t")
  grep '^\$ docker buildx build ' "$WORK/twip-$label.log" | sed 's/^\$ //' >"$WORK/cmds-$label"
  [[ -s "$WORK/cmds-$label" ]] || die "no buildx command in twip's -v output ($WORK/twip-$label.log)"
  # twip's own time: its wall time minus the wall time of its builds ("N image(s) in Xs:").
  grep -E '^[0-9]+ image\(s\) in [0-9.]+s:' "$WORK/twip-$label.log" | sed -E 's/.* in ([0-9.]+)s:/\1/' |
    awk -v w="$s" '{printf "%.2f\n", w - $1}' >>"$WORK/own-$label"
  echo "$s"
}

# One plain command; a push that meets the registry's transient 500 (distribution's tag race) is
# retried like twip does.
plain_one() { # plain_one CMD LOG
  local cmd=$1 log=$2 attempt
  for attempt in 1 2 3; do
    if eval "$cmd" >>"$log" 2>&1; then return 0; fi
    if ((attempt < 3)) && tail -n 5 "$log" | grep -q '500 Internal Server Error'; then
      sleep 1
      continue
    fi
    return 1
  done
}

# The same commands by hand, to the plain namespace, all at once as twip runs them (it runs up
# to TWIP_BUILD_JOBS=4 at once). Prints the wall time.
plain_run() { # plain_run LABEL
  local label=$1 t cmd i=0 p fail=0 pids=()
  t=$(now_s)
  while IFS= read -r cmd; do
    i=$((i + 1))
    cmd=${cmd//"/$NS_TWIP/"/"/$NS_PLAIN/"}
    cmd=$(sed -E "s#--metadata-file [^ ]+#--metadata-file $WORK/metadata-$i.json#" <<<"$cmd")
    plain_one "$cmd" "$WORK/plain-$label-$i.log" &
    pids+=($!)
  done <"$WORK/cmds-$label"
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  if ((fail)); then
    tail -n 40 "$WORK"/plain-"$label"-*.log >&2
    die "plain buildx failed ($label)"
  fi
  elapsed "$t"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

log "bench-build: $ENV_NAME, $PLATFORMS, $ROUNDS round(s); twip: $TWIP_BIN; logs: $WORK"
# Warm-up, not timed: the base image resolved, both namespaces exist, the commands are known.
twip_run warm >/dev/null
cp "$WORK/cmds-warm" "$WORK/cmds-nochange"
plain_run warm >/dev/null

declare -a TC PC TN PN
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    TC[r]=$(twip_run cold --no-cache)
    PC[r]=$(plain_run cold)
  else
    PC[r]=$(plain_run cold)
    TC[r]=$(twip_run cold --no-cache)
  fi
  # No-change: straight after the cold builds, nothing changed.
  if ((r % 2)); then
    TN[r]=$(twip_run nochange)
    PN[r]=$(plain_run nochange)
  else
    PN[r]=$(plain_run nochange)
    TN[r]=$(twip_run nochange)
  fi
  log "round $r: cold twip ${TC[r]}s plain ${PC[r]}s; no-change twip ${TN[r]}s plain ${PN[r]}s"
done

median_of() { printf '%s\n' "$@" | median; }
declare -a RC RN
for ((r = 1; r <= ROUNDS; r++)); do
  RC[r]=$(ratio "${TC[r]}" "${PC[r]}")
  RN[r]=$(ratio "${TN[r]}" "${PN[r]}")
done
tc=$(median_of "${TC[@]}")
pc=$(median_of "${PC[@]}")
tn=$(median_of "${TN[@]}")
pn=$(median_of "${PN[@]}")
rc=$(median_of "${RC[@]}")
rn=$(median_of "${RN[@]}")
oc=$(median <"$WORK/own-cold")
on=$(median <"$WORK/own-nochange")
images=$(wc -l <"$WORK/cmds-nochange")
{
  echo
  echo "bench-build: twip build $ENV_NAME --push --platform $PLATFORMS ($images images) vs the same docker buildx build commands"
  printf '%-22s %9s %9s %7s %10s\n' "" "twip" "buildx" "ratio" "twip own"
  for ((r = 1; r <= ROUNDS; r++)); do
    printf '%-22s %8ss %8ss %7s %9ss\n' "cold, round $r" "${TC[r]}" "${PC[r]}" "${RC[r]}" "$(sed -n "${r}p" "$WORK/own-cold")"
    printf '%-22s %8ss %8ss %7s %9ss\n' "no-change, round $r" "${TN[r]}" "${PN[r]}" "${RN[r]}" "$(sed -n "${r}p" "$WORK/own-nochange")"
  done
  printf '%-22s %8ss %8ss %7s %9ss\n' "cold, median" "$tc" "$pc" "$rc" "$oc"
  printf '%-22s %8ss %8ss %7s %9ss\n' "no-change, median" "$tn" "$pn" "$rn" "$on"
  awk -v r="$rc" -v o="$oc" -v t="$tc" 'BEGIN {printf "cold:      twip/buildx %.2f (median of rounds); twip own time %.2fs = %.1f%% of its wall time (target < 10%%): %s\n", r, o, o / t * 100, (o / t < 0.10 ? "ok" : "MISSED")}'
  awk -v r="$rn" -v o="$on" -v t="$tn" 'BEGIN {printf "no-change: twip/buildx %.2f (median of rounds); twip own time %.2fs = %.1f%% of its wall time (target < 10%%): %s\n", r, o, o / t * 100, (o / t < 0.10 ? "ok" : "MISSED")}'
  awk -v t="$tn" 'BEGIN {printf "no-change rebuild with twip: %.1fs median (target < 5s): %s\n", t, (t < 5 ? "ok" : "MISSED")}'
  echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine blurs the side-by-side columns, not twip's own time)"
}
