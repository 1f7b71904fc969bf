#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's load-generator table: is `magpie bench`
# the bottleneck? The same redis-server (pinned to CPU 1) is driven at
# pipeline 16 with 50 connections and 32-byte values by redis-benchmark,
# ../shared/bench's kvload and `magpie bench` (each pinned to CPU 0, one
# thread), alternating the tools each repetition. Then it writes the example
# comparison report docs/bench-compare-example.html (magpie vs redis vs
# memcached with `magpie bench --compare`).
#   scripts/bench-loadgen.sh      # REPS=3, SECS=3 (about 3 minutes)
set -euo pipefail
# shellcheck source=scripts/bench-common.sh
. "$(dirname "$0")/bench-common.sh"
REPS=${REPS:-3}
SECS=${SECS:-3}
RP=${RP:-13201}
MB=$MAGPIE
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c 1 redis-server --bind 127.0.0.1 --port "$RP" --save "" --appendonly no >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$RP"
# prefill so every GET hits (keys as each tool names them)
taskset -c 0 redis-benchmark -p "$RP" -c 50 -P 32 -d 32 -r 100000 -n 1000000 -t set -q >/dev/null
taskset -c 0 "$KVLOAD" -p resp -P "$RP" -o set -s -c 50 -l 32 -d 32 -r 100000 -n 100000 -t 60 -L prefill >/dev/null 2>&1
taskset -c 0 "$MB" bench -p "$RP" -t 1 -c 50 --pipeline 32 --ratio 1:0 --key-pattern P:P \
    --key-maximum 99999 -n 2000 --hide-progress >/dev/null

echo "tool,op,ops_per_s,p50_ms,p99_ms"
rb() { # op
    taskset -c 0 redis-benchmark -p "$RP" -c 50 -P 16 -d 32 -r 100000 -n 2000000 -t "$1" --csv |
        grep -v '^"test"' | tail -1 | tr -d '"' | awk -F, -v op="$1" '{printf "redis-benchmark,%s,%.0f,%s,%s\n", op, $2, $5, $7}'
}
kv() { # op
    taskset -c 0 "$KVLOAD" -p resp -P "$RP" -o "$1" -c 50 -l 16 -d 32 -r 100000 -n 50000000 -t "$SECS" -L kv 2>/dev/null |
        tail -1 | awk -F, -v op="$1" '{printf "kvload,%s,%s,%s,%s\n", op, $6, $7, $8}'
}
mb() { # op
    local ratio=1:0
    [ "$1" = get ] && ratio=0:1
    local j
    j=$(mktemp)
    taskset -c 0 "$MB" bench -p "$RP" -t 1 -c 50 --pipeline 16 -d 32 --ratio "$ratio" \
        --key-maximum 99999 --test-time "$SECS" --hide-progress --json-out-file "$j" >/dev/null
    python3 - "$j" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["ALL STATS"]
t = d["Sets"] if sys.argv[2] == "set" else d["Gets"]
p = t.get("Percentile Latencies", {})
print(f"magpie-bench,{sys.argv[2]},{t['Ops/sec']:.0f},{p.get('p50.00', '')},{p.get('p99.00', '')}")
EOF
    rm -f "$j"
}
for rep in $(seq 1 "$REPS"); do
    tools="rb kv mb"
    [ $((rep % 2)) = 0 ] && tools="mb kv rb"
    for t in $tools; do
        for op in set get; do "$t" "$op"; done
    done
done

# the example comparison report: magpie (RESP), redis, memcached -t 2
MP=13202 MCP=13203 MM=13204
taskset -c 1 "$MB" serve --ephemeral --port "$MP" --memcache-port "$MM" --http-port 0 >/dev/null 2>&1 &
PIDS+=($!)
taskset -c 1 memcached -l 127.0.0.1 -p "$MCP" -U 0 -t 2 -m 1024 -u root >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$MP" && wait_port "$MCP" && wait_port "$MM"
taskset -c 0 "$MB" bench -t 1 -c 50 --pipeline 16 -d 32 --ratio 1:1 --key-maximum 99999 \
    --compare "magpie-resp=127.0.0.1:$MP:redis,redis-server=127.0.0.1:$RP:redis,magpie-memcache=127.0.0.1:$MM:memcache_text,memcached=127.0.0.1:$MCP:memcache_text" \
    --compare-rounds "$REPS" --test-time "$SECS" --hide-progress \
    --report-out "$ROOT/docs/bench-compare-example.html"
