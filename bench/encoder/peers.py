#!/usr/bin/env python3
"""The peer side of bench/encoder: the same encoders in PyTorch and ONNX Runtime.

  peers.py fixtures DIR [NAME ...]
      writes DIR/<name>/{config.json, model.safetensors}: transformers models at real sizes with
      seeded random weights (bench_encoder loads the same folders, so outputs can be compared)
  peers.py run DIR --model NAME --shapes 1x16,1x128 [--threads 2] [--budget S]
               [--engines torch,ort] [--spin 0|1] [--check DUMPDIR]
      times PyTorch (torch.set_num_threads, inference_mode) and ONNX Runtime (exported once with
      torch.onnx.export into DIR/onnx/, intra_op_num_threads, ORT_ENABLE_ALL) on the inputs
      bench_encoder builds (same ids, same pixels) and prints one line per measurement:
        peer <engine> <model> <shape> <median ms> <reps> <peak RSS MiB> <median CPU ms>
      --check compares PyTorch's output with bench_encoder's --dump files (max abs, cosine).

Names: bert-base, bert-large, roberta-base, longformer-base, clip-text, clip-vision (both CLIP
names use the one clip-vit-l-14 folder). Shapes are BATCHxTOKENS; CLIP vision takes BATCH only."""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch

FOLDER = {"clip-text": "clip-vit-l-14", "clip-vision": "clip-vit-l-14"}


def configs():
    from transformers import BertConfig, CLIPConfig, LongformerConfig, RobertaConfig
    return {
        "bert-base": BertConfig(),  # 12 x 768, 30522 vocab, 512 positions
        "bert-large": BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                 intermediate_size=4096),
        "roberta-base": RobertaConfig(vocab_size=50265, max_position_embeddings=514,
                                      type_vocab_size=1, layer_norm_eps=1e-5),
        "longformer-base": LongformerConfig(vocab_size=50265, max_position_embeddings=4098,
                                            type_vocab_size=1, attention_window=512,
                                            layer_norm_eps=1e-5, pad_token_id=1,
                                            bos_token_id=0, eos_token_id=2),
        "clip-vit-l-14": CLIPConfig(
            text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                             num_hidden_layers=12, num_attention_heads=12,
                             max_position_embeddings=77, hidden_act="quick_gelu",
                             eos_token_id=49407),
            vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                               num_attention_heads=16, image_size=224, patch_size=14,
                               hidden_act="quick_gelu"),
            projection_dim=768),
    }


def make_fixtures(root, names):
    from transformers import AutoModel
    cfgs = configs()
    for name in names or cfgs:
        out = os.path.join(root, name)
        if os.path.exists(os.path.join(out, "model.safetensors")):
            continue
        torch.manual_seed(0)
        model = AutoModel.from_config(cfgs[name])
        model.save_pretrained(out, safe_serialization=True, max_shard_size="20GB")
        print(f"fixture {name}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")


# ---- inputs: the same formulas as bench_encoder.c ----

def token_ids(batch, seq, vocab, first=None, last=None):
    ids = np.empty((batch, seq), np.int64)
    for s in range(batch):
        r = np.arange(seq, dtype=np.int64)
        ids[s] = 3 + (r * 7919 + s * 131 + 17) % (vocab - 4)
        if first is not None:
            ids[s, 0] = first
        if last is not None:
            ids[s, -1] = last
    return ids


def pixels(batch, size=224):
    i = np.arange(batch * 3 * size * size, dtype=np.int64)
    return (((i * 2654435761) % 4096) / 2048.0 - 1.0).astype(np.float32).reshape(batch, 3, size, size)


def peak_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def timeit(fn, budget):
    """Median wall and process-CPU ms over as many runs as fit the budget (1 to 15)."""
    out, cpu = [], []
    end = time.perf_counter() + budget
    while not out or (len(out) < 15 and time.perf_counter() < end):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(out), len(out), statistics.median(cpu)


class Wrap(torch.nn.Module):
    """One tensor out (what bench_encoder compares): the last hidden state or the features."""

    def __init__(self, model, kind):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, *args):
        m = self.model
        if self.kind == "clip-text":
            o = m.get_text_features(input_ids=args[0])
        elif self.kind == "clip-vision":
            o = m.get_image_features(pixel_values=args[0])
        elif self.kind == "longformer-base":
            o = m(input_ids=args[0], attention_mask=args[1], global_attention_mask=args[2])
        else:
            o = m(input_ids=args[0], attention_mask=args[1])
        if not torch.is_tensor(o):
            o = o.pooler_output if self.kind.startswith("clip") else o.last_hidden_state
        return o


def inputs_for(kind, cfg, batch, seq):
    if kind == "clip-text":
        return (torch.from_numpy(token_ids(batch, seq, 49407, first=49406, last=49407)),)
    if kind == "clip-vision":
        return (torch.from_numpy(pixels(batch)),)
    ids = token_ids(batch, seq, cfg.vocab_size, first=0 if kind != "bert-base" and
                    kind != "bert-large" else None)
    ids_t = torch.from_numpy(ids)
    mask = torch.ones_like(ids_t)
    if kind == "longformer-base":
        g = torch.zeros_like(ids_t)
        g[:, 0] = 1
        return ids_t, mask, g
    return ids_t, mask


