#!/usr/bin/env bash
# Installs everything dodeca needs to build and test on Debian 12 (bookworm), from Debian's
# packages only. Safe to rerun. Uses sudo when not run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libcjson-dev libxxhash-dev zlib1g-dev   # JSON, hashing, zip (pytorch .bin)
  libutf8proc-dev libpcre2-dev            # Unicode normalisation, pre-tokenizer regexes
  libdnnl-dev                             # oneDNN GEMM for the transformer engine
  libcmocka-dev                           # unit tests
  clang libclang-rt-14-dev                # libFuzzer targets
  python3                                 # golden-file generators (tests need none of PyPI)
)

run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends "${missing[@]}"
