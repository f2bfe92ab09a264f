#!/usr/bin/env bash
# Configures, builds and runs the test suite. Usage: scripts/test.sh [BUILD_DIR [CMAKE_ARGS...]]
# Starts a throwaway redis-server on loopback for the shared-cache tests when one is installed
# (they are skipped, never passed, without it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true

cmake -S "$root" -B "$build" -G Ninja "$@"
cmake --build "$build" -j2

if [ -z "${DODECA_TEST_REDIS_URL:-}" ] && command -v redis-server >/dev/null; then
  port=$(( 20000 + RANDOM % 20000 ))
  redis_dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$redis_dir" --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log" >/dev/null
  trap 'kill "$(cat "$redis_dir/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
  for _ in $(seq 50); do [ -s "$redis_dir/redis.pid" ] && break; sleep 0.1; done
  export DODECA_TEST_REDIS_URL=redis://127.0.0.1:$port
fi

ctest --test-dir "$build" --output-on-failure

# What the conformance tests measured (parity with transformers / sentence-transformers on the
# fixtures and the real checkpoints, bf16 / int8 against fp32, the tokenizer goldens) and what was
# skipped, as they printed it: ctest shows the output of failed tests only.
awk '/^[0-9]+\/[0-9]+ Testing: /{t=$3}
     /min cosine|bf16 cosine|real weights|conformance total|SKIP|not run|note: this CPU/{print t ": " $0}' \
  "$build/Testing/Temporary/LastTest.log"
