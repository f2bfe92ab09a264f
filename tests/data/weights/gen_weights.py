#!/usr/bin/env python3
"""Generates the checkpoint fixtures under tests/data/weights/ and the values the C tests
compare against (expected.json).

Needs torch, safetensors and numpy from PyPI:
    pip install torch safetensors numpy
    python3 tests/data/weights/gen_weights.py        # rewrites the files next to this script

Re-running rewrites the same tensors and values; only bytes torch itself varies change (the
legacy format's storage keys are memory addresses, zip archives carry a serialization id). Written with torch 2.x; every file is
small (a few KB).

Files:
  model.safetensors            safetensors.torch.save_file, metadata {"format": "pt"}
  pytorch_model.bin            torch.save (zip container, the default since torch 1.6)
  pytorch_model_legacy.bin     torch.save(..., _use_new_zipfile_serialization=False)
  pytorch_model_p4.bin         torch.save(..., pickle_protocol=4): FRAME, MEMOIZE, STACK_GLOBAL
  pytorch_model_deflated.bin   pytorch_model.bin re-packed with deflate (zipfile.ZIP_DEFLATED)
  wrapped.bin                  {"epoch": 3, "state_dict": {nn.Parameter ...}} (zip)
  sharded/                     model.safetensors.index.json + two shards
  hostile/                     pickles, containers and safetensors headers that must be refused
  ../../fuzz/corpus/{safetensors,torch_bin}/  seed corpora: copies of the files above
  expected.json                per file: format, tensors (name, dtype, shape, raw bytes in hex,
                               sum and first values as f32), metadata
"""
import collections
import io
import json
import os
import pickle
import struct
import zipfile

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2", torch.uint16: "U16",
}


