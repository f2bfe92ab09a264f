/* Tokenizer models: WordPiece (greedy longest match with a continuing-subword prefix), BPE (merge
 * ranks through a min-heap, end-of-word suffix, byte fallback, unknown-token fusion, a sharded
 * word cache) and WordLevel. Offsets are computed in the piece and mapped to the original text
 * through the piece's alignments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

#define DC_BPE_CACHE_MAX_WORD 256 /* bytes; longer words are not cached (as the reference) */
#define DC_BPE_CACHE_SHARD_WORDS 2048
#define DC_BPE_CACHE_SHARD_VALS (DC_BPE_CACHE_SHARD_WORDS * 24)

static uint16_t count_ws(const char *s, size_t len, bool from_end) {
    /* leading / trailing chars that are the byte-level space 'Ġ' or whitespace */
    uint16_t n = 0;
    if (!from_end) {
        for (size_t i = 0; i < len;) {
            uint32_t k, cp = dc_u8_decode(s + i, &k);
            if (cp != 0x120 && !dc_uc_is_whitespace(cp)) break;
            if (n < UINT16_MAX) n++;
            i += k;
        }
    } else {
        size_t i = len;
        while (i > 0) {
            size_t j = i - 1;
            while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
            uint32_t k, cp = dc_u8_decode(s + j, &k);
            if (cp != 0x120 && !dc_uc_is_whitespace(cp)) break;
            if (n < UINT16_MAX) n++;
            i = j;
        }
    }
    return n;
}

dc_status dc_tmodel_finish(dc_tmodel *m, const char *where) {
    uint32_t maxid = 0;
    for (size_t i = 0; i < m->vocab.n; i++)
        if (m->vocab.ents[i].value > maxid) maxid = m->vocab.ents[i].value;
    /* ids index dense tables: refuse gaps no real vocabulary has */
    if (m->vocab.n && (size_t)maxid > 4 * m->vocab.n + (1u << 20))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: token id %u is far above the %zu-token vocabulary",
                       where, maxid, m->vocab.n);
    m->nrev = m->vocab.n ? (size_t)maxid + 1 : 0;
    if (m->nrev) {
        m->rev_off = malloc(m->nrev * sizeof *m->rev_off);
        m->rev_len = malloc(m->nrev * sizeof *m->rev_len);
        m->lead_ws = calloc(m->nrev, 1);
        m->trail_ws = calloc(m->nrev, 1);
        if (!m->rev_off || !m->rev_len || !m->lead_ws || !m->trail_ws)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: cannot allocate the reverse vocabulary", where);
        for (size_t i = 0; i < m->nrev; i++) m->rev_len[i] = UINT32_MAX;
    }
    size_t maxkey = 0;
    for (size_t i = 0; i < m->vocab.n; i++) {
        const dc_strent *e = &m->vocab.ents[i];
        m->rev_off[e->value] = e->off;
        m->rev_len[e->value] = e->len;
        uint16_t lw = count_ws(m->vocab.blob + e->off, e->len, false);
        uint16_t tw = count_ws(m->vocab.blob + e->off, e->len, true);
        m->lead_ws[e->value] = (uint8_t)(lw > 255 ? 255 : lw);
        m->trail_ws[e->value] = (uint8_t)(tw > 255 ? 255 : tw);
        if (e->len > maxkey) maxkey = e->len;
    }
    m->max_key_len = maxkey;
    m->unk_id = -1;
    if (m->unk) {
        uint32_t id;
        if (dc_strmap_get(&m->vocab, m->unk, strlen(m->unk), &id)) m->unk_id = id;
    }
    if (m->kind == DC_MODEL_BPE) {
        /* initial symbols of byte-level words, one table per (first, last) position */
        char buf[64];
        for (int v = 0; v < 4; v++) {
            bool not_first = v & 1, last = v & 2;
            for (int b = 0; b < 256; b++) {
                size_t n = 0;
                if (not_first && m->cont_prefix) {
                    size_t pl = strlen(m->cont_prefix);
                    if (pl > 40) pl = 40;
                    memcpy(buf, m->cont_prefix, pl);
                    n = pl;
                }
                n += dc_u8_encode(dc_bytelevel_cp((uint8_t)b), buf + n);
                if (last && m->eow_suffix) {
                    size_t sl = strlen(m->eow_suffix);
                    if (sl > 16) sl = 16;
                    memcpy(buf + n, m->eow_suffix, sl);
                    n += sl;
                }
                uint32_t id;
                m->byte_ids[v][b] = dc_strmap_get(&m->vocab, buf, n, &id) ? (int32_t)id : -1;
            }
        }
        m->byte_ids_ready = true;
    }
    if (m->kind == DC_MODEL_BPE || m->kind == DC_MODEL_WORDPIECE) {
        m->cache = calloc(DC_BPE_CACHE_SHARDS, sizeof *m->cache);
        if (!m->cache) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: cannot allocate the word cache", where);
        for (int i = 0; i < DC_BPE_CACHE_SHARDS; i++) pthread_mutex_init(&m->cache[i].mu, NULL);
    }
    return DC_OK;
}

