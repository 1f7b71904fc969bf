#!/usr/bin/env bash
# PUBLISH throughput with 1, 10 and 100 subscribers, magpie beside
# redis-server 7.0 in the same run (alternating per repetition). Server
# pinned to CPU 1; the subscribers (redis-cli SUBSCRIBE, output discarded)
# and redis-benchmark (50 clients, 32-byte messages) to CPU 0. Pipeline 1
# and 16. Prints one CSV line per case (docs/benchmarks.md).
#   scripts/bench-pubsub.sh                 # REPS=2, N=200000
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
REPS=${REPS:-2}
N=${N:-200000}
PORT=${PORT:-13140}
SUBS=()
trap 'stop_subs; stop_server' EXIT
stop_subs() {
    local p
    for p in "${SUBS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${SUBS[@]}"; do wait "$p" 2>/dev/null || true; done
    SUBS=()
}
start() { # which
    if [ "$1" = magpie ]; then
        taskset -c 1 "$MAGPIE" serve --ephemeral --port "$PORT" --memcache-port 0 --http-port 0 \
            >/dev/null 2>&1 &
    else
        taskset -c 1 redis-server --port "$PORT" --save '' --appendonly no >/dev/null 2>&1 &
    fi
    SERVER=$!
    wait_port "$PORT"
    taskset -a -pc 1 "$SERVER" >/dev/null
}
echo "server,subscribers,pipeline,rep,publish_per_sec"
for rep in $(seq 1 "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="magpie redis"; else order="redis magpie"; fi
    for which in $order; do
        start "$which"
        for subs in 1 10 100; do
            for _ in $(seq 1 "$subs"); do
                taskset -c 0 redis-cli -p "$PORT" SUBSCRIBE bench >/dev/null 2>&1 &
                SUBS+=($!)
            done
            until [ "$(redis-cli -p "$PORT" PUBSUB NUMSUB bench | tail -1)" = "$subs" ]; do
                sleep 0.1
            done
            for p in 1 16; do
                rps=$(taskset -c 0 redis-benchmark -p "$PORT" -c 50 -n "$N" -P "$p" -q \
                    PUBLISH bench 01234567890123456789012345678901 |
                    grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
                echo "$which,$subs,$p,$rep,$rps"
            done
            stop_subs
        done
        stop_server
    done
done
