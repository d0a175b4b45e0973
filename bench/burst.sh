#!/usr/bin/env bash
# Benchmarks of the checklist (figures go in the issue notes, not in tests):
#   1. the 250-request burst: `chatops` (one rate_limit check, the whole
#      doctor process) vs oha sending the same 250 POSTs, 10 in flight, to
#      the same sandbox endpoint (goal: within 1.5x). wrk is not in this race:
#      it has no request count, and even a script that stops its thread
#      after 250 answers leaves the process waiting out its -d duration, so
#      its wall time measures nothing (bench/load.sh compares with wrk).
#   2. the full shipped playbook on the healthy sandbox, without the
#      stability wait (goal < 2 s)
# Usage: bench/burst.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
export DEBIAN_FRONTEND=noninteractive
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
# The same tool directory as bench/load.sh (oha takes a long time to build).
TOOLS=${CHATOPS_BENCH_TOOLS:-/tmp/chatops-bench-tools}
mkdir -p "$TOOLS"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || cargo install --quiet --locked --root "$TOOLS" oha
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
URL="$CHATOPS_BASE_URL/api/v1/chat/conversations/8822dd87-d0c2-42be-93d2-1c0cb492e351/messages"
BODY='{"userId":"00000000-0000-0000-0000-000000000000","content":"bench burst"}'
echo "sandbox: backend $CHATOPS_BASE_URL"

echo; echo "== 1. 250 POSTs, 10 in flight: chatops rate_limit vs oha (same run)"
hyperfine -N --warmup 3 --runs "$RUNS" \
    "$BIN doctor --color never -q --playbook bench/burst.yaml" \
    "oha --no-tui -n 250 -c 10 -m POST -H 'Content-Type: application/json' -d '$BODY' $URL"

echo; echo "== 2. full shipped playbook, healthy sandbox, stability wait off"
hyperfine -N --warmup 2 --runs "$RUNS" \
    "$BIN doctor --color never -q --var stability_duration=0s --var backend_log=$CHATOPS_BACKEND_LOG"
