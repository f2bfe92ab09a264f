/* Random-weight BERT fixtures in the Hugging Face layout (see bert_fixture.h). */
#include "bert_fixture.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- vocabulary ---- */

static const char *const fx_words[] = {
    "the", "hello", "world", "query", "passage", "is", "of", "a", "man", "playing", "guitar",
    "capital", "france", "paris", "what", "text", "and", "fox", "dog", "quick", "brown", "cafe",
    "short", "lots", "it", "spaces", "tabs", "new", "##s", "##ing", "##ed", "##ly", "un", "##able",
};

#define FX_MAX_VOCAB 256
typedef struct fx_vocab {
    char tok[FX_MAX_VOCAB][24];
    uint32_t n;
} fx_vocab;

static void vocab_add(fx_vocab *v, const char *t) {
    for (uint32_t i = 0; i < v->n; i++)
        if (!strcmp(v->tok[i], t)) return;
    snprintf(v->tok[v->n++], sizeof v->tok[0], "%s", t);
}

static void build_vocab(fx_vocab *v) {
    v->n = 0;
    const char *specials[] = {"[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (size_t i = 0; i < 7; i++) vocab_add(v, specials[i]);
    const char *punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    for (const char *p = punct; *p; p++) {
        char s[2] = {*p, 0};
        vocab_add(v, s);
    }
    char s[8];
    for (char c = '0'; c <= '9'; c++) {
        snprintf(s, sizeof s, "%c", c);
        vocab_add(v, s);
    }
    for (char c = 'a'; c <= 'z'; c++) {
        snprintf(s, sizeof s, "%c", c);
        vocab_add(v, s);
    }
    for (char c = 'a'; c <= 'z'; c++) {
        snprintf(s, sizeof s, "##%c", c);
        vocab_add(v, s);
    }
    for (char c = '0'; c <= '9'; c++) {
        snprintf(s, sizeof s, "##%c", c);
        vocab_add(v, s);
    }
    for (size_t i = 0; i < sizeof fx_words / sizeof fx_words[0]; i++) vocab_add(v, fx_words[i]);
}

static int vocab_id(const fx_vocab *v, const char *t) {
    for (uint32_t i = 0; i < v->n; i++)
        if (!strcmp(v->tok[i], t)) return (int)i;
    return -1;
}

/* JSON string body for a token (quotes and backslashes escaped). */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- PRNG ---- */

static uint64_t fx_mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fx_name_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (; *name; name++) h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
    return h;
}

/* uniform in [center − half, center + half), exactly representable steps of 2^-24 */
static void fx_fill(float *a, size_t n, uint64_t seed, const char *name, float center, float half) {
    uint64_t s = fx_name_seed(seed, name);
    for (size_t i = 0; i < n; i++) {
        double u = (double)(fx_mix(&s) >> 40) / 16777216.0;
        a[i] = center + half * (float)(2.0 * u - 1.0);
    }
}

/* ---- tensors and safetensors ---- */

typedef struct fx_tensor {
    char name[160];
    int is_i64;
    uint32_t ndim;
    uint64_t shape[4];
    void *data;
    size_t bytes;
} fx_tensor;

typedef struct fx_list {
    fx_tensor *t;
    size_t n, cap;
    const dc_fixture_spec *spec;
    int failed;
} fx_list;

static fx_tensor *fx_push_shape(fx_list *l, const char *name, uint32_t ndim, const uint64_t *shape) {
    if (l->spec->drop_tensor && !strcmp(l->spec->drop_tensor, name)) return NULL;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        fx_tensor *nt = realloc(l->t, l->cap * sizeof *nt);
        if (!nt) {
            l->failed = 1;
            return NULL;
        }
        l->t = nt;
    }
    fx_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    size_t numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        if (d == 0 && l->spec->bad_shape && !strcmp(l->spec->bad_shape, name)) t->shape[0] += 1;
        numel *= t->shape[d];
    }
    t->bytes = numel * sizeof(float);
    t->data = malloc(t->bytes ? t->bytes : 1);
    if (!t->data) {
        l->failed = 1;
        return NULL;
    }
    l->n++;
    return t;
}

static fx_tensor *fx_push(fx_list *l, const char *name, uint32_t ndim, uint64_t d0, uint64_t d1) {
    uint64_t shape[2] = {d0, d1};
    return fx_push_shape(l, name, ndim, shape);
}

static void fx_param(fx_list *l, const char *name, uint32_t ndim, uint64_t d0, uint64_t d1,
                     float center, float half) {
    fx_tensor *t = fx_push(l, name, ndim, d0, d1);
    if (!t) return;
    /* values depend on the canonical name, so renamed variants carry identical numbers */
    fx_fill(t->data, t->bytes / sizeof(float), l->spec->seed, name, center, half);
}

