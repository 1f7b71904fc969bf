#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's compaction table: SET latency while the
# log is being compacted, against the same load without compaction.
# A data directory with 2M keys (key:%010d, 32-byte values; ~170 MB of log)
# is written once with compaction off. Each case then starts magpie on a
# copy of it (server pinned to CPU 1) and immediately runs kvload (CPU 0;
# SET, 32 B, 50 clients, 100k keys, pipeline 1) for SECS seconds:
#   compacting: --compact-min-size 64MB, so the first log flush starts a
#               compaction of the 2M-key keyspace while the load runs;
#   baseline:   --compact-min-size 1TB, no compaction.
# The cases alternate; the server log shows when compaction finished.
#   scripts/bench-compaction.sh        # REPS=2, SECS=6
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
ROOT=$PWD
BENCH=$ROOT/../shared/bench
# shellcheck source=/dev/null
. "$BENCH/lib.sh"
build_tools
REPS=${REPS:-2}
SECS=${SECS:-6}
N=${N:-2000000}
PORT=${PORT:-13601}
TMP=$BENCH_TMP/compaction
mkdir -p "$TMP"
SERVER=
stop_server() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=
    fi
}
trap 'stop_server; rm -rf "$TMP"/seed "$TMP"/case' EXIT
serve() { # dir min_size log
    taskset -c 1 "$ROOT/target/release/magpie" serve --port "$PORT" --memcache-port 0 --http-port 0 \
        --dir "$1" --compact-min-size "$2" >"$3" 2>&1 &
    SERVER=$!
    local i
    for i in $(seq 1 3000); do
        grep -q "magpie ready" "$3" 2>/dev/null && return 0
        sleep 0.01
    done
    echo "magpie did not start" >&2
    return 1
}

file=$TMP/load-$N.resp
if [ ! -s "$file" ]; then
    awk -v n="$N" 'BEGIN{ v = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
        for (i = 0; i < n; i++) { k = sprintf("key:%010d", i)
          printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n", length(k), k, v } }' >"$file"
fi
rm -rf "$TMP/seed"; mkdir -p "$TMP/seed"
serve "$TMP/seed" 1000000000000 "$TMP/seed.log"
redis-cli -p "$PORT" --pipe <"$file" >/dev/null
stop_server
echo "# seed: $(du -sm "$TMP/seed" | cut -f1) MiB on disk"

echo "rep,$CSV_HEADER"
for rep in $(seq 1 "$REPS"); do
    order="compacting baseline"
    [ $((rep % 2)) = 0 ] && order="baseline compacting"
    for c in $order; do
        rm -rf "$TMP/case"; cp -r "$TMP/seed" "$TMP/case"
        min=1000000000000
        [ "$c" = compacting ] && min=67108864
        serve "$TMP/case" "$min" "$TMP/$c.log"
        taskset -a -pc 1 "$SERVER" >/dev/null
        export SERVER_PID=$SERVER
        measure taskset -c 0 "$KVLOAD" -p resp -P "$PORT" -o set -c 50 -l 1 -d 32 -r 100000 \
            -n 50000000 -t "$SECS" -L "$c"
        echo "$rep,$(tail -1 "$MEAS_OUT"),$MEAS_CPU,$(grep -c compacted "$TMP/$c.log") compactions"
        unset SERVER_PID
        stop_server
    done
done
grep -h "compacted" "$TMP"/compacting.log | tail -1
