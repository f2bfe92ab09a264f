#!/usr/bin/env python3
"""PyTorch peer for the GPU check: the encoders of bench/pipeline's --fixtures folder in
transformers, timed at the shapes the pipeline runs, on CUDA (or the CPU for a dry run).

Usage: peer_torch.py FIXTURES [--device cuda|cpu] [--dtypes fp32,tf32,bf16]
                     [--shapes 1x32,32x32,32x128] [--iters N] [--budget SECONDS]
                     [--only FOLDER,...]

FIXTURES is the folder `bench_pipeline --fixtures DIR` writes (semantic, sparse, graph, entity,
late_interaction, causal, code, multimodal; random weights at the real sizes). Each model's
forward is timed as the median of --iters runs after two warm-ups, with the device synchronised
around each run: the encoder only (pooling, normalisation and projections cost microseconds),
SPLADE with its MLM head, CLIP's text tower at 77 tokens and its vision tower at 224 x 224 (one
image per sequence of the shape). Prints one line per model, dtype and shape: ms per batch and
items per second. Stops starting new models when --budget runs out.
"""
import argparse
import os
import sys
import time

import torch
import transformers

FOLDERS = ["semantic", "sparse", "graph", "entity", "late_interaction", "causal", "code",
           "multimodal"]
DTYPES = {"fp32": (torch.float32, False), "tf32": (torch.float32, True),
          "bf16": (torch.bfloat16, False), "fp16": (torch.float16, False)}


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, dev, iters):
    with torch.inference_mode():
        for _ in range(2):
            fn()
        sync(dev)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            sync(dev)
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3


def load(folder, path, dtype, dev):
    if folder == "sparse":
        cls = transformers.AutoModelForMaskedLM
    elif folder == "multimodal":
        cls = transformers.CLIPModel
    else:
        cls = transformers.AutoModel
    return cls.from_pretrained(path, dtype=dtype).to(dev).eval()


def runs(folder, model, shape, dev, dtype):
    """(label, callable) pairs for one model and shape."""
    b, n = shape
    g = torch.Generator().manual_seed(7)
    if folder == "multimodal":
        ids = torch.randint(5, 60, (b, 77), generator=g).to(dev)
        px = torch.randn(b, 3, 224, 224, generator=g).to(dev, dtype)
        return [("text %dx77" % b, lambda: model.get_text_features(input_ids=ids)),
                ("vision %dx224px" % b, lambda: model.get_image_features(pixel_values=px))]
    n = min(n, model.config.max_position_embeddings - 2)  # RoBERTa's offset of 2; small fixtures
    ids = torch.randint(5, 60, (b, n), generator=g).to(dev)
    mask = torch.ones_like(ids)
    return [("%dx%d" % (b, n), lambda: model(input_ids=ids, attention_mask=mask))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixtures")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="fp32,tf32,bf16")
    ap.add_argument("--shapes", default="1x32,32x32,32x128")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--budget", type=float, default=1e9)
    ap.add_argument("--only", help="these folders of FIXTURES instead of the pipeline's eight")
    a = ap.parse_args()
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("peer_torch: no CUDA device", file=sys.stderr)
        return 77
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu (%d threads)" % torch.get_num_threads()
    print("torch %s, transformers %s, %s" % (torch.__version__, transformers.__version__, name))
    print("%-17s %-5s %-16s %10s %10s" % ("model", "dtype", "shape", "ms", "items/s"))
    t_start = time.time()
    for folder in a.only.split(",") if a.only else FOLDERS:
        path = os.path.join(a.fixtures, folder)
        if not os.path.exists(os.path.join(path, "config.json")):
            continue
        for dname in a.dtypes.split(","):
            if time.time() - t_start > a.budget:
                print("peer_torch: budget spent, stopping before %s %s" % (folder, dname))
                return 0
            dtype, tf32 = DTYPES[dname]
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            model = load(folder, path, dtype, dev)
            for shape in shapes:
                for label, fn in runs(folder, model, shape, dev, dtype):
                    try:
                        ms = median_ms(fn, dev, a.iters)
                    except Exception as e:  # e.g. HF Longformer refuses the fixture's windows
                        print("%-17s %-5s %-16s skipped: %s" % (folder, dname, label,
                                                                str(e).splitlines()[0]), flush=True)
                        continue
                    print("%-17s %-5s %-16s %10.2f %10.1f" % (folder, dname, label, ms,
                                                              shape[0] * 1e3 / ms), flush=True)
            del model
            if dev == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
