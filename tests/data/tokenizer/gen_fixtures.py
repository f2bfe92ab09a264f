#!/usr/bin/env python3
"""Small tokenizer fixtures and their reference outputs.

Builds (or trains) a few small tokenizers with Hugging Face `tokenizers` that together use the
components the public goldens do not (Strip, Replace, NFKC/NFKD, StripAccents, Nmt, Prepend,
Metaspace, Whitespace, WhitespaceSplit, Digits, Punctuation, Split behaviors, CharDelimiterSplit,
WordLevel, BPE with byte fallback / fused unknowns / prefixes and suffixes, TemplateProcessing,
ByteLevel post-processing, left truncation and padding, added tokens with single_word / lstrip /
rstrip / normalized), writes their tokenizer.json files and the reference encodings of
corpus.jsonl for each (ids, code-point offsets, byte offsets, attention mask).

Run from this folder with `pip install tokenizers==0.22.2`:  python3 gen_fixtures.py
Output is deterministic; CI only reads the committed files.
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces  ",
    "Tabs\tand\nnewlines\r\nand  double  spaces",
    "Café naïve résumé Ångström — CAFÉ",
    "cafe\u0301 nai\u0308ve (decomposed)",
    "ﬁne ligatures, ① circled, ＦＵＬＬ width, x² and ½",
    "İstanbul ß ẞ ΣΊΣΥΦΟΣ ǅ",
    "中文字符 and 日本語のテキスト, 한국어",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 flags 🇺🇸",
    "numbers 12345 3.14159 1,000,000 ٣٤٥ and 2nd-place",
    "punctuation!!! ??? ... --- (brackets) [square] {curly} \"quotes\" 'single'",
    "well-known state-of-the-art x-ray e-mail",
    "don't it's I'M they're we've",
    "special <mask> and<mask>here <ent> <ent>s  <ent>  and [CLS] [SEP]",
    "url https://example.com/path?q=1&b=2 email a.b@c.org",
    "code: def f(x): return x**2 + 1  # comment",
    "control \u0000 \u0007 \u001b chars \u200b zero\u200bwidth \ufeff bom \u00ad soft",
    "whitespace\u00a0nbsp\u3000ideographic\u2028line\u2029para\u0085nel",
    "¶ pilcrow ¶¶ and § section",
    "UNKNOWN glyphs ᚠᛇᚻ ꓐꓑ and 𝔘𝔫𝔦",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a",
    "MiXeD CaSe WoRdS with UPPER and lower",
    "",
    " ",
    "x",
    "xxx yxy xzx",
    "ending with space ",
    "tokenization of internationalization is unbelievable",
]

TRAIN_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "hello world this is a small training corpus for tiny tokenizers",
    "tokenization internationalization unbelievable known state of the art",
    "numbers 0 1 2 3 4 5 6 7 8 9 and punctuation , . ! ? ; : - ( ) [ ] { }",
    "café naïve résumé ångström mixed case words upper lower special",
    "don't it's i'm they're we've well-known e-mail x-ray",
    "中文 日本語 한국어 emoji",
] * 3


def train_bpe(tok, texts, n_merges, specials, prefix="", suffix="", alphabet=()):
    """A deterministic BPE trainer (most frequent pair, ties broken by the pair itself) over the
    words the tokenizer's own normalizer and pre-tokenizer produce."""
    from collections import Counter
    words = Counter()
    for t in texts:
        s = tok.normalizer.normalize_str(t) if tok.normalizer else t
        for w, _ in tok.pre_tokenizer.pre_tokenize_str(s):
            words[w] += 1

    def split(w):
        syms = [w[0]] + [prefix + c for c in w[1:]]
        syms[-1] += suffix
        return syms

    seqs = {w: split(w) for w in words}
    vocab = list(specials)
    for sym in sorted(set(alphabet) | {x for q in seqs.values() for x in q}):
        if sym not in vocab:
            vocab.append(sym)
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, q in seqs.items():
            for a, b in zip(q, q[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        new = a + b[len(prefix):]
        merges.append((a, b))
        if new not in vocab:
            vocab.append(new)
        for w, q in seqs.items():
            out, i = [], 0
            while i < len(q):
                if i + 1 < len(q) and q[i] == a and q[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(q[i])
                    i += 1
            seqs[w] = out
    return {t: i for i, t in enumerate(vocab)}, merges


def bert_tiny():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<ent>"]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"()-[]{}:;#*+=/&@$%^_~`|<>\\")
    words += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    words += ["the", "quick", "brown", "fox", "hello", "world", "token", "##ization", "##s", "inter",
              "##national", "un", "##believ", "##able", "cafe", "naive", "resume", "中", "文", "日", "本",
              "known", "well", "state", "art", "x", "##x", "##y", "##z", "¶", "§", "ß", "σ", "ς"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=20))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]])
    tok.add_tokens([AddedToken("<ent>", single_word=True, normalized=True),
                    AddedToken("¶", lstrip=True, rstrip=True, normalized=False)])
    return tok