static void fx_param_pre(fx_list *l, const char *pre, const char *base, uint32_t ndim, uint64_t d0,
                         uint64_t d1, float center, float half);

static void fx_linear(fx_list *l, const char *pre, const char *base, uint32_t out, uint32_t in,
                      bool bias) {
    char n[200];
    float half = 1.7f / sqrtf((float)in);
    snprintf(n, sizeof n, "%s.weight", base);
    fx_param_pre(l, pre, n, 2, out, in, 0.0f, half);
    if (bias) {
        snprintf(n, sizeof n, "%s.bias", base);
        fx_param_pre(l, pre, n, 1, out, 0, 0.0f, 0.1f);
    }
}

static void fx_ln(fx_list *l, const char *pre, const char *base, uint32_t h) {
    char n[200];
    const char *w = l->spec->legacy_names ? "gamma" : "weight";
    const char *b = l->spec->legacy_names ? "beta" : "bias";
    snprintf(n, sizeof n, "%s%s.%s", pre, base, w);
    fx_tensor *t = fx_push(l, n, 1, h, 0);
    char canon[200];
    snprintf(canon, sizeof canon, "%s.weight", base);
    if (t) fx_fill(t->data, h, l->spec->seed, canon, 1.0f, 0.2f);
    snprintf(n, sizeof n, "%s%s.%s", pre, base, b);
    t = fx_push(l, n, 1, h, 0);
    snprintf(canon, sizeof canon, "%s.bias", base);
    if (t) fx_fill(t->data, h, l->spec->seed, canon, 0.0f, 0.1f);
}

/* fx_param with the canonical (unprefixed) name as the seed */
static void fx_param_pre(fx_list *l, const char *pre, const char *base, uint32_t ndim, uint64_t d0,
                         uint64_t d1, float center, float half) {
    char n[200];
    snprintf(n, sizeof n, "%s%s", pre, base);
    fx_tensor *t = fx_push(l, n, ndim, d0, d1);
    if (t) fx_fill(t->data, t->bytes / sizeof(float), l->spec->seed, base, center, half);
}

static int write_safetensors(const char *path, const fx_list *l) {
    /* header: tensors in list order, offsets contiguous, padded with spaces to 8 bytes */
    size_t cap = 256 + l->n * 256, o = 0, off = 0;
    char *h = malloc(cap);
    if (!h) return -1;
    o += (size_t)snprintf(h + o, cap - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < l->n; i++) {
        const fx_tensor *t = &l->t[i];
        o += (size_t)snprintf(h + o, cap - o, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                              t->is_i64 ? "I64" : "F32");
        for (uint32_t d = 0; d < t->ndim; d++)
            o += (size_t)snprintf(h + o, cap - o, "%s%llu", d ? "," : "",
                                  (unsigned long long)t->shape[d]);
        o += (size_t)snprintf(h + o, cap - o, "],\"data_offsets\":[%zu,%zu]}", off, off + t->bytes);
        off += t->bytes;
    }
    o += (size_t)snprintf(h + o, cap - o, "}");
    while (o % 8) h[o++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)o >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, o, f) == o;
    for (size_t i = 0; ok && i < l->n; i++) {
        /* little-endian hosts only (x86-64, aarch64): the data is written as is */
        ok = fwrite(l->t[i].data, 1, l->t[i].bytes, f) == l->t[i].bytes;
    }
    free(h);
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* ---- text files ---- */

static FILE *open_in(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) fprintf(stderr, "dc_fixture: cannot create %s: %s\n", p, strerror(errno));
    return f;
}

