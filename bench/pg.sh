#!/usr/bin/env bash
# Benchmarks for the PostgreSQL diagnostics (figures go in the issue notes, not in tests):
#   1. one pg_stat_activity sample against a local server (goal < 5 ms), as
#      watch-connections measures it (`sample_ms`: pool checkout + query + decode)
#   2. watch-connections at 1 sample per second for a minute: CPU (goal < 1% of
#      a core) and peak RSS (goal < 20 MB)
#   3. pool-calc offline, wall time per run (goal < 5 ms)
# Usage: bench/pg.sh [seconds for 2, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
if ! command -v hyperfine >/dev/null; then
    echo "bench: installing hyperfine" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
cargo build --release --quiet
BIN=$PWD/target/release/chatops
ENVF=$(mktemp)
"$BIN" sandbox --no-backend --env-file "$ENVF" >/dev/null 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null; wait $SB 2>/dev/null; rm -f "$ENVF"' EXIT
for _ in $(seq 150); do [ -s "$ENVF" ] && break; sleep 0.2; done
[ -s "$ENVF" ] || { echo "bench: the sandbox did not come up" >&2; exit 1; }
# shellcheck disable=SC1090
source "$ENVF"
echo "sandbox: PostgreSQL 127.0.0.1:$CHATOPS_PG_PORT"

echo; echo "== 1. one pg_activity sample (200 samples, 50 ms apart, one connection)"
"$BIN" watch-connections --format json --interval 50ms --count 200 --database-url "$DATABASE_URL" \
    | python3 -c '
import json, statistics, sys
ms = sorted(json.loads(l)["sample_ms"] for l in sys.stdin if "\"connected\":true" in l)
ms = ms[1:]  # the first includes the login
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"samples {len(ms)}: median {statistics.median(ms):.2f} ms, p95 {p(0.95):.2f} ms, max {ms[-1]:.2f} ms")'
echo "whole process (start, login, one sample, exit):"
hyperfine -N --warmup 5 --runs 50 "$BIN watch-connections --once --format json --database-url $DATABASE_URL" 2>&1 \
    | sed "s#${DATABASE_URL}#\$DATABASE_URL#"

echo; echo "== 2. watch-connections, 1 sample/s for ${SECS}s: CPU and peak RSS"
python3 - "$BIN" "$DATABASE_URL" "$SECS" <<'PY'
import resource, subprocess, sys, time
bin_, url, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()
subprocess.run([bin_, "watch-connections", "--format", "json", "--interval", "1s",
                "--count", str(secs), "--database-url", url],
               stdout=subprocess.DEVNULL, check=False)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
print(f"wall {wall:.1f} s, CPU {cpu * 1000:.0f} ms = {cpu / wall * 100:.3f}% of a core, peak RSS {ru.ru_maxrss / 1024:.1f} MB")
PY

echo; echo "== 3. pool-calc, offline"
hyperfine -N --warmup 20 --runs 300 --export-json /tmp/chatops-poolcalc.json "$BIN --version" "$BIN pool-calc --max-connections 100" "$BIN pool-calc --max-connections 100 --format json"
python3 -c "import json; [print(f\"median {r['median']*1000:.2f} ms  {r['command'].split('/')[-1]}\") for r in json.load(open('/tmp/chatops-poolcalc.json'))['results']]"
