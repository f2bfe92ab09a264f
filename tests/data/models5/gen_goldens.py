#!/usr/bin/env python3
"""Reference outputs for the E5 (Longformer), E7 (CodeBERT/RoBERTa) and E10 (CLIP) parity tests.

Runs the original Python implementations on CPU in fp32 over the random-weight fixtures that
tests/tools/dc_fixture writes (the same C generator the tests call) and writes small JSON
golden files, committed so CI needs neither torch nor Pillow:

  roberta.json     RobertaModel last hidden states (small fixture), batch-padded; plus
                   roberta/pytorch_model.bin (zip) and roberta/pytorch_model_legacy.bin
                   (torch.save of the same state dict) for the .bin reader
  e7.json          CodeBERT recipe on the 768-wide fixture: mean over non-special tokens, L2
  longformer.json  LongformerModel hidden states, global attention on <s>, lengths below, at
                   and across the window boundaries, batch-padded; one text without global
                   attention; one text truncated to 4096 tokens (pooled)
  e5.json          E5 recipe on the 768-wide fixture: global <s>, mean over real tokens, L2
  clip.json        CLIP text features (77 tokens, truncation) and image features of the test
                   images, plus the token ids
  ../images/*      generated test images (PNG, JPEG, WebP, GIF; odd sizes and aspect ratios)
                   and *.pixels.png: the 224x224 uint8 image that transformers'
                   CLIPImageProcessor (its Pillow backend, CLIPImageProcessorPil in 5.x)
                   normalises, checked to reproduce its pixel_values exactly

Requirements: pip install torch transformers pillow numpy
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
IMAGES = os.path.abspath(os.path.join(HERE, "..", "images"))

CODE = [
    "def hello(x):\n    return x",
    "for x in range(y):\n    print(x)",
    "int x = y == x ? 1 : 0;",
    "hello world",
    "the quick brown fox and the dog",
    "",
    "    ",
    "self.x -> self.y if x else y",
    "Caf\u00e9 na\u00efve \u6771\u4eac \U0001F642 code",
    "def f(self):\n    return self.x " * 12,
]

LF_TEXTS = [
    "x",                                   # 3 tokens
    "hello world def",                     # below the window
    "hello world def x(): y",              # around 8
    "the quick brown fox and the dog x",   # across 8
    "for x in range(y): print(x) " * 2,
    "def hello(x):\n    return x " * 3,
    "the quick brown fox and the dog " * 5,
    "x" + " x" * 5,                        # exactly 8 tokens: one window
    "x" + " x" * 13,                       # exactly 16
    "x" + " x" * 14,                       # 17: one past a boundary
    "x" + " x" * 37,                       # exactly 40
]

CLIP_TEXTS = [
    "a photo of a cat",
    "A  Photo of the DOG!!",
    "hello world",
    "",
    "the quick brown fox's car is red... and blue",
    "a photo of a cat on the road " * 12,   # > 77 tokens: truncated
    "Caf\u00e9 \U0001F642 x",
]


def floats(a):
    return [float("%.9g" % x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def write_json(name, obj):
    path = os.path.join(HERE, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    print("wrote", path)


def build_tool(args, tmp):
    if args.tool:
        return args.tool
    exe = os.path.join(tmp, "dc_fixture")
    src = [os.path.join(REPO, "tests", "tools", n) for n in ("dc_fixture.c", "bert_fixture.c")]
    subprocess.check_call(["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", *src, "-lm", "-o", exe])
    return exe


def run_padded(model, tok, texts, maxlen, **extra):
    enc = tok(texts, padding=True, truncation=True, max_length=maxlen, return_tensors="pt")
    kw = {}
    if extra.get("global_first"):
        g = torch.zeros_like(enc["attention_mask"])
        g[:, 0] = 1
        kw["global_attention_mask"] = g
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kw).last_hidden_state
    return enc, h.numpy()


def gen_roberta(d):
    from transformers import AutoTokenizer, RobertaModel
    # the .bin files: torch.save of the fixture's state dict, zip and legacy formats
    out = os.path.join(HERE, "roberta")
    os.makedirs(out, exist_ok=True)
    from safetensors.torch import load_file
    sd = load_file(os.path.join(d, "model.safetensors"))
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    torch.save(sd, os.path.join(out, "pytorch_model_legacy.bin"), _use_new_zipfile_serialization=False)
    # reference from the .bin, as transformers reads it
    bind = d + "_bin"
    shutil.copytree(d, bind)
    os.remove(os.path.join(bind, "model.safetensors"))
    shutil.copy(os.path.join(out, "pytorch_model.bin"), bind)
    tok = AutoTokenizer.from_pretrained(bind)
    model = RobertaModel.from_pretrained(bind).eval()
    maxlen = model.config.max_position_embeddings - 2
    enc, h = run_padded(model, tok, CODE, maxlen)
    ids, hidden = [], []
    for i in range(len(CODE)):
        n = int(enc["attention_mask"][i].sum())
        ids.append(enc["input_ids"][i][:n].tolist())
        hidden.append(floats(h[i, :n]))
    write_json("roberta.json", {"fixture": "roberta", "texts": CODE, "ids": ids,
                                "dim": model.config.hidden_size, "hidden": hidden})


def gen_e7(d):
    from transformers import AutoTokenizer, RobertaModel
    tok = AutoTokenizer.from_pretrained(d)
    model = RobertaModel.from_pretrained(d).eval()
    maxlen = model.config.max_position_embeddings - 2
    enc = tok(CODE, padding=True, truncation=True, max_length=maxlen, return_tensors="pt",
              return_special_tokens_mask=True)
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    keep = (enc["attention_mask"] * (1 - enc["special_tokens_mask"])).unsqueeze(-1).float()
    emb = (h * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(emb, p=2, dim=1, eps=1e-12).numpy()
    ids = [enc["input_ids"][i][: int(enc["attention_mask"][i].sum())].tolist() for i in range(len(CODE))]
    # "" has no content token: the recipe falls back to the mean over <s> and </s>
    for i, t in enumerate(CODE):
        if keep[i].sum() == 0:
            n = int(enc["attention_mask"][i].sum())
            v = h[i, :n].mean(0)
            emb[i] = torch.nn.functional.normalize(v, dim=0).numpy()
    write_json("e7.json", {"fixture": "e7", "texts": CODE, "ids": ids, "dim": int(emb.shape[1]),
                           "embeddings": [floats(e) for e in emb]})


def gen_longformer(d):
    from transformers import AutoTokenizer, LongformerModel
    tok = AutoTokenizer.from_pretrained(d)
    model = LongformerModel.from_pretrained(d).eval()
    enc, h = run_padded(model, tok, LF_TEXTS, 4096, global_first=True)
    ids, hidden = [], []
    for i in range(len(LF_TEXTS)):
        n = int(enc["attention_mask"][i].sum())
        ids.append(enc["input_ids"][i][:n].tolist())
        hidden.append(floats(h[i, :n]))
    # no global attention (LongformerModel's default), one text
    e1, h1 = run_padded(model, tok, LF_TEXTS[4:5], 4096)
    # a long input, pooled (its rows would make the file large): 4 800 tokens of text,
    # truncated to the 4096 the positions allow
    long_text = "the quick brown fox and the dog " * 600
    el, hl = run_padded(model, tok, [long_text], 4096, global_first=True)
    write_json("longformer.json", {
        "fixture": "longformer", "texts": LF_TEXTS, "ids": ids, "dim": model.config.hidden_size,
        "attention_window": model.config.attention_window, "hidden": hidden,
        "no_global": {"text": LF_TEXTS[4], "hidden": floats(h1[0])},
        "long": {"text": long_text, "n_tokens": int(el["attention_mask"][0].sum()),
                 "mean": floats(hl[0].mean(0)), "first": floats(hl[0, 0]), "last": floats(hl[0, -1])},
    })


def gen_e5(d):
    from transformers import AutoTokenizer, LongformerModel
    tok = AutoTokenizer.from_pretrained(d)
    model = LongformerModel.from_pretrained(d).eval()
    maxlen = model.config.max_position_embeddings - 2
    texts = LF_TEXTS + ["the quick brown fox and the dog " * 30]  # > 128 tokens: truncated
    enc, h = run_padded(model, tok, texts, maxlen, global_first=True)
    m = enc["attention_mask"].unsqueeze(-1).float().numpy()
    emb = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    write_json("e5.json", {"fixture": "e5", "texts": texts, "max_tokens": maxlen,
                           "dim": int(emb.shape[1]), "embeddings": [floats(e) for e in emb]})


# ---- images ----

def make_images():
    """Deterministic test images: smooth gradients, shapes and noise, odd sizes."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(5)
    os.makedirs(IMAGES, exist_ok=True)

    def base(w, h, seed):
        r = np.random.default_rng(seed)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([
            127 + 120 * np.sin(x / (7 + seed) + y / 23.0),
            127 + 120 * np.cos(y / (5 + seed) - x / 31.0),
            (x * 255.0 / max(w - 1, 1) + y * 97.0 / max(h - 1, 1)) % 256,
        ], axis=-1)
        img += r.normal(0, 12, img.shape)
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
        d = ImageDraw.Draw(im)
        d.ellipse([w // 5, h // 6, w // 2, h // 2], fill=(250, 20, 30))
        d.rectangle([w // 2, h // 2, w - 3, h - 5], outline=(0, 0, 0), width=3)
        d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=2)
        return im

    specs = []
    im = base(301, 203, 1); im.save(os.path.join(IMAGES, "rgb_301x203.png")); specs.append("rgb_301x203.png")
    im = base(97, 333, 2).convert("RGBA")
    a = np.array(im); a[..., 3] = (np.arange(97)[None, :] * 2 + 40) % 256; im = Image.fromarray(a, "RGBA")
    im.save(os.path.join(IMAGES, "rgba_97x333.png")); specs.append("rgba_97x333.png")
    im = base(225, 224, 3).quantize(colors=37); im.save(os.path.join(IMAGES, "palette_225x224.png")); specs.append("palette_225x224.png")
    g = np.array(base(60, 50, 4).convert("L")).astype(np.uint16) * 257 + rng.integers(0, 256, (50, 60)).astype(np.uint16)
    Image.fromarray(g.astype(np.uint16)).save(os.path.join(IMAGES, "gray16_60x50.png")); specs.append("gray16_60x50.png")
    im = base(224, 224, 5).convert("L"); im.save(os.path.join(IMAGES, "gray_224x224.png")); specs.append("gray_224x224.png")
    im = base(320, 241, 6); im.save(os.path.join(IMAGES, "q90_420_320x241.jpg"), quality=90); specs.append("q90_420_320x241.jpg")
    im = base(123, 456, 7); im.save(os.path.join(IMAGES, "q85_444_123x456.jpg"), quality=85, subsampling=0); specs.append("q85_444_123x456.jpg")
    im = base(250, 171, 8).convert("L"); im.save(os.path.join(IMAGES, "gray_250x171.jpg"), quality=80); specs.append("gray_250x171.jpg")
    im = base(411, 199, 9); im.save(os.path.join(IMAGES, "q75_422_411x199.jpg"), quality=75, subsampling=1); specs.append("q75_422_411x199.jpg")
    im = base(250, 170, 10); im.save(os.path.join(IMAGES, "lossy_250x170.webp"), quality=80); specs.append("lossy_250x170.webp")
    im = base(181, 97, 11).convert("RGBA"); im.save(os.path.join(IMAGES, "lossless_181x97.webp"), lossless=True); specs.append("lossless_181x97.webp")
    im = base(140, 300, 12).quantize(colors=64); im.save(os.path.join(IMAGES, "frame_140x300.gif")); specs.append("frame_140x300.gif")
    im = base(1000, 17, 13); im.save(os.path.join(IMAGES, "wide_1000x17.png")); specs.append("wide_1000x17.png")
    im = base(16, 16, 14); im.save(os.path.join(IMAGES, "tiny_16x16.png")); specs.append("tiny_16x16.png")
    return specs


def pixel_values(path):
    from PIL import Image
    try:  # transformers 5: the Pillow backend by name (the default one needs torchvision)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor
    proc = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                              resample=3, do_center_crop=True, do_convert_rgb=True, do_normalize=True,
                              do_rescale=True, image_mean=[0.48145466, 0.4578275, 0.40821073],
                              image_std=[0.26862954, 0.26130258, 0.27577711])
    im = Image.open(path)
    im.load()
    pv = proc(images=im, return_tensors="np")["pixel_values"][0]  # 3x224x224 float32
    return pv


def uint8_of(pv):
    """The uint8 image the processor normalised: invert, then check it normalises back exactly."""
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)[:, None, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)[:, None, None]
    u = np.rint((pv * std + mean) * 255.0).clip(0, 255).astype(np.uint8)
    x = (u.astype(np.float64) * (1 / 255)).astype(np.float32)
    back = (x - mean) / std
    assert np.array_equal(back.astype(np.float32), pv), "pixel values are not a normalised uint8 image"
    return u


def gen_clip(d, specs):
    from PIL import Image
    from transformers import AutoTokenizer, CLIPModel
    tok = AutoTokenizer.from_pretrained(d)
    model = CLIPModel.from_pretrained(d).eval()
    enc = tok(CLIP_TEXTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        tf = model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    tf = getattr(tf, "pooler_output", tf).numpy()
    ids = [enc["input_ids"][i][: int(enc["attention_mask"][i].sum())].tolist() for i in range(len(CLIP_TEXTS))]
    images = []
    for name in specs:
        path = os.path.join(IMAGES, name)
        pv = pixel_values(path)
        u = uint8_of(pv)
        gold = name.rsplit(".", 1)[0] + ".pixels.png"
        Image.fromarray(np.transpose(u, (1, 2, 0)), "RGB").save(os.path.join(IMAGES, gold))
        with torch.no_grad():
            f = model.get_image_features(pixel_values=torch.from_numpy(pv[None]))
        f = getattr(f, "pooler_output", f).numpy()[0]
        im = Image.open(path)
        images.append({"file": name, "pixels": gold, "size": list(im.size), "mode": im.mode,
                       "features": floats(f)})
    write_json("clip.json", {"fixture": "clip", "texts": CLIP_TEXTS, "ids": ids,
                             "dim": int(tf.shape[1]), "text_features": [floats(e) for e in tf],
                             "images": images})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", help="built dc_fixture program (default: compile tests/tools)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tool = build_tool(args, tmp)
        dirs = {}
        for name in ("roberta", "e7", "longformer", "e5", "clip"):
            dirs[name] = os.path.join(tmp, name)
            subprocess.check_call([tool, name, dirs[name]])
        gen_roberta(dirs["roberta"])
        gen_e7(dirs["e7"])
        gen_longformer(dirs["longformer"])
        gen_e5(dirs["e5"])
        gen_clip(dirs["clip"], make_images())


if __name__ == "__main__":
    main()