static int write_tokenizer(const char *dir, const fx_vocab *v) {
    FILE *f = open_in(dir, "vocab.txt");
    if (!f) return -1;
    for (uint32_t i = 0; i < v->n; i++) fprintf(f, "%s\n", v->tok[i]);
    fclose(f);
    const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    f = open_in(dir, "tokenizer.json");
    if (!f) return -1;
    fprintf(f, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    for (int i = 0; i < 5; i++)
        fprintf(f,
                "%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,"
                "\"rstrip\":false,\"normalized\":false,\"special\":true}",
                i ? "," : "", vocab_id(v, specials[i]), specials[i]);
    int cls = vocab_id(v, "[CLS]"), sep = vocab_id(v, "[SEP]");
    fprintf(f,
            "],\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
            "\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
            "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
            "\"post_processor\":{\"type\":\"TemplateProcessing\","
            "\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},"
            "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
            "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}],"
            "\"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},"
            "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
            "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},"
            "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},"
            "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],"
            "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[%d],\"tokens\":[\"[CLS]\"]},"
            "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[%d],\"tokens\":[\"[SEP]\"]}}},"
            "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
            "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
            "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,\"vocab\":{",
            cls, sep);
    for (uint32_t i = 0; i < v->n; i++) {
        if (i) fputc(',', f);
        json_str(f, v->tok[i]);
        fprintf(f, ":%u", i);
    }
    fprintf(f, "}}}\n");
    fclose(f);
    f = open_in(dir, "tokenizer_config.json");
    if (!f) return -1;
    fprintf(f, "{\"do_lower_case\": true, \"model_max_length\": 512, \"tokenizer_class\": "
               "\"BertTokenizer\", \"unk_token\": \"[UNK]\", \"sep_token\": \"[SEP]\", "
               "\"pad_token\": \"[PAD]\", \"cls_token\": \"[CLS]\", \"mask_token\": \"[MASK]\"}\n");
    fclose(f);
    f = open_in(dir, "special_tokens_map.json");
    if (!f) return -1;
    fprintf(f, "{\"unk_token\": \"[UNK]\", \"sep_token\": \"[SEP]\", \"pad_token\": \"[PAD]\", "
               "\"cls_token\": \"[CLS]\", \"mask_token\": \"[MASK]\"}\n");
    fclose(f);
    return 0;
}

static int write_config(const char *dir, const dc_fixture_spec *s, uint32_t vocab) {
    FILE *f = open_in(dir, "config.json");
    if (!f) return -1;
    const char *arch = s->kind == DC_FIXTURE_SPLADE    ? "BertForMaskedLM"
                       : s->kind == DC_FIXTURE_COLBERT ? "HF_ColBERT"
                                                       : "BertModel";
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"attention_probs_dropout_prob\": 0.1,\n"
            "  \"hidden_act\": \"gelu\",\n  \"hidden_dropout_prob\": 0.1,\n"
            "  \"hidden_size\": %u,\n  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %u,\n  \"layer_norm_eps\": 1e-12,\n"
            "  \"max_position_embeddings\": %u,\n  \"model_type\": \"bert\",\n"
            "  \"num_attention_heads\": %u,\n  \"num_hidden_layers\": %u,\n"
            "  \"pad_token_id\": 0,\n  \"position_embedding_type\": \"absolute\",\n"
            "  \"type_vocab_size\": 2,\n  \"vocab_size\": %u\n}\n",
            arch, s->hidden, s->intermediate, s->max_position, s->heads, s->layers, vocab);
    fclose(f);
    return 0;
}

static int write_st_files(const char *dir, const dc_fixture_spec *s) {
    FILE *f = open_in(dir, "modules.json");
    if (!f) return -1;
    fprintf(f, "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
               "\"sentence_transformers.models.Transformer\"}, {\"idx\": 1, \"name\": \"1\", "
               "\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}");
    if (s->kind == DC_FIXTURE_ST_NORM)
        fprintf(f, ", {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": "
                   "\"sentence_transformers.models.Normalize\"}");
    fprintf(f, "]\n");
    fclose(f);
    f = open_in(dir, "sentence_bert_config.json");
    if (!f) return -1;
    fprintf(f, "{\"max_seq_length\": %u, \"do_lower_case\": false}\n", s->max_seq_length);
    fclose(f);
    char p[4096];
    snprintf(p, sizeof p, "%s/1_Pooling", dir);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
    /* the old five-key form, as all-MiniLM-L6-v2 ships it */
    f = open_in(dir, "1_Pooling/config.json");
    if (!f) return -1;
    fprintf(f, "{\"word_embedding_dimension\": %u, \"pooling_mode_cls_token\": false, "
               "\"pooling_mode_mean_tokens\": true, \"pooling_mode_max_tokens\": false, "
               "\"pooling_mode_mean_sqrt_len_tokens\": false}\n",
            s->hidden);
    fclose(f);
    return 0;
}

