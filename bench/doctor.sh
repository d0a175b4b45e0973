#!/usr/bin/env bash
# Benchmarks for the doctor (figures go in the issue notes, not in tests):
#   1. `chatops doctor` with the foundation's checks (bench/foundation.yaml) on
#      the healthy sandbox: wall time (goal < 300 ms); the full shipped
#      playbook is measured by bench/burst.sh
#   2. one `pg_ready` check vs the native pg_isready against the same server, side by side
#   3. peak RSS of `chatops doctor` (goal < 30 MB)
# Usage: bench/doctor.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-50}
if ! command -v hyperfine >/dev/null; then
    echo "bench: installing hyperfine" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
cargo build --release --quiet
BIN=$PWD/target/release/chatops
ENVF=$(mktemp)
"$BIN" sandbox --env-file "$ENVF" >/dev/null 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null; wait $SB 2>/dev/null; rm -f "$ENVF"' EXIT
for _ in $(seq 150); do [ -s "$ENVF" ] && break; sleep 0.2; done
[ -s "$ENVF" ] || { echo "bench: the sandbox did not come up" >&2; exit 1; }
# shellcheck disable=SC1090
source "$ENVF"
PG_ISREADY="$CHATOPS_PG_BINDIR/pg_isready"
echo "sandbox: backend $CHATOPS_BASE_URL, PostgreSQL 127.0.0.1:$CHATOPS_PG_PORT"
"$BIN" doctor --color never -q --playbook bench/foundation.yaml | tail -1

echo; echo "== 1. doctor, the foundation's checks, healthy sandbox"
hyperfine -N --warmup 5 --runs "$RUNS" "$BIN doctor --color never -q --playbook bench/foundation.yaml"

echo; echo "== 2. one pg_ready check vs native pg_isready (same server, same run)"
hyperfine -N --warmup 10 --runs "$((RUNS * 2))" \
    "$PG_ISREADY -h 127.0.0.1 -p $CHATOPS_PG_PORT" \
    "$BIN doctor --color never -q --playbook bench/pg-ready.yaml"

echo; echo "== 3. peak RSS of doctor"
python3 - "$BIN" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "doctor", "--color", "never", "-q", "--var", "stability_duration=0s"], stdout=subprocess.DEVNULL, check=False)
print(f"chatops doctor (full shipped playbook, 250-request burst included) peak RSS: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} MB")
PY