void dc_tmodel_free(dc_tmodel *m) {
    dc_strmap_free(&m->vocab);
    free(m->rev_off);
    free(m->rev_len);
    free(m->lead_ws);
    free(m->trail_ws);
    free(m->unk);
    free(m->prefix);
    dc_pairmap_free(&m->merges);
    free(m->cont_prefix);
    free(m->eow_suffix);
    if (m->cache) {
        for (int i = 0; i < DC_BPE_CACHE_SHARDS; i++) {
            pthread_mutex_destroy(&m->cache[i].mu);
            dc_strmap_free(&m->cache[i].map);
            free(m->cache[i].vals);
        }
        free(m->cache);
    }
    memset(m, 0, sizeof *m);
}

static dc_status push_tok(dc_ctx *c, const dc_tmodel *m, uint32_t id, const dc_piece *p,
                          uint32_t a, uint32_t b) {
    dc_status st = DC_GROW(c->toks, c->cap_toks, c->ntoks + 1);
    if (st) return st;
    dc_tok *t = &c->toks[c->ntoks++];
    memset(t, 0, sizeof *t);
    t->id = id;
    if (b > a) {
        t->bstart = dc_piece_span(c, p, a).start;
        t->bend = dc_piece_span(c, p, b - 1).end;
    } else { /* the reference keeps an empty range as it is, in the piece */
        t->bstart = p->ostart + a;
        t->bend = p->ostart + b;
    }
    if (id < m->nrev && m->rev_len[id] != UINT32_MAX) {
        t->lead_ws = m->lead_ws[id];
        t->trail_ws = m->trail_ws[id];
    }
    return DC_OK;
}

static dc_status scratch(dc_ctx *c, size_t n) { return DC_GROW(c->scratch, c->cap_scratch, n); }

/* ---------- WordPiece ---------- */

