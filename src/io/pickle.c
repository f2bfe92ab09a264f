/* Restricted unpickler: see pickle.h. Opcode semantics follow CPython's Lib/pickletools.py
 * documentation; only the subset torch.save emits for state dicts is interpreted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/pickle.h"
#include "io/weights_internal.h"

/* ---- allowlist ---- */

static const struct {
    const char *module;
    const char *name;
} dc_pk_globals[DC_PKG_COUNT] = {
    [DC_PKG_ORDERED_DICT] = {"collections", "OrderedDict"},
    [DC_PKG_REBUILD_TENSOR] = {"torch._utils", "_rebuild_tensor"},
    [DC_PKG_REBUILD_TENSOR_V2] = {"torch._utils", "_rebuild_tensor_v2"},
    [DC_PKG_REBUILD_TENSOR_V3] = {"torch._utils", "_rebuild_tensor_v3"},
    [DC_PKG_REBUILD_PARAMETER] = {"torch._utils", "_rebuild_parameter"},
    [DC_PKG_REBUILD_PARAMETER_WITH_STATE] = {"torch._utils", "_rebuild_parameter_with_state"},
    [DC_PKG_STORAGE_FLOAT] = {"torch", "FloatStorage"},
    [DC_PKG_STORAGE_DOUBLE] = {"torch", "DoubleStorage"},
    [DC_PKG_STORAGE_HALF] = {"torch", "HalfStorage"},
    [DC_PKG_STORAGE_BFLOAT16] = {"torch", "BFloat16Storage"},
    [DC_PKG_STORAGE_LONG] = {"torch", "LongStorage"},
    [DC_PKG_STORAGE_INT] = {"torch", "IntStorage"},
    [DC_PKG_STORAGE_SHORT] = {"torch", "ShortStorage"},
    [DC_PKG_STORAGE_CHAR] = {"torch", "CharStorage"},
    [DC_PKG_STORAGE_BYTE] = {"torch", "ByteStorage"},
    [DC_PKG_STORAGE_BOOL] = {"torch", "BoolStorage"},
    [DC_PKG_STORAGE_COMPLEX_FLOAT] = {"torch", "ComplexFloatStorage"},
    [DC_PKG_STORAGE_UNTYPED] = {"torch.storage", "UntypedStorage"},
    [DC_PKG_DTYPE_FLOAT32] = {"torch", "float32"},
    [DC_PKG_DTYPE_FLOAT64] = {"torch", "float64"},
    [DC_PKG_DTYPE_FLOAT16] = {"torch", "float16"},
    [DC_PKG_DTYPE_BFLOAT16] = {"torch", "bfloat16"},
    [DC_PKG_DTYPE_INT64] = {"torch", "int64"},
    [DC_PKG_DTYPE_INT32] = {"torch", "int32"},
    [DC_PKG_DTYPE_INT16] = {"torch", "int16"},
    [DC_PKG_DTYPE_INT8] = {"torch", "int8"},
    [DC_PKG_DTYPE_UINT8] = {"torch", "uint8"},
    [DC_PKG_DTYPE_BOOL] = {"torch", "bool"},
    [DC_PKG_DTYPE_UINT16] = {"torch", "uint16"},
    [DC_PKG_DTYPE_UINT32] = {"torch", "uint32"},
    [DC_PKG_DTYPE_UINT64] = {"torch", "uint64"},
    [DC_PKG_DTYPE_FLOAT8_E4M3FN] = {"torch", "float8_e4m3fn"},
    [DC_PKG_DTYPE_FLOAT8_E5M2] = {"torch", "float8_e5m2"},
    [DC_PKG_DTYPE_FLOAT8_E4M3FNUZ] = {"torch", "float8_e4m3fnuz"},
    [DC_PKG_DTYPE_FLOAT8_E5M2FNUZ] = {"torch", "float8_e5m2fnuz"},
    [DC_PKG_DTYPE_FLOAT8_E8M0FNU] = {"torch", "float8_e8m0fnu"},
};

const char *dc_pk_global_name(dc_pk_global g) {
    static _Thread_local char buf[96];
    if ((unsigned)g >= DC_PKG_COUNT) return "?";
    snprintf(buf, sizeof buf, "%s.%s", dc_pk_globals[g].module, dc_pk_globals[g].name);
    return buf;
}

