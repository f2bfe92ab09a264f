#!/usr/bin/env python3
"""Writes torch_fp8.txt: f32 inputs and torch's float8_e4m3fn / float8_e5m2 casts of them.

One line per value: the f32 bit pattern, the E4M3fn code, the E5M2 code (hex). The inputs cover
every binade of both formats, subnormals, exact ties between neighbouring codes (both
parities), values just either side of a tie, the overflow thresholds, ±0, ±inf and NaN, plus
seeded random values. torch 2.15 saturates float8_e4m3fn casts (overflow and inf -> +-448) and
does not saturate float8_e5m2 casts (overflow -> +-inf); test_fp8 compares accordingly. Run
once; the test reads the file and never needs torch."""
import math
import random
import struct
import sys

import torch


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def values():
    vals = [0.0, -0.0, math.inf, -math.inf, math.nan, 448.0, 464.0, 464.0001, 479.9, 480.0,
            57344.0, 61440.0, 61441.0, 65535.0, 65536.0, 2.0 ** -9, 2.0 ** -10, 2.0 ** -10 * 1.5,
            2.0 ** -16, 2.0 ** -17, 2.0 ** -17 * 1.01, 1e-30, 1e30]
    for fmt_m, lo, hi in ((3, -9, 9), (2, -16, 16)):
        for e in range(lo, hi):
            for m in range(0, 2 ** (fmt_m + 1)):
                # the grid, its midpoints (ties) and points just either side of the ties
                base = (2 ** fmt_m + m / 2) * 2.0 ** (e - fmt_m)
                for x in (base, math.nextafter(base, math.inf), math.nextafter(base, -math.inf)):
                    vals.append(x)
    rnd = random.Random(20261127)
    for _ in range(400):
        vals.append(rnd.uniform(-1, 1) * 2.0 ** rnd.randint(-20, 18))
    out = []
    for v in vals:
        for s in (v, -v):
            f = bits_f32(f32_bits(s))  # round to f32 first
            out.append(f)
    return out


def main(path):
    xs = values()
    t = torch.tensor(xs, dtype=torch.float32)
    e4 = t.to(torch.float8_e4m3fn).view(torch.uint8).tolist()
    e5 = t.to(torch.float8_e5m2).view(torch.uint8).tolist()
    with open(path, "w") as fh:
        fh.write("# f32_bits e4m3fn e5m2  (torch %s, e4m3fn saturating, e5m2 not)\n" % torch.__version__)
        for x, a, b in zip(xs, e4, e5):
            fh.write("%08x %02x %02x\n" % (f32_bits(x), a, b))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "torch_fp8.txt")
