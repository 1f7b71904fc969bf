#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's "At a full memory limit" table: SET
# throughput and latency while every new key evicts an old one, magpie
# (--maxmemory-policy allkeys-lru) beside redis-server (maxmemory-policy
# allkeys-lru) and memcached (-m, its LRU) with the same limit, alternating
# servers per repetition (A B C, C B A, ...). Each server is first filled
# past its limit (sequential keys), then kvload from ../shared/bench writes
# random keys of a keyspace several times larger than fits, so nearly every
# SET evicts. Server pinned to CPU 1, client to CPU 0; 50 clients, 32-byte
# values, pipeline 1 and 16. Also records the keys each server holds at the
# end, its evictions and its RSS.
#   scripts/bench-evict.sh                       # REPS=3, SECS=3, 64 MB
#   LIMIT_MB=256 KEYSPACE=20000000 scripts/bench-evict.sh
#   BASE=/tmp/old/magpie scripts/bench-evict.sh  # an earlier build too
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
REPS=${REPS:-3}
SECS=${SECS:-3}
LIMIT_MB=${LIMIT_MB:-64}
KEYSPACE=${KEYSPACE:-5000000}
PORT=${PORT:-13120}
BASE=${BASE:-}
SERVERS=${SERVERS:-"redis memcached magpie"}
[ -n "$BASE" ] && SERVERS="$SERVERS base"
OUT=${OUT:-$BENCH_TMP/evict-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.csv
HELD=$OUT/held.csv
echo "rep,$CSV_HEADER" >"$RES"
echo "rep,server,keys_held,evictions,rss_mb" >"$HELD"
trap stop_server EXIT

# "stats" of memcached, or INFO of the others, as name value lines
server_stats() { # server
    if [ "$1" = memcached ]; then
        printf 'stats\r\nquit\r\n' | nc -q 1 127.0.0.1 "$PORT" | tr -d '\r' | awk '/^STAT/{print $2, $3}'
    else
        redis-cli -p "$PORT" info everything | tr -d '\r' | awk -F: 'NF==2{print $1, $2}'
        echo "dbsize $(redis-cli -p "$PORT" dbsize)"
    fi
}

run_case() { # rep server
    local rep=$1 srv=$2 proto=resp p st held ev
    case $srv in
    redis)
        taskset -c 1 redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
            --maxmemory "${LIMIT_MB}mb" --maxmemory-policy allkeys-lru >"$OUT/$srv.log" 2>&1 &
        ;;
    memcached)
        proto=mc
        taskset -c 1 memcached -l 127.0.0.1 -p "$PORT" -U 0 -t 1 -m "$LIMIT_MB" \
            $([ "$(id -u)" = 0 ] && echo "-u root") >"$OUT/$srv.log" 2>&1 &
        ;;
    *)
        local bin=$MAGPIE
        [ "$srv" = base ] && bin=$BASE
        taskset -c 1 "$bin" serve --port "$PORT" --memcache-port 0 --http-port 0 --ephemeral \
            --maxmemory "${LIMIT_MB}mb" --maxmemory-policy allkeys-lru >"$OUT/$srv.log" 2>&1 &
        ;;
    esac
    SERVER=$!
    wait_port "$PORT"
    taskset -a -pc 1 "$SERVER" >/dev/null
    # fill past the limit: 2 million sequential keys (about 3x what fits in 64 MB)
    # (kvload exits 1 when a reply was an error: memcached refuses some sets
    # while its LRU catches up; the count goes in the last column)
    taskset -c 0 "$KVLOAD" -p "$proto" -P "$PORT" -o set -c 50 -l 16 -d 32 -r 2000000 -s \
        -n 2000000 -t 60 -L fill >/dev/null 2>&1 || true
    export SERVER_PID=$SERVER
    for p in 1 16; do
        measure taskset -c 0 "$KVLOAD" -p "$proto" -P "$PORT" -o set -c 50 -l "$p" -d 32 \
            -r "$KEYSPACE" -n 50000000 -t "$SECS" -L "$srv-lru/split/kv" || true
        errors=$(grep -o 'errors=[0-9]*' "$BENCH_TMP/.meas.err" || echo errors=?)
        echo "$rep,$(tail -1 "$MEAS_OUT"),$MEAS_CPU,$errors" | tee -a "$RES"
    done
    unset SERVER_PID
    st=$(server_stats "$srv")
    if [ "$srv" = memcached ]; then
        held=$(awk '$1=="curr_items"{print $2}' <<<"$st")
        ev=$(awk '$1=="evictions"{print $2}' <<<"$st")
    else
        held=$(awk '$1=="dbsize"{print $2}' <<<"$st")
        ev=$(awk '$1=="evicted_keys"{print $2}' <<<"$st")
    fi
    echo "$rep,$srv,$held,$ev,$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$SERVER/status")" | tee -a "$HELD"
    stop_server
}

for rep in $(seq 1 "$REPS"); do
    order=$SERVERS
    [ $((rep % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for srv in $order; do
        run_case "$rep" "$srv"
    done
done
python3 "$BENCH/summarize.py" "$OUT" || true
echo "# keys held at the end, evictions, RSS:"
cat "$HELD"
echo "# raw results: $RES"
