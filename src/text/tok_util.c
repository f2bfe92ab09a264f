/* Containers for the tokenizer: growable arrays, string and pair hash maps, the added-token trie,
 * the per-thread work counter. */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "text/tok_internal.h"

dc_status dc_tok_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return DC_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: array too large");
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate %zu bytes", nc * elem);
    *p = q;
    *cap = nc;
    return DC_OK;
}

static _Thread_local uint64_t dc_work_counter;
uint64_t dc_tokenizer_work(void) { return dc_work_counter; }
void dc_tokenizer_work_add(uint64_t n) { dc_work_counter += n; }

/* ---------- string map ---------- */

uint32_t dc_strmap_hash(const char *k, size_t len) {
    return (uint32_t)XXH3_64bits(k, len);
}

static dc_status strmap_rehash(dc_strmap *m, size_t nslots) {
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate a hash table");
    uint32_t mask = (uint32_t)(nslots - 1);
    for (size_t e = 0; e < m->n; e++) {
        uint32_t i = m->ents[e].hash & mask;
        while (slots[i]) i = (i + 1) & mask;
        slots[i] = (uint32_t)e + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return DC_OK;
}

bool dc_strmap_get_h(const dc_strmap *m, const char *k, size_t len, uint32_t h, uint32_t *value) {
    if (!m->slots) return false;
    uint32_t i = h & m->mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (!s) return false;
        const dc_strent *e = &m->ents[s - 1];
        if (e->hash == h && e->len == len && memcmp(m->blob + e->off, k, len) == 0) {
            *value = e->value;
            return true;
        }
        i = (i + 1) & m->mask;
    }
}

bool dc_strmap_get(const dc_strmap *m, const char *k, size_t len, uint32_t *value) {
    if (!m->slots) return false;
    return dc_strmap_get_h(m, k, len, dc_strmap_hash(k, len), value);
}

dc_status dc_strmap_put(dc_strmap *m, const char *k, size_t len, uint32_t value) {
    if (len > UINT32_MAX / 2) return dc_fail(DC_ERR_INVALID_VALUE, "tokenizer: key too long");
    uint32_t h = dc_strmap_hash(k, len);
    if (m->slots) {
        uint32_t i = h & m->mask;
        for (;;) {
            uint32_t s = m->slots[i];
            if (!s) break;
            dc_strent *e = &m->ents[s - 1];
            if (e->hash == h && e->len == len && memcmp(m->blob + e->off, k, len) == 0) {
                e->value = value;
                return DC_OK;
            }
            i = (i + 1) & m->mask;
        }
    }
    dc_status st;
    if ((st = DC_GROW(m->ents, m->cap, m->n + 1))) return st;
    if ((st = DC_GROW(m->blob, m->blob_cap, m->blob_len + len + 1))) return st;
    if (m->blob_len + len + 1 > UINT32_MAX) return dc_fail(DC_ERR_INVALID_VALUE, "tokenizer: vocabulary too large");
    memcpy(m->blob + m->blob_len, k, len);
    m->blob[m->blob_len + len] = '\0'; /* so id_to_token can hand out C strings */
    m->ents[m->n] = (dc_strent){(uint32_t)m->blob_len, (uint32_t)len, h, value};
    m->blob_len += len + 1;
    m->n++;
    size_t nslots = m->slots ? (size_t)m->mask + 1 : 0;
    if (m->n * 4 >= nslots * 3) { /* keep the load under 3/4; rehash inserts the new entry */
        size_t ns = nslots ? nslots * 2 : 64;
        while (m->n * 4 >= ns * 3) ns *= 2;
        return strmap_rehash(m, ns);
    }
    uint32_t i = h & m->mask;
    while (m->slots[i]) i = (i + 1) & m->mask;
    m->slots[i] = (uint32_t)m->n;
    return DC_OK;
}

void dc_strmap_clear(dc_strmap *m) {
    if (m->slots) memset(m->slots, 0, ((size_t)m->mask + 1) * sizeof *m->slots);
    m->n = 0;
    m->blob_len = 0;
}

void dc_strmap_free(dc_strmap *m) {
    free(m->slots);
    free(m->ents);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

/* ---------- pair map ---------- */

dc_status dc_pairmap_init(dc_pairmap *m, size_t expected) {
    size_t ns = 64;
    while (ns * 3 < expected * 4 + 4) ns *= 2;
    m->keys = malloc(ns * sizeof *m->keys);
    m->vals = malloc(ns * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate the merge table");
    }
    memset(m->keys, 0xFF, ns * sizeof *m->keys);
    m->mask = (uint32_t)(ns - 1);
    m->n = 0;
    return DC_OK;
}

static dc_status pairmap_resize(dc_pairmap *m) {
    dc_pairmap nm;
    dc_status st = dc_pairmap_init(&nm, (m->mask + 1) * 2);
    if (st) return st;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] == UINT64_MAX) continue;
        uint64_t h = m->keys[i] * 0x9E3779B97F4A7C15ull;
        uint32_t j = (uint32_t)(h >> 32) & nm.mask;
        while (nm.keys[j] != UINT64_MAX) j = (j + 1) & nm.mask;
        nm.keys[j] = m->keys[i];
        nm.vals[j] = m->vals[i];
        nm.n++;
    }
    dc_pairmap_free(m);
    *m = nm;
    return DC_OK;
}

dc_status dc_pairmap_put(dc_pairmap *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id) {
    if (!m->keys) {
        dc_status st = dc_pairmap_init(m, 64);
        if (st) return st;
    }
    if ((m->n + 1) * 4 >= ((size_t)m->mask + 1) * 3) {
        dc_status st = pairmap_resize(m);
        if (st) return st;
    }
    uint64_t k = ((uint64_t)a << 32) | b;
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & m->mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != k) i = (i + 1) & m->mask;
    if (m->keys[i] == UINT64_MAX) m->n++;
    m->keys[i] = k;
    m->vals[i] = ((uint64_t)rank << 32) | id;
    return DC_OK;
}

void dc_pairmap_free(dc_pairmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---------- added-token trie ---------- */

dc_status dc_trie_add(dc_trie *t, const char *s, size_t len, int32_t added) {
    dc_status st;
    if (!t->n) {
        if ((st = DC_GROW(t->nodes, t->cap, 1))) return st;
        t->nodes[0] = (dc_trie_node){-1, -1, -1, 0};
        t->n = 1;
    }
    int32_t cur = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t ch = t->nodes[cur].child;
        while (ch >= 0 && t->nodes[ch].byte != b) ch = t->nodes[ch].sibling;
        if (ch < 0) {
            if ((st = DC_GROW(t->nodes, t->cap, t->n + 1))) return st;
            ch = (int32_t)t->n++;
            t->nodes[ch] = (dc_trie_node){-1, t->nodes[cur].child, -1, b};
            t->nodes[cur].child = ch;
        }
        cur = ch;
    }
    if (t->nodes[cur].added < 0) t->count++;
    t->nodes[cur].added = added;
    if (len) t->first[(uint8_t)s[0]] = true;
    return DC_OK;
}

void dc_trie_free(dc_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

void dc_pattern_free(dc_pattern *p) {
    free(p->lit);
    dc_regex_free(&p->re);
    memset(p, 0, sizeof *p);
}