bool dc_fixture_named(const char *name, dc_fixture_spec *o) {
    memset(o, 0, sizeof *o);
    dc_fixture_spec b = {.kind = DC_FIXTURE_BERT, .hidden = 32, .layers = 2, .heads = 4,
                         .intermediate = 64, .max_position = 48};
    if (!strcmp(name, "bert")) {
        b.max_position = 40, b.seed = 1, b.position_ids = true;
    } else if (!strcmp(name, "e11")) {
        b.kind = DC_FIXTURE_ST_NORM, b.hidden = 384, b.heads = 12, b.intermediate = 96;
        b.max_position = 64, b.max_seq_length = 24, b.seed = 11;
    } else if (!strcmp(name, "e8")) {
        b.kind = DC_FIXTURE_ST, b.hidden = 384, b.heads = 6, b.intermediate = 96;
        b.max_position = 64, b.max_seq_length = 16, b.seed = 8;
    } else if (!strcmp(name, "e1")) {
        b.kind = DC_FIXTURE_ST_NORM, b.hidden = 1024, b.layers = 1, b.heads = 16;
        b.max_position = 64, b.max_seq_length = 32, b.seed = 1001;
    } else if (!strcmp(name, "e6")) {
        b.kind = DC_FIXTURE_SPLADE, b.seed = 6, b.bert_prefix = true;
    } else if (!strcmp(name, "e12")) {
        b.kind = DC_FIXTURE_COLBERT, b.seed = 12, b.bert_prefix = true;
    } else if (!strcmp(name, "e7")) {
        /* CodeBERT's shape where it matters (768 wide, RoBERTa positions), one thin layer */
        b.kind = DC_FIXTURE_ROBERTA, b.hidden = 768, b.layers = 1, b.heads = 12;
        b.max_position = 66, b.seed = 7, b.bert_prefix = true;
    } else if (!strcmp(name, "roberta")) {
        b.kind = DC_FIXTURE_ROBERTA, b.max_position = 66, b.seed = 77;
    } else if (!strcmp(name, "e5")) {
        b.kind = DC_FIXTURE_LONGFORMER, b.hidden = 768, b.layers = 1, b.heads = 12;
        b.max_position = 130, b.seed = 5, b.window = 8;
    } else if (!strcmp(name, "longformer")) {
        /* windows 4 and 8 (one-sided 2 and 4); 4098 positions take 4096 tokens */
        b.kind = DC_FIXTURE_LONGFORMER, b.max_position = 4098, b.seed = 55, b.window = 4;
    } else if (!strcmp(name, "clip")) {
        b.kind = DC_FIXTURE_CLIP, b.max_position = 77, b.seed = 10;
        b.vision_hidden = 32, b.vision_layers = 2, b.vision_heads = 4, b.vision_intermediate = 64;
        b.projection_dim = 768;
    } else {
        return false;
    }
    *o = b;
    return true;
}

/* ---- byte-level BPE (RoBERTa / Longformer / CLIP) ---- */

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to 256 + n. */
static uint32_t fx_byte_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    uint32_t n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256 + n;
}

static size_t fx_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* The byte-level form of an ASCII word ("Ġ" for a leading space). */
static void fx_bytelevel(const char *w, char *out, size_t cap) {
    size_t o = 0;
    for (; *w && o + 3 < cap; w++) o += fx_utf8(fx_byte_cp((unsigned char)*w), out + o);
    out[o] = 0;
}

#define FX_BPE_MAX 2048
typedef struct fx_bpe {
    char tok[FX_BPE_MAX][40];
    uint32_t n;
    char merge[FX_BPE_MAX][80];
    uint32_t n_merge;
} fx_bpe;

static int bpe_find(const fx_bpe *v, const char *t) {
    for (uint32_t i = 0; i < v->n; i++)
        if (!strcmp(v->tok[i], t)) return (int)i;
    return -1;
}

static void bpe_add(fx_bpe *v, const char *t) {
    if (bpe_find(v, t) < 0 && v->n < FX_BPE_MAX) snprintf(v->tok[v->n++], sizeof v->tok[0], "%s", t);
}

/* Splits a byte-level string into its characters (1 or 2 UTF-8 bytes each). */
static uint32_t fx_chars(const char *s, char out[][8], uint32_t cap) {
    uint32_t n = 0;
    while (*s && n < cap) {
        size_t k = ((unsigned char)*s & 0xE0) == 0xC0 ? 2 : 1;
        memcpy(out[n], s, k);
        out[n][k] = 0;
        s += k;
        n++;
    }
    return n;
}

/* Left-to-right merges that build `word` (byte-level, with the CLIP "</w>" on its last char). */
static void bpe_word(fx_bpe *v, const char *ascii, bool clip) {
    char bl[128], ch[40][8];
    fx_bytelevel(ascii, bl, sizeof bl);
    uint32_t n = fx_chars(bl, ch, 40);
    if (clip && n) strcat(ch[n - 1], "</w>");
    char acc[sizeof v->tok[0]];
    size_t al = strlen(ch[0]);
    memcpy(acc, ch[0], al + 1);
    for (uint32_t i = 1; i < n; i++) {
        size_t cl = strlen(ch[i]);
        if (al + cl + 2 > sizeof v->merge[0] || al + cl + 1 > sizeof v->tok[0]) break;
        char m[sizeof v->merge[0]];
        memcpy(m, acc, al);
        m[al] = ' ';
        memcpy(m + al + 1, ch[i], cl + 1);
        bool known = false;
        for (uint32_t k = 0; k < v->n_merge; k++) known |= !strcmp(v->merge[k], m);
        if (!known && v->n_merge < FX_BPE_MAX) memcpy(v->merge[v->n_merge++], m, al + cl + 2);
        memcpy(acc + al, ch[i], cl + 1);
        al += cl;
        bpe_add(v, acc);
    }
}

