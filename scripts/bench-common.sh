# shellcheck shell=bash
# Sourced by the bench scripts (not run): from the repository root, builds
# magpie in release mode, loads ../shared/bench/lib.sh (kvload, measure,
# CSV_HEADER, build_tools) and builds its tools, and gives the helpers for
# the one server a script runs at a time:
#   MAGPIE        the release binary ($CARGO_TARGET_DIR honoured)
#   SERVER        the pid of the server started last (empty when none)
#   stop_server   kills and reaps $SERVER
#   wait_port P   waits (10 s at most) until 127.0.0.1:P accepts
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release -q
MAGPIE=${CARGO_TARGET_DIR:-$ROOT/target}/release/magpie
BENCH=$ROOT/../shared/bench
# shellcheck source=/dev/null
. "$BENCH/lib.sh"
build_tools
SERVER=

stop_server() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=
    fi
}

wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}