static dc_status wordpiece_run(dc_ctx *c, const dc_tmodel *m, const dc_piece *p) {
    c->n_wp_len = 0;
    if (DC_GROW(c->wp_len, c->cap_wp_len, 1)) return dc_fail(DC_ERR_OUT_OF_MEMORY, "WordPiece: out of memory");
    c->wp_len[0] = p->len; /* a whole-word [UNK] */
    uint32_t nchars = 0;
    for (uint32_t i = 0; i < p->len; i++) nchars += ((uint8_t)p->s[i] & 0xC0) != 0x80;
    if (nchars > m->max_chars) {
        if (m->unk_id < 0)
            return dc_fail(DC_ERR_TOKENIZATION, "WordPiece: unknown token \"%s\" missing from the vocabulary",
                           m->unk ? m->unk : "");
        return push_tok(c, m, (uint32_t)m->unk_id, p, 0, p->len);
    }
    dc_status st = scratch(c, m->prefix_len + p->len + 1);
    if (st) return st;
    memcpy(c->scratch, m->prefix, m->prefix_len);
    size_t mark = c->ntoks;
    uint32_t start = 0;
    while (start < p->len) {
        size_t pre = start ? m->prefix_len : 0;
        uint32_t end = p->len;
        if (m->max_key_len >= pre && end - start > m->max_key_len - pre) {
            end = start + (uint32_t)(m->max_key_len - pre);
            while (end > start && ((uint8_t)p->s[end] & 0xC0) == 0x80) end--;
        }
        bool found = false;
        uint32_t id = 0;
        while (end > start) {
            const char *key;
            size_t klen;
            if (start) {
                memcpy(c->scratch + m->prefix_len, p->s + start, end - start);
                key = c->scratch;
                klen = m->prefix_len + (end - start);
            } else {
                key = p->s;
                klen = end;
            }
            dc_tokenizer_work_add(1);
            if (dc_strmap_get(&m->vocab, key, klen, &id)) {
                found = true;
                break;
            }
            end--;
            while (end > start && ((uint8_t)p->s[end] & 0xC0) == 0x80) end--;
        }
        if (!found) {
            c->ntoks = mark; /* the whole word is unknown */
            c->n_wp_len = 0;
            c->wp_len[0] = p->len;
            if (m->unk_id < 0)
                return dc_fail(DC_ERR_TOKENIZATION,
                               "WordPiece: unknown token \"%s\" missing from the vocabulary",
                               m->unk ? m->unk : "");
            return push_tok(c, m, (uint32_t)m->unk_id, p, 0, p->len);
        }
        if ((st = push_tok(c, m, id, p, start, end))) return st;
        if ((st = DC_GROW(c->wp_len, c->cap_wp_len, c->n_wp_len + 1))) return st;
        c->wp_len[c->n_wp_len++] = end - start;
        start = end;
    }
    return DC_OK;
}


/* ---------- WordLevel ---------- */

static dc_status wordlevel(dc_ctx *c, const dc_tmodel *m, const dc_piece *p) {
    uint32_t id;
    if (dc_strmap_get(&m->vocab, p->s, p->len, &id)) return push_tok(c, m, id, p, 0, p->len);
    if (m->unk_id < 0)
        return dc_fail(DC_ERR_TOKENIZATION, "WordLevel: unknown token \"%s\" missing from the vocabulary",
                       m->unk ? m->unk : "");
    return push_tok(c, m, (uint32_t)m->unk_id, p, 0, p->len);
}

/* ---------- BPE ---------- */

static inline bool merge_less(const dc_bpe_merge *a, const dc_bpe_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(dc_bpe_merge *h, size_t *n, dc_bpe_merge x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&x, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

static dc_bpe_merge heap_pop(dc_bpe_merge *h, size_t *n) {
    dc_bpe_merge top = h[0];
    dc_bpe_merge x = h[--*n];
    size_t i = 0, len = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= len) break;
        size_t r = l + 1, m = (r < len && merge_less(&h[r], &h[l])) ? r : l;
        if (!merge_less(&h[m], &x)) break;
        h[i] = h[m];
        i = m;
    }
    if (len) h[i] = x;
    return top;
}

typedef struct dc_bpe_word {
    size_t n;       /* symbols */
    uint32_t unk_id; /* pending unknown */
    uint32_t unk_len;
    bool unk;
} dc_bpe_word;

static dc_status bpe_add(dc_ctx *c, dc_bpe_word *w, uint32_t id, uint32_t len) {
    dc_status st = DC_GROW(c->syms, c->cap_syms, w->n + 1);
    if (st) return st;
    dc_bpe_sym *s = &c->syms[w->n];
    s->id = id;
    s->len = len;
    s->prev = (int32_t)w->n - 1;
    s->next = -1;
    if (w->n) c->syms[w->n - 1].next = (int32_t)w->n;
    w->n++;
    return DC_OK;
}

static dc_status bpe_flush_unk(dc_ctx *c, dc_bpe_word *w) {
    if (!w->unk) return DC_OK;
    w->unk = false;
    return bpe_add(c, w, w->unk_id, w->unk_len);
}

