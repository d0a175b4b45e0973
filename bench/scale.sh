#!/usr/bin/env bash
# Scale benchmark of chatops (issue 11 §5), figures beside wrk; goals in
# brackets. Never a timed test: run it by hand and put the figures in notes.
#   1. 10,000 virtual users, closed model, against nginx `return 200` on
#      loopback: chatops's peak RSS (< 150 MB) and requests/s beside wrk at
#      10,000 connections (≥ 0.9× wrk); with CHATOPS_BENCH_BASELINE, an
#      older chatops build measured the same way (before/after)
#   2. the open model at CHATOPS_SCALE_RATE (default 50,000) requests/s
#      against nginx: the share of dropped sends (< 1%)
#   3. `chatops validate` of a playbook of 1,000 checks (< 200 ms)
#   4. `watch-connections` against a throwaway cluster holding 1,000 sessions
#      (max_connections 1,100; the sessions are pgbench clients sleeping):
#      the sample time it reports (< 20 ms)
# Usage: bench/scale.sh [seconds per load run]   (default 10)
#   CHATOPS_SCALE_VUS (10000), CHATOPS_SCALE_RATE (50000),
#   CHATOPS_SCALE_SESSIONS (1000), CHATOPS_SCALE_CONNS (open model's
#   connections, 1000), CHATOPS_SCALE_SECTIONS ("1 2 3 4"),
#   CHATOPS_BENCH_BASELINE=/path/to/chatops
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
VUS=${CHATOPS_SCALE_VUS:-10000}
RATE=${CHATOPS_SCALE_RATE:-50000}
SESSIONS=${CHATOPS_SCALE_SESSIONS:-1000}
CONNS=${CHATOPS_SCALE_CONNS:-1000}
SECTIONS=${CHATOPS_SCALE_SECTIONS:-1 2 3 4}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    if [ -d "$WORK/pgdata" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$WORK/pgdata" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench: nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
# Both sides hold one descriptor per connection.
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n) (hard $(ulimit -Hn)); $(nproc) cores"

cargo build --release --quiet
BIN=$PWD/target/release/chatops

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile $(ulimit -Hn);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections $((VUS + 1000)); }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
    server { listen 127.0.0.1:$PORT backlog=16384; location / { return 200 "ok\n"; } }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 50); do curl -sf "$URL" >/dev/null && break; sleep 0.1; done

cat >"$WORK/trivial.yaml" <<'EOF'
name: trivial
mix:
  - name: get
    request: {url: "${base_url}/"}
stages: [{name: bench, vus: 50, duration: 10s}]
EOF

# Peak RSS of a command (its largest child), in MB, on standard error's last line.
peak() { /usr/bin/time -f "PEAK_KB %M" "$@" 2>"$WORK/time.txt" >"$WORK/out.txt"; awk '/PEAK_KB/ {printf "%.1f", $2/1024}' "$WORK/time.txt"; }

# ---- 1. 10,000 virtual users ----------------------------------------------
if want 1; then
echo; echo "== 1. $VUS virtual users (closed model, no think time), ${SECS}s, nginx return 200"
run_chatops() { # binary label
    local mb rps errs
    mb=$(peak "$1" load --skip-preflight --base-url "http://127.0.0.1:$PORT" --plan "$WORK/trivial.yaml" \
        --stages "scale:$VUS:${SECS}s" --think-time 0s --format json)
    read -r rps errs < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stages"][0]; print(s["rps"], sum(s["errors"].values()))' "$WORK/out.txt")
    printf '  %-9s %10s req/s  errors %-7s peak RSS %6s MB (%.1f KB per VU)\n' "$2" "$rps" "$errs" "$mb" \
        "$(python3 -c "print($mb*1024/$VUS)")"
    echo "$rps" >"$WORK/$2.rps"
}
run_wrk() {
    local mb rps
    mb=$(peak wrk -t2 -c"$VUS" -d"${SECS}s" "$URL")
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out.txt")
    printf '  %-9s %10s req/s  %-14s peak RSS %6s MB (%.1f KB per connection)\n' wrk "$rps" \
        "$(grep -o 'Socket errors.*' "$WORK/out.txt" || echo 'no socket errors')" "$mb" "$(python3 -c "print($mb*1024/$VUS)")"
    echo "$rps" >"$WORK/wrk.rps"
}
run_wrk; sleep 2
run_chatops "$BIN" chatops; sleep 2
if [ -n "${CHATOPS_BENCH_BASELINE:-}" ]; then run_chatops "$CHATOPS_BENCH_BASELINE" baseline; sleep 2; fi
python3 -c "import sys; c=float(open(sys.argv[1]).read()); w=float(open(sys.argv[2]).read()); print(f'  chatops/wrk {c/w:.2f}x')" \
    "$WORK/chatops.rps" "$WORK/wrk.rps"
