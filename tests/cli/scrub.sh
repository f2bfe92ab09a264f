#!/usr/bin/env bash
# `dodeca scrub` behaves as documented: text and JSON lines, every mode, keyed hashes that are
# stable across runs, custom patterns, configuration and environment, and no raw value on
# stdout, stderr or in the report when a record fails.
# Usage: scrub.sh PATH_TO_DODECA TESTS_DATA_DIR
set -euo pipefail
dodeca=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

for name in $(compgen -e); do
  case $name in DODECA_*) unset "$name" ;; esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$dodeca" scrub --help >/dev/null 2>&1 || fail "dodeca scrub --help failed"

input='Mail jane.doe@example.com or call (415) 555-2671. SSN 536-22-1234, card 4111 1111 1111 1111.'

# placeholder is the default
out=$(printf '%s\n' "$input" | "$dodeca" scrub)
[ "$out" = 'Mail <EMAIL> or call <PHONE>. SSN <US_SSN>, card <CREDIT_CARD>.' ] \
  || fail "placeholder: '$out'"

out=$(printf '%s' "$input" | "$dodeca" scrub --mode redact)
[ "$out" = 'Mail [REDACTED] or call [REDACTED]. SSN [REDACTED], card [REDACTED].' ] \
  || fail "redact: '$out'"

out=$(printf '%s' "$input" | "$dodeca" scrub --mode mask)
[ "$out" = 'Mail ****.***@******e.com or call (***) ***-2671. SSN ***-**-1234, card **** **** **** 1111.' ] \
  || fail "mask: '$out'"

# off reports what it finds and changes nothing
printf '%s' "$input" > "$tmp/in.txt"
out=$("$dodeca" scrub --mode off --report "$tmp/report.json" "$tmp/in.txt")
[ "$out" = "$input" ] || fail "off changed the text: '$out'"
grep -q '"count":4' "$tmp/report.json" || fail "report: $(cat "$tmp/report.json")"
grep -q '"category":"EMAIL","start":5,"end":25' "$tmp/report.json" || fail "report spans"
for v in jane.doe@example.com 555-2671 536-22-1234 '4111 1111'; do
  ! grep -q "$v" "$tmp/report.json" || fail "the report holds '$v'"
done

# hash needs a key; with one, tags are stable across runs
if printf 'x' | "$dodeca" scrub --mode hash > "$tmp/o" 2> "$tmp/e"; then fail "hash without a key ran"; fi
grep -q 'needs a key' "$tmp/e" || fail "hash without a key: $(cat "$tmp/e")"
printf 'k-0123456789abcdef\n' > "$tmp/key"
a=$(printf '%s' "$input" | "$dodeca" scrub --mode hash --key-file "$tmp/key")
b=$(printf '%s' "$input" | DODECA_PII_HMAC_KEY=k-0123456789abcdef "$dodeca" scrub --mode hash)
[ "$a" = "$b" ] || fail "hash tags differ between runs: '$a' vs '$b'"
[[ "$a" =~ ^Mail\ \<EMAIL_[0-9a-f]{12}\>\ or\ call\ \<PHONE_[0-9a-f]{12}\> ]] || fail "hash: '$a'"

# configuration file and environment
printf '[pii]\nmode = "redact"\n' > "$tmp/dodeca.toml"
out=$(printf 'jane@example.com' | "$dodeca" scrub --config "$tmp/dodeca.toml")
[ "$out" = '[REDACTED]' ] || fail "--config: '$out'"
out=$(printf 'jane@example.com' | DODECA_CONFIG="$tmp/dodeca.toml" DODECA_PII_MODE=mask "$dodeca" scrub)
[ "$out" = '****@******e.com' ] || fail "environment: '$out'"

# custom patterns, sensitivity
out=$(printf 'ticket EMP-123456 ref 536221234' | "$dodeca" scrub --pattern 'EMPLOYEE_ID=\bEMP-\d{6}\b')
[ "$out" = 'ticket <EMPLOYEE_ID> ref 536221234' ] || fail "--pattern: '$out'"
out=$(printf 'ref 536221234' | "$dodeca" scrub --sensitivity strict)
[ "$out" = 'ref <US_SSN>' ] || fail "strict: '$out'"
if printf 'x' | "$dodeca" scrub --pattern 'BAD=(' 2> "$tmp/e" >/dev/null; then fail "bad pattern accepted"; fi
grep -q 'missing closing parenthesis' "$tmp/e" || fail "bad pattern: $(cat "$tmp/e")"
if "$dodeca" scrub --bogus </dev/null 2>/dev/null; then fail "unknown option accepted"; fi

# JSON lines: the field is scrubbed in place, "pii" added; failures answered without the record
cat > "$tmp/in.jsonl" <<'JSONL'
{"id": 1, "text": "mail jane@example.com", "lang": "en"}
{"id": 2, "body": "token ghp_abcdefghijklmnopqrstuvwxyz0123456789"}
{"id": 3, "text": "caf\u00e9 a\u200b@b.com"}
JSONL
set +e
"$dodeca" scrub --jsonl "$tmp/in.jsonl" > "$tmp/out.jsonl" 2> "$tmp/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "jsonl with a bad record exited $rc"
line1=$(sed -n 1p "$tmp/out.jsonl")
[ "$line1" = '{"id": 1, "text": "mail <EMAIL>", "lang": "en","pii":[{"category":"EMAIL","start":5,"end":21,"confidence":0.90}]}' ] \
  || fail "jsonl line 1: $line1"
line2=$(sed -n 2p "$tmp/out.jsonl")
[ "$line2" = '{"line":2,"error":"no such field"}' ] || fail "jsonl line 2: $line2"
line3=$(sed -n 3p "$tmp/out.jsonl")
[ "$line3" = '{"id": 3, "text": "café <EMAIL>","pii":[{"category":"EMAIL","start":6,"end":16,"confidence":0.90}]}' ] \
  || fail "jsonl line 3: $line3"
! grep -q ghp_ "$tmp/out.jsonl" "$tmp/err" || fail "a failed record was echoed"
out=$("$dodeca" scrub --jsonl --field body < <(sed -n 2p "$tmp/in.jsonl"))
[ "$out" = '{"id": 2, "body": "token <GITHUB_TOKEN>","pii":[{"category":"GITHUB_TOKEN","start":6,"end":46,"confidence":0.95}]}' ] \
  || fail "--field: $out"

# invalid UTF-8: refused with an offset, nothing of the text repeated
set +e
printf 'mail jane@example.com \377' | "$dodeca" scrub > "$tmp/o" 2> "$tmp/e"
rc=$?
set -e
[ $rc -eq 1 ] || fail "invalid UTF-8 exited $rc"
grep -q 'not valid UTF-8 at byte 22' "$tmp/e" || fail "invalid UTF-8: $(cat "$tmp/e")"
! grep -q jane "$tmp/o" "$tmp/e" || fail "invalid input was echoed"

echo "scrub: ok"
