#!/usr/bin/env python3
"""Benchmark corpus: one document per line ({"text": ...}), from English technical prose (the
paragraphs of the given Markdown files) and the conformance test strings, repeated to the
requested size.  usage: make_corpus.py OUT MIN_BYTES FILE..."""
import json
import sys


def main():
    out, min_bytes, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    docs = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            if path.endswith(".jsonl"):
                docs += [json.loads(l)["text"] for l in f if l.strip()]
            else:
                docs += [p.strip() for p in f.read().split("\n\n") if p.strip()]
    docs = [d for d in docs if d]
    total, k = 0, 0
    with open(out, "w", encoding="utf-8") as f:
        while total < min_bytes and docs:
            d = docs[k % len(docs)]
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
            total += len(d.encode("utf-8"))
            k += 1


if __name__ == "__main__":
    main()
