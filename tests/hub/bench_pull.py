#!/usr/bin/env python3
"""Download throughput of `dodeca pull` against huggingface_hub's hf_hub_download, same fake hub,
same file, same run (a benchmark, not a test: nothing asserts on time).

Usage: bench_pull.py DODECA [SIZE_MB] [ROUNDS]
Serves one repo (sentence-transformers/all-MiniLM-L6-v2 with SIZE_MB of random weights and the
small files E11 needs) from tests/hub/fake_hub.py on 127.0.0.1, then alternates fresh-cache
downloads by both clients and prints the median seconds, MB/s and the ratio. The server is
Python, so both clients share its ceiling; the ratio shows client overhead (hashing, writing,
requests), not network speed.
"""
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
dodeca = sys.argv[1]
size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 256
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
repo = "sentence-transformers/all-MiniLM-L6-v2"
files = ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json",
         "1_Pooling/config.json"]

with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "root", repo)
    os.makedirs(os.path.join(src, "1_Pooling"))
    for f in files:
        open(os.path.join(src, f), "w").write('{"bench": true}\n')
    with open(os.path.join(src, "model.safetensors"), "wb") as w:
        for _ in range(size_mb):
            w.write(os.urandom(1 << 20))
    port, log, faults = (os.path.join(tmp, n) for n in ("port", "log", "faults.json"))
    open(faults, "w").write("{}")
    srv = subprocess.Popen([sys.executable, os.path.join(here, "fake_hub.py"),
                            os.path.join(tmp, "root"), port, log, faults])
    try:
        for _ in range(200):
            if os.path.exists(port):
                break
            time.sleep(0.05)
        endpoint = "http://127.0.0.1:" + open(port).read()
        env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=os.path.join(tmp, "home"),
                   HF_HUB_DISABLE_TELEMETRY="1")
        env.pop("HF_HUB_OFFLINE", None)
        # timed inside Python, so its interpreter start and import are not counted against it
        hf = ("import sys, time\nfrom huggingface_hub import hf_hub_download\n"
              "t0 = time.perf_counter()\n"
              "for f in sys.argv[2:]: hf_hub_download(%r, f, cache_dir=sys.argv[1])\n"
              "print(time.perf_counter() - t0)\n" % repo)
        times = {"dodeca pull": [], "huggingface_hub": []}
        for r in range(rounds):
            for name in times:
                cache = os.path.join(tmp, "cache-%s-%d" % (name.split()[0], r))
                if name == "dodeca pull":
                    cmd = [dodeca, "pull", "--quiet", "--cache-dir", cache, "E11"]
                else:  # the files the repo has (dodeca also asks for 4 optional ones: 404s)
                    cmd = [sys.executable, "-c", hf, cache, *files, "model.safetensors"]
                t0 = time.perf_counter()
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
                dt = time.perf_counter() - t0
                if p.returncode != 0:
                    sys.exit("%s failed: %s" % (name, p.stderr[-500:]))
                times[name].append(float(p.stdout.split()[-1]) if name != "dodeca pull" else dt)
        mb = size_mb * 1.048576
        print("file: %d MiB model.safetensors + %d small files, %d rounds, fresh cache each"
              % (size_mb, len(files), rounds))
        med = {}
        for name, ts in times.items():
            med[name] = statistics.median(ts)
            print("%-16s median %.2f s  %.0f MB/s  (runs: %s)"
                  % (name, med[name], mb / med[name], ", ".join("%.2f" % t for t in ts)))
        print("ratio huggingface_hub / dodeca: %.2f" % (med["huggingface_hub"] / med["dodeca pull"]))
    finally:
        srv.kill()
