#!/usr/bin/env bash
# Compares `twip bench` with wrk, oha and hey against one nginx on 127.0.0.1, in one run:
# keep-alive, then without keep-alive, then keep-alive over HTTPS (nginx with a self-signed
# certificate made here by openssl; every tool skips verification), the tools alternating;
# then twip's memory.
# Prints requests/s and the generator's own CPU seconds (user+sys) and peak RSS per run,
# and the ratios twip/wrk and twip/oha. See docs/bench.md for the figures.
#
#   scripts/bench-http.sh                       # c=50, 10 s per run, 2 rounds
#   DURATION=3 ROUNDS=1 scripts/bench-http.sh   # a quick look
#
# Environment: DURATION (s, default 10), CONNS (50), ROUNDS (2), TOOLS ("twip wrk oha hey";
# also "twip1" and "twip2": twip --threads 1 or 2; plain twip uses its default threads;
# "twipbp": twip --busy-poll, which never sleeps waiting; "twip0": twip --nap 0, which sleeps
# in the wait for events instead of napping; see docs/bench.md),
# MODES ("keepalive close https"), NICE (0; e.g. -10 runs nginx and the tools ahead of other work
# on a shared machine, which steadies the figures),
# MEMORY (1: also the -n 200000 / -n 2000000 RSS runs; 0 to skip),
# TWIP_BENCH_CACHE (where oha is installed, default ~/.cache/twip-bench),
# CARGO_TARGET_DIR (where the release twip is built).
set -euo pipefail

DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-2}
TOOLS=${TOOLS:-"twip wrk oha hey"}
MODES=${MODES:-"keepalive close https"}
NICE=${NICE:-0}
MEMORY=${MEMORY:-1}
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TWIP_BENCH_CACHE:-$HOME/.cache/twip-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d /tmp/twip-bench.XXXXXX)
chmod 755 "$WORK"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
apt_install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >"$WORK/apt.log" 2>&1 || {
        $SUDO apt-get update -qq >>"$WORK/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >>"$WORK/apt.log" 2>&1
    }
}

# --- tools -------------------------------------------------------------------------------
command -v nginx >/dev/null || apt_install nginx-light || apt_install nginx
[ -x /usr/bin/time ] || apt_install time
command -v python3 >/dev/null || apt_install python3
command -v openssl >/dev/null || apt_install openssl
has() { case " $TOOLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if has wrk && ! command -v wrk >/dev/null; then apt_install wrk || true; fi
if has hey && ! command -v hey >/dev/null; then
    apt_install hey || echo "note: hey is not packaged for this system; skipping it"
fi
OHA=$(command -v oha || true)
if has oha && [ -z "$OHA" ]; then
    if [ ! -x "$CACHE/bin/oha" ]; then
        echo "installing oha from crates.io into $CACHE (once)..."
        cargo install oha --locked --root "$CACHE" >"$WORK/oha-install.log" 2>&1 ||
            echo "note: cargo install oha failed (see $WORK/oha-install.log); skipping oha"
    fi
    [ -x "$CACHE/bin/oha" ] && OHA="$CACHE/bin/oha"
fi
echo "building twip (release)..."
(cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet)
TWIP="$TARGET_DIR/release/twip"

# --- nginx -------------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
mkdir -p "$WORK/www" "$WORK/logs"
python3 - "$WORK/www/index.html" <<'EOF'
import sys
head = "<!doctype html>\n<html><head><title>twip bench</title></head><body>\n<p>"
tail = "</p>\n</body></html>\n"
fill = 330 - len(head) - len(tail)
open(sys.argv[1], "w").write(head + ("twip bench target. " * 20)[:fill] + tail)
EOF
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/www;
    }
    server {
        listen 127.0.0.1:$TPORT ssl;
        ssl_certificate $WORK/tls.crt;
        ssl_certificate_key $WORK/tls.key;
        root $WORK/www;
    }
}
EOF
nice -n "$NICE" nginx -p "$WORK" -c "$WORK/nginx.conf" &
NGINX_PID=$!
cleanup() {
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
URL="http://127.0.0.1:$PORT/index.html"
TURL="https://127.0.0.1:$TPORT/index.html"
for _ in $(seq 50); do
    curl -fsS -o /dev/null "$URL" 2>/dev/null && break
    python3 -c "import urllib.request; urllib.request.urlopen('$URL')" 2>/dev/null && break
    sleep 0.1
done
SIZE=$(stat -c %s "$WORK/www/index.html")
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
TCK=$(getconf CLK_TCK)
# nginx_cpu: the worker's CPU seconds so far.
nginx_cpu() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$NGINX_WORKER/stat"; }
# cpu_ticks: "steal total" of all CPUs so far (/proc/stat), to show what the hypervisor took.
cpu_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t}' /proc/stat; }
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') on $URL (pid $NGINX_PID, worker_processes 1, ${SIZE}-byte file)"
echo "machine: $(nproc) cores; c=$CONNS, ${DURATION}s per run, $ROUNDS round(s), nice $NICE; $(date -u +%Y-%m-%dT%H:%MZ)"