def state_dict():
    g = torch.Generator().manual_seed(1234)
    sd = collections.OrderedDict()
    w = torch.randn(3, 4, generator=g)
    sd["encoder.weight"] = w
    sd["encoder.bias"] = torch.randn(4, generator=g).half()
    sd["proj.weight"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["position_ids"] = torch.arange(6, dtype=torch.int64).view(1, 6)
    sd["scale"] = torch.tensor(3.5)  # 0-d
    sd["empty"] = torch.zeros(0, 3)
    sd["mask"] = torch.tensor([True, False, True])
    sd["double"] = torch.tensor([1.0 / 3.0, -2.5], dtype=torch.float64)
    sd["int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["fp8"] = torch.tensor([1.0, -2.0, 0.5, 448.0]).to(torch.float8_e4m3fn)
    sd["u16"] = torch.tensor([1, 65535], dtype=torch.uint16)
    # Aliases: the same storage as encoder.weight (tied) and a row view at storage offset 4.
    sd["decoder.weight"] = w
    sd["row"] = w[1]
    return sd


ALIASES = ("decoder.weight", "row")


def describe(sd):
    out = []
    for name, t in sd.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        vals = t.to(torch.float32).reshape(-1).tolist() if t.numel() else []
        out.append({
            "name": name,
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "hex": raw.hex(),
            "sum": float(sum(float(v) for v in vals)),
            "first": [float(v) for v in vals[:4]],
        })
    return out


# ---- hostile inputs: each must be refused without running anything ----

def legacy_wrap(obj_pickle):
    """A legacy torch stream whose object pickle is `obj_pickle`, with an empty key list."""
    f = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
    f.write(obj_pickle)
    pickle.dump([], f, protocol=2)
    return f.getvalue()


FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip timestamps, so re-runs write the same bytes


def zip_wrap(obj_pickle, prefix="archive"):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for name, data in ((prefix + "/data.pkl", obj_pickle), (prefix + "/byteorder", b"little"),
                           (prefix + "/version", b"3\n")):
            z.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    return f.getvalue()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class EvalEvil:
    def __reduce__(self):
        return (eval, ("1+1",))


def hostile_files():
    p0 = b"cos\nsystem\n(S'echo pwned'\ntR."
    p2 = pickle.dumps({"x": Evil()}, protocol=2)            # posix.system via GLOBAL
    p4 = pickle.dumps({"x": Evil()}, protocol=4)            # via STACK_GLOBAL
    pe = pickle.dumps({"x": EvalEvil()}, protocol=2)        # builtins.eval
    return {
        "os_system_p0.pkl": p0,
        "os_system_legacy.bin": legacy_wrap(p0),
        "posix_system_p2_zip.bin": zip_wrap(p2),
        "posix_system_p4_zip.bin": zip_wrap(p4),
        "builtins_eval_legacy.bin": legacy_wrap(pe),
    }


def st_file(header, data=b"", pad=8):
    h = header.encode("utf-8") if isinstance(header, str) else header
    h += b" " * ((-len(h)) % pad)
    return struct.pack("<Q", len(h)) + h + data


def hostile_safetensors():
    t = '"dtype": "F32", "shape": [2], "data_offsets": '
    return {
        "overlap.safetensors": st_file('{"a": {%s[0, 8]}, "b": {%s[4, 12]}}' % (t, t), bytes(12)),
        "hole.safetensors": st_file('{"a": {%s[0, 8]}, "b": {%s[12, 20]}}' % (t, t), bytes(20)),
        "out_of_file.safetensors": st_file('{"a": {%s[0, 8000]}}' % t, bytes(8)),
        "span_mismatch.safetensors": st_file('{"a": {%s[0, 4]}}' % t, bytes(4)),
        "unknown_dtype.safetensors": st_file('{"a": {"dtype": "Q4", "shape": [2], '
                                             '"data_offsets": [0, 1]}}', bytes(1)),
        "duplicate_key.safetensors": st_file('{"a": {%s[0, 8]}, "a": {%s[8, 16]}}' % (t, t),
                                             bytes(16)),
        "non_utf8_key.safetensors": st_file(b'{"\xff": {"dtype": "U8", "shape": [1], '
                                            b'"data_offsets": [0, 1]}}', bytes(1)),
        "nul_escape.safetensors": st_file('{"a\\u0000": {"dtype": "U8", "shape": [1], '
                                          '"data_offsets": [0, 1]}}', bytes(1)),
        "huge_header_len.safetensors": struct.pack("<Q", 100000001) + b"{}      ",
        "overflow_shape.safetensors": st_file('{"a": {"dtype": "F64", "shape": [4294967296, '
                                              '4294967296, 4294967296], "data_offsets": [0, 0]}}'),
        "misaligned_ok.safetensors": st_file('{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                             '"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}',
                                             bytes(5), pad=1),
        "metadata_ok.safetensors": st_file('{"__metadata__": {"format": "pt", "k": "v"}, '
                                           '"x": {"dtype": "BF16", "shape": [1, 2], '
                                           '"data_offsets": [0, 4]}}', bytes(4)),
    }


def main():
    sd = state_dict()
    expected = {}

    # safetensors cannot hold aliases: like transformers, store each storage once.
    st_sd = collections.OrderedDict((k, v) for k, v in sd.items() if k not in ALIASES)
    save_file(st_sd, os.path.join(HERE, "model.safetensors"), metadata={"format": "pt"})
    expected["model.safetensors"] = {"format": "safetensors", "metadata": {"format": "pt"},
                                     "tensors": describe(st_sd)}

    torch.save(sd, os.path.join(HERE, "pytorch_model.bin"))
    expected["pytorch_model.bin"] = {"format": "pytorch-zip", "metadata": {},
                                     "tensors": describe(sd)}
    torch.save(sd, os.path.join(HERE, "pytorch_model_legacy.bin"),
               _use_new_zipfile_serialization=False)
    expected["pytorch_model_legacy.bin"] = {"format": "pytorch-legacy", "metadata": {},
                                            "tensors": describe(sd)}
    torch.save(sd, os.path.join(HERE, "pytorch_model_p4.bin"), pickle_protocol=4)
    expected["pytorch_model_p4.bin"] = {"format": "pytorch-zip", "metadata": {},
                                        "tensors": describe(sd)}

    with zipfile.ZipFile(os.path.join(HERE, "pytorch_model.bin")) as src, \
            zipfile.ZipFile(os.path.join(HERE, "pytorch_model_deflated.bin"), "w",
                            zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, FIXED_TIME), src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED)
    expected["pytorch_model_deflated.bin"] = {"format": "pytorch-zip", "metadata": {},
                                              "tensors": describe(sd)}

    small = collections.OrderedDict()
    small["layer.weight"] = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).view(2, 3))
    small["layer.bias"] = torch.nn.Parameter(torch.tensor([0.25, -0.5]), requires_grad=False)
    torch.save({"epoch": 3, "state_dict": small}, os.path.join(HERE, "wrapped.bin"))
    expected["wrapped.bin"] = {"format": "pytorch-zip", "metadata": {},
                               "tensors": describe({k: v.detach() for k, v in small.items()})}

    shard_dir = os.path.join(HERE, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    names = list(st_sd)
    shards = {"model-00001-of-00002.safetensors": names[:5],
              "model-00002-of-00002.safetensors": names[5:]}
    weight_map = {}
    total = 0
    for fname, keys in shards.items():
        part = collections.OrderedDict((k, st_sd[k]) for k in keys)
        save_file(part, os.path.join(shard_dir, fname), metadata={"format": "pt"})
        for k in keys:
            weight_map[k] = fname
            total += st_sd[k].numel() * st_sd[k].element_size()
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    expected["sharded/model.safetensors.index.json"] = {
        "format": "safetensors-sharded", "metadata": {"total_size": str(total), "format": "pt"},
        "tensors": describe(st_sd)}

    hostile_dir = os.path.join(HERE, "hostile")
    os.makedirs(hostile_dir, exist_ok=True)
    hostile = hostile_files()
    hostile.update(hostile_safetensors())
    for name, data in hostile.items():
        with open(os.path.join(hostile_dir, name), "wb") as f:
            f.write(data)

    # Fuzzing seeds: the fixtures and the hostile files, split by target.
    corpus = os.path.join(HERE, "..", "..", "fuzz", "corpus")
    seeds = {"safetensors": ["model.safetensors", "sharded/model-00001-of-00002.safetensors"],
             "torch_bin": ["pytorch_model.bin", "pytorch_model_legacy.bin",
                           "pytorch_model_p4.bin", "pytorch_model_deflated.bin", "wrapped.bin"]}
    for name in hostile:
        seeds["safetensors" if name.endswith(".safetensors") else "torch_bin"].append(
            "hostile/" + name)
    for target, names in seeds.items():
        os.makedirs(os.path.join(corpus, target), exist_ok=True)
        for name in names:
            with open(os.path.join(HERE, name), "rb") as src, \
                    open(os.path.join(corpus, target, os.path.basename(name)), "wb") as dst:
                dst.write(src.read())

    # One tensor per line keeps the file small and its diffs readable.
    lines = ['{"generator": "gen_weights.py", "torch": %s, "files": {' % json.dumps(torch.__version__)]
    for i, (fname, info) in enumerate(expected.items()):
        lines.append(' %s: {"format": %s, "metadata": %s, "tensors": [' % (
            json.dumps(fname), json.dumps(info["format"]), json.dumps(info["metadata"])))
        for j, t in enumerate(info["tensors"]):
            lines.append("  " + json.dumps(t) + ("," if j + 1 < len(info["tensors"]) else ""))
        lines.append(" ]}" + ("," if i + 1 < len(expected) else ""))
    lines.append("}}")
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