def export(wrap, args, path, kind, dynamic):
    names = ["input_ids", "attention_mask", "global_attention_mask"][:len(args)]
    if kind == "clip-vision":
        names = ["pixel_values"]
    axes = {}
    if dynamic:
        for n in names:
            axes[n] = {0: "batch"} if kind == "clip-vision" else {0: "batch", 1: "seq"}
        axes["out"] = {0: "batch"} if kind.startswith("clip") else {0: "batch", 1: "seq"}
    tmp = path + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrap, args, tmp, input_names=names, output_names=["out"],
                          dynamic_axes=axes or None, opset_version=17, dynamo=False)
    os.replace(tmp, path)


def run(a):
    from transformers import AutoConfig, AutoModel
    torch.set_num_threads(a.threads)
    kind = a.model
    folder = os.path.join(a.dir, FOLDER.get(kind, kind))
    cfg = AutoConfig.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    wrap = Wrap(model, kind).eval()
    tcfg = cfg.text_config if kind == "clip-text" else cfg
    engines = a.engines.split(",")
    sess = {}
    for shape in a.shapes.split(","):
        b, _, s = shape.partition("x")
        batch, seq = int(b), int(s or 0)
        args = inputs_for(kind, tcfg, batch, seq)
        label = shape
        for eng in engines:
            if eng == "torch":
                with torch.inference_mode():
                    fn = lambda: wrap(*args)  # noqa: E731
                    out = fn()  # warm-up
                    if a.check:
                        compare(a.check, kind, shape, out)
                    peak_reset()
                    ms, reps, cpu_ms = timeit(fn, a.budget)
            else:
                if kind == "longformer-base" and seq > a.ort_longformer_max:
                    # the traced graph materialises the chunked attention: at 2048 tokens the
                    # session took > 20 GB here and was killed
                    print(f"# ort longformer {seq}: skipped above {a.ort_longformer_max} tokens",
                          file=sys.stderr)
                    continue
                import onnxruntime as ort
                # BERT shapes share one dynamic-axes graph; Longformer's chunked attention is
                # traced for one length, so it gets one graph per length.
                dynamic = kind != "longformer-base"
                key = kind if dynamic else f"{kind}-{seq}"
                os.makedirs(os.path.join(a.dir, "onnx"), exist_ok=True)
                path = os.path.join(a.dir, "onnx", key + ".onnx")
                if not os.path.exists(path):
                    t0 = time.perf_counter()
                    with torch.inference_mode():
                        export(wrap, args, path, kind, dynamic)
                    print(f"# exported {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                if key not in sess:
                    sess.clear()  # one Longformer graph per length: keep only the current one
                    so = ort.SessionOptions()
                    so.intra_op_num_threads = a.threads
                    so.inter_op_num_threads = 1
                    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    so.add_session_config_entry("session.intra_op.allow_spinning", str(a.spin))
                    sess[key] = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                se = sess[key]
                feed = {i.name: t.numpy() for i, t in zip(se.get_inputs(), args)}
                fn = lambda: se.run(None, feed)  # noqa: E731
                out = fn()
                if a.check:
                    compare(a.check, kind + "/ort", shape, torch.from_numpy(out[0]))
                peak_reset()
                ms, reps, cpu_ms = timeit(fn, a.budget)
            print(f"peer {eng} {kind} {label} {ms:.3f} {reps} {peak_mib():.0f} {cpu_ms:.3f}",
                  flush=True)


def compare(dump, kind, shape, out):
    base = kind.split("/")[0]
    path = os.path.join(dump, f"{base}_{shape}.f32")
    if not os.path.exists(path):
        return
    ours = np.fromfile(path, np.float32)
    ref = out.detach().float().numpy().reshape(-1)
    if ours.size != ref.size:
        print(f"# check {kind} {shape}: size {ours.size} != {ref.size}", file=sys.stderr)
        return
    cos = float(np.dot(ours, ref) / (np.linalg.norm(ours) * np.linalg.norm(ref)))
    print(f"# check {kind} {shape}: max abs {np.abs(ours - ref).max():.2e}, cosine {cos:.7f}",
          file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("dir")
    f.add_argument("names", nargs="*")
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--model", required=True)
    r.add_argument("--shapes", required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--budget", type=float, default=4.0, help="seconds of timed runs per case")
    r.add_argument("--engines", default="torch,ort")
    r.add_argument("--check", default=None)
    r.add_argument("--ort-longformer-max", type=int, default=1024,
                   help="longest Longformer input given to ONNX Runtime (memory)")
    r.add_argument("--spin", type=int, default=1, help="ORT pool threads spin when idle (0: sleep)")
    a = p.parse_args()
    if a.cmd == "fixtures":
        make_fixtures(a.dir, a.names)
    else:
        run(a)


if __name__ == "__main__":
    main()
