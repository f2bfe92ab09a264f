/* libFuzzer target: the TOML subset parser and the configuration layers on top of it.
 * Whatever the bytes, parsing must not crash or leak; a configuration that applies must write
 * out as TOML that reads back to an equal configuration. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/toml.h"
#include "dodeca/dodeca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every value so the sanitizers see any bad pointer or length in the tree. */
static size_t walk(const dc_toml_table *t) {
    size_t sum = 0;
    for (size_t i = 0; i < t->len; i++) {
        const dc_toml_entry *e = &t->entries[i];
        sum += strlen(e->key) + e->line;
        if (dc_toml_find(t, e->key) != e) abort(); /* the key index must find every entry */
        const dc_toml_value *v = &e->value;
        if (v->type == DC_TOML_TABLE) {
            sum += walk(v->as.table);
        } else if (v->type == DC_TOML_STRING) {
            if (strlen(v->as.string.data) != v->as.string.len) abort(); /* no interior NUL */
            sum += v->as.string.len;
        } else if (v->type == DC_TOML_ARRAY) {
            for (size_t j = 0; j < v->as.array.len; j++) {
                const dc_toml_value *item = &v->as.array.items[j];
                if (item->type == DC_TOML_ARRAY || item->type == DC_TOML_TABLE) abort();
                if (item->type == DC_TOML_STRING) sum += item->as.string.len;
            }
        }
    }
    return sum;
}

static void check_round_trip(const dc_config *c) {
    char *text = NULL;
    size_t len = 0;
    if (dc_config_to_toml(c, &text, &len) != DC_OK) abort();
    dc_config *back = malloc(sizeof *back);
    if (!back) abort();
    dc_config_defaults(back);
    if (dc_config_apply_toml(back, text, len, "shown") != DC_OK) {
        fprintf(stderr, "shown config does not re-parse: %s\n%s\n", dc_error_detail(), text);
        abort();
    }
    if (!dc_config_equal(c, back)) {
        fprintf(stderr, "round trip differs:\n%s\n", text);
        abort();
    }
    free(back);
    free(text);
}

/* Splits the bytes into NUL-terminated lines and applies them as an environment. */
static void fuzz_env(dc_config *c, const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    char **env = calloc(size + 2, sizeof *env);
    if (!copy || !env) abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t n = 0;
    char *line = copy;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || copy[i] == '\n' || copy[i] == '\0') {
            copy[i] = '\0';
            env[n++] = line;
            line = copy + i + 1;
        }
    }
    env[n] = NULL;
    if (dc_config_apply_env(c, env) == DC_OK) {
        (void)dc_config_validate(c);
        check_round_trip(c);
    }
    /* the same lines as SECTION.KEY=VALUE overrides */
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(env[i], '=');
        if (!eq) continue;
        *eq = '\0';
        (void)dc_config_set(c, env[i], eq + 1);
    }
    check_round_trip(c);
    free(env);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dc_toml_table *t = NULL;
    if (dc_toml_parse((const char *)data, size, "fuzz.toml", &t) == DC_OK) {
        volatile size_t sink = walk(t);
        (void)sink;
        (void)dc_toml_get_path(t, "models.semantic.device");
        dc_toml_free(t);
    }
    dc_config *c = malloc(sizeof *c);
    if (!c) abort();
    dc_config_defaults(c);
    if (dc_config_apply_toml(c, (const char *)data, size, "fuzz.toml") == DC_OK) {
        (void)dc_config_validate(c);
        check_round_trip(c);
    }
    dc_config_defaults(c);
    fuzz_env(c, data, size);
    free(c);
    return 0;
}