def bytelevel_tiny():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    vocab, merges = train_bpe(tok, TRAIN_TEXT, 220, ["<s>", "<pad>", "</s>", "<unk>"],
                              alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.model = models.BPE(vocab, merges)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True, add_prefix_space=True),
        processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                      special_tokens=[("<s>", 0), ("</s>", 2)])])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=True)])
    tok.add_tokens([AddedToken("<ent>", rstrip=True, normalized=False)])
    return tok


def metaspace_tiny():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(),
                                           normalizers.Replace("''", '"'), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>"] + ["<0x%02X>" % b for b in range(256)]
    vocab, merges = train_bpe(tok, TRAIN_TEXT, 120, specials)
    tok.model = models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    tok.enable_truncation(max_length=12, direction="left")
    tok.enable_padding(direction="left", pad_id=vocab["<pad>"], pad_token="<pad>", length=None, pad_to_multiple_of=8)
    return tok


def split_tiny():
    words = ["[UNK]", "[CLS]", "[SEP]"]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"()-")
    words += ["the", "quick", "brown", "fox", "hello", "world", "-known", "well", "-art", "state",
              "of", "th", "e", "qu", "ck", "br", "wn", "f", "x", "!!!", "...", "---", "???"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Nmt(), normalizers.Strip(),
                                           normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex("[aeiou]+"), behavior="merged_with_previous", invert=False),
    ])
    tok.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tok.add_special_tokens(["[CLS]", "[SEP]"])
    return tok


def whitespace_tiny():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Prepend("~"),
                                           normalizers.Strip(left=False, right=True)])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                 pre_tokenizers.CharDelimiterSplit("x"),
                                                 pre_tokenizers.Split("~", behavior="isolated"),
                                                 pre_tokenizers.Split(Regex(r"\d"), behavior="isolated")])
    vocab, merges = train_bpe(tok, TRAIN_TEXT, 150, ["[UNK]", "[CLS]", "[SEP]"], prefix="##", suffix="</w>")
    tok.model = models.BPE(vocab, merges, unk_token="[UNK]", continuing_subword_prefix="##",
                           end_of_word_suffix="</w>")
    tok.post_processor = processors.RobertaProcessing(("[SEP]", 2), ("[CLS]", 1), trim_offsets=False)
    tok.enable_truncation(max_length=10)
    tok.enable_padding(length=16, pad_id=0, pad_token="[UNK]")
    return tok


FIXTURES = {
    "bert_tiny": bert_tiny,
    "bytelevel_tiny": bytelevel_tiny,
    "metaspace_tiny": metaspace_tiny,
    "split_tiny": split_tiny,
    "whitespace_tiny": whitespace_tiny,
}


def encode_all(tok, f):
    for i, text in enumerate(CORPUS):
        e = tok.encode(text)
        off = [list(o) for o in e.offsets]
        f.write(json.dumps({"id": "fx-%02d" % i, "ids": e.ids, "offsets": off,
                            "attention_mask": e.attention_mask}, ensure_ascii=False) + "\n")


def main():
    with open(os.path.join(HERE, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for i, text in enumerate(CORPUS):
            f.write(json.dumps({"id": "fx-%02d" % i, "text": text}, ensure_ascii=True) + "\n")
    for name, build in FIXTURES.items():
        tok = build()
        tok.save(os.path.join(HERE, name + ".json"))
        tok = Tokenizer.from_file(os.path.join(HERE, name + ".json"))
        # as written in the file (truncation/padding included) ...
        with open(os.path.join(HERE, name + ".expected.jsonl"), "w", encoding="utf-8") as f:
            encode_all(tok, f)
        # ... and with neither
        tok.no_truncation()
        tok.no_padding()
        with open(os.path.join(HERE, name + ".plain.jsonl"), "w", encoding="utf-8") as f:
            encode_all(tok, f)


if __name__ == "__main__":
    main()
