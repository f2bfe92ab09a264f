#!/usr/bin/env python3
"""Independent implementation of dodeca's canonical input hash (see src/core/input.c), used to
produce the golden values in input_hashes.txt. Rerun: pip install xxhash; python3 gen_input_hashes.py
> input_hashes.txt. The C test builds the same inputs and must reproduce every line."""
import struct
import xxhash

DOMAIN = b"dodeca.input.v1"
(H_TYPE, H_CONTENT, H_ROLE, H_INSTRUCTION, H_LANGUAGE, H_BYTES, H_FORMAT, H_RATE, H_CHANNELS,
 H_T_EVENT, H_T_REF, H_POSITION) = range(1, 13)


def field(tag, b):
    return bytes([tag]) + struct.pack("<Q", len(b)) + b


def u64(tag, v):
    return field(tag, struct.pack("<Q", v & (2**64 - 1)))


def f64(tag, v):
    return field(tag, struct.pack("<d", 0.0 if v == 0 else v))


def h(*parts):
    return "%032x" % xxhash.xxh3_128_intdigest(DOMAIN + b"".join(parts))


cases = {
    "text_passage": h(u64(H_TYPE, 0), field(H_CONTENT, b"hello world"), u64(H_ROLE, 0)),
    "text_query_instruction_times": h(
        u64(H_TYPE, 0), field(H_CONTENT, "café ☕".encode()), u64(H_ROLE, 1),
        field(H_INSTRUCTION, b"Represent this sentence"), f64(H_T_EVENT, 1700000000.25),
        f64(H_T_REF, 1700003600.0), u64(H_POSITION, 7)),
    "code_rust": h(u64(H_TYPE, 1), field(H_CONTENT, b"fn main() {}"), field(H_LANGUAGE, b"rust")),
    "image_png": h(u64(H_TYPE, 2), field(H_BYTES, bytes([0x89, 0x50, 0x4E, 0x47])), u64(H_FORMAT, 0)),
    "audio_16k_mono": h(u64(H_TYPE, 3), field(H_BYTES, bytes([0, 1, 2, 3])), u64(H_RATE, 16000),
                        u64(H_CHANNELS, 1)),
}
for name, value in cases.items():
    print(name, value)
