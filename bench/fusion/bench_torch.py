#!/usr/bin/env python3
"""The peer side of bench/fusion: the same FuseMoE forward in PyTorch on the CPU (LayerNorm over
8320, linear gate + softmax, top-2 of 8 experts 8320 -> 1024 -> 1536 with GELU, grouped by expert
with index_select / index_add, plus a sparse 8320 -> 1536 map with 8 non-zeros per column, L2).
Random weights (timing only). Prints the median wall time of single-item and batch-32 calls in
fp32 and bf16, one thread unless --threads says otherwise.

usage: bench_torch.py [--seconds S] [--threads N] [--hidden H]"""
import argparse
import statistics
import time
import warnings

import torch

IN, OUT, E, K = 8320, 1536, 8, 2


def build(hidden, dtype):
    g = torch.Generator().manual_seed(0)
    ln = torch.nn.LayerNorm(IN).to(dtype)
    gate = torch.nn.Linear(IN, E).to(dtype)
    fc1 = [torch.nn.Linear(IN, hidden).to(dtype) for _ in range(E)]
    fc2 = [torch.nn.Linear(hidden, OUT).to(dtype) for _ in range(E)]
    nnz = 8
    rows = torch.stack([j * (OUT // nnz) + torch.randint(0, OUT // nnz, (IN,), generator=g)
                        for j in range(nnz)], 1).reshape(-1)
    cols = torch.arange(IN).repeat_interleave(nnz)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    vals = (torch.randint(0, 2, (IN * nnz,), generator=g) * 2 - 1).float() / nnz ** 0.5
    S = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (OUT, IN)).coalesce().to_sparse_csr()
    return ln, gate, fc1, fc2, S


@torch.inference_mode()
def forward(model, x):
    ln, gate, fc1, fc2, S = model
    y = (S @ x.float().T).T  # the similarity-preserving map stays fp32 (sparse)
    h = ln(x)
    p = torch.softmax(gate(h).float(), -1)
    w, idx = p.topk(K, -1)
    w = w / w.sum(-1, keepdim=True)
    for e in range(E):
        rows, rank = (idx == e).nonzero(as_tuple=True)
        if rows.numel() == 0:
            continue
        o = fc2[e](torch.nn.functional.gelu(fc1[e](h.index_select(0, rows)))).float()
        y.index_add_(0, rows, o * w[rows, rank].unsqueeze(1))
    return torch.nn.functional.normalize(y, dim=-1)


def timeit(fn, seconds):
    for _ in range(2):
        fn()
    out, end = [], time.perf_counter() + seconds
    while len(out) < 5 or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=1024)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s), hidden {a.hidden}, "
          f"mkldnn bf16 {torch.backends.mkldnn.is_available()}")
    for dtype in (torch.float32, torch.bfloat16):
        model = build(a.hidden, dtype)
        for batch in (1, 32):
            x = torch.nn.functional.normalize(torch.randn(batch, IN), dim=-1).to(dtype)
            ms = timeit(lambda: forward(model, x), a.seconds)
            print(f"torch {str(dtype).split('.')[-1]:9s} batch {batch:3d}: {ms:9.3f} ms, "
                  f"{ms / batch:8.3f} ms/item")


if __name__ == "__main__":
    main()
