/* Configuration layers: a TOML file, DODECA_* environment variables and KEY=VALUE overrides,
 * each applied all-or-nothing through the settings table; and equality of two configs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/error.h"
#include "core/utf8.h"

/* ---------------------------------------------------------------- applying a TOML tree */

/* Lists the keys of [section], or of a model table when section is NULL. */
static void join_names(char *buf, size_t cap, const char *section) {
    buf[0] = '\0';
    for (size_t i = 0; i < dc_cfg_setting_count(); i++) {
        dc_cfg_setting s = dc_cfg_setting_at(i);
        bool want = section ? s.model < 0 && strcmp(s.field->section, section) == 0 : s.model == 0;
        if (!want) continue;
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", s.field->key);
    }
}

static dc_status apply_entry(dc_config *c, const dc_cfg_setting *s, const dc_toml_entry *e,
                             const char *source) {
    char where[DC_CONFIG_PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%u:%u", source, (unsigned)e->value.line,
             (unsigned)e->value.column);
    dc_status st = dc_cfg_assign(c, s, &e->value, where);
    if (!st) c->provenance.line[s->index] = e->line ? e->line : 1;
    return st;
}

static dc_status apply_model_table(dc_config *c, const dc_toml_entry *me, const char *source) {
    dc_model_id id;
    if (dc_model_id_parse(me->key, &id) != DC_OK) {
        char names[256] = "";
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s%s", m ? ", " : "",
                     dc_model_info_get((dc_model_id)m)->name);
        }
        return dc_fail(DC_ERR_CONFIG, "%s:%u: unknown model table [models.%s] (models: %s)", source,
                       (unsigned)me->line, me->key, names);
    }
    const char *name = dc_model_info_get(id)->name;
    if (strcmp(name, me->key) != 0)
        return dc_fail(DC_ERR_CONFIG, "%s:%u: write [models.%s] for [models.%s]", source,
                       (unsigned)me->line, name, me->key);
    const dc_toml_table *t = me->value.as.table;
    for (size_t i = 0; i < t->len; i++) {
        const dc_toml_entry *e = &t->entries[i];
        char dotted[256];
        snprintf(dotted, sizeof dotted, "models.%s.%s", name, e->key);
        dc_cfg_setting s;
        if (!dc_cfg_lookup(dotted, &s) || s.model < 0) {
            char known[512];
            join_names(known, sizeof known, NULL);
            return dc_fail(DC_ERR_CONFIG, "%s:%u: unknown key 'models.%s.%s' (keys of a model: %s)",
                           source, (unsigned)e->line, name, e->key, known);
        }
        dc_status st = apply_entry(c, &s, e, source);
        if (st) return st;
    }
    return DC_OK;
}

static dc_status apply_tree(dc_config *c, const dc_toml_table *root, const char *source) {
    snprintf(c->provenance.file, sizeof c->provenance.file, "%s", source);
    for (size_t i = 0; i < root->len; i++) {
        const dc_toml_entry *se = &root->entries[i];
        size_t sec = 0;
        while (sec < dc_cfg_section_count && strcmp(dc_cfg_sections[sec], se->key) != 0) sec++;
        if (sec == dc_cfg_section_count || se->value.type != DC_TOML_TABLE) {
            char names[256] = "";
            for (size_t k = 0; k < dc_cfg_section_count; k++) {
                size_t len = strlen(names);
                snprintf(names + len, sizeof names - len, "%s[%s]", k ? ", " : "",
                         dc_cfg_sections[k]);
            }
            if (se->value.type != DC_TOML_TABLE)
                return dc_fail(DC_ERR_CONFIG,
                               "%s:%u: unknown top-level key '%s' (settings belong in a section: "
                               "%s)",
                               source, (unsigned)se->line, se->key, names);
            return dc_fail(DC_ERR_CONFIG, "%s:%u: unknown section [%s] (sections: %s)", source,
                           (unsigned)se->line, se->key, names);
        }
        const char *section = dc_cfg_sections[sec];
        const dc_toml_table *t = se->value.as.table;
        for (size_t j = 0; j < t->len; j++) {
            const dc_toml_entry *e = &t->entries[j];
            dc_status st;
            if (sec == 0 && e->value.type == DC_TOML_TABLE) {
                st = apply_model_table(c, e, source);
            } else {
                char dotted[256];
                snprintf(dotted, sizeof dotted, "%s.%s", section, e->key);
                dc_cfg_setting s;
                if (!dc_cfg_lookup(dotted, &s) || s.model >= 0) {
                    char known[512];
                    join_names(known, sizeof known, section);
                    return dc_fail(DC_ERR_CONFIG, "%s:%u: unknown key '%s.%s' (keys of [%s]: %s)",
                                   source, (unsigned)e->line, section, e->key, section, known);
                }
                st = apply_entry(c, &s, e, source);
            }
            if (st) return st;
        }
    }
    return DC_OK;
}