# --- one run -----------------------------------------------------------------------------
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# run MODE TOOL: runs TOOL for DURATION seconds; appends "mode tool rps cpu rss_kb" to RESULTS.
run() {
    local mode=$1 tool=$2 out="$WORK/out.txt" t="$WORK/time.txt" rps
    local ka=1 n0 n1 s0 s1 extra="" URL=$URL tls=0
    [ "$mode" = "close" ] && ka=0
    if [ "$mode" = "https" ]; then URL=$TURL; tls=1; fi
    n0=$(nginx_cpu)
    s0=$(cpu_ticks)
    case $tool in
    twip | twip1 | twip2 | twipbp | twip0)
        local flags=()
        [ $ka = 0 ] && flags+=(--no-keepalive)
        [ "$tool" = twip1 ] && flags+=(--threads 1)
        [ "$tool" = twip2 ] && flags+=(--threads 2)
        [ "$tool" = twipbp ] && flags+=(--busy-poll)
        [ "$tool" = twip0 ] && flags+=(--nap 0)
        [ $tls = 1 ] && flags+=(--insecure)
        nice -n "$NICE" /usr/bin/time -f '%e %U %S %M' -o "$t" "$TWIP" bench "$URL" -z "${DURATION}s" -c "$CONNS" \
            --json -q "${flags[@]}" >"$out" 2>&1 || true
        rps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rps"])' "$out" 2>/dev/null || echo 0)
        # twip's honest counts: every request is a response, an error or cut at the deadline.
        extra=$(python3 -c 'import json,sys; v = json.load(open(sys.argv[1]))
print("responses %d, sent %d, errors %s, cut %d, retries %d, connections %d" % (v["responses"], v["sent"],
      json.dumps(v["errors"]), v["cut"], v["retries"], v["connections_opened"]))' "$out" 2>/dev/null || echo "no JSON report")
        ;;
    wrk)
        command -v wrk >/dev/null || return 0
        local flags=()
        [ $ka = 0 ] && flags+=(-H "Connection: close")
        nice -n "$NICE" /usr/bin/time -f '%e %U %S %M' -o "$t" wrk -t1 -c "$CONNS" -d "${DURATION}s" "${flags[@]}" "$URL" >"$out" 2>&1 || true
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        extra=$(grep -E 'Socket errors|Non-2xx' "$out" | tr -s ' ' | paste -sd ';' - || true)
        ;;
    oha)
        [ -n "$OHA" ] || return 0
        local flags=()
        [ $ka = 0 ] && flags+=(--disable-keepalive)
        [ $tls = 1 ] && flags+=(--insecure)
        nice -n "$NICE" /usr/bin/time -f '%e %U %S %M' -o "$t" "$OHA" --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" \
            "${flags[@]}" "$URL" >"$out" 2>/dev/null || true
        rps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$out" 2>/dev/null || echo 0)
        ;;
    hey)
        command -v hey >/dev/null || return 0
        local flags=()
        [ $ka = 0 ] && flags+=(-disable-keepalive)
        nice -n "$NICE" /usr/bin/time -f '%e %U %S %M' -o "$t" hey -z "${DURATION}s" -c "$CONNS" "${flags[@]}" "$URL" >"$out" 2>&1 || true
        rps=$(awk '/Requests\/sec:/ {print $2}' "$out")
        ;;
    esac
    local cpu rss steal
    n1=$(nginx_cpu)
    s1=$(cpu_ticks)
    steal=$(echo "$s0 $s1" | awk '{d = $4 - $2; printf "%.0f", (d > 0 ? 100 * ($3 - $1) / d : 0)}')
    cpu=$(awk 'END {printf "%.2f", $2 + $3}' "$t")
    rss=$(awk 'END {print $4}' "$t")
    printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$tool" "${rps:-0}" "$cpu" "$rss" >>"$RESULTS"
    printf '  %-9s %-6s %8.0f req/s %6.2f CPU-s %7.0f req/CPU-s  RSS %6.1f MB  (nginx %5.2f CPU-s, steal %s%%)\n' \
        "$mode" "$tool" "${rps:-0}" "$cpu" "$(python3 -c "print(${rps:-0} * $DURATION / max($cpu, 0.01))")" \
        "$(python3 -c "print($rss / 1024)")" "$(python3 -c "print($n1 - $n0)")" "$steal"
    [ -z "$extra" ] || echo "            $extra"
}

