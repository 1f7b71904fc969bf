#!/usr/bin/env bash
# Invalidating a tag of 1k, 100k and 1M keys: the server-side time of the
# call (SLOWLOG's duration, with every command logged), magpie's
# INVALIDATE TAG beside Redis doing the best it can with what it has (the
# tag kept as a set of key names, and one Lua script that reads the set and
# UNLINKs its members in batches, then drops the set), and magpie's
# INVALIDATE PREFIX on the same keys. Also the RSS each server holds for
# the loaded keys. Prints a markdown table.
#
#   scripts/bench-tags.sh            # 1000 100000 1000000
#   SIZES="1000 10000" scripts/bench-tags.sh
set -euo pipefail
. "$(dirname "$0")/bench-common.sh"

SIZES=${SIZES:-"1000 100000 1000000"}
PORT=${PORT:-27501}
REDIS_PORT=${REDIS_PORT:-27502}
WORK=$(mktemp -d)
trap 'stop_server; rm -rf "$WORK"' EXIT

# RESP for N commands: magpie's tagged SETs, or Redis's SET + SADD pairs
gen() {
    python3 - "$1" "$2" <<'EOF'
import sys
n, kind = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
def cmd(*args):
    b = b"*%d\r\n" % len(args)
    for a in args:
        b += b"$%d\r\n%s\r\n" % (len(a), a)
    return b
chunk = []
for i in range(n):
    key = b"get_items_in_cart::13:%d" % i
    if kind == "magpie":
        chunk.append(cmd(b"SET", key, b"v" * 32, b"TAGS", b"cart:13"))
    else:
        chunk.append(cmd(b"SET", key, b"v" * 32))
        chunk.append(cmd(b"SADD", b"tag:cart:13", key))
    if len(chunk) >= 10000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
EOF
}

# the duration (µs) of the last command in SLOWLOG
last_us() {
    redis-cli -p "$1" slowlog get 1 | sed -n 3p
}

rss_kb() {
    awk '/VmRSS/ {print $2}' "/proc/$1/status"
}

LUA='local m = redis.call("SMEMBERS", KEYS[1])
for i = 1, #m, 5000 do redis.call("UNLINK", unpack(m, i, math.min(i + 4999, #m))) end
redis.call("UNLINK", KEYS[1])
return #m'

echo "| members | magpie INVALIDATE TAG | magpie INVALIDATE PREFIX | Redis SMEMBERS+UNLINK (Lua) | ratio (Redis / magpie tag) | RSS magpie / Redis after load |"
echo "| --- | --- | --- | --- | --- | --- |"
for n in $SIZES; do
    gen "$n" magpie > "$WORK/magpie.resp"
    gen "$n" redis > "$WORK/redis.resp"

    "$MAGPIE" serve --ephemeral --port "$PORT" --memcache-port 0 --http-port 0 >/dev/null 2>&1 &
    SERVER=$!
    wait_port "$PORT"
    redis-cli -p "$PORT" --pipe < "$WORK/magpie.resp" >/dev/null
    m_rss=$(rss_kb "$SERVER")
    redis-cli -p "$PORT" config set slowlog-log-slower-than 0 >/dev/null
    got=$(redis-cli -p "$PORT" invalidate tag cart:13)
    [ "$got" = "$n" ] || { echo "magpie invalidated $got of $n" >&2; exit 1; }
    m_tag=$(last_us "$PORT")
    stop_server

    "$MAGPIE" serve --ephemeral --port "$PORT" --memcache-port 0 --http-port 0 >/dev/null 2>&1 &
    SERVER=$!
    wait_port "$PORT"
    redis-cli -p "$PORT" --pipe < "$WORK/magpie.resp" >/dev/null
    redis-cli -p "$PORT" config set slowlog-log-slower-than 0 >/dev/null
    redis-cli -p "$PORT" invalidate prefix get_items_in_cart::13: >/dev/null
    m_prefix=$(last_us "$PORT")
    stop_server

    redis-server --port "$REDIS_PORT" --save '' --appendonly no >/dev/null 2>&1 &
    SERVER=$!
    wait_port "$REDIS_PORT"
    redis-cli -p "$REDIS_PORT" --pipe < "$WORK/redis.resp" >/dev/null
    r_rss=$(rss_kb "$SERVER")
    redis-cli -p "$REDIS_PORT" config set slowlog-log-slower-than 0 >/dev/null
    got=$(redis-cli -p "$REDIS_PORT" eval "$LUA" 1 tag:cart:13)
    [ "$got" = "$n" ] || { echo "redis unlinked $got of $n" >&2; exit 1; }
    r_tag=$(last_us "$REDIS_PORT")
    stop_server

    ratio=$(python3 -c "print(f'{$r_tag / max($m_tag, 1):.0f}x')")
    echo "| $n | $m_tag µs | $m_prefix µs | $r_tag µs | $ratio | $((m_rss / 1024)) MB / $((r_rss / 1024)) MB |"
done