static const char *const fx_bpe_words[] = {
    "the", " the", "hello", " hello", " world", "def", " def", " return", " x", " y", "int",
    " int", " for", " in", " range", "print", " print", "():", " a", " photo", " of", " cat",
    " dog", " quick", " brown", " fox", " and", "self", " self", " if", " else", "==", "->",
    "    ", "\n", " is", " code", " function",
};
static const char *const fx_clip_words[] = {
    "a", "photo", "of", "the", "cat", "dog", "hello", "world", "quick", "brown", "fox", "and",
    "is", "red", "blue", "car", "on", "road", "'s", "!!", "...",
};

static void build_bpe(fx_bpe *v, bool clip) {
    memset(v, 0, sizeof *v);
    if (!clip) {
        const char *sp[] = {"<s>", "<pad>", "</s>", "<unk>"};
        for (int i = 0; i < 4; i++) bpe_add(v, sp[i]);
    }
    char c[8];
    for (unsigned b = 0; b < 256; b++) {
        c[fx_utf8(fx_byte_cp(b), c)] = 0;
        bpe_add(v, c);
    }
    if (clip)
        for (unsigned b = 0; b < 256; b++) {
            size_t k = fx_utf8(fx_byte_cp(b), c);
            memcpy(c + k, "</w>", 5);
            bpe_add(v, c);
        }
    size_t nw = clip ? sizeof fx_clip_words / sizeof fx_clip_words[0]
                     : sizeof fx_bpe_words / sizeof fx_bpe_words[0];
    for (size_t i = 0; i < nw; i++) {
        bpe_word(v, clip ? fx_clip_words[i] : fx_bpe_words[i], clip);
    }
    if (clip) {
        bpe_add(v, "<|startoftext|>");
        bpe_add(v, "<|endoftext|>");
    } else {
        bpe_add(v, "<mask>");
    }
}

static int write_bpe_tokenizer(const char *dir, const fx_bpe *v, bool clip) {
    FILE *f = open_in(dir, "vocab.json");
    if (!f) return -1;
    fputc('{', f);
    for (uint32_t i = 0; i < v->n; i++) {
        if (i) fputc(',', f);
        json_str(f, v->tok[i]);
        fprintf(f, ":%u", i);
    }
    fprintf(f, "}\n");
    fclose(f);
    f = open_in(dir, "merges.txt");
    if (!f) return -1;
    fprintf(f, "#version: 0.2\n");
    for (uint32_t i = 0; i < v->n_merge; i++) fprintf(f, "%s\n", v->merge[i]);
    fclose(f);
    f = open_in(dir, "tokenizer_config.json");
    if (!f) return -1;
    if (clip)
        fprintf(f, "{\"tokenizer_class\": \"CLIPTokenizer\", \"model_max_length\": 77, "
                   "\"do_lower_case\": true, \"bos_token\": \"<|startoftext|>\", "
                   "\"eos_token\": \"<|endoftext|>\", \"unk_token\": \"<|endoftext|>\", "
                   "\"pad_token\": \"<|endoftext|>\"}\n");
    else
        fprintf(f, "{\"tokenizer_class\": \"RobertaTokenizer\", \"model_max_length\": 512}\n");
    fclose(f);
    f = open_in(dir, "special_tokens_map.json");
    if (!f) return -1;
    if (clip)
        fprintf(f, "{\"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|endoftext|>\", "
                   "\"unk_token\": \"<|endoftext|>\", \"pad_token\": \"<|endoftext|>\"}\n");
    else
        fprintf(f, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", "
                   "\"sep_token\": \"</s>\", \"pad_token\": \"<pad>\", \"cls_token\": \"<s>\", "
                   "\"mask_token\": {\"content\": \"<mask>\", \"lstrip\": true, \"normalized\": false, "
                   "\"rstrip\": false, \"single_word\": false}}\n");
    fclose(f);
    return 0;
}