static bool dc_pk_lookup_global(const char *mod, size_t mod_len, const char *name,
                                size_t name_len, dc_pk_global *out) {
    /* torch.UntypedStorage is the same class as torch.storage.UntypedStorage */
    if (mod_len == 5 && memcmp(mod, "torch", 5) == 0 && name_len == 14 &&
        memcmp(name, "UntypedStorage", 14) == 0) {
        *out = DC_PKG_STORAGE_UNTYPED;
        return true;
    }
    for (int g = 0; g < DC_PKG_COUNT; g++) {
        if (strlen(dc_pk_globals[g].module) == mod_len &&
            memcmp(dc_pk_globals[g].module, mod, mod_len) == 0 &&
            strlen(dc_pk_globals[g].name) == name_len &&
            memcmp(dc_pk_globals[g].name, name, name_len) == 0) {
            *out = (dc_pk_global)g;
            return true;
        }
    }
    return false;
}

static bool dc_pk_is_callable(dc_pk_global g) {
    return g <= DC_PKG_REBUILD_PARAMETER_WITH_STATE;
}

/* ---- opcodes ---- */

enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2',
    OP_BINFLOAT = 'G', OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U',
    OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd',
    OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_LIST = 'l',
    OP_EMPTY_LIST = ']', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't',
    OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
    OP_PROTO = 0x80, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d,
    OP_BINBYTES8 = 0x8e, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
};

/* Opcodes that exist in the pickle protocol but that a state dict never needs. Several
 * (INST, OBJ, NEWOBJ, EXT*) construct arbitrary objects. */
static const char *dc_pk_refused_name(uint8_t op) {
    switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 'P': return "PERSID";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'p': return "PUT";
    case 'g': return "GET";
    case 0x8b: return "LONG4";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return NULL;
    }
}

/* ---- arena ---- */

typedef struct dc_pk_block {
    struct dc_pk_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} dc_pk_block;

struct dc_pickle {
    dc_pk_block *blocks;
    size_t allocated;
    size_t budget;
    bool over_budget;
    const dc_pk_value *root;
    dc_pk_value **persids; /* every BINPERSID result, in order */
    size_t npersids, persids_cap;
};

#define DC_PK_BLOCK_SIZE 65536u

static void *dc_pk_alloc(dc_pickle *p, size_t n) {
    n = (n + 15) & ~(size_t)15;
    dc_pk_block *b = p->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > DC_PK_BLOCK_SIZE / 4 ? n : DC_PK_BLOCK_SIZE;
        if (p->allocated > p->budget || cap > p->budget - p->allocated) {
            p->over_budget = true;
            return NULL;
        }
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        p->allocated += cap;
        b->used = 0;
        b->cap = cap;
        /* a dedicated big block goes second so the current small block stays in use */
        if (cap != DC_PK_BLOCK_SIZE && p->blocks) {
            b->next = p->blocks->next;
            p->blocks->next = b;
        } else {
            b->next = p->blocks;
            p->blocks = b;
        }
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

void dc_pickle_free(dc_pickle *p) {
    if (!p) return;
    dc_pk_block *b = p->blocks;
    while (b) {
        dc_pk_block *next = b->next;
        free(b);
        b = next;
    }
    free(p);
}

const dc_pk_value *dc_pickle_root(const dc_pickle *p) { return p ? p->root : NULL; }

size_t dc_pickle_persid_count(const dc_pickle *p) { return p ? p->npersids : 0; }

const dc_pk_value *dc_pickle_persid_at(const dc_pickle *p, size_t i) {
    if (!p || i >= p->npersids) return NULL;
    return p->persids[i];
}

bool dc_pk_str_eq(const dc_pk_value *v, const char *s) {
    if (!v || v->kind != DC_PK_STR) return false;
    size_t n = strlen(s);
    return v->u.str.len == n && memcmp(v->u.str.ptr, s, n) == 0;
}

/* ---- machine ---- */

typedef struct dc_pk_vm {
    dc_pickle *p;
    const uint8_t *buf;
    size_t len;
    size_t pos;
    uint64_t base;
    const char *label;
    dc_pk_value **stack;
    size_t sp, stack_cap;
    size_t marks[DC_PK_MAX_MARKS];
    size_t nmarks;
    dc_pk_value **memo;
    size_t memo_cap;
    size_t memo_count; /* filled slots: MEMOIZE's implicit index is len(memo) */
    size_t op_at;     /* offset of the opcode being run */
} dc_pk_vm;

static dc_status dc_pk_corrupt(dc_pk_vm *vm, const char *what) {
    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: pickle opcode 0x%02x at byte offset %llu: %s",
                   vm->label, vm->buf[vm->op_at], (unsigned long long)(vm->base + vm->op_at),
                   what);
}