/* One unit (a char, or a byte of a byte-level piece) that is not in the vocabulary. */
static dc_status bpe_unknown(dc_ctx *c, const dc_tmodel *m, dc_bpe_word *w, const char *s,
                             size_t slen, uint32_t unit_len, bool *added) {
    *added = false;
    if (m->byte_fallback) {
        bool all = true;
        for (size_t k = 0; k < slen && all; k++) {
            char code[8];
            uint32_t id;
            snprintf(code, sizeof code, "<0x%02X>", (unsigned)(uint8_t)s[k]);
            all = dc_strmap_get(&m->vocab, code, strlen(code), &id);
        }
        if (all) {
            for (size_t k = 0; k < slen; k++) {
                char code[8];
                uint32_t id = 0;
                snprintf(code, sizeof code, "<0x%02X>", (unsigned)(uint8_t)s[k]);
                dc_strmap_get(&m->vocab, code, strlen(code), &id);
                dc_status st = bpe_flush_unk(c, w);
                if (!st) st = bpe_add(c, w, id, 1);
                if (st) return st;
            }
            *added = true;
            return DC_OK;
        }
    }
    if (!m->unk) return DC_OK; /* no unknown token: the unit is dropped */
    if (m->unk_id < 0)
        return dc_fail(DC_ERR_TOKENIZATION, "BPE: unknown token \"%s\" missing from the vocabulary", m->unk);
    if (w->unk && m->fuse_unk) {
        w->unk_len += unit_len;
    } else {
        dc_status st = bpe_flush_unk(c, w);
        if (st) return st;
        w->unk = true;
        w->unk_id = (uint32_t)m->unk_id;
        w->unk_len = unit_len;
    }
    return DC_OK;
}

static dc_status bpe_initial(dc_ctx *c, const dc_tmodel *m, const dc_piece *p, dc_bpe_word *w) {
    size_t pl = m->cont_prefix ? strlen(m->cont_prefix) : 0;
    size_t sl = m->eow_suffix ? strlen(m->eow_suffix) : 0;
    dc_status st = scratch(c, pl + sl + 16);
    if (st) return st;
    for (uint32_t i = 0; i < p->len;) {
        uint32_t n = p->bytelevel ? 1 : dc_u8_len((uint8_t)p->s[i]);
        if (i + n > p->len) n = p->len - i;
        bool first = i == 0, last = i + n == p->len;
        int32_t id = -1;
        size_t klen = 0;
        if (p->bytelevel) {
            id = m->byte_ids[(last ? 2 : 0) | (first ? 0 : 1)][(uint8_t)p->s[i]];
        }
        if (id < 0) {
            /* the unit's string with the prefix / suffix, as the reference looks it up */
            if (!first && m->cont_prefix) {
                memcpy(c->scratch, m->cont_prefix, pl);
                klen = pl;
            }
            if (p->bytelevel) {
                klen += dc_u8_encode(dc_bytelevel_cp((uint8_t)p->s[i]), c->scratch + klen);
            } else {
                memcpy(c->scratch + klen, p->s + i, n);
                klen += n;
            }
            if (last && m->eow_suffix) {
                memcpy(c->scratch + klen, m->eow_suffix, sl);
                klen += sl;
            }
            uint32_t v;
            if (!p->bytelevel && dc_strmap_get(&m->vocab, c->scratch, klen, &v)) id = (int32_t)v;
        }
        if (id >= 0) {
            if ((st = bpe_flush_unk(c, w))) return st;
            if ((st = bpe_add(c, w, (uint32_t)id, n))) return st;
        } else {
            bool added;
            if ((st = bpe_unknown(c, m, w, c->scratch, klen, n, &added))) return st;
        }
        i += n;
    }
    return bpe_flush_unk(c, w);
}

