/* Model folders: tokenizer.json when present; otherwise the tokenizer that transformers'
 * slow→fast converters build from vocab.txt (BERT WordPiece) or vocab.json + merges.txt
 * (RoBERTa byte-level BPE, or CLIP when the folder says so). The equivalent tokenizer.json tree
 * is assembled here and goes through the same parser. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "text/tok_internal.h"

dc_status dc_read_whole_file(const char *path, char **data, size_t *len);
dc_status dc_tokenizer_from_cjson(const cJSON *root, const char *origin, dc_tokenizer **out);
dc_status dc_tokenizer_load_folder(const char *dir, dc_tokenizer **out);

#define DC_MAX_TOKENIZER_FILE ((size_t)1 << 30)

dc_status dc_read_whole_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return dc_fail(DC_ERR_IO, "%s: not a regular file", path);
    }
    if ((size_t)sb.st_size > DC_MAX_TOKENIZER_FILE) {
        fclose(f);
        return dc_fail(DC_ERR_IO, "%s: %lld bytes is too large", path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return dc_fail(DC_ERR_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return DC_OK;
}

static bool file_exists(const char *dir, const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Parses an optional JSON file of the folder; NULL when absent or unreadable. */
static cJSON *read_json_opt(const char *dir, const char *name) {
    char path[4096];
    if (!file_exists(dir, name, path, sizeof path)) return NULL;
    char *data;
    size_t len;
    if (dc_read_whole_file(path, &data, &len)) return NULL;
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    return j;
}

/* A special token named in tokenizer_config.json or special_tokens_map.json (a string or an
 * {"content": ...} object), or `def`. */
static const char *config_token(const cJSON *cfg, const cJSON *map, const char *key,
                                const char *def) {
    const cJSON *srcs[2] = {map, cfg};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_IsObject(srcs[i]) ? cJSON_GetObjectItemCaseSensitive(srcs[i], key) : NULL;
        if (cJSON_IsString(v) && v->valuestring) return v->valuestring;
        const cJSON *c = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "content") : NULL;
        if (cJSON_IsString(c) && c->valuestring) return c->valuestring;
    }
    return def;
}

static bool config_bool(const cJSON *cfg, const char *key, bool def) {
    const cJSON *v = cJSON_IsObject(cfg) ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int64_t vocab_id(const cJSON *vocab, const char *tok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vocab, tok);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static void add_token(cJSON *arr, const cJSON *vocab, const char *content, bool lstrip,
                      bool normalized) {
    int64_t id = vocab_id(vocab, content);
    if (id < 0) return;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", (double)id);
    cJSON_AddStringToObject(t, "content", content);
    cJSON_AddBoolToObject(t, "single_word", false);
    cJSON_AddBoolToObject(t, "lstrip", lstrip);
    cJSON_AddBoolToObject(t, "rstrip", false);
    cJSON_AddBoolToObject(t, "normalized", normalized);
    cJSON_AddBoolToObject(t, "special", true);
    cJSON_AddItemToArray(arr, t);
}

static cJSON *pair(const char *tok, int64_t id) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(tok));
    cJSON_AddItemToArray(a, cJSON_CreateNumber((double)(id < 0 ? 0 : id)));
    return a;
}

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* vocab.txt: one token per line, the line number is the id. */
static dc_status bert_from_vocab_txt(const char *dir, const char *path, const cJSON *cfg,
                                     const cJSON *map, cJSON *root) {
    char *data;
    size_t len;
    dc_status st = dc_read_whole_file(path, &data, &len);
    if (st) return st;
    cJSON *vocab = cJSON_CreateObject();
    size_t id = 0, i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t te = e;
        if (te > i && data[te - 1] == '\r') te--;
        char save = data[te];
        data[te] = '\0';
        /* a repeated token keeps its last line, as later entries overwrite in parse_vocab */
        cJSON_AddItemToObject(vocab, data + i, cJSON_CreateNumber((double)id));
        data[te] = save;
        id++;
        i = e + 1;
    }
    free(data);
    (void)dir;
    const char *unk = config_token(cfg, map, "unk_token", "[UNK]");
    const char *cls = config_token(cfg, map, "cls_token", "[CLS]");
    const char *sep = config_token(cfg, map, "sep_token", "[SEP]");
    const char *pad = config_token(cfg, map, "pad_token", "[PAD]");
    const char *mask = config_token(cfg, map, "mask_token", "[MASK]");
    bool lower = config_bool(cfg, "do_lower_case", true);

    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    const char *specials[5] = {pad, unk, cls, sep, mask};
    for (int k = 0; k < 5; k++) add_token(added, vocab, specials[k], false, false);

    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "BertNormalizer");
    cJSON_AddBoolToObject(norm, "clean_text", true);
    cJSON_AddBoolToObject(norm, "handle_chinese_chars", config_bool(cfg, "tokenize_chinese_chars", true));
    const cJSON *sa = cJSON_IsObject(cfg) ? cJSON_GetObjectItemCaseSensitive(cfg, "strip_accents") : NULL;
    if (cJSON_IsBool(sa)) cJSON_AddBoolToObject(norm, "strip_accents", cJSON_IsTrue(sa));
    else cJSON_AddNullToObject(norm, "strip_accents");
    cJSON_AddBoolToObject(norm, "lowercase", lower);
    cJSON_AddItemToObject(root, "pre_tokenizer", typed("BertPreTokenizer"));

    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    cJSON_AddStringToObject(post, "type", "BertProcessing");
    cJSON_AddItemToObject(post, "sep", pair(sep, vocab_id(vocab, sep)));
    cJSON_AddItemToObject(post, "cls", pair(cls, vocab_id(vocab, cls)));

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "WordPiece");
    cJSON_AddStringToObject(model, "unk_token", unk);
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "##");
    cJSON_AddNumberToObject(model, "max_input_chars_per_word", 100);
    cJSON_AddItemToObject(model, "vocab", vocab);
    return DC_OK;
}

