#!/usr/bin/env bash
# The 000 write-up's comparison, `ab -k -p request.json -T application/json` three ways, with
# `twip bench -k -D request.json -T application/json`, side by side:
#   proxy-N  through the generated HAProxy to the `replicated` environment's web tasks
#   proxy-1  the same, scaled to one task (what the proxy hop costs)
#   task     straight to one task (the `solo` service's host port; no HAProxy)
#   task-ip  the same task at its own address on docker_gwbridge: without the engine's
#            userland proxy (docker-proxy), which carries loopback connections to published ports
#   host     the same app and command (gunicorn, one worker) run on the host, outside a container
# Each leg runs DURATION with CONNS keep-alive connections, ROUNDS times, in alternating order;
# the table gives the means (requests/s, p50, p99, errors) and each round is printed as it runs.
# It also draws the means as bars (requests/s and p99 per leg) in OUT/bidder.svg.
# Usage: examples/bidder/bench.sh   Variables: DURATION (10s), CONNS (10, as the write-up's
# ab -c 10), ROUNDS (3), OUT (the chart's directory; default docs/examples/ of the repository),
# TWIP (the binary; default a release build of this repository),
# TWIP_HTTP_PORT (9080), TWIP_STATS_PORT (1938), BIDDER_SOLO_PORT (9081), BIDDER_HOST_PORT (9082).
# The host leg needs Debian's python3-flask and gunicorn (the image's own packages):
# apt-get install python3-flask gunicorn.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"
duration=${DURATION:-10s}
conns=${CONNS:-10}
rounds=${ROUNDS:-3}
out=${OUT:-$root/docs/examples}
export TWIP_HTTP_PORT=${TWIP_HTTP_PORT:-9080} TWIP_STATS_PORT=${TWIP_STATS_PORT:-1938}
export BIDDER_SOLO_PORT=${BIDDER_SOLO_PORT:-9081}
host_port=${BIDDER_HOST_PORT:-9082}
py=/usr/bin/python3
"$py" -c 'import flask, gunicorn' 2>/dev/null || {
  echo "bench.sh: the host leg needs Debian's python3-flask and gunicorn (apt-get install python3-flask gunicorn)" >&2
  exit 2
}
if [[ -z ${TWIP:-} ]]; then
  (cd "$root" && cargo build --release --quiet)
  TWIP=${CARGO_TARGET_DIR:-$root/target}/release/twip
fi

host_pid=""
cleanup() {
  [[ -z $host_pid ]] || kill "$host_pid" 2>/dev/null || true
  "$TWIP" down replicated -q || true
}
trap cleanup EXIT

"$TWIP" up replicated -q
replicas=$(docker service inspect bidder-replicated_web --format '{{.Spec.Mode.Replicated.Replicas}}')
# The image's command, on the host.
"$py" -m gunicorn --chdir images/web --bind "127.0.0.1:$host_port" --worker-class gthread \
  --threads 8 --keep-alive 30 app:app 2>/dev/null &
host_pid=$!
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$host_port/healthz" 2>/dev/null && break
  sleep 0.2
done
sleep 3   # HAProxy's health checks find every task