static int write_roberta_config(const char *dir, const dc_fixture_spec *s, uint32_t vocab) {
    FILE *f = open_in(dir, "config.json");
    if (!f) return -1;
    bool lf = s->kind == DC_FIXTURE_LONGFORMER;
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"attention_probs_dropout_prob\": 0.1,\n"
            "  \"bos_token_id\": 0,\n  \"eos_token_id\": 2,\n  \"hidden_act\": \"gelu\",\n"
            "  \"hidden_dropout_prob\": 0.1,\n  \"hidden_size\": %u,\n"
            "  \"initializer_range\": 0.02,\n  \"intermediate_size\": %u,\n"
            "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": %u,\n"
            "  \"model_type\": \"%s\",\n  \"num_attention_heads\": %u,\n"
            "  \"num_hidden_layers\": %u,\n  \"pad_token_id\": 1,\n",
            lf ? "LongformerForMaskedLM" : "RobertaModel", s->hidden, s->intermediate,
            s->max_position, lf ? "longformer" : "roberta", s->heads, s->layers);
    if (lf) {
        fprintf(f, "  \"attention_mode\": \"longformer\",\n  \"sep_token_id\": 2,\n"
                   "  \"attention_window\": [");
        for (uint32_t i = 0; i < s->layers; i++) fprintf(f, "%s%u", i ? ", " : "", s->window * (i + 1));
        fprintf(f, "],\n");
    } else {
        fprintf(f, "  \"position_embedding_type\": \"absolute\",\n");
    }
    fprintf(f, "  \"type_vocab_size\": 1,\n  \"vocab_size\": %u\n}\n", vocab);
    fclose(f);
    return 0;
}

/* Post-LN encoder layers under `pre` with BERT names (+ Longformer's global projections). */
static void fx_bert_layers(fx_list *l, const dc_fixture_spec *s, const char *pre, bool globals) {
    const uint32_t H = s->hidden, I = s->intermediate;
    char base[160];
    for (uint32_t i = 0; i < s->layers; i++) {
        const char *qkv[6] = {"query", "key", "value", "query_global", "key_global", "value_global"};
        for (int p = 0; p < (globals ? 6 : 3); p++) {
            snprintf(base, sizeof base, "encoder.layer.%u.attention.self.%s", i, qkv[p]);
            fx_linear(l, pre, base, H, H, true);
        }
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.dense", i);
        fx_linear(l, pre, base, H, H, true);
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.LayerNorm", i);
        fx_ln(l, pre, base, H);
        snprintf(base, sizeof base, "encoder.layer.%u.intermediate.dense", i);
        fx_linear(l, pre, base, I, H, true);
        snprintf(base, sizeof base, "encoder.layer.%u.output.dense", i);
        fx_linear(l, pre, base, H, I, true);
        snprintf(base, sizeof base, "encoder.layer.%u.output.LayerNorm", i);
        fx_ln(l, pre, base, H);
    }
}