static dc_status bpe_merge_all(dc_ctx *c, const dc_tmodel *m, size_t n) {
    dc_status st = DC_GROW(c->heap, c->cap_heap, n + 1);
    if (st) return st;
    dc_bpe_sym *s = c->syms;
    size_t hn = 0;
    uint32_t rank, id;
    for (size_t i = 0; i + 1 < n; i++)
        if (dc_pairmap_get(&m->merges, s[i].id, s[i + 1].id, &rank, &id))
            heap_push(c->heap, &hn, (dc_bpe_merge){rank, (uint32_t)i, id});
    uint64_t steps = 0;
    while (hn) {
        dc_bpe_merge top = heap_pop(c->heap, &hn);
        steps++;
        dc_bpe_sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        dc_bpe_sym *right = &s[cur->next];
        uint32_t r2, id2;
        if (!dc_pairmap_get(&m->merges, cur->id, right->id, &r2, &id2) || id2 != top.id) continue;
        cur->id = top.id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) s[cur->next].prev = (int32_t)top.pos;
        /* heap size never exceeds the live pairs plus the two new ones */
        if ((st = DC_GROW(c->heap, c->cap_heap, hn + 2))) return st;
        s = c->syms;
        cur = &s[top.pos];
        if (cur->prev >= 0 && dc_pairmap_get(&m->merges, s[cur->prev].id, cur->id, &rank, &id))
            heap_push(c->heap, &hn, (dc_bpe_merge){rank, (uint32_t)cur->prev, id});
        if (cur->next >= 0 && dc_pairmap_get(&m->merges, cur->id, s[cur->next].id, &rank, &id))
            heap_push(c->heap, &hn, (dc_bpe_merge){rank, top.pos, id});
    }
    dc_tokenizer_work_add(steps + n);
    return DC_OK;
}

/* Cache key: a flag byte (byte-level or not) followed by the piece's bytes. */
static dc_bpe_cache_shard *cache_shard(const dc_tmodel *m, const char *key, size_t klen,
                                       uint32_t *h) {
    *h = dc_strmap_hash(key, klen);
    return &m->cache[(*h >> 24) % DC_BPE_CACHE_SHARDS];
}

