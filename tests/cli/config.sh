#!/usr/bin/env bash
# `dodeca config check` and `dodeca config show` behave as documented.
# Usage: config.sh PATH_TO_DODECA TESTS_DATA_DIR
set -euo pipefail
dodeca=$1
data=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

# Settings must come only from what this script sets.
for name in $(compgen -e); do
  case $name in DODECA_*) unset "$name" ;; esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$dodeca" config --help >/dev/null || fail "config --help exited $?"

example="$data/config/dodeca.example.toml"
[ -f "$example" ] || fail "missing $example"

# check: the configuration reference is valid
out=$("$dodeca" config check "$example") || fail "config check on the example exited $?"
[ "$out" = "$example: ok" ] || fail "config check printed '$out'"

# check: a broken file exits 1 and names the file, the line and the key
printf '[batch]\nmax_batch_size = 32\n\nmin_batch_size = 64\n' >"$tmp/bad.toml"
set +e
"$dodeca" config check "$tmp/bad.toml" >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "config check on a bad file exited $rc, expected 1"
grep -q "^dodeca: config: $tmp/bad.toml:4: batch.min_batch_size (64) > batch.max_batch_size (32)" "$tmp/err" \
  || fail "stderr does not name line 4 and the key: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "config check printed to stdout on failure"

printf '[batch]\nmax_wait_ms 5\n' >"$tmp/syntax.toml"
set +e
"$dodeca" config check "$tmp/syntax.toml" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "syntax error exited $rc"
grep -q "$tmp/syntax.toml:2:13: expected '=' after key 'batch.max_wait_ms'" "$tmp/err" \
  || fail "syntax error message: $(cat "$tmp/err")"

printf '[cache]\nmax_entrys = 5\n' >"$tmp/unknown.toml"
set +e
"$dodeca" config check "$tmp/unknown.toml" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "unknown key exited $rc"
grep -q "unknown.toml:2: unknown key 'cache.max_entrys'" "$tmp/err" || fail "unknown key message: $(cat "$tmp/err")"

set +e
"$dodeca" config check "$tmp/missing.toml" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "missing file exited $rc"
grep -q "missing.toml" "$tmp/err" || fail "missing file not named: $(cat "$tmp/err")"

# show: the output is a valid configuration that checks OK and shows the same again
"$dodeca" config show >"$tmp/shown.toml" || fail "config show exited $?"
grep -q '^\[models.late_interaction\]' "$tmp/shown.toml" || fail "show lacks the model tables"
"$dodeca" config check "$tmp/shown.toml" >/dev/null || fail "shown config does not check OK"
"$dodeca" config show "$tmp/shown.toml" >"$tmp/shown2.toml"
cmp -s "$tmp/shown.toml" "$tmp/shown2.toml" || fail "show of the shown config differs"

# show FILE: file values, then environment overrides, then --set
printf '[batch]\nmax_batch_size = 16\n[server]\nport = 9000\n' >"$tmp/mine.toml"
DODECA_BATCH_MAX_BATCH_SIZE=64 DODECA_GPU_DEVICE_IDS=0,1 DODECA_MODELS_SEMANTIC_DEVICE=cpu \
  "$dodeca" config show "$tmp/mine.toml" --set server.host=0.0.0.0 >"$tmp/env.toml" \
  || fail "config show with env exited $?"
grep -q '^max_batch_size = 64$' "$tmp/env.toml" || fail "env override missing from show"
grep -q '^device_ids = \[0, 1\]$' "$tmp/env.toml" || fail "list override missing from show"
grep -q '^port = 9000$' "$tmp/env.toml" || fail "file value missing from show"
grep -q '^host = "0.0.0.0"$' "$tmp/env.toml" || fail "--set missing from show"
awk '/^\[models.semantic\]/{s=1;next} /^\[/{s=0} s && /^device = "cpu"$/{found=1} END{exit !found}' \
  "$tmp/env.toml" || fail "per-model env override missing from show"
"$dodeca" config check "$tmp/env.toml" >/dev/null || fail "shown env config does not check OK"

# DODECA_CONFIG names the file when show has none
DODECA_CONFIG="$tmp/mine.toml" "$dodeca" config show | grep -q '^port = 9000$' \
  || fail "DODECA_CONFIG not used by show"

# bad environment: exit 1 naming the variable
set +e
DODECA_BATCH_MAX_SIZE=64 "$dodeca" config show >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "unknown env var exited $rc"
grep -q 'DODECA_BATCH_MAX_SIZE' "$tmp/err" || fail "unknown env var not named: $(cat "$tmp/err")"
set +e
DODECA_CACHE_ENABLED=maybe "$dodeca" config show >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "bad env value exited $rc"
grep -q 'DODECA_CACHE_ENABLED' "$tmp/err" || fail "bad env value not named: $(cat "$tmp/err")"

# usage errors exit 2
for args in "" "check" "check a b" "frob" "show a b" "show --set" "show --set novalue" "show --bogus"; do
  set +e
  # shellcheck disable=SC2086
  "$dodeca" config $args >/dev/null 2>&1; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "'config $args' exited $rc, expected 2"
done

echo "cli config: ok"
