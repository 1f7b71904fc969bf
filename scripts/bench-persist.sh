#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's durability table: SET throughput and
# latency with fsync on every write and once a second, magpie beside
# redis-server (appendonly yes) in the same run, alternating servers per
# repetition (A B, B A, ...). Server pinned to CPU 1, client (kvload from
# ../shared/bench) to CPU 0; 50 clients, 32-byte values, pipeline 1 and 16.
# Data directories live under /tmp/kvbench and are removed afterwards.
#   scripts/bench-persist.sh               # REPS=3, SECS=3 (about 4 minutes)
#   FSYNCS=always REPS=2 scripts/bench-persist.sh   # only the `always` cases
# The server binary is taken from $CARGO_TARGET_DIR (default ./target).
#   BASE=/tmp/old/magpie scripts/bench-persist.sh  # also an earlier build,
#       labelled "base", in the same alternation (A/B of a change)
#   REDIS=0 ...                                    # leave Redis out
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
REPS=${REPS:-3}
SECS=${SECS:-3}
PORT=${PORT:-13110}
FSYNCS=${FSYNCS:-always everysec}
BASE=${BASE:-}
SERVERS="magpie"
[ "${REDIS:-1}" != 0 ] && SERVERS="redis $SERVERS"
[ -n "$BASE" ] && SERVERS="$SERVERS base"
OUT=${OUT:-$BENCH_TMP/persist-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.csv
echo "rep,$CSV_HEADER" >"$RES"
trap 'stop_server; rm -rf "$OUT"/data-*' EXIT

run_case() { # rep server fsync
    local rep=$1 srv=$2 fs=$3 d=$OUT/data-$2-$3 p
    rm -rf "$d"; mkdir -p "$d"
    if [ "$srv" = redis ]; then
        taskset -c 1 redis-server --bind 127.0.0.1 --port "$PORT" --save "" \
            --appendonly yes --appendfsync "$fs" --dir "$d" >"$OUT/$srv-$fs.log" 2>&1 &
    else
        local bin=$MAGPIE
        [ "$srv" = base ] && bin=$BASE
        taskset -c 1 "$bin" serve --port "$PORT" --memcache-port 0 \
            --http-port 0 --dir "$d" --appendfsync "$fs" >"$OUT/$srv-$fs.log" 2>&1 &
    fi
    SERVER=$!
    wait_port "$PORT"
    taskset -a -pc 1 "$SERVER" >/dev/null
    export SERVER_PID=$SERVER
    for p in 1 16; do
        measure taskset -c 0 "$KVLOAD" -p resp -P "$PORT" -o set -c 50 -l "$p" -d 32 -r 100000 \
            -n 50000000 -t "$SECS" -L "$srv-$fs/split/kv"
        echo "$rep,$(tail -1 "$MEAS_OUT"),$MEAS_CPU,kv" | tee -a "$RES"
    done
    unset SERVER_PID
    stop_server
    rm -rf "$d"
}

for rep in $(seq 1 "$REPS"); do
    # alternate: the servers in order on odd repetitions, reversed on even
    order=$SERVERS
    [ $((rep % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for fs in $FSYNCS; do
        for srv in $order; do
            run_case "$rep" "$srv" "$fs"
        done
    done
done
python3 "$BENCH/summarize.py" "$OUT" || true
echo "# raw results: $RES"