/* merges.txt: a "#version" header line, then "a b" per line. */
static dc_status read_merges(const char *path, size_t limit, cJSON **out) {
    char *data;
    size_t len;
    dc_status st = dc_read_whole_file(path, &data, &len);
    if (st) return st;
    cJSON *arr = cJSON_CreateArray();
    size_t i = 0, n = 0, line = 0;
    while (i < len && n < limit) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t te = e;
        if (te > i && data[te - 1] == '\r') te--;
        bool header = line == 0 && te - i >= 8 && !memcmp(data + i, "#version", 8);
        if (te > i && !header) {
            char save = data[te];
            data[te] = '\0';
            cJSON_AddItemToArray(arr, cJSON_CreateString(data + i));
            data[te] = save;
            n++;
        }
        line++;
        i = e + 1;
    }
    free(data);
    *out = arr;
    return DC_OK;
}

static dc_status bpe_from_files(const char *dir, const char *vocab_path, const char *merges_path,
                                const cJSON *cfg, const cJSON *map, cJSON *root) {
    char *data;
    size_t len;
    dc_status st = dc_read_whole_file(vocab_path, &data, &len);
    if (st) return st;
    cJSON *vocab = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsObject(vocab)) {
        cJSON_Delete(vocab);
        return dc_fail(DC_ERR_SERIALIZATION, "%s: not a JSON object of token: id", vocab_path);
    }
    const cJSON *cls_name = cJSON_IsObject(cfg) ? cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class") : NULL;
    bool clip = (cJSON_IsString(cls_name) && strstr(cls_name->valuestring, "CLIP")) ||
                (vocab_id(vocab, "<|startoftext|>") >= 0 && vocab_id(vocab, "a</w>") >= 0);
    (void)dir;
    cJSON *merges;
    /* the CLIP tokenizer reads 49152 - 256 - 2 merges at most */
    if ((st = read_merges(merges_path, clip ? 48894 : (size_t)-1, &merges))) {
        cJSON_Delete(vocab);
        return st;
    }
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(root, "model", model);
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    if (clip) {
        const char *bos = config_token(cfg, map, "bos_token", "<|startoftext|>");
        const char *eos = config_token(cfg, map, "eos_token", "<|endoftext|>");
        const char *unk = config_token(cfg, map, "unk_token", "<|endoftext|>");
        add_token(added, vocab, bos, false, true);
        add_token(added, vocab, eos, false, false);
        cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
        cJSON_AddStringToObject(norm, "type", "Sequence");
        cJSON *nl = cJSON_AddArrayToObject(norm, "normalizers");
        cJSON_AddItemToArray(nl, typed("NFC"));
        cJSON *rep = typed("Replace");
        cJSON *pat = cJSON_AddObjectToObject(rep, "pattern");
        cJSON_AddStringToObject(pat, "Regex", "\\s+");
        cJSON_AddStringToObject(rep, "content", " ");
        cJSON_AddItemToArray(nl, rep);
        cJSON_AddItemToArray(nl, typed("Lowercase"));
        cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *pl = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *split = typed("Split");
        cJSON *sp = cJSON_AddObjectToObject(split, "pattern");
        cJSON_AddStringToObject(sp, "Regex",
                                "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+");
        cJSON_AddStringToObject(split, "behavior", "Removed");
        cJSON_AddBoolToObject(split, "invert", true);
        cJSON_AddItemToArray(pl, split);
        cJSON *bl = typed("ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", false);
        cJSON_AddItemToArray(pl, bl);
        cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
        cJSON_AddStringToObject(post, "type", "RobertaProcessing");
        cJSON_AddItemToObject(post, "sep", pair(eos, vocab_id(vocab, eos)));
        cJSON_AddItemToObject(post, "cls", pair(bos, vocab_id(vocab, bos)));
        cJSON_AddBoolToObject(post, "trim_offsets", false);
        cJSON_AddBoolToObject(post, "add_prefix_space", false);
        cJSON_AddStringToObject(model, "unk_token", unk);
        cJSON_AddStringToObject(model, "end_of_word_suffix", "</w>");
    } else {
        const char *bos = config_token(cfg, map, "bos_token", "<s>");
        const char *eos = config_token(cfg, map, "eos_token", "</s>");
        const char *cls = config_token(cfg, map, "cls_token", bos);
        const char *sep = config_token(cfg, map, "sep_token", eos);
        const char *unk = config_token(cfg, map, "unk_token", "<unk>");
        const char *pad = config_token(cfg, map, "pad_token", "<pad>");
        const char *mask = config_token(cfg, map, "mask_token", "<mask>");
        bool aps = config_bool(cfg, "add_prefix_space", false);
        bool trim = config_bool(cfg, "trim_offsets", true);
        add_token(added, vocab, cls, false, true);
        add_token(added, vocab, pad, false, true);
        add_token(added, vocab, sep, false, true);
        add_token(added, vocab, unk, false, true);
        add_token(added, vocab, mask, true, true);
        cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(pre, "type", "ByteLevel");
        cJSON_AddBoolToObject(pre, "add_prefix_space", aps);
        cJSON_AddBoolToObject(pre, "trim_offsets", trim);
        cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
        cJSON_AddStringToObject(post, "type", "RobertaProcessing");
        cJSON_AddItemToObject(post, "sep", pair(sep, vocab_id(vocab, sep)));
        cJSON_AddItemToObject(post, "cls", pair(cls, vocab_id(vocab, cls)));
        cJSON_AddBoolToObject(post, "trim_offsets", trim);
        cJSON_AddBoolToObject(post, "add_prefix_space", aps);
    }
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    return DC_OK;
}