static dc_status dc_pk_oom(dc_pk_vm *vm) {
    if (!vm->p->over_budget)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory reading the pickle", vm->label);
    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                   "%s: pickle needs more than %zu bytes of memory (limit reached at byte offset "
                   "%llu)",
                   vm->label, vm->p->budget, (unsigned long long)(vm->base + vm->op_at));
}

static dc_pk_value *dc_pk_new(dc_pk_vm *vm, dc_pk_kind kind) {
    dc_pk_value *v = dc_pk_alloc(vm->p, sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->offset = vm->base + vm->op_at;
    return v;
}

static size_t dc_pk_fence(const dc_pk_vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static dc_status dc_pk_push(dc_pk_vm *vm, dc_pk_value *v) {
    if (!v) return dc_pk_oom(vm);
    if (vm->sp == vm->stack_cap) {
        if (vm->stack_cap >= DC_PK_MAX_STACK)
            return dc_pk_corrupt(vm, "stack deeper than the limit");
        size_t ncap = vm->stack_cap ? vm->stack_cap * 2 : 64;
        if (ncap > DC_PK_MAX_STACK) ncap = DC_PK_MAX_STACK;
        dc_pk_value **s = realloc(vm->stack, ncap * sizeof *s);
        if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", vm->label);
        vm->stack = s;
        vm->stack_cap = ncap;
    }
    vm->stack[vm->sp++] = v;
    return DC_OK;
}

static dc_status dc_pk_pop(dc_pk_vm *vm, dc_pk_value **out) {
    if (vm->sp <= dc_pk_fence(vm)) return dc_pk_corrupt(vm, "stack underflow");
    *out = vm->stack[--vm->sp];
    return DC_OK;
}

static dc_status dc_pk_top(dc_pk_vm *vm, dc_pk_value **out) {
    if (vm->sp <= dc_pk_fence(vm)) return dc_pk_corrupt(vm, "stack underflow");
    *out = vm->stack[vm->sp - 1];
    return DC_OK;
}

/* Pops the topmost mark; the items above it are stack[*first .. sp). */
static dc_status dc_pk_pop_mark(dc_pk_vm *vm, size_t *first) {
    if (vm->nmarks == 0) return dc_pk_corrupt(vm, "no MARK on the stack");
    *first = vm->marks[--vm->nmarks];
    return DC_OK;
}

static dc_status dc_pk_need(dc_pk_vm *vm, size_t n) {
    if (vm->len - vm->pos < n) return dc_pk_corrupt(vm, "argument runs past the end of the data");
    return DC_OK;
}

static dc_status dc_pk_seq_reserve(dc_pk_vm *vm, dc_pk_value *v, size_t extra) {
    size_t need = v->u.seq.len + extra;
    if (need <= v->u.seq.cap) return DC_OK;
    size_t ncap = v->u.seq.cap ? v->u.seq.cap : 4;
    while (ncap < need) ncap *= 2;
    dc_pk_value **items = dc_pk_alloc(vm->p, ncap * sizeof *items);
    if (!items) return dc_pk_oom(vm);
    if (v->u.seq.len) memcpy(items, v->u.seq.items, v->u.seq.len * sizeof *items);
    v->u.seq.items = items;
    v->u.seq.cap = ncap;
    return DC_OK;
}

static dc_status dc_pk_dict_set(dc_pk_vm *vm, dc_pk_value *d, dc_pk_value *k, dc_pk_value *v) {
    if (d->u.dict.len == d->u.dict.cap) {
        size_t ncap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        dc_pk_value **keys = dc_pk_alloc(vm->p, ncap * sizeof *keys);
        dc_pk_value **vals = keys ? dc_pk_alloc(vm->p, ncap * sizeof *vals) : NULL;
        if (!vals) return dc_pk_oom(vm);
        if (d->u.dict.len) {
            memcpy(keys, d->u.dict.keys, d->u.dict.len * sizeof *keys);
            memcpy(vals, d->u.dict.vals, d->u.dict.len * sizeof *vals);
        }
        d->u.dict.keys = keys;
        d->u.dict.vals = vals;
        d->u.dict.cap = ncap;
    }
    d->u.dict.keys[d->u.dict.len] = k;
    d->u.dict.vals[d->u.dict.len] = v;
    d->u.dict.len++;
    return DC_OK;
}

/* Builds a TUPLE or LIST from stack[first .. sp) and pops those items. */
static dc_status dc_pk_collect(dc_pk_vm *vm, dc_pk_kind kind, size_t first) {
    size_t n = vm->sp - first;
    dc_pk_value *v = dc_pk_new(vm, kind);
    if (!v) return dc_pk_oom(vm);
    if (n) {
        dc_status st = dc_pk_seq_reserve(vm, v, n);
        if (st) return st;
        memcpy(v->u.seq.items, vm->stack + first, n * sizeof *v->u.seq.items);
        v->u.seq.len = n;
    }
    vm->sp = first;
    return dc_pk_push(vm, v);
}

static dc_status dc_pk_memo_put(dc_pk_vm *vm, uint64_t idx) {
    /* Picklers number memo slots from 0 upwards, so a slot beyond the input length is bogus. */
    if (idx >= DC_PK_MAX_MEMO || idx > vm->len)
        return dc_pk_corrupt(vm, "memo index too large");
    dc_pk_value *top = NULL;
    dc_status st = dc_pk_top(vm, &top);
    if (st) return st;
    if (idx >= vm->memo_cap) {
        size_t ncap = vm->memo_cap ? vm->memo_cap : 64;
        while (ncap <= idx) ncap *= 2;
        dc_pk_value **m = realloc(vm->memo, ncap * sizeof *m);
        if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", vm->label);
        memset(m + vm->memo_cap, 0, (ncap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = ncap;
    }
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = top;
    return DC_OK;
}

static dc_status dc_pk_memo_get(dc_pk_vm *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx]) {
        char what[64];
        snprintf(what, sizeof what, "memo index %llu was never stored",
                 (unsigned long long)idx);
        return dc_pk_corrupt(vm, what);
    }
    return dc_pk_push(vm, vm->memo[idx]);
}

static dc_status dc_pk_string(dc_pk_vm *vm, dc_pk_kind kind, uint64_t n, bool utf8) {
    if (vm->len - vm->pos < n) return dc_pk_corrupt(vm, "string runs past the end of the data");
    const char *s = (const char *)vm->buf + vm->pos;
    if (utf8 && !dc_utf8_valid(s, (size_t)n, NULL)) return dc_pk_corrupt(vm, "string is not UTF-8");
    dc_pk_value *v = dc_pk_new(vm, kind);
    if (!v) return dc_pk_oom(vm);
    v->u.str.ptr = s;
    v->u.str.len = (size_t)n;
    vm->pos += (size_t)n;
    return dc_pk_push(vm, v);
}

static dc_status dc_pk_unsafe_global(dc_pk_vm *vm, const char *mod, size_t mod_len,
                                     const char *name, size_t name_len) {
    return dc_fail(DC_ERR_UNSAFE_PICKLE,
                   "%s: pickle global %.*s.%.*s at byte offset %llu is not allowed (a state dict "
                   "only needs tensor-rebuilding globals)",
                   vm->label, (int)(mod_len > 128 ? 128 : mod_len), mod,
                   (int)(name_len > 128 ? 128 : name_len), name,
                   (unsigned long long)(vm->base + vm->op_at));
}

static dc_status dc_pk_push_global(dc_pk_vm *vm, const char *mod, size_t mod_len,
                                   const char *name, size_t name_len) {
    dc_pk_global g;
    if (!dc_pk_lookup_global(mod, mod_len, name, name_len, &g))
        return dc_pk_unsafe_global(vm, mod, mod_len, name, name_len);
    dc_pk_value *v = dc_pk_new(vm, DC_PK_GLOBAL);
    if (!v) return dc_pk_oom(vm);
    v->u.global = g;
    return dc_pk_push(vm, v);
}

/* GLOBAL's argument: "module\nname\n". */
static dc_status dc_pk_read_line(dc_pk_vm *vm, const char **s, size_t *n) {
    const uint8_t *start = vm->buf + vm->pos;
    size_t avail = vm->len - vm->pos;
    if (avail > 256) avail = 256;
    const uint8_t *nl = memchr(start, '\n', avail);
    if (!nl) return dc_pk_corrupt(vm, "GLOBAL name is not terminated by a newline");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return DC_OK;
}

static dc_status dc_pk_reduce(dc_pk_vm *vm) {
    dc_pk_value *args = NULL, *fn = NULL;
    dc_status st = dc_pk_pop(vm, &args);
    if (!st) st = dc_pk_pop(vm, &fn);
    if (st) return st;
    if (fn->kind != DC_PK_GLOBAL) return dc_pk_corrupt(vm, "REDUCE of something not callable");
    if (!dc_pk_is_callable(fn->u.global))
        return dc_fail(DC_ERR_UNSAFE_PICKLE,
                       "%s: pickle calls %s at byte offset %llu, which is not allowed", vm->label,
                       dc_pk_global_name(fn->u.global),
                       (unsigned long long)(vm->base + vm->op_at));
    if (args->kind != DC_PK_TUPLE) return dc_pk_corrupt(vm, "REDUCE arguments are not a tuple");
    if (fn->u.global == DC_PKG_ORDERED_DICT) {
        if (args->u.seq.len != 0)
            return dc_fail(DC_ERR_UNSAFE_PICKLE,
                           "%s: pickle calls collections.OrderedDict with arguments at byte "
                           "offset %llu",
                           vm->label, (unsigned long long)(vm->base + vm->op_at));
        return dc_pk_push(vm, dc_pk_new(vm, DC_PK_DICT));
    }
    dc_pk_value *call = dc_pk_new(vm, DC_PK_CALL);
    if (!call) return dc_pk_oom(vm);
    call->u.call.fn = fn->u.global;
    call->u.call.args = args;
    return dc_pk_push(vm, call);
}

static dc_status dc_pk_step(dc_pk_vm *vm, bool *stop) {
    vm->op_at = vm->pos;
    uint8_t op = vm->buf[vm->pos++];
    dc_status st;
    dc_pk_value *v = NULL, *k = NULL, *d = NULL;
    size_t first = 0;
    switch (op) {
    case OP_PROTO:
        if ((st = dc_pk_need(vm, 1))) return st;
        if (vm->buf[vm->pos] > 5) return dc_pk_corrupt(vm, "unknown protocol version");
        vm->pos++;
        return DC_OK;
    case OP_FRAME: {
        if ((st = dc_pk_need(vm, 8))) return st;
        uint64_t n = dc_get_u64le(vm->buf + vm->pos);
        vm->pos += 8;
        if (n > vm->len - vm->pos) return dc_pk_corrupt(vm, "frame runs past the end of the data");
        return DC_OK;
    }
    case OP_STOP:
        if (vm->nmarks) return dc_pk_corrupt(vm, "STOP with an unclosed MARK");
        if (vm->sp != 1) return dc_pk_corrupt(vm, "STOP with other than one value on the stack");
        vm->p->root = vm->stack[0];
        *stop = true;
        return DC_OK;
    case OP_MARK:
        if (vm->nmarks == DC_PK_MAX_MARKS) return dc_pk_corrupt(vm, "MARKs nested too deep");
        vm->marks[vm->nmarks++] = vm->sp;
        return DC_OK;
    case OP_POP:
        return dc_pk_pop(vm, &v);
    case OP_POP_MARK:
        if ((st = dc_pk_pop_mark(vm, &first))) return st;
        vm->sp = first;
        return DC_OK;
    case OP_DUP:
        if ((st = dc_pk_top(vm, &v))) return st;
        return dc_pk_push(vm, v);
    case OP_NONE:
        return dc_pk_push(vm, dc_pk_new(vm, DC_PK_NONE));
    case OP_NEWTRUE:
    case OP_NEWFALSE:
        if (!(v = dc_pk_new(vm, DC_PK_BOOL))) return dc_pk_oom(vm);
        v->u.b = op == OP_NEWTRUE;
        return dc_pk_push(vm, v);
    case OP_BININT:
    case OP_BININT1:
    case OP_BININT2: {
        size_t n = op == OP_BININT ? 4 : op == OP_BININT1 ? 1 : 2;
        if ((st = dc_pk_need(vm, n))) return st;
        const uint8_t *a = vm->buf + vm->pos;
        vm->pos += n;
        if (!(v = dc_pk_new(vm, DC_PK_INT))) return dc_pk_oom(vm);
        v->u.i = n == 4 ? (int64_t)(int32_t)dc_get_u32le(a) : n == 1 ? a[0] : dc_get_u16le(a);
        return dc_pk_push(vm, v);
    }
    case OP_LONG1: {
        if ((st = dc_pk_need(vm, 1))) return st;
        size_t n = vm->buf[vm->pos++];
        if ((st = dc_pk_need(vm, n))) return st;
        const uint8_t *a = vm->buf + vm->pos;
        if (n > 8) return dc_pk_string(vm, DC_PK_BIGINT, n, false);
        uint64_t u = 0;
        for (size_t i = 0; i < n; i++) u |= (uint64_t)a[i] << (8 * i);
        if (n > 0 && n < 8 && (a[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        vm->pos += n;
        if (!(v = dc_pk_new(vm, DC_PK_INT))) return dc_pk_oom(vm);
        memcpy(&v->u.i, &u, sizeof u);
        return dc_pk_push(vm, v);
    }
    case OP_BINFLOAT: {
        if ((st = dc_pk_need(vm, 8))) return st;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | vm->buf[vm->pos + (size_t)i];
        vm->pos += 8;
        if (!(v = dc_pk_new(vm, DC_PK_FLOAT))) return dc_pk_oom(vm);
        memcpy(&v->u.f, &bits, sizeof bits);
        return dc_pk_push(vm, v);
    }
    case OP_BINUNICODE:
    case OP_BINSTRING:
    case OP_BINBYTES: {
        if ((st = dc_pk_need(vm, 4))) return st;
        uint32_t n = dc_get_u32le(vm->buf + vm->pos);
        vm->pos += 4;
        if (op == OP_BINSTRING && (n & 0x80000000u))
            return dc_pk_corrupt(vm, "negative string length");
        return dc_pk_string(vm, op == OP_BINBYTES ? DC_PK_BYTES : DC_PK_STR, n,
                            op == OP_BINUNICODE);
    }
    case OP_SHORT_BINUNICODE:
    case OP_SHORT_BINSTRING:
    case OP_SHORT_BINBYTES: {
        if ((st = dc_pk_need(vm, 1))) return st;
        uint8_t n = vm->buf[vm->pos++];
        return dc_pk_string(vm, op == OP_SHORT_BINBYTES ? DC_PK_BYTES : DC_PK_STR, n,
                            op == OP_SHORT_BINUNICODE);
    }
    case OP_BINUNICODE8:
    case OP_BINBYTES8: {
        if ((st = dc_pk_need(vm, 8))) return st;
        uint64_t n = dc_get_u64le(vm->buf + vm->pos);
        vm->pos += 8;
        return dc_pk_string(vm, op == OP_BINBYTES8 ? DC_PK_BYTES : DC_PK_STR, n,
                            op == OP_BINUNICODE8);
    }
    case OP_EMPTY_DICT:
        return dc_pk_push(vm, dc_pk_new(vm, DC_PK_DICT));
    case OP_EMPTY_LIST:
        return dc_pk_push(vm, dc_pk_new(vm, DC_PK_LIST));
    case OP_EMPTY_TUPLE:
        return dc_pk_push(vm, dc_pk_new(vm, DC_PK_TUPLE));
    case OP_TUPLE:
    case OP_LIST:
        if ((st = dc_pk_pop_mark(vm, &first))) return st;
        return dc_pk_collect(vm, op == OP_TUPLE ? DC_PK_TUPLE : DC_PK_LIST, first);
    case OP_TUPLE1:
    case OP_TUPLE2:
    case OP_TUPLE3: {
        size_t n = (size_t)(op - OP_TUPLE1) + 1;
        if (vm->sp - dc_pk_fence(vm) < n) return dc_pk_corrupt(vm, "stack underflow");
        return dc_pk_collect(vm, DC_PK_TUPLE, vm->sp - n);
    }
    case OP_DICT:
        if ((st = dc_pk_pop_mark(vm, &first))) return st;
        if ((vm->sp - first) % 2) return dc_pk_corrupt(vm, "odd number of items for a dict");
        if (!(d = dc_pk_new(vm, DC_PK_DICT))) return dc_pk_oom(vm);
        for (size_t i = first; i < vm->sp; i += 2)
            if ((st = dc_pk_dict_set(vm, d, vm->stack[i], vm->stack[i + 1]))) return st;
        vm->sp = first;
        return dc_pk_push(vm, d);
    case OP_SETITEM:
        if ((st = dc_pk_pop(vm, &v)) || (st = dc_pk_pop(vm, &k)) || (st = dc_pk_top(vm, &d)))
            return st;
        if (d->kind != DC_PK_DICT) return dc_pk_corrupt(vm, "SETITEM on something not a dict");
        return dc_pk_dict_set(vm, d, k, v);
    case OP_SETITEMS:
        if ((st = dc_pk_pop_mark(vm, &first))) return st;
        if (first <= dc_pk_fence(vm)) return dc_pk_corrupt(vm, "SETITEMS without a dict");
        d = vm->stack[first - 1];
        if (d->kind != DC_PK_DICT) return dc_pk_corrupt(vm, "SETITEMS on something not a dict");
        if ((vm->sp - first) % 2) return dc_pk_corrupt(vm, "odd number of items for SETITEMS");
        for (size_t i = first; i < vm->sp; i += 2)
            if ((st = dc_pk_dict_set(vm, d, vm->stack[i], vm->stack[i + 1]))) return st;
        vm->sp = first;
        return DC_OK;
    case OP_APPEND:
        if ((st = dc_pk_pop(vm, &v)) || (st = dc_pk_top(vm, &d))) return st;
        if (d->kind != DC_PK_LIST) return dc_pk_corrupt(vm, "APPEND to something not a list");
        if ((st = dc_pk_seq_reserve(vm, d, 1))) return st;
        d->u.seq.items[d->u.seq.len++] = v;
        return DC_OK;
    case OP_APPENDS: {
        if ((st = dc_pk_pop_mark(vm, &first))) return st;
        if (first <= dc_pk_fence(vm)) return dc_pk_corrupt(vm, "APPENDS without a list");
        d = vm->stack[first - 1];
        if (d->kind != DC_PK_LIST) return dc_pk_corrupt(vm, "APPENDS to something not a list");
        size_t n = vm->sp - first;
        if ((st = dc_pk_seq_reserve(vm, d, n))) return st;
        if (n) memcpy(d->u.seq.items + d->u.seq.len, vm->stack + first, n * sizeof(v));
        d->u.seq.len += n;
        vm->sp = first;
        return DC_OK;
    }
    case OP_BINPUT:
        if ((st = dc_pk_need(vm, 1))) return st;
        return dc_pk_memo_put(vm, vm->buf[vm->pos++]);
    case OP_LONG_BINPUT: {
        if ((st = dc_pk_need(vm, 4))) return st;
        uint32_t idx = dc_get_u32le(vm->buf + vm->pos);
        vm->pos += 4;
        return dc_pk_memo_put(vm, idx);
    }
    case OP_MEMOIZE:
        return dc_pk_memo_put(vm, vm->memo_count);
    case OP_BINGET:
        if ((st = dc_pk_need(vm, 1))) return st;
        return dc_pk_memo_get(vm, vm->buf[vm->pos++]);
    case OP_LONG_BINGET: {
        if ((st = dc_pk_need(vm, 4))) return st;
        uint32_t idx = dc_get_u32le(vm->buf + vm->pos);
        vm->pos += 4;
        return dc_pk_memo_get(vm, idx);
    }
    case OP_GLOBAL: {
        const char *mod = NULL, *name = NULL;
        size_t mod_len = 0, name_len = 0;
        if ((st = dc_pk_read_line(vm, &mod, &mod_len))) return st;
        if ((st = dc_pk_read_line(vm, &name, &name_len))) return st;
        return dc_pk_push_global(vm, mod, mod_len, name, name_len);
    }
    case OP_STACK_GLOBAL:
        if ((st = dc_pk_pop(vm, &v)) || (st = dc_pk_pop(vm, &k))) return st;
        if (k->kind != DC_PK_STR || v->kind != DC_PK_STR)
            return dc_pk_corrupt(vm, "STACK_GLOBAL needs two strings");
        return dc_pk_push_global(vm, k->u.str.ptr, k->u.str.len, v->u.str.ptr, v->u.str.len);
    case OP_REDUCE:
        return dc_pk_reduce(vm);
    case OP_BUILD:
        /* OrderedDict carries its __dict__ (torch's `_metadata`) as BUILD state; it is
         * dropped. Setting state on anything else could mean running __setstate__. */
        if ((st = dc_pk_pop(vm, &v)) || (st = dc_pk_top(vm, &d))) return st;
        if (d->kind != DC_PK_DICT)
            return dc_fail(DC_ERR_UNSAFE_PICKLE,
                           "%s: pickle BUILD at byte offset %llu sets state on something other "
                           "than a dict",
                           vm->label, (unsigned long long)(vm->base + vm->op_at));
        return DC_OK;
    case OP_BINPERSID:
        if ((st = dc_pk_pop(vm, &v))) return st;
        if (!(d = dc_pk_new(vm, DC_PK_PERSID))) return dc_pk_oom(vm);
        d->u.persid = v;
        if (vm->p->npersids == vm->p->persids_cap) {
            size_t ncap = vm->p->persids_cap ? vm->p->persids_cap * 2 : 16;
            dc_pk_value **list = dc_pk_alloc(vm->p, ncap * sizeof *list);
            if (!list) return dc_pk_oom(vm);
            if (vm->p->npersids) memcpy(list, vm->p->persids, vm->p->npersids * sizeof *list);
            vm->p->persids = list;
            vm->p->persids_cap = ncap;
        }
        vm->p->persids[vm->p->npersids++] = d;
        return dc_pk_push(vm, d);
    default: {
        const char *name = dc_pk_refused_name(op);
        if (name)
            return dc_fail(DC_ERR_UNSAFE_PICKLE,
                           "%s: pickle opcode 0x%02x (%s) at byte offset %llu is not allowed in "
                           "a state dict",
                           vm->label, op, name, (unsigned long long)(vm->base + vm->op_at));
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: unknown pickle opcode 0x%02x at byte offset %llu", vm->label, op,
                       (unsigned long long)(vm->base + vm->op_at));
    }
    }
}

dc_status dc_pickle_parse(const uint8_t *buf, size_t len, uint64_t base, const char *label,
                          dc_pickle **out, size_t *consumed) {
    *out = NULL;
    if (!label) label = "<pickle>";
    dc_pickle *p = calloc(1, sizeof *p);
    if (!p) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    /* Each opcode byte yields at most one node plus amortised container growth. */
    p->budget = len < (DC_PK_MAX_BYTES - (1u << 20)) / 128 ? len * 128 + (1u << 20)
                                                           : DC_PK_MAX_BYTES;
    dc_pk_vm vm = {.p = p, .buf = buf, .len = len, .base = base, .label = label};
    dc_status st = DC_OK;
    bool stop = false;
    while (!stop) {
        if (vm.pos >= len) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: pickle ends at byte offset %llu without a STOP opcode", label,
                         (unsigned long long)(base + len));
            break;
        }
        st = dc_pk_step(&vm, &stop);
        if (st) break;
    }
    free(vm.stack);
    free(vm.memo);
    if (st) {
        dc_pickle_free(p);
        return st;
    }
    if (consumed) *consumed = vm.pos;
    *out = p;
    return DC_OK;
}
