"""Formats bench/encoder/run.sh results (bench_encoder and peers.py lines) as one table.

usage: table.py RESULTS THREADS"""
import sys, collections
rows, peak, peak_cpu = collections.OrderedDict(), [], []
for line in open(sys.argv[1]):
    f = line.split()
    if not f:
        continue
    if f[0] == "gemm_peak":
        peak.append(float(f[1]))
        peak_cpu.append(float(f[2]))
    elif f[0] in ("ours", "peer"):
        if f[0] == "ours":
            eng, model, shape, ms, rss, cpu = "ours", f[1], f[2], float(f[3]), f[5], float(f[9])
            extra = (float(f[7]), float(f[8]), float(f[10]))  # GFLOP/s, of peak, of peak per CPU-s
        else:
            eng, model, shape, ms, rss, cpu = f[1], f[2], f[3], float(f[4]), f[6], float(f[7])
            extra = None
        r = rows.setdefault((model, shape), {}).setdefault(eng, {})
        # over rounds: each engine's best median wall time and best median CPU time
        if ms < r.get("ms", 1e30):
            r.update(ms=ms, rss=rss)
            if extra:
                r["extra"] = extra
        if cpu < r.get("cpu", 1e30):
            r["cpu"] = cpu
            if extra:
                r["cpu_frac"] = extra[2]
print(f"\nthreads {sys.argv[2]}; f32 GEMM peak {max(peak or [0]):.1f} GFLOP/s wall, "
      f"{max(peak_cpu or [0]):.1f} GFLOP per CPU-second")
print("xORT = ORT / ours, xPT = PyTorch / ours (above 1: ours faster); wall = median ms of one "
      "forward; CPU = median process CPU ms of one forward (all threads)")
hdr = (f"{'model':<16}{'shape':>7}{'ours':>9}{'ORT':>9}{'PyTorch':>9}{'xORT':>6}{'xPT':>6} |"
       f"{'ours CPU':>9}{'ORT CPU':>9}{'PT CPU':>9}{'xORT':>6}{'xPT':>6} |"
       f"{'GFLOP/s':>8}{'peak':>6}{'peak/CPU':>9}")
print(hdr)
print("-" * len(hdr))


def c(v, w, fmt):
    return f"{fmt.format(v):>{w}}" if v is not None else f"{'-':>{w}}"


def g(r, e, k):
    return r[e][k] if e in r and k in r[e] else None


def ratio(a, b):
    return a / b if a is not None and b else None


for (model, shape), r in rows.items():
    o, ort, pt = g(r, "ours", "ms"), g(r, "ort", "ms"), g(r, "torch", "ms")
    oc, ortc, ptc = g(r, "ours", "cpu"), g(r, "ort", "cpu"), g(r, "torch", "cpu")
    x = g(r, "ours", "extra") or (None, None, None)
    print(f"{model:<16}{shape:>7}" + c(o, 9, "{:.1f}") + c(ort, 9, "{:.1f}") + c(pt, 9, "{:.1f}")
          + c(ratio(ort, o), 6, "{:.2f}") + c(ratio(pt, o), 6, "{:.2f}") + " |"
          + c(oc, 9, "{:.1f}") + c(ortc, 9, "{:.1f}") + c(ptc, 9, "{:.1f}")
          + c(ratio(ortc, oc), 6, "{:.2f}") + c(ratio(ptc, oc), 6, "{:.2f}") + " |"
          + c(x[0], 8, "{:.1f}") + c(x[1], 6, "{:.2f}") + c(g(r, "ours", "cpu_frac"), 9, "{:.2f}"))
lf = [(s, r) for (m, s), r in rows.items() if m == "longformer-base"]
if lf:
    print("\nLongformer-base, one sequence, global attention on <s>: median wall ms and peak RSS "
          "(MiB, whole process, weights included; the PyTorch process also holds the ORT session)")
    print(f"{'tokens':>8}{'ours ms':>10}{'ours RSS':>10}{'ORT ms':>10}{'ORT RSS':>10}"
          f"{'PT ms':>10}{'PT RSS':>10}")
    for s, r in lf:
        def two(e):
            return f"{r[e]['ms']:>10.1f}{r[e]['rss']:>10}" if e in r else f"{'-':>10}{'-':>10}"
        print(f"{s.split('x')[1]:>8}" + two("ours") + two("ort") + two("torch"))
