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
# With REDIS=1 (the default) the same is done to redis-server (appendonly
# yes, everysec, its automatic rewrite off) on an AOF holding the same 2M
# keys:
#   redis-rewrite:  BGREWRITEAOF is sent the moment the load starts (Redis
#                   forks; the child writes the new base file);
#   redis-baseline: no rewrite.
# The cases alternate; the server log shows when compaction finished. The
# last columns are the server's peak resident memory (VmHWM) and, for
# Redis, the copy-on-write memory its rewrite child used on top (from
# Redis's own log line "Fork CoW for AOF rewrite: ... peak N MB").
#   scripts/bench-compaction.sh        # REPS=2, SECS=6
#   REDIS=0 scripts/bench-compaction.sh   # magpie's cases only
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
REPS=${REPS:-2}
REDIS=${REDIS:-1}
SECS=${SECS:-6}
N=${N:-2000000}
PORT=${PORT:-13601}
TMP=$BENCH_TMP/compaction
mkdir -p "$TMP"
trap 'stop_server; rm -rf "$TMP"/seed "$TMP"/case "$TMP"/rseed "$TMP"/rcase' EXIT
serve() { # dir min_size log
    taskset -c 1 "$MAGPIE" serve --port "$PORT" --memcache-port 0 --http-port 0 \
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

serve_redis() { # dir log
    taskset -c 1 redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly yes \
        --appendfsync everysec --auto-aof-rewrite-percentage 0 --dir "$1" >"$2" 2>&1 &
    SERVER=$!
    local i
    for i in $(seq 1 6000); do
        [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.01
    done
    echo "redis did not start" >&2
    return 1
}

# peak resident memory of process $1 in MiB (VmHWM)
peak_rss_mib() {
    awk '/^VmHWM:/ {printf "%d", $2 / 1024}' "/proc/$1/status"
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
if [ "$REDIS" = 1 ]; then
    rm -rf "$TMP/rseed"; mkdir -p "$TMP/rseed"
    serve_redis "$TMP/rseed" "$TMP/rseed.log"
    redis-cli -p "$PORT" --pipe <"$file" >/dev/null
    stop_server
    echo "# redis seed: $(du -sm "$TMP/rseed" | cut -f1) MiB on disk"
fi
cases="compacting baseline"
[ "$REDIS" = 1 ] && cases="$cases redis-rewrite redis-baseline"

echo "rep,$CSV_HEADER,compactions,peak_rss_mib,child_cow_mib"
for rep in $(seq 1 "$REPS"); do
    order=$cases
    # reverse the order every other repetition
    [ $((rep % 2)) = 0 ] && order=$(echo "$cases" | tr ' ' '\n' | tac | tr '\n' ' ')
    for c in $order; do
        case $c in
        redis-*)
            rm -rf "$TMP/rcase"; cp -r "$TMP/rseed" "$TMP/rcase"
            serve_redis "$TMP/rcase" "$TMP/$c.log" ;;
        *)
            rm -rf "$TMP/case"; cp -r "$TMP/seed" "$TMP/case"
            min=1000000000000
            [ "$c" = compacting ] && min=67108864
            serve "$TMP/case" "$min" "$TMP/$c.log" ;;
        esac
        taskset -a -pc 1 "$SERVER" >/dev/null
        export SERVER_PID=$SERVER
        if [ "$c" = redis-rewrite ]; then
            (sleep 0.05; redis-cli -p "$PORT" bgrewriteaof >/dev/null) &
        fi
        measure taskset -c 0 "$KVLOAD" -p resp -P "$PORT" -o set -c 50 -l 1 -d 32 -r 100000 \
            -n 50000000 -t "$SECS" -L "$c"
        peak=$(peak_rss_mib "$SERVER")
        cow=$(sed -n 's/.*Fork CoW for AOF rewrite: .*peak \([0-9]*\) MB.*/\1/p' "$TMP/$c.log" | tail -1)
        case $c in
        redis-*) n=$(grep -c "rewrite terminated with success" "$TMP/$c.log" || true) ;;
        *) n=$(grep -c compacted "$TMP/$c.log" || true) ;;
        esac
        echo "$rep,$(tail -1 "$MEAS_OUT"),$MEAS_CPU,$n,$peak,${cow:-0}"
        unset SERVER_PID
        stop_server
    done
done
# how long the last compaction / rewrite took
grep -h "compacted" "$TMP"/compacting.log | tail -1
if [ "$REDIS" = 1 ]; then
    grep -h -E "rewriting started|Fork CoW|rewrite terminated" "$TMP"/redis-rewrite.log | tail -3
fi
exit 0
