#!/usr/bin/env bash
# The test command from the README: every unit, property, corpus-replay and
# integration test in the workspace. Differential tests need redis-server and
# memcached (apt-get install redis-server redis-tools memcached
# libmemcached-tools); without them they print a loud SKIPPED line, except
# under CI=true where a missing reference server is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace "$@"
