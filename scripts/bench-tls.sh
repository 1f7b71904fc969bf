#!/usr/bin/env bash
# GET and SET over TLS at pipeline 1 and 16: magpie (--tls-port) beside
# redis-server (--tls-port) in the same run, alternating per repetition
# (A B, B A, ...), both with mutual TLS on the same certificates. Client:
# redis-benchmark --tls (Debian's redis-tools is built with TLS), 50
# connections, 32-byte values, 100k random keys. Server pinned to CPU 1, the
# client to CPU 0. Prints one CSV line per case; docs/benchmarks.md has the
# figures.
#   scripts/bench-tls.sh                 # REPS=3, N=200000
#   MAGPIE=/path/to/magpie scripts/bench-tls.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${MAGPIE:-}" ]; then
    cargo build --release -q
    MAGPIE=${CARGO_TARGET_DIR:-$ROOT/target}/release/magpie
fi
for tool in redis-server redis-benchmark openssl taskset; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool is not installed" >&2; exit 0; }
done
redis-benchmark --help 2>&1 | grep -q -- --tls || { echo "skipped: redis-benchmark has no --tls" >&2; exit 0; }
REPS=${REPS:-3}
N=${N:-200000}
PORT=${PORT:-13140}
TMP=$(mktemp -d)
SERVER=
stop_server() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=
    fi
}
trap 'stop_server; rm -rf "$TMP"' EXIT

# a CA, a server certificate for 127.0.0.1 and a client certificate
(
    cd "$TMP"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout ca.key -out ca.crt -subj /CN=bench-ca 2>/dev/null
    for who in server client; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    for who in server client; do
        openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile $who.ext -out $who.crt 2>/dev/null
    done
)
TLS=(--tls-cert-file "$TMP/server.crt" --tls-key-file "$TMP/server.key" --tls-ca-cert-file "$TMP/ca.crt")

wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}

start() { # name
    case $1 in
        magpie)
            taskset -c 1 "$MAGPIE" serve --ephemeral --port 0 --memcache-port 0 --http-port 0 \
                --tls-port "$PORT" "${TLS[@]}" >"$TMP/magpie.log" 2>&1 &
            ;;
        redis)
            taskset -c 1 redis-server --port 0 --tls-port "$PORT" "${TLS[@]}" \
                --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
            ;;
    esac
    SERVER=$!
    wait_port "$PORT"
    taskset -a -pc 1 "$SERVER" >/dev/null
}

bench() { # args...
    taskset -c 0 redis-benchmark -h 127.0.0.1 -p "$PORT" --tls --cacert "$TMP/ca.crt" \
        --cert "$TMP/client.crt" --key "$TMP/client.key" -c 50 -d 32 -r 100000 --csv "$@"
}

echo "rep,server,pipeline,test,rps"
for rep in $(seq 1 "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="magpie redis"; else order="redis magpie"; fi
    for server in $order; do
        start "$server"
        for p in 1 16; do
            bench -P "$p" -n "$N" -t set,get | tail -n +2 | while IFS=, read -r test rps _; do
                echo "$rep,$server,$p,${test//\"/},${rps//\"/}"
            done
        done
        stop_server
    done
done