dc_status dc_tokenizer_load_folder(const char *dir, dc_tokenizer **out) {
    char path[4096], path2[4096];
    if (file_exists(dir, "tokenizer.json", path, sizeof path)) return dc_tokenizer_load(path, out);
    cJSON *cfg = read_json_opt(dir, "tokenizer_config.json");
    cJSON *map = read_json_opt(dir, "special_tokens_map.json");
    cJSON *root = cJSON_CreateObject();
    dc_status st;
    char origin[4200];
    if (file_exists(dir, "vocab.txt", path, sizeof path)) {
        snprintf(origin, sizeof origin, "%s (from vocab.txt)", dir);
        st = bert_from_vocab_txt(dir, path, cfg, map, root);
    } else if (file_exists(dir, "vocab.json", path, sizeof path) &&
               file_exists(dir, "merges.txt", path2, sizeof path2)) {
        snprintf(origin, sizeof origin, "%s (from vocab.json + merges.txt)", dir);
        st = bpe_from_files(dir, path, path2, cfg, map, root);
    } else {
        st = dc_fail(DC_ERR_NOT_FOUND,
                     "%s: no tokenizer.json, vocab.txt, or vocab.json + merges.txt in the folder", dir);
    }
    if (!st) st = dc_tokenizer_from_cjson(root, origin, out);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    return st;
}
