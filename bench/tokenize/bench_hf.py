#!/usr/bin/env python3
"""Reference side of bench/tokenize: Hugging Face `tokenizers` on the same corpus, one thread.

Encodes every document (line) with offsets, as dodeca's bench does: once per document with
Tokenizer.encode, and in one encode_batch call (RAYON_NUM_THREADS=1 keeps it on one thread);
prints the faster, plus the id checksum.  usage: bench_hf.py TOKENIZER CORPUS [SECONDS]
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402


def main():
    path, corpus = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    docs = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            line = line[:-1] if line.endswith("\n") else line
            docs.append(json.loads(line)["text"] if line.startswith("{") else line)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    s, tokens = 1469598103934665603, 0
    for e in tok.encode_batch(docs):
        for i in e.ids:
            s = ((s ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        tokens += len(e.ids)
    best = {}
    for mode in ("encode", "encode_batch"):
        passes, t0 = 0, time.perf_counter()
        while True:
            if mode == "encode":
                for d in docs:
                    tok.encode(d)
            else:
                tok.encode_batch(docs)
            passes += 1
            t = time.perf_counter() - t0
            if t >= seconds:
                break
        best[mode] = t / passes
    per = min(best.values())
    print(json.dumps({"impl": "hf-tokenizers", "version": __import__("tokenizers").__version__,
                      "docs": len(docs), "bytes": nbytes, "tokens": tokens,
                      "seconds_per_pass": round(per, 6), "encode_s": round(best["encode"], 6),
                      "encode_batch_s": round(best["encode_batch"], 6),
                      "mb_per_s": round(nbytes / per / 1e6, 3), "tokens_per_s": round(tokens / per),
                      "checksum": "%016x" % s}))


if __name__ == "__main__":
    main()