static int write_roberta(const char *dir, const dc_fixture_spec *s) {
    fx_bpe *v = malloc(sizeof *v);
    if (!v) return -1;
    build_bpe(v, false);
    const uint32_t H = s->hidden, V = v->n;
    bool lf = s->kind == DC_FIXTURE_LONGFORMER;
    const char *pre = lf ? "longformer." : s->bert_prefix ? "roberta." : "";
    fx_list l = {0};
    l.spec = s;
    fx_param_pre(&l, pre, "embeddings.word_embeddings.weight", 2, V, H, 0.0f, 1.0f);
    fx_param_pre(&l, pre, "embeddings.position_embeddings.weight", 2, s->max_position, H, 0.0f, 0.5f);
    fx_param_pre(&l, pre, "embeddings.token_type_embeddings.weight", 2, 1, H, 0.0f, 0.5f);
    fx_ln(&l, pre, "embeddings.LayerNorm", H);
    fx_bert_layers(&l, s, pre, lf);
    if (lf) {
        /* the MLM head of the published checkpoint: present, never used */
        fx_linear(&l, "", "lm_head.dense", H, H, true);
        fx_ln(&l, "", "lm_head.layer_norm", H);
        fx_param(&l, "lm_head.bias", 1, V, 0, 0.0f, 0.1f);
    } else {
        fx_linear(&l, pre, "pooler.dense", H, H, true);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = l.failed ? -1 : write_safetensors(path, &l);
    if (rc == 0) rc = write_roberta_config(dir, s, V);
    if (rc == 0) rc = write_bpe_tokenizer(dir, v, false);
    for (size_t i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    free(v);
    return rc;
}

/* Pre-LN CLIP encoder layers (self_attn / layer_norm1 / mlp / layer_norm2). */
static void fx_clip_layers(fx_list *l, const char *tower, uint32_t layers, uint32_t H, uint32_t I) {
    char base[160];
    for (uint32_t i = 0; i < layers; i++) {
        const char *proj[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) {
            snprintf(base, sizeof base, "%s.encoder.layers.%u.self_attn.%s", tower, i, proj[p]);
            fx_linear(l, "", base, H, H, true);
        }
        snprintf(base, sizeof base, "%s.encoder.layers.%u.layer_norm1", tower, i);
        fx_ln(l, "", base, H);
        snprintf(base, sizeof base, "%s.encoder.layers.%u.mlp.fc1", tower, i);
        fx_linear(l, "", base, I, H, true);
        snprintf(base, sizeof base, "%s.encoder.layers.%u.mlp.fc2", tower, i);
        fx_linear(l, "", base, H, I, true);
        snprintf(base, sizeof base, "%s.encoder.layers.%u.layer_norm2", tower, i);
        fx_ln(l, "", base, H);
    }
}

static int write_clip(const char *dir, const dc_fixture_spec *s) {
    fx_bpe *v = malloc(sizeof *v);
    if (!v) return -1;
    build_bpe(v, true);
    const uint32_t H = s->hidden, Hv = s->vision_hidden, P = s->projection_dim, V = v->n;
    const uint32_t patch = 14, image = 224, grid = image / patch;
    fx_list l = {0};
    l.spec = s;
    fx_param(&l, "text_model.embeddings.token_embedding.weight", 2, V, H, 0.0f, 1.0f);
    fx_param(&l, "text_model.embeddings.position_embedding.weight", 2, s->max_position, H, 0.0f, 0.5f);
    fx_clip_layers(&l, "text_model", s->layers, H, s->intermediate);
    fx_ln(&l, "", "text_model.final_layer_norm", H);
    fx_param(&l, "vision_model.embeddings.class_embedding", 1, Hv, 0, 0.0f, 1.0f);
    uint64_t pshape[4] = {Hv, 3, patch, patch};
    fx_tensor *t = fx_push_shape(&l, "vision_model.embeddings.patch_embedding.weight", 4, pshape);
    if (t)
        fx_fill(t->data, t->bytes / sizeof(float), s->seed,
                "vision_model.embeddings.patch_embedding.weight", 0.0f, 0.15f);
    fx_param(&l, "vision_model.embeddings.position_embedding.weight", 2, grid * grid + 1, Hv, 0.0f, 0.5f);
    fx_ln(&l, "", "vision_model.pre_layrnorm", Hv);
    fx_clip_layers(&l, "vision_model", s->vision_layers, Hv, s->vision_intermediate);
    fx_ln(&l, "", "vision_model.post_layernorm", Hv);
    fx_linear(&l, "", "visual_projection", P, Hv, false);
    fx_linear(&l, "", "text_projection", P, H, false);
    uint64_t none[1] = {0};
    t = fx_push_shape(&l, "logit_scale", 0, none);
    if (t) ((float *)t->data)[0] = 2.6592f;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = l.failed ? -1 : write_safetensors(path, &l);
    FILE *f = rc == 0 ? open_in(dir, "config.json") : NULL;
    if (!f) rc = -1;
    if (f) {
        fprintf(f,
                "{\n  \"architectures\": [\"CLIPModel\"],\n  \"model_type\": \"clip\",\n"
                "  \"logit_scale_init_value\": 2.6592,\n  \"projection_dim\": %u,\n"
                "  \"text_config\": {\"model_type\": \"clip_text_model\", \"vocab_size\": %u, "
                "\"hidden_size\": %u, \"intermediate_size\": %u, \"num_hidden_layers\": %u, "
                "\"num_attention_heads\": %u, \"max_position_embeddings\": %u, "
                "\"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05, \"bos_token_id\": 0, "
                "\"eos_token_id\": 2, \"pad_token_id\": 1, \"projection_dim\": %u},\n"
                "  \"vision_config\": {\"model_type\": \"clip_vision_model\", \"hidden_size\": %u, "
                "\"intermediate_size\": %u, \"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
                "\"image_size\": %u, \"patch_size\": %u, \"num_channels\": 3, "
                "\"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05, \"projection_dim\": %u}\n}\n",
                P, V, H, s->intermediate, s->layers, s->heads, s->max_position, P, Hv,
                s->vision_intermediate, s->vision_layers, s->vision_heads, image, patch, P);
        fclose(f);
    }
    f = rc == 0 ? open_in(dir, "preprocessor_config.json") : NULL;
    if (!f) rc = -1;
    if (f) {
        fprintf(f, "{\"crop_size\": {\"height\": 224, \"width\": 224}, \"do_center_crop\": true, "
                   "\"do_convert_rgb\": true, \"do_normalize\": true, \"do_rescale\": true, "
                   "\"do_resize\": true, \"image_mean\": [0.48145466, 0.4578275, 0.40821073], "
                   "\"image_processor_type\": \"CLIPImageProcessor\", "
                   "\"image_std\": [0.26862954, 0.26130258, 0.27577711], \"resample\": 3, "
                   "\"rescale_factor\": 0.00392156862745098, \"size\": {\"shortest_edge\": 224}}\n");
        fclose(f);
    }
    if (rc == 0) rc = write_bpe_tokenizer(dir, v, true);
    for (size_t i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    free(v);
    return rc;
}

int dc_fixture_write(const char *dir, const dc_fixture_spec *s) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dc_fixture: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (s->kind == DC_FIXTURE_ROBERTA || s->kind == DC_FIXTURE_LONGFORMER || s->kind == DC_FIXTURE_CLIP) {
        int rc = s->kind == DC_FIXTURE_CLIP ? write_clip(dir, s) : write_roberta(dir, s);
        if (rc != 0) fprintf(stderr, "dc_fixture: writing %s failed\n", dir);
        return rc;
    }
    fx_vocab *v = malloc(sizeof *v);
    if (!v) return -1;
    build_vocab(v);
    const uint32_t H = s->hidden, I = s->intermediate, V = v->n;
    bool prefixed = s->bert_prefix || s->kind == DC_FIXTURE_SPLADE || s->kind == DC_FIXTURE_COLBERT;
    const char *pre = prefixed ? "bert." : "";
    fx_list l = {0};
    l.spec = s;
    fx_param_pre(&l, pre, "embeddings.word_embeddings.weight", 2, V, H, 0.0f, 1.0f);
    fx_param_pre(&l, pre, "embeddings.position_embeddings.weight", 2, s->max_position, H, 0.0f, 0.5f);
    fx_param_pre(&l, pre, "embeddings.token_type_embeddings.weight", 2, 2, H, 0.0f, 0.5f);
    char base[160], pbase[200];
    snprintf(pbase, sizeof pbase, "%s", pre);
    fx_ln(&l, pre, "embeddings.LayerNorm", H);
    if (s->position_ids) {
        char n[200];
        snprintf(n, sizeof n, "%sembeddings.position_ids", pre);
        fx_tensor *t = fx_push(&l, n, 2, 1, s->max_position);
        if (t) {
            t->is_i64 = 1;
            free(t->data);
            t->bytes = (size_t)s->max_position * 8;
            t->data = malloc(t->bytes);
            for (uint32_t i = 0; i < s->max_position; i++) ((int64_t *)t->data)[i] = i;
        }
    }
    for (uint32_t i = 0; i < s->layers; i++) {
        const char *qkv[3] = {"query", "key", "value"};
        for (int p = 0; p < 3; p++) {
            snprintf(base, sizeof base, "encoder.layer.%u.attention.self.%s", i, qkv[p]);
            fx_linear(&l, pbase, base, H, H, true);
        }
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.dense", i);
        fx_linear(&l, pbase, base, H, H, true);
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.LayerNorm", i);
        fx_ln(&l, pre, base, H);
        snprintf(base, sizeof base, "encoder.layer.%u.intermediate.dense", i);
        fx_linear(&l, pbase, base, I, H, true);
        snprintf(base, sizeof base, "encoder.layer.%u.output.dense", i);
        fx_linear(&l, pbase, base, H, I, true);
        snprintf(base, sizeof base, "encoder.layer.%u.output.LayerNorm", i);
        fx_ln(&l, pre, base, H);
    }
    if (s->kind == DC_FIXTURE_BERT || s->kind == DC_FIXTURE_ST || s->kind == DC_FIXTURE_ST_NORM)
        fx_linear(&l, pbase, "pooler.dense", H, H, true);
    if (s->kind == DC_FIXTURE_SPLADE) {
        fx_linear(&l, "", "cls.predictions.transform.dense", H, H, true);
        fx_ln(&l, "", "cls.predictions.transform.LayerNorm", H);
        fx_param(&l, "cls.predictions.bias", 1, V, 0, -1.0f, 1.0f); /* some logits stay < 0 */
    }
    if (s->kind == DC_FIXTURE_COLBERT) fx_linear(&l, "", "linear", 128, H, false);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = l.failed ? -1 : write_safetensors(path, &l);
    if (rc == 0) rc = write_config(dir, s, V);
    if (rc == 0) rc = write_tokenizer(dir, v);
    if (rc == 0 && (s->kind == DC_FIXTURE_ST || s->kind == DC_FIXTURE_ST_NORM))
        rc = write_st_files(dir, s);
    for (size_t i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    free(v);
    if (rc != 0) fprintf(stderr, "dc_fixture: writing %s failed\n", dir);
    return rc;
}
