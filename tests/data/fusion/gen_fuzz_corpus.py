#!/usr/bin/env python3
"""Writes the seed and hostile corpus of tests/fuzz/fuzz_fusion_checkpoint.c.

A FuseMoE checkpoint is safetensors with the metadata of src/fusion/checkpoint.c and the SHA-256
of src/fusion/weights.c (per tensor in canonical order: name, NUL, shape as two u64 LE — the
second 0 for 1-D tensors — then the f32 LE data). The smallest valid shape (1 expert, hidden 1)
keeps the files near 140 KB. Deterministic: no randomness, stdlib only.

Usage: gen_fuzz_corpus.py OUT_DIR [INTEROP_FILE]
INTEROP_FILE (tests/data/fusion/python_h1.safetensors) is the valid checkpoint alone: the unit
tests load it to check that a checkpoint written outside dodeca, with the documented layout and
checksum, is accepted."""
import hashlib
import json
import math
import struct
import sys

IN, MASK, OUT = 8320, 12, 1536


def tensors(hidden=1, experts=1, laplace=False):
    t = [("gate.norm.weight", [IN], [1.0] * IN),
         ("gate.norm.bias", [IN], [0.0] * IN),
         ("gate.centres" if laplace else "gate.proj.weight", [experts, IN + MASK],
          [((i * 37) % 11 - 5) * 0.003 for i in range(experts * (IN + MASK))])]
    if not laplace:
        t.append(("gate.proj.bias", [experts], [0.0] * experts))
    for e in range(experts):
        t += [(f"experts.{e}.fc1.weight", [hidden, IN],
               [((i * 13 + e) % 17 - 8) * 0.002 for i in range(hidden * IN)]),
              (f"experts.{e}.fc1.bias", [hidden], [0.01] * hidden),
              (f"experts.{e}.fc2.weight", [OUT, hidden],
               [((i * 7 + e) % 5 - 2) * 0.05 for i in range(OUT * hidden)]),
              (f"experts.{e}.fc2.bias", [OUT], [0.0] * OUT)]
    return t


def checksum(ts):
    h = hashlib.sha256()
    for name, shape, data in ts:
        h.update(name.encode() + b"\0")
        h.update(struct.pack("<QQ", shape[0], shape[1] if len(shape) > 1 else 0))
        h.update(struct.pack(f"<{len(data)}f", *data))
    return "sha256:" + h.hexdigest()


def checkpoint(ts, meta_over=None, drop_meta=(), tamper=None):
    meta = {"format": "dodeca-fusemoe", "format_version": "1", "version": "1.0.0",
            "created": "2026-01-01T00:00:00Z", "seed": "42", "checksum": checksum(ts),
            "gating": "laplace" if len(ts) > 2 and ts[2][0] == "gate.centres" else "softmax",
            "num_experts": str(max(1, sum(1 for n, _, _ in ts if n.endswith("fc1.bias")))),
            "hidden": str(next((sh[0] for n, sh, _ in ts if n.endswith("fc1.weight")), 1)),
            "top_k": "1", "temperature": "1",
            "laplace_alpha": "0.01", "jl_nnz": "8", "block_weights": json.dumps([1] * 12),
            "bridge": "false", "came_ab_blend": "0"}
    meta.update(meta_over or {})
    for k in drop_meta:
        meta.pop(k, None)
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for name, shape, data in ts:
        b = struct.pack(f"<{len(data)}f", *data)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    body = bytearray(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    if tamper:
        tamper(body)
    return bytes(body)


def main(out):
    base = tensors()
    # Files with tensor data weigh ~135 KB each (the 8320-wide LayerNorm and gate rows), so only
    # the cases that need data carry it; metadata cases are valid safetensors with no tensors:
    # the metadata is checked before the tensor list.
    files = {
        "valid.safetensors": checkpoint(base, {"metrics": json.dumps({"epoch": 2, "loss": 0.5, "recall_at_1": 0.9})}),
        "bad_checksum.safetensors": checkpoint(base, tamper=lambda b: b.__setitem__(len(b) - 3, 0x41)),
        "nan_weight.safetensors": checkpoint([base[0], base[1], (base[2][0], base[2][1], [math.nan] * len(base[2][2]))] + base[3:]),
        "huge_weight.safetensors": checkpoint([base[0], base[1], (base[2][0], base[2][1], [3e38] * len(base[2][2]))] + base[3:]),
        "truncated.safetensors": checkpoint(base)[:5000],
    }
    meta_cases = {
        "valid_laplace_meta": {"gating": "laplace"},
        "wrong_format": {"format": "pt"},
        "future_version": {"format_version": "2"},
        "experts_zero": {"num_experts": "0"},
        "experts_nine": {"num_experts": "9"},
        "hidden_huge": {"hidden": "18446744073709551615"},
        "block_weights_bad": {"block_weights": "[1,2"},
        "block_weights_zero": {"block_weights": json.dumps([0] * 12)},
        "block_weights_short": {"block_weights": "[1,1,1]"},
        "block_weights_nan": {"block_weights": "[1,1,1,1,1,1,1,1,1,1,1,NaN]"},
        "temperature_nan": {"temperature": "nan"},
        "temperature_negative": {"temperature": "-1"},
        "gating_unknown": {"gating": "sigmoid"},
        "jl_nnz_7": {"jl_nnz": "7"},
        "seed_negative": {"seed": "-1"},
        "bridge_claimed": {"bridge": "true"},
        "metrics_garbage": {"metrics": "{\"epoch\": -5, \"loss\": \"x\""},
    }
    for name, over in meta_cases.items():
        files[name + ".safetensors"] = checkpoint([], over)
    files["no_checksum.safetensors"] = checkpoint([], drop_meta=("checksum",))
    for name, data in files.items():
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
    if len(sys.argv) > 2:
        with open(sys.argv[2], "wb") as f:
            f.write(checkpoint(tensors(), {"version": "py-1", "metrics": json.dumps({"epoch": 2, "loss": 0.5, "recall_at_1": 0.9})}))
