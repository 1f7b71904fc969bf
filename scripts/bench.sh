#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's throughput, latency and memory tables:
# magpie beside redis-server and memcached -t 2 in one run, alternating
# servers (A B C, C B A, ...), server pinned to CPU 1 and client to CPU 0,
# with ../shared/bench (kvload for both protocols, memory.sh for RSS/key).
#   scripts/bench.sh                # REPS=3 (about 10 minutes)
#   REPS=1 SECS=1 scripts/bench.sh  # smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
export REPS=${REPS:-3} SECS=${SECS:-3} MODES=${MODES:-split} RB_MODES=${RB_MODES:-} \
    DO_FLOOR=${DO_FLOOR:-1} DO_AOF=${DO_AOF:-0} DO_MEMORY=${DO_MEMORY:-1} MEM_REPS=${MEM_REPS:-1} \
    CONFIGS=${CONFIGS:-"redis mc-t2 extra"} EXTRA_NAME=magpie \
    EXTRA_CMD="target/release/magpie serve --ephemeral --http-port 0 --port {RESP_PORT} --memcache-port {MC_PORT}"
exec ../shared/bench/compare.sh
