#!/usr/bin/env bash
# Reproduces docs/benchmarks.md's HTTP table: GET and PUT of a 32-byte value
# over keep-alive connections with wrk (Debian package `wrk`), magpie pinned
# to CPU 1 and wrk (one thread, 50 connections) to CPU 0, REPS repetitions
# of SECS seconds each. GETs read one of 1000 keys written beforehand; PUTs
# write over the same 1000 keys.
#   scripts/bench-http.sh        # REPS=3, SECS=5
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q
REPS=${REPS:-3}
SECS=${SECS:-5}
PORT=${PORT:-13701}
TMP=${BENCH_TMP:-/tmp/kvbench}/http
mkdir -p "$TMP"
taskset -c 1 target/release/magpie serve --ephemeral --port 0 --memcache-port 0 \
    --http-port "$PORT" >"$TMP/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q "magpie ready" "$TMP/server.log" && break; sleep 0.01; done
taskset -a -pc 1 "$SERVER" >/dev/null
value=$(printf 'v%.0s' $(seq 1 32))
for i in $(seq 0 999); do
    curl -s -o /dev/null -X PUT --data-binary "$value" "http://127.0.0.1:$PORT/v1/keys/key:$i"
done
cat >"$TMP/get.lua" <<'EOF'
request = function()
  return wrk.format("GET", "/v1/keys/key:" .. math.random(0, 999))
end
EOF
cat >"$TMP/put.lua" <<EOF
request = function()
  return wrk.format("PUT", "/v1/keys/key:" .. math.random(0, 999), nil, "$value")
end
EOF
echo "rep,op,requests_per_s,p50_ms,p99_ms,non_2xx"
for rep in $(seq 1 "$REPS"); do
    for op in get put; do
        taskset -c 0 wrk -t1 -c50 -d"${SECS}s" --latency -s "$TMP/$op.lua" "http://127.0.0.1:$PORT" >"$TMP/$op.out"
        rps=$(awk '/^Requests\/sec/{print $2}' "$TMP/$op.out")
        p50=$(awk '$1=="50%"{print $2}' "$TMP/$op.out")
        p99=$(awk '$1=="99%"{print $2}' "$TMP/$op.out")
        bad=$(awk '/Non-2xx/{print $NF}' "$TMP/$op.out")
        echo "$rep,$op,$rps,$p50,$p99,${bad:-0}"
    done
done