for mode in $MODES; do
    echo
    echo "== $mode: c=$CONNS, ${DURATION}s =="
    for round in $(seq "$ROUNDS"); do
        # Alternate the order between rounds, so no tool always runs on a warmer nginx.
        order=$TOOLS
        if [ $((round % 2)) = 0 ]; then order=$(echo "$TOOLS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
        for tool in $order; do run "$mode" "$tool"; done
    done
done

# --- summary -----------------------------------------------------------------------------
echo
python3 - "$RESULTS" "$DURATION" <<'EOF'
import sys, collections, statistics
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
dur = float(sys.argv[2])
agg = collections.defaultdict(list)
for mode, tool, rps, cpu, rss in rows:
    agg[(mode, tool)].append((float(rps), float(cpu), int(rss)))
def mean(xs): return sum(xs) / len(xs) if xs else 0.0
print("over the rounds (the median resists one round that other work on the machine spoiled):")
print(f"  {'mode':<10}{'tool':<7}{'mean req/s':>11}{'median':>9}{'CPU-s':>7}{'req/CPU-s':>11}{'RSS MB':>8}")
fig = {}
for (mode, tool), v in agg.items():
    rps = mean([x[0] for x in v]); med = statistics.median([x[0] for x in v])
    cpu = mean([x[1] for x in v]); rss = max(x[2] for x in v) / 1024
    eff = rps * dur / cpu if cpu > 0 else 0.0
    fig[(mode, tool)] = (rps, med, eff)
    print(f"  {mode:<10}{tool:<7}{rps:>11.0f}{med:>9.0f}{cpu:>7.2f}{eff:>11.0f}{rss:>8.1f}")
print("ratios (twip / other): requests/s (mean, median), requests per CPU-second")
for mode in ("keepalive", "close", "https"):
    for mine in ("twip", "twipbp"):
        t = fig.get((mode, mine))
        for other in ("wrk", "oha", "hey", "twip1", "twip2"):
            o = fig.get((mode, other))
            if t and o and o[0] > 0 and o[1] > 0 and o[2] > 0:
                name = f"{mine}/{other}"
                print(f"  {mode:<10}{name:<12} {t[0] / o[0]:5.2f}x {t[1] / o[1]:5.2f}x req/s   {t[2] / o[2]:5.2f}x req/CPU-s")
EOF

if [ "$MEMORY" = 1 ]; then
    echo
    echo "== twip memory (peak RSS) =="
    rss_of() {
        nice -n "$NICE" /usr/bin/time -f '%M' -o "$WORK/time.txt" "$TWIP" bench "$URL" -c "$CONNS" -q --json "$@" >/dev/null 2>&1 || true
        awk 'END {print $1}' "$WORK/time.txt"
    }
    A=$(rss_of -z "${DURATION}s")
    B=$(rss_of -n 200000)
    C=$(rss_of -n 2000000)
    python3 - "$A" "$B" "$C" "$DURATION" <<'EOF'
import sys
a, b, c = (int(x) / 1024 for x in sys.argv[1:4])
print(f"  -z {sys.argv[4]}s: {a:.1f} MB   -n 200000: {b:.1f} MB   -n 2000000: {c:.1f} MB   ratio {c / b:.2f}x")
EOF
fi
