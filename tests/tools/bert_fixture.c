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
    uint64_t shape[2];
    void *data;
    size_t bytes;
} fx_tensor;

typedef struct fx_list {
    fx_tensor *t;
    size_t n, cap;
    const dc_fixture_spec *spec;
    int failed;
} fx_list;

static fx_tensor *fx_push(fx_list *l, const char *name, uint32_t ndim, uint64_t d0, uint64_t d1) {
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
    if (l->spec->bad_shape && !strcmp(l->spec->bad_shape, name)) d0 += 1;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    size_t numel = ndim == 1 ? d0 : d0 * d1;
    t->bytes = numel * sizeof(float);
    t->data = malloc(t->bytes ? t->bytes : 1);
    if (!t->data) {
        l->failed = 1;
        return NULL;
    }
    l->n++;
    return t;
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
    if (!strcmp(name, "bert")) {
        *o = (dc_fixture_spec){DC_FIXTURE_BERT, 32, 2, 4, 64, 40, 0, 1, false, false, true, NULL, NULL};
    } else if (!strcmp(name, "e11")) {
        *o = (dc_fixture_spec){DC_FIXTURE_ST_NORM, 384, 2, 12, 96, 64, 24, 11, false, false, false, NULL, NULL};
    } else if (!strcmp(name, "e8")) {
        *o = (dc_fixture_spec){DC_FIXTURE_ST, 384, 2, 6, 96, 64, 16, 8, false, false, false, NULL, NULL};
    } else if (!strcmp(name, "e1")) {
        *o = (dc_fixture_spec){DC_FIXTURE_ST_NORM, 1024, 1, 16, 64, 64, 32, 1001, false, false, false, NULL, NULL};
    } else if (!strcmp(name, "e6")) {
        *o = (dc_fixture_spec){DC_FIXTURE_SPLADE, 32, 2, 4, 64, 48, 0, 6, true, false, false, NULL, NULL};
    } else if (!strcmp(name, "e12")) {
        *o = (dc_fixture_spec){DC_FIXTURE_COLBERT, 32, 2, 4, 64, 48, 0, 12, true, false, false, NULL, NULL};
    } else {
        return false;
    }
    return true;
}

int dc_fixture_write(const char *dir, const dc_fixture_spec *s) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dc_fixture: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
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
