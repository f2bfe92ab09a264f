#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time over a scratch copy of its seed corpus (so new
# inputs never land in the repository). Usage: run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
# A crash leaves its reproducer in BUILD_DIR/fuzz-artifacts/ and fails the run.
set -euo pipefail
build=$1
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for target in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  scratch=$(mktemp -d)
  echo "== fuzz $name for ${seconds}s"
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$name-" "$scratch" "$here/corpus/$name" 2>"$build/fuzz-$name.log"; then
    echo "fuzz $name FAILED; last lines of $build/fuzz-$name.log:"
    tail -n 40 "$build/fuzz-$name.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$build/fuzz-$name.log" || true
  fi
  rm -rf "$scratch"
done
exit $status
