#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's restart table: time from process start to
# answering PING with PONG after a clean shutdown with N keys on disk,
# magpie (--appendfsync everysec) beside redis-server (--appendonly yes,
# appendfsync everysec), alternating, both pinned to CPU 1. Keys are
# "key:%010d" with 32-byte values, loaded with `redis-cli --pipe`.
#   scripts/bench-restart.sh                 # N="1000000 10000000", REPS=2
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
NS=${NS:-"1000000 10000000"}
REPS=${REPS:-2}
PORT=${PORT:-13501}
TMP=${BENCH_TMP:-/tmp/kvbench}/restart
mkdir -p "$TMP"
trap 'stop_server; rm -rf "$TMP"/data-*' EXIT

start_server() { # srv dir
    if [ "$1" = redis ]; then
        taskset -c 1 redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly yes \
            --appendfsync everysec --dir "$2" >>"$TMP/$1.log" 2>&1 &
    else
        taskset -c 1 "$MAGPIE" serve --port "$PORT" --memcache-port 0 \
            --http-port 0 --dir "$2" --appendfsync everysec >>"$TMP/$1.log" 2>&1 &
    fi
    SERVER=$!
}

# seconds (3 decimals) until PING answers PONG (LOADING replies do not count)
time_to_pong() {
    local t0 t1 i
    t0=$(date +%s.%N)
    for i in $(seq 1 60000); do
        if [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ]; then
            t1=$(date +%s.%N)
            awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'
            return 0
        fi
        sleep 0.01
    done
    echo timeout
}

echo "server,keys,load_s,restart_s,keys_after,rss_mib,disk_mib"
for n in $NS; do
    file=$TMP/load-$n.resp
    if [ ! -s "$file" ]; then
        awk -v n="$n" 'BEGIN{ v = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
            for (i = 0; i < n; i++) { k = sprintf("key:%010d", i)
              printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n", length(k), k, v } }' >"$file"
    fi
    for rep in $(seq 1 "$REPS"); do
        order="redis magpie"
        [ $((rep % 2)) = 0 ] && order="magpie redis"
        for srv in $order; do
            d=$TMP/data-$srv
            rm -rf "$d"; mkdir -p "$d"
            start_server "$srv" "$d"
            time_to_pong >/dev/null
            t0=$(date +%s.%N)
            redis-cli -p "$PORT" --pipe <"$file" >/dev/null
            load=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
            # clean shutdown: both write and fsync what they have
            if [ "$srv" = redis ]; then redis-cli -p "$PORT" SHUTDOWN >/dev/null 2>&1 || true; fi
            stop_server
            disk=$(du -sm "$d" | cut -f1)
            start_server "$srv" "$d"
            restart=$(time_to_pong)
            keys=$(redis-cli -p "$PORT" DBSIZE)
            rss=$(awk '/^VmRSS:/{printf "%.0f", $2/1024}' "/proc/$SERVER/status")
            echo "$srv,$n,$load,$restart,$keys,$rss,$disk"
            stop_server
            rm -rf "$d"
        done
    done
done
