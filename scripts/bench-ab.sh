#!/usr/bin/env bash
# A/B of two magpie builds in one run: SET and GET at pipeline 1 and 16,
# 50 clients, 32-byte values, 100k random keys, --ephemeral, alternating
# the builds per repetition (A B, B A, ...). Server pinned to CPU 1, client
# (kvload from ../shared/bench) to CPU 0. For a change's wall-clock cost
# beside its callgrind instruction count (docs/benchmarks.md).
#   BASE=/tmp/old/magpie scripts/bench-ab.sh            # REPS=4, SECS=3
#   BASE=... FLAGS="--maxmemory 1gb" scripts/bench-ab.sh  # flags for both
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
BASE=${BASE:?BASE=<path of the other magpie binary>}
REPS=${REPS:-4}
SECS=${SECS:-3}
PORT=${PORT:-13130}
FLAGS=${FLAGS:-}
OUT=${OUT:-$BENCH_TMP/ab-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.csv
echo "rep,$CSV_HEADER" >"$RES"
trap stop_server EXIT
run_case() { # rep label binary
    local rep=$1 label=$2 bin=$3 op p
    # shellcheck disable=SC2086
    taskset -c 1 "$bin" serve --ephemeral --port "$PORT" --memcache-port 0 --http-port 0 $FLAGS \
        >"$OUT/$label.log" 2>&1 &
    SERVER=$!
    wait_port "$PORT"
    taskset -a -pc 1 "$SERVER" >/dev/null
    # every key written once, so the GETs hit
    taskset -c 0 "$KVLOAD" -p resp -P "$PORT" -o set -c 50 -l 16 -d 32 -r 100000 -s -n 100000 \
        -t 30 -L fill >/dev/null 2>&1
    export SERVER_PID=$SERVER
    for op in set get; do
        for p in 1 16; do
            measure taskset -c 0 "$KVLOAD" -p resp -P "$PORT" -o "$op" -c 50 -l "$p" -d 32 \
                -r 100000 -n 50000000 -t "$SECS" -L "$label/split/kv"
            echo "$rep,$(tail -1 "$MEAS_OUT"),$MEAS_CPU,kv" | tee -a "$RES"
        done
    done
    unset SERVER_PID
    stop_server
}
for rep in $(seq 1 "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="base new"; else order="new base"; fi
    for label in $order; do
        if [ "$label" = base ]; then run_case "$rep" base "$BASE"; else run_case "$rep" new "$MAGPIE"; fi
    done
done
python3 "$BENCH/summarize.py" "$OUT" || true
echo "# raw results: $RES"