# The solo task's address on docker_gwbridge, where docker-proxy forwards its published port.
solo_cid=$(docker ps -q --no-trunc --filter label=com.docker.swarm.service.name=bidder-replicated_solo | head -1)
solo_ip=$(docker network inspect docker_gwbridge --format "{{(index .Containers \"$solo_cid\").IPv4Address}}")
solo_ip=${solo_ip%/*}
declare -A url=(
  [proxy-N]="http://127.0.0.1:$TWIP_HTTP_PORT/bid/123"
  [proxy-1]="http://127.0.0.1:$TWIP_HTTP_PORT/bid/123"
  [task]="http://127.0.0.1:$BIDDER_SOLO_PORT/bid/123"
  [task-ip]="http://$solo_ip:8080/bid/123"
  [host]="http://127.0.0.1:$host_port/bid/123"
)
legs=(proxy-N task task-ip host proxy-1)
declare -A rps p50 p99 errs
for leg in "${legs[@]}"; do rps[$leg]=0; p50[$leg]=0; p99[$leg]=0; errs[$leg]=0; done

one() { # LEG: one run, its figures added to the sums
  local leg=$1 json
  if [[ $leg == proxy-1 ]]; then "$TWIP" scale replicated web=1 -q; sleep 2; fi
  json=$("$TWIP" bench -q "${url[$leg]}" -k -D request.json -T application/json -z "$duration" -c "$conns" --json)
  if [[ $leg == proxy-1 ]]; then "$TWIP" scale replicated "web=$replicas" -q; sleep 2; fi
  read -r r a b e < <("$py" -c 'import json,sys; d=json.load(sys.stdin); l=d["latency_s"] or {}
print(d["rps"], l.get("p50", 0)*1e3, l.get("p99", 0)*1e3, d["failed"])' <<<"$json")
  printf '  %-8s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  %d failed\n' "$leg" "$r" "$a" "$b" "$e"
  rps[$leg]=$(awk -v x="${rps[$leg]}" -v y="$r" 'BEGIN{print x+y}')
  p50[$leg]=$(awk -v x="${p50[$leg]}" -v y="$a" 'BEGIN{print x+y}')
  p99[$leg]=$(awk -v x="${p99[$leg]}" -v y="$b" 'BEGIN{print x+y}')
  errs[$leg]=$((errs[$leg] + e))
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# POST request.json ($(wc -c <request.json) bytes), -k -c $conns -z $duration, $rounds rounds; proxy-N: N=$replicas"
for round in $(seq "$rounds"); do
  echo "round $round"
  order=("${legs[@]}")
  if ((round % 2 == 0)); then order=(proxy-1 host task-ip task proxy-N); fi
  for leg in "${order[@]}"; do one "$leg"; done
done

echo
printf '%-14s' ""; for leg in "${legs[@]}"; do printf '%12s' "$leg"; done; echo
printf '%-14s' "requests/s"; for leg in "${legs[@]}"; do awk -v s="${rps[$leg]}" -v n="$rounds" 'BEGIN{printf "%12.0f", s/n}'; done; echo
printf '%-14s' "vs host"; for leg in "${legs[@]}"; do awk -v s="${rps[$leg]}" -v h="${rps[host]}" 'BEGIN{printf "%11.2fx", s/h}'; done; echo
printf '%-14s' "p50 (ms)"; for leg in "${legs[@]}"; do awk -v s="${p50[$leg]}" -v n="$rounds" 'BEGIN{printf "%12.2f", s/n}'; done; echo
printf '%-14s' "p99 (ms)"; for leg in "${legs[@]}"; do awk -v s="${p99[$leg]}" -v n="$rounds" 'BEGIN{printf "%12.2f", s/n}'; done; echo
printf '%-14s' "failed"; for leg in "${legs[@]}"; do printf '%12d' "${errs[$leg]}"; done; echo

# The chart: requests/s (blue, left) and p99 (red, right) per leg, the means of the rounds.
mkdir -p "$out"
{
  for leg in "${legs[@]}"; do
    awk -v l="$leg" -v r="${rps[$leg]}" -v p="${p99[$leg]}" -v n="$rounds" 'BEGIN{print l, r/n, p/n}'
  done
} | awk -v title="bidder: POST request.json, -k -c $conns, means of $rounds x $duration" '
  { leg[NR]=$1; r[NR]=$2; p[NR]=$3; if ($2>mr) mr=$2; if ($3>mp) mp=$3 }
  END {
    w=640; h=360; l=70; t=40; ph=270; gw=(w-2*l)/NR; mr*=1.15; mp*=1.15
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">", w, h
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/><text x=\"%d\" y=\"24\" font-size=\"14\">%s</text>", l, title
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>", l, t+ph, w-l, t+ph
    for (i=0; i<=4; i++) {
      y=t+ph*(1-i/4)
      printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"steelblue\">%.0f</text>", l-6, y+4, mr*i/4
      printf "<text x=\"%d\" y=\"%.1f\" fill=\"firebrick\">%.0f ms</text>", w-l+6, y+4, mp*i/4
    }
    for (i=1; i<=NR; i++) {
      x=l+gw*(i-1)+gw*0.15; bw=gw*0.35
      hr=ph*r[i]/mr; hp=ph*p[i]/mp
      printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"steelblue\"/>", x, t+ph-hr, bw, hr
      printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"steelblue\">%.0f</text>", x+bw/2, t+ph-hr-4, r[i]
      printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"firebrick\"/>", x+bw, t+ph-hp, bw, hp
      printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"firebrick\">%.1f</text>", x+1.5*bw, t+ph-hp-4, p[i]
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x+bw, t+ph+18, leg[i]
    }
    printf "</svg>\n"
  }' >"$out/bidder.svg"
echo "wrote $out/bidder.svg" >&2