dc_status dc_config_apply_toml(dc_config *c, const char *text, size_t len, const char *source) {
    if (!c || (!text && len)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_apply_toml: NULL");
    if (!source) source = "<config>";
    dc_toml_table *root = NULL;
    dc_status st = dc_toml_parse(text, len, source, &root);
    if (st) return st;
    dc_config *tmp = malloc(sizeof *tmp); /* all or nothing: work on a copy */
    if (!tmp) {
        dc_toml_free(root);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory applying %s", source);
    }
    *tmp = *c;
    st = apply_tree(tmp, root, source);
    if (!st) *c = *tmp;
    free(tmp);
    dc_toml_free(root);
    return st;
}

#define DC_CONFIG_FILE_MAX (16u << 20)

dc_status dc_config_apply_file(dc_config *c, const char *path) {
    if (!c || !path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_apply_file: NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "cannot open config file %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    dc_status st = DC_OK;
    while (buf) {
        if (len == cap) {
            if (cap >= DC_CONFIG_FILE_MAX) {
                st = dc_fail(DC_ERR_CONFIG, "%s: config file larger than %u bytes", path,
                             DC_CONFIG_FILE_MAX);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                st = dc_fail(DC_ERR_IO, "cannot read config file %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    if (!st) st = dc_config_apply_toml(c, buf, len, path);
    free(buf);
    return st;
}

dc_status dc_config_load_file(const char *path, dc_config *c) {
    if (!c) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_load_file: NULL config");
    dc_config_defaults(c);
    dc_status st = dc_config_apply_file(c, path);
    if (!st) st = dc_config_validate(c);
    if (st) {
        dc_config_defaults(c);
        return st;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------- text values (env, flags) */

/* Reads a number or boolean written as in TOML ("64", "1_000", "0.5", "true"). */
static bool scalar_from_text(const char *text, dc_toml_value *out) {
    size_t n = strlen(text);
    char *buf = malloc(n + 5);
    if (!buf) return false;
    memcpy(buf, "v = ", 4);
    memcpy(buf + 4, text, n + 1);
    dc_toml_table *t = NULL;
    bool ok = dc_toml_parse(buf, n + 4, "<value>", &t) == DC_OK && t->len == 1 &&
              t->entries[0].value.type != DC_TOML_STRING &&
              t->entries[0].value.type != DC_TOML_ARRAY;
    if (ok) *out = t->entries[0].value;
    dc_toml_free(t);
    free(buf);
    return ok;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* A string list from text: a TOML array ('["A=x", "B=y"]') when the text starts with '[',
 * otherwise the whole text is the only entry. Entries are regular expressions, so commas
 * cannot separate them. */
static dc_status assign_string_list_text(dc_config *c, const dc_cfg_setting *s, const char *text,
                                         const char *where, const char *key) {
    size_t bad;
    if (!dc_utf8_valid(text, strlen(text), &bad))
        return dc_cfg_fail(where, key, "value is not valid UTF-8 (byte %zu)", bad);
    const char *t = text;
    while (*t == ' ' || *t == '\t') t++;
    if (*t != '[') {
        dc_toml_value item = {0};
        item.type = DC_TOML_STRING;
        item.as.string.data = (char *)text;
        item.as.string.len = strlen(text);
        dc_toml_value v = {0};
        v.type = DC_TOML_ARRAY;
        v.as.array.items = &item;
        v.as.array.len = *text ? 1 : 0; /* "" is the empty list */
        return dc_cfg_assign(c, s, &v, where);
    }
    size_t n = strlen(t);
    char *buf = malloc(n + 5);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(buf, "v = ", 4);
    memcpy(buf + 4, t, n + 1);
    dc_toml_table *tree = NULL;
    dc_status st = dc_toml_parse(buf, n + 4, "<value>", &tree);
    if (st || tree->len != 1 || tree->entries[0].value.type != DC_TOML_ARRAY)
        st = dc_cfg_fail(where, key, "expected a TOML array of strings, got \"%.60s\"", text);
    else
        st = dc_cfg_assign(c, s, &tree->entries[0].value, where);
    dc_toml_free(tree);
    free(buf);
    return st;
}

static dc_status assign_text(dc_config *c, const dc_cfg_setting *s, const char *text,
                             const char *where) {
    char key[160];
    dc_cfg_key_name(s, key, sizeof key);
    dc_cfg_kind kind = s->field->kind;
    dc_toml_value v = {0};
    if (kind == DC_CFG_STRING || kind == DC_CFG_DEVICE || kind == DC_CFG_QUANT ||
        kind == DC_CFG_PADDING || kind == DC_CFG_EVICTION || kind == DC_CFG_PII ||
        kind == DC_CFG_PII_SENSITIVITY || kind == DC_CFG_POOLING || kind == DC_CFG_NORMALIZE) {
        size_t bad;
        if (!dc_utf8_valid(text, strlen(text), &bad))
            return dc_cfg_fail(where, key, "value is not valid UTF-8 (byte %zu)", bad);
        v.type = DC_TOML_STRING;
        v.as.string.data = (char *)text;
        v.as.string.len = strlen(text);
        return dc_cfg_assign(c, s, &v, where);
    }
    if (kind == DC_CFG_STRING_LIST) return assign_string_list_text(c, s, text, where, key);
    if (kind != DC_CFG_U32_LIST && kind != DC_CFG_MODEL_LIST) {
        if (!scalar_from_text(text, &v)) {
            const char *want = kind == DC_CFG_BOOL  ? "true or false"
                               : kind == DC_CFG_F64 ? "a number"
                                                    : "an integer";
            return dc_cfg_fail(where, key, "expected %s, got \"%.60s\"", want, text);
        }
        return dc_cfg_assign(c, s, &v, where);
    }
    /* Lists: comma-separated items ("0,1", "semantic, code"); "" is the empty list. */
    char *copy = malloc(strlen(text) + 1);
    dc_toml_value *items = calloc(strlen(text) / 2 + 2, sizeof *items);
    dc_status st = DC_OK;
    if (!copy || !items) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        strcpy(copy, text);
        char *body = trim(copy);
        size_t blen = strlen(body);
        if (blen >= 2 && body[0] == '[' && body[blen - 1] == ']') { /* "[0, 1]" reads too */
            body[blen - 1] = '\0';
            body = trim(body + 1);
        }
        size_t n = 0;
        for (char *item = body; *item;) {
            char *comma = strchr(item, ',');
            if (comma) *comma = '\0';
            char *t = trim(item);
            if (!*t) {
                st = dc_cfg_fail(where, key, "empty item in the list \"%.60s\"", text);
                break;
            }
            size_t tl = strlen(t);
            if (tl >= 2 && t[0] == '"' && t[tl - 1] == '"') { /* ["semantic", "code"] */
                t[tl - 1] = '\0';
                t++;
            }
            if (kind == DC_CFG_MODEL_LIST) {
                items[n].type = DC_TOML_STRING;
                items[n].as.string.data = t;
                items[n].as.string.len = strlen(t);
            } else if (!scalar_from_text(t, &items[n])) {
                st = dc_cfg_fail(where, key, "expected integers separated by commas, got \"%.60s\"",
                                 text);
                break;
            }
            n++;
            if (!comma) break;
            item = comma + 1;
        }
        if (!st) {
            v.type = DC_TOML_ARRAY;
            v.as.array.items = items;
            v.as.array.len = n;
            st = dc_cfg_assign(c, s, &v, where);
        }
    }
    free(items);
    free(copy);
    return st;
}

dc_status dc_config_set(dc_config *c, const char *key, const char *value) {
    if (!c || !key || !value) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_set: NULL");
    dc_cfg_setting s;
    if (!dc_cfg_lookup(key, &s))
        return dc_fail(DC_ERR_CONFIG,
                       "unknown setting '%s' (settings are written section.key, "
                       "e.g. batch.max_batch_size or models.semantic.device)",
                       key);
    dc_status st = assign_text(c, &s, value, "override");
    if (!st) c->provenance.line[s.index] = DC_CONFIG_FROM_OVERRIDE;
    return st;
}

static bool ignored_env(const char *name, size_t len) {
    static const char *const exact[] = {"DODECA_CONFIG", "DODECA_CONFORMANCE_DIR",
                                        "DODECA_LOG_LEVEL", "DODECA_LOG_FORMAT"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == len && strncmp(name, exact[i], len) == 0) return true;
    return strncmp(name, "DODECA_TEST_", 12) == 0 || strncmp(name, "DODECA_BENCH_", 13) == 0;
}

static dc_status apply_env(dc_config *c, char *const *envp) {
    char name[192];
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *var = envp[i];
        if (strncmp(var, "DODECA_", 7) != 0) continue;
        const char *eq = strchr(var, '=');
        size_t nl = eq ? (size_t)(eq - var) : strlen(var);
        if (ignored_env(var, nl)) continue;
        size_t idx = 0, count = dc_cfg_setting_count();
        dc_cfg_setting s = {0};
        for (; idx < count; idx++) {
            s = dc_cfg_setting_at(idx);
            dc_cfg_env_name(&s, name, sizeof name);
            if (strlen(name) == nl && strncmp(var, name, nl) == 0) break;
        }
        if (idx == count)
            return dc_fail(
                DC_ERR_CONFIG,
                "unknown environment variable %.*s (settings are DODECA_<SECTION>_<KEY>, "
                "e.g. DODECA_BATCH_MAX_BATCH_SIZE)",
                (int)(nl > 120 ? 120 : nl), var);
        char where[224];
        snprintf(where, sizeof where, "environment variable %s", name);
        dc_status st = assign_text(c, &s, eq ? eq + 1 : "", where);
        if (st) return st;
        c->provenance.line[s.index] = DC_CONFIG_FROM_ENV;
    }
    return DC_OK;
}

dc_status dc_config_apply_env(dc_config *c, char *const *envp) {
    if (!c) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_apply_env: NULL config");
    dc_config *tmp = malloc(sizeof *tmp);
    if (!tmp) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory applying the environment");
    *tmp = *c;
    dc_status st = apply_env(tmp, envp);
    if (!st) *c = *tmp;
    free(tmp);
    return st;
}

/* ---------------------------------------------------------------- equality */

bool dc_config_equal(const dc_config *a, const dc_config *b) {
    for (size_t i = 0; i < dc_cfg_setting_count(); i++) {
        dc_cfg_setting s = dc_cfg_setting_at(i);
        const void *pa = dc_cfg_cptr(a, &s), *pb = dc_cfg_cptr(b, &s);
        const dc_cfg_field *f = s.field;
        bool same = true;
        switch (f->kind) {
        case DC_CFG_BOOL:
            same = *(const bool *)pa == *(const bool *)pb;
            break;
        case DC_CFG_U32:
            same = *(const uint32_t *)pa == *(const uint32_t *)pb;
            break;
        case DC_CFG_U64:
            same = *(const uint64_t *)pa == *(const uint64_t *)pb;
            break;
        case DC_CFG_F64: {
            double x = *(const double *)pa, y = *(const double *)pb;
            same = x == y || (isnan(x) && isnan(y));
            break;
        }
        case DC_CFG_STRING:
            same = strcmp(pa, pb) == 0;
            break;
        case DC_CFG_DEVICE: {
            const dc_device *x = pa, *y = pb;
            same = x->kind == y->kind && x->index == y->index;
            break;
        }
        case DC_CFG_QUANT:
            same = *(const dc_quantization *)pa == *(const dc_quantization *)pb;
            break;
        case DC_CFG_PADDING:
            same = *(const dc_padding_strategy *)pa == *(const dc_padding_strategy *)pb;
            break;
        case DC_CFG_EVICTION:
            same = *(const dc_eviction_policy *)pa == *(const dc_eviction_policy *)pb;
            break;
        case DC_CFG_PII:
            same = *(const dc_pii_mode *)pa == *(const dc_pii_mode *)pb;
            break;
        case DC_CFG_PII_SENSITIVITY:
            same = *(const dc_pii_sensitivity *)pa == *(const dc_pii_sensitivity *)pb;
            break;
        case DC_CFG_POOLING:
            same = *(const dc_pooling_mode *)pa == *(const dc_pooling_mode *)pb;
            break;
        case DC_CFG_NORMALIZE:
            same = *(const dc_normalize_mode *)pa == *(const dc_normalize_mode *)pb;
            break;
        case DC_CFG_STRING_LIST: {
            uint32_t na = *(const uint32_t *)((const char *)a + f->count_offset);
            uint32_t nb = *(const uint32_t *)((const char *)b + f->count_offset);
            same = na == nb;
            for (uint32_t k = 0; same && k < na && k < f->size; k++)
                same = strcmp((const char *)pa + k * f->item_size,
                              (const char *)pb + k * f->item_size) == 0;
            break;
        }
        case DC_CFG_U32_LIST:
        case DC_CFG_MODEL_LIST: {
            uint32_t na = *(const uint32_t *)((const char *)a + f->count_offset);
            uint32_t nb = *(const uint32_t *)((const char *)b + f->count_offset);
            size_t elem = f->kind == DC_CFG_U32_LIST ? sizeof(uint32_t) : sizeof(dc_model_id);
            same = na == nb && memcmp(pa, pb, na * elem) == 0;
            break;
        }
        }
        if (!same) return false;
    }
    return true;
}
