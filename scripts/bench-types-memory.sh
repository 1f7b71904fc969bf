#!/usr/bin/env bash
# Memory per element of hashes and sets, magpie beside redis-server 7.0:
# one hash of 1M fields, one set of 1M members, 100k hashes of 10 fields
# (1M fields). Each case loads a fresh server over `redis-cli --pipe` and
# reports the growth of used_memory_rss and used_memory per element.
#
#   scripts/bench-types-memory.sh            # port 17821 by default
#   PORT=17900 scripts/bench-types-memory.sh
set -euo pipefail
. "$(dirname "$0")/bench-common.sh"
PORT=${PORT:-17821}
WORK=$(mktemp -d)
trap 'stop_server; rm -rf "$WORK"' EXIT

python3 - "$WORK" <<'PY'
import sys
d = sys.argv[1]
def cmd(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
with open(f"{d}/bighash.resp", "wb") as f:
    for i in range(0, 1000000, 100):
        f.write(cmd([b"HSET", b"big"] + sum(([b"field:%07d" % j, b"v%07d" % j] for j in range(i, i + 100)), [])))
with open(f"{d}/bigset.resp", "wb") as f:
    for i in range(0, 1000000, 100):
        f.write(cmd([b"SADD", b"bigset"] + [b"member:%07d" % j for j in range(i, i + 100)]))
with open(f"{d}/hashes.resp", "wb") as f:
    for i in range(100000):
        f.write(cmd([b"HSET", b"h:%08d" % i] + sum(([b"field%d" % j, b"value%05d" % j] for j in range(10)), [])))
PY

info() { redis-cli -p "$PORT" info memory | grep "^$1:" | cut -d: -f2 | tr -d '\r'; }

run() { # name file
    wait_port "$PORT"
    local r0 u0 r1 u1
    r0=$(info used_memory_rss); u0=$(info used_memory)
    redis-cli -p "$PORT" --pipe < "$WORK/$2" > /dev/null
    sleep 0.5
    r1=$(info used_memory_rss); u1=$(info used_memory)
    printf '%-8s %-13s rss/element %4d B   used/element %4d B\n' "$1" "$2" \
        $(( (r1 - r0) / 1000000 )) $(( (u1 - u0) / 1000000 ))
    stop_server
}

for file in bighash.resp bigset.resp hashes.resp; do
    "$MAGPIE" serve --ephemeral --port "$PORT" --memcache-port 0 --http-port 0 > /dev/null 2>&1 &
    SERVER=$!
    run magpie "$file"
    # redis.conf's 128 (a redis-server without a config file uses 512)
    redis-server --port "$PORT" --save '' --appendonly no --hash-max-listpack-entries 128 > /dev/null 2>&1 &
    SERVER=$!
    run redis "$file"
done