fi

# ---- 2. open model ----------------------------------------------------------
if want 2; then
echo; echo "== 2. open model at $RATE requests/s, $CONNS connections, ${SECS}s"
"$BIN" load --skip-preflight --base-url "http://127.0.0.1:$PORT" --plan "$WORK/trivial.yaml" \
    --stages "open:$RATE/s*$CONNS:${SECS}s" --format json >"$WORK/open.json" || true
python3 - "$WORK/open.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["stages"][0]
planned = s.get("planned") or 0; dropped = s.get("dropped") or 0
pct = dropped * 100 / planned if planned else 0
print(f"  planned {planned}, sent {s['requests']}, dropped {dropped} ({pct:.2f}%), {s['rps']} req/s, p99 {s['p99_ms']} ms, generator CPU {s['generator_cpu_pct']}% of one core")
PY
fi

# ---- 3. validating 1,000 checks -------------------------------------------
if want 3; then
echo; echo "== 3. chatops validate, a playbook of 1,000 checks"
python3 - "$WORK/big.yaml" <<'PY'
import sys
out = ["name: big", "target: {base_url: http://127.0.0.1:3001}", "phases:"]
for p in range(10):
    out.append(f"  - name: phase {p}")
    out.append("    checks:")
    for i in range(100):
        n = p * 100 + i
        need = f", needs: [c{n-1}]" if i else ""
        out.append(f"      - {{id: c{n}, kind: http, request: {{url: \"${{target.base_url}}/api/{n}\"}}, expect: {{status: 200}}{need}}}")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
"$BIN" validate "$WORK/big.yaml" >/dev/null
python3 - "$BIN" "$WORK/big.yaml" <<'PY'
import subprocess, sys, time
runs = []
for _ in range(5):
    t = time.perf_counter(); subprocess.run([sys.argv[1], "validate", sys.argv[2]], check=True, capture_output=True)
    runs.append((time.perf_counter() - t) * 1000)
runs.sort()
print(f"  wall time, 5 runs: median {runs[2]:.0f} ms (min {runs[0]:.0f}, max {runs[-1]:.0f}), process start included")
PY
fi
want 4 || exit 0

# ---- 4. watch-connections with 1,000 sessions -------------------------------
echo; echo "== 4. watch-connections against $SESSIONS sessions"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || ! id postgres >/dev/null 2>&1; then
    echo "  no PostgreSQL server binaries (or no postgres user): skipped"
    exit 0
fi
PGPORT=$(free_port)
mkdir -p "$WORK/pgdata" && chown postgres "$WORK/pgdata" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$WORK/pgdata" -U postgres --auth=trust >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pgdata" -l "$WORK/pgdata/log" -w \
    -o "-p $PGPORT -k $WORK/pgdata -c listen_addresses=127.0.0.1 -c max_connections=$((SESSIONS + 100)) -c shared_buffers=32MB" start >/dev/null
echo "SELECT pg_sleep(600);" >"$WORK/sleep.sql"
as_pg "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PGPORT" -U postgres -c "$SESSIONS" -j 2 -T 600 -f "$WORK/sleep.sql" postgres \
    >/dev/null 2>&1 &
PIDS+=($!)
DBURL="postgresql://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
for _ in $(seq 120); do
    # --once exits 1 above the critical level: only its JSON counts here.
    n=$({ "$BIN" watch-connections --database-url "$DBURL" --once --format json 2>/dev/null || true; } |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["total"])' 2>/dev/null || echo 0)
    [ "$n" -ge "$SESSIONS" ] && break
    sleep 0.5
done
echo "  sessions seen: $n"
"$BIN" watch-connections --database-url "$DBURL" --format json --count 10 --interval 200ms >"$WORK/watch.jsonl" || true
python3 - "$WORK/watch.jsonl" <<'PY'
import json, statistics, sys
ms = [json.loads(l)["sample_ms"] for l in open(sys.argv[1]) if l.strip()]
ms = ms[1:] or ms   # the first sample also opens the session
print(f"  sample_ms over {len(ms)} samples: median {statistics.median(ms):.1f}, max {max(ms):.1f}")
PY