static bool cache_get(dc_ctx *c, const dc_tmodel *m, const char *key, size_t klen, size_t *n) {
    uint32_t h;
    dc_bpe_cache_shard *sh = cache_shard(m, key, klen, &h);
    if (pthread_mutex_trylock(&sh->mu)) return false;
    uint32_t off;
    bool hit = dc_strmap_get_h(&sh->map, key, klen, h, &off);
    if (hit) {
        uint32_t cnt = sh->vals[off];
        if (DC_GROW(c->cached, c->cap_cached, (size_t)cnt * 2)) {
            hit = false;
        } else {
            if (cnt) memcpy(c->cached, sh->vals + off + 1, (size_t)cnt * 2 * sizeof(uint32_t));
            *n = cnt;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

/* Stores the word's tokens: `pairs` holds n (id, length) pairs. */
static void cache_put(const dc_tmodel *m, const char *key, size_t klen, const uint32_t *pairs,
                      size_t n) {
    uint32_t h;
    dc_bpe_cache_shard *sh = cache_shard(m, key, klen, &h);
    if (pthread_mutex_trylock(&sh->mu)) return;
    if (sh->map.n >= DC_BPE_CACHE_SHARD_WORDS || sh->nvals + 1 + 2 * n > DC_BPE_CACHE_SHARD_VALS) {
        dc_strmap_clear(&sh->map); /* full: start over rather than grow without bound */
        sh->nvals = 0;
    }
    if (1 + 2 * n <= DC_BPE_CACHE_SHARD_VALS && !DC_GROW(sh->vals, sh->cap_vals, sh->nvals + 1 + 2 * n)) {
        size_t off = sh->nvals;
        if (!dc_strmap_put(&sh->map, key, klen, (uint32_t)off)) {
            sh->vals[off] = (uint32_t)n;
            if (n) memcpy(sh->vals + off + 1, pairs, 2 * n * sizeof *pairs);
            sh->nvals = off + 1 + 2 * n;
        }
    }
    pthread_mutex_unlock(&sh->mu);
}

/* The cache key of a piece: a flag byte (byte-level or not), then its bytes. */
static size_t cache_key(const dc_piece *p, char *key) {
    key[0] = (char)(p->bytelevel ? 1 : 0);
    memcpy(key + 1, p->s, p->len);
    return (size_t)p->len + 1;
}

/* Replays cached tokens; true on a hit. */
static bool cache_replay(dc_ctx *c, const dc_tmodel *m, const dc_piece *p, const char *key,
                         size_t klen, dc_status *st) {
    size_t n;
    if (!cache_get(c, m, key, klen, &n)) return false;
    uint32_t pos = 0;
    *st = DC_OK;
    for (size_t i = 0; i < n && !*st; i++) {
        uint32_t id = c->cached[2 * i], len = c->cached[2 * i + 1];
        *st = push_tok(c, m, id, p, pos, pos + len);
        pos += len;
    }
    dc_tokenizer_work_add(1);
    return true;
}

static dc_status bpe(dc_ctx *c, const dc_tmodel *m, const dc_piece *p) {
    dc_status st;
    if (m->ignore_merges) {
        const char *k = p->s;
        size_t klen = p->len;
        if (p->bytelevel) {
            if ((st = scratch(c, (size_t)p->len * 2 + 1))) return st;
            klen = 0;
            for (uint32_t i = 0; i < p->len; i++)
                klen += dc_u8_encode(dc_bytelevel_cp((uint8_t)p->s[i]), c->scratch + klen);
            k = c->scratch;
        }
        uint32_t id;
        if (dc_strmap_get(&m->vocab, k, klen, &id)) return push_tok(c, m, id, p, 0, p->len);
    }
    bool use_cache = m->cache && p->len < DC_BPE_CACHE_MAX_WORD;
    char key[DC_BPE_CACHE_MAX_WORD + 1];
    size_t klen = use_cache ? cache_key(p, key) : 0;
    if (use_cache && cache_replay(c, m, p, key, klen, &st)) return st;
    dc_bpe_word w = {0};
    if ((st = bpe_initial(c, m, p, &w))) return st;
    if ((st = bpe_merge_all(c, m, w.n))) return st;
    uint32_t pos = 0;
    size_t live = 0;
    for (size_t i = 0; i < w.n; i++) {
        const dc_bpe_sym *sy = &c->syms[i];
        if (!sy->len) continue;
        if ((st = push_tok(c, m, sy->id, p, pos, pos + sy->len))) return st;
        pos += sy->len;
        if (use_cache && !DC_GROW(c->cached, c->cap_cached, 2 * live + 2)) {
            c->cached[2 * live] = sy->id;
            c->cached[2 * live + 1] = sy->len;
            live++;
        } else {
            use_cache = false;
        }
    }
    if (use_cache) cache_put(m, key, klen, c->cached, live);
    return DC_OK;
}

/* WordPiece results depend only on the word: cached like BPE words. */
static dc_status wordpiece(dc_ctx *c, const dc_tmodel *m, const dc_piece *p) {
    bool use_cache = m->cache && p->len < DC_BPE_CACHE_MAX_WORD;
    char key[DC_BPE_CACHE_MAX_WORD + 1];
    size_t klen = use_cache ? cache_key(p, key) : 0;
    dc_status st;
    if (use_cache && cache_replay(c, m, p, key, klen, &st)) return st;
    size_t mark = c->ntoks;
    if ((st = wordpiece_run(c, m, p)) || !use_cache) return st;
    size_t n = c->ntoks - mark;
    if (n != (c->n_wp_len ? c->n_wp_len : 1)) return DC_OK; /* not a plain word; keep it out */
    if (DC_GROW(c->cached, c->cap_cached, 2 * n + 2)) return DC_OK;
    /* the word's tokens are contiguous; their lengths were recorded by wordpiece_run */
    for (size_t i = 0; i < n; i++) {
        c->cached[2 * i] = c->toks[mark + i].id;
        c->cached[2 * i + 1] = c->wp_len[i];
    }
    cache_put(m, key, klen, c->cached, n);
    return DC_OK;
}

dc_status dc_tmodel_tokenize(dc_ctx *c, const dc_tmodel *m, const dc_piece *p) {
    if (!p->len) return DC_OK;
    if (p->bytelevel && m->kind != DC_MODEL_BPE) { /* only BPE reads byte-level pieces as bytes */
        dc_piece q = *p;
        dc_status st = dc_piece_materialize_bytelevel(c, &q);
        return st ? st : dc_tmodel_tokenize(c, m, &q);
    }
    switch (m->kind) {
    case DC_MODEL_WORDPIECE:
        return wordpiece(c, m, p);
    case DC_MODEL_BPE:
        return bpe(c, m, p);
    case DC_MODEL_WORDLEVEL:
        return wordlevel(c, m, p);
    }
    return dc_fail(DC_ERR_INTERNAL, "tokenizer: bad model kind %d", (int)m->kind);
}
