#!/usr/bin/env python3
"""Writes the seed and hostile corpus of the E9 item memory fuzz target (format v1, see
src/models/hdc.h) into tests/fuzz/corpus/hdc_memory/. Needs the `xxhash` package.

    python3 tests/data/hdc/gen_memory_corpus.py tests/fuzz/corpus/hdc_memory"""
import os
import struct
import sys

import xxhash

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def hv(seed, tag, value):
    k = mix64(seed ^ mix64((tag << 32) | value))
    return struct.pack("<160Q", *[mix64((k + (i + 1) * GOLDEN) & M64) for i in range(160)])


def build(seed=42, ngram=3, symbols=2, shifts=None, version=1, bits=10240, flags=0,
          payload=None, seal=True):
    shifts = shifts if shifts is not None else [64 * (ngram - 1 - j) for j in range(ngram)]
    body = struct.pack("<%dI" % len(shifts), *shifts) + hv(seed, 1, 0) + hv(seed, 2, 0)
    body += b"".join(hv(seed, 0, s) for s in range(symbols))
    plen = len(body) if payload is None else payload
    head = b"HDCV" + struct.pack("<IQIIIIQQ", version, seed, bits, symbols, ngram, flags, 0, plen)
    head += bytes(16)
    data = bytearray(head + body)
    if seal:
        data[32:40] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data)))
    return bytes(data)


def main(out):
    os.makedirs(out, exist_ok=True)
    files = {
        "valid_ngram3_2sym.bin": build(),
        "valid_ngram1_0sym.bin": build(ngram=1, symbols=0),
        "valid_ngram8_1sym.bin": build(ngram=8, symbols=1, seed=7),
        "valid_same_shifts.bin": build(ngram=2, symbols=1, shifts=[0, 0]),
        "bad_magic.bin": b"XXXX" + build()[4:],
        "version2.bin": build(version=2),
        "bits_mismatch.bin": build(bits=8192),
        "ngram0.bin": build(ngram=0, shifts=[]),
        "flags.bin": build(flags=1),
        "payload_len_lies.bin": build(payload=1 << 40),
        "huge_symbols_header_only.bin": build(symbols=0)[:20] + struct.pack("<I", 0x110000) + build(symbols=0)[24:64],
        "shift_not_words.bin": build(shifts=[65, 64, 0]),
        "bad_checksum.bin": build(seal=False),
        "truncated.bin": build()[:-1],
        "header_only.bin": build()[:64],
        "short.bin": b"HDCV\x01\x00",
        "empty.bin": b"",
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/hdc_memory")
