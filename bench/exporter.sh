#!/usr/bin/env bash
# Benchmark of `watch-connections --listen` (figures go in the issue notes, not in tests):
#   1. one scrape of /metrics against a local sandbox (PostgreSQL + the
#      reference backend's health), as Prometheus sees it (goal < 20 ms)
#   2. the exporter scraped once a second for a minute: CPU (goal < 1% of a
#      core) and peak RSS (goal < 20 MB)
# Usage: bench/exporter.sh [seconds for 2, default 60]
# CHATOPS_BIN=target/debug/chatops measures another build (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
if [ -z "${CHATOPS_BIN:-}" ]; then
    cargo build --release --quiet
    CHATOPS_BIN=$PWD/target/release/chatops
fi
BIN=$CHATOPS_BIN
ENVF=$(mktemp)
LOG=$(mktemp)
"$BIN" sandbox --env-file "$ENVF" >/dev/null 2>&1 &
SB=$!
EXP=
trap 'kill $EXP $SB 2>/dev/null; wait $EXP $SB 2>/dev/null; rm -f "$ENVF" "$LOG"' EXIT
for _ in $(seq 150); do [ -s "$ENVF" ] && break; sleep 0.2; done
[ -s "$ENVF" ] || { echo "bench: the sandbox did not come up" >&2; exit 1; }
# shellcheck disable=SC1090
source "$ENVF"
"$BIN" watch-connections --listen 127.0.0.1:0 --database-url "$DATABASE_URL" \
    --health-url "$CHATOPS_BASE_URL/api/v1/health" 2>"$LOG" &
EXP=$!
for _ in $(seq 100); do grep -q "serving http://" "$LOG" && break; sleep 0.1; done
ADDR=$(grep -o 'serving http://[^/]*' "$LOG" | head -1 | sed 's#serving http://##')
[ -n "$ADDR" ] || { echo "bench: the exporter did not start" >&2; cat "$LOG" >&2; exit 1; }
echo "exporter: http://$ADDR/metrics (build: $BIN)"

echo; echo "== 1. one scrape (200 scrapes, 50 ms apart)"
for _ in $(seq 200); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$ADDR/metrics"
    sleep 0.05
done | python3 -c '
import statistics, sys
ms = sorted(float(l) * 1000 for l in sys.stdin)[:-1]
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"scrapes {len(ms) + 1}: median {statistics.median(ms):.2f} ms, p95 {p(0.95):.2f} ms, max {ms[-1]:.2f} ms")'
curl -s "http://$ADDR/metrics" | grep -E '^chatops_(exporter_last_scrape_duration_seconds|pg_sample_duration_seconds) '
echo "size of one scrape: $(curl -s "http://$ADDR/metrics" | wc -c) bytes"

echo; echo "== 2. scraped once a second for ${SECS}s: CPU and peak RSS of the exporter"
python3 - "$EXP" "$ADDR" "$SECS" <<'PY'
import os, sys, time, urllib.request
pid, addr, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
hz = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
c0, t0 = cpu(), time.monotonic()
for i in range(secs):
    urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read()
    time.sleep(max(0, t0 + i + 1 - time.monotonic()))
wall, used = time.monotonic() - t0, cpu() - c0
hwm = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0].split()[1]
print(f"wall {wall:.1f} s, CPU {used * 1000:.0f} ms = {used / wall * 100:.3f}% of a core, peak RSS {int(hwm) / 1024:.1f} MB")
PY
