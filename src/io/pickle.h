/* Restricted unpickler for PyTorch state dicts. It never executes anything: it interprets the
 * opcodes torch.save emits into a small tree of values, and resolves GLOBAL/STACK_GLOBAL only
 * against a fixed allowlist (collections.OrderedDict, the torch._utils tensor/parameter
 * rebuild functions, the typed storage classes and torch dtypes). A "call" (REDUCE) of an
 * allowed rebuild function becomes a DC_PK_CALL node for the caller to interpret; calling
 * OrderedDict() yields an empty dict. Anything else is refused:
 *   - a global outside the allowlist, or an opcode that can run code (INST, OBJ, NEWOBJ, EXT*,
 *     PERSID text ids, ...): DC_ERR_UNSAFE_PICKLE naming module.name / the opcode and offset;
 *   - a byte that is no pickle opcode, truncation, a bad memo index, stack underflow, values
 *     of the wrong type: DC_ERR_CHECKPOINT_CORRUPTED naming the byte offset.
 * Work and memory are bounded: stack depth, MARK nesting, memo size and total allocation are
 * capped (see DC_PK_* below), so hostile input fails fast. */
#ifndef DC_IO_PICKLE_H
#define DC_IO_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#define DC_PK_MAX_STACK 262144u   /* values on the stack at once */
#define DC_PK_MAX_MARKS 64u       /* nested MARKs (torch uses at most 4) */
#define DC_PK_MAX_MEMO 1048576u   /* memo slots */
#define DC_PK_MAX_BYTES (1u << 30) /* total bytes allocated for one pickle */

typedef enum dc_pk_kind {
    DC_PK_NONE,
    DC_PK_BOOL,
    DC_PK_INT,    /* fits in int64 */
    DC_PK_BIGINT, /* LONG1 wider than 64 bits: raw little-endian two's complement bytes */
    DC_PK_FLOAT,
    DC_PK_STR,    /* unicode (UTF-8 checked) or a protocol-2 byte string */
    DC_PK_BYTES,
    DC_PK_TUPLE,
    DC_PK_LIST,
    DC_PK_DICT,   /* insertion-ordered key/value pairs */
    DC_PK_GLOBAL, /* an allowlisted module.name */
    DC_PK_CALL,   /* REDUCE of an allowlisted rebuild function: fn(args) */
    DC_PK_PERSID, /* BINPERSID: the persistent id value (torch: the storage tuple) */
} dc_pk_kind;

/* The allowlist. */
typedef enum dc_pk_global {
    DC_PKG_ORDERED_DICT,          /* collections.OrderedDict */
    DC_PKG_REBUILD_TENSOR,        /* torch._utils._rebuild_tensor */
    DC_PKG_REBUILD_TENSOR_V2,     /* torch._utils._rebuild_tensor_v2 */
    DC_PKG_REBUILD_TENSOR_V3,     /* torch._utils._rebuild_tensor_v3 (new dtypes) */
    DC_PKG_REBUILD_PARAMETER,     /* torch._utils._rebuild_parameter */
    DC_PKG_REBUILD_PARAMETER_WITH_STATE,
    DC_PKG_STORAGE_FLOAT,         /* torch.FloatStorage ... */
    DC_PKG_STORAGE_DOUBLE,
    DC_PKG_STORAGE_HALF,
    DC_PKG_STORAGE_BFLOAT16,
    DC_PKG_STORAGE_LONG,
    DC_PKG_STORAGE_INT,
    DC_PKG_STORAGE_SHORT,
    DC_PKG_STORAGE_CHAR,
    DC_PKG_STORAGE_BYTE,
    DC_PKG_STORAGE_BOOL,
    DC_PKG_STORAGE_COMPLEX_FLOAT,
    DC_PKG_STORAGE_UNTYPED,       /* torch.storage.UntypedStorage / torch.UntypedStorage */
    DC_PKG_DTYPE_FLOAT32,         /* torch.float32 ... (arguments of _rebuild_tensor_v3) */
    DC_PKG_DTYPE_FLOAT64,
    DC_PKG_DTYPE_FLOAT16,
    DC_PKG_DTYPE_BFLOAT16,
    DC_PKG_DTYPE_INT64,
    DC_PKG_DTYPE_INT32,
    DC_PKG_DTYPE_INT16,
    DC_PKG_DTYPE_INT8,
    DC_PKG_DTYPE_UINT8,
    DC_PKG_DTYPE_BOOL,
    DC_PKG_DTYPE_UINT16,
    DC_PKG_DTYPE_UINT32,
    DC_PKG_DTYPE_UINT64,
    DC_PKG_DTYPE_FLOAT8_E4M3FN,
    DC_PKG_DTYPE_FLOAT8_E5M2,
    DC_PKG_DTYPE_FLOAT8_E4M3FNUZ,
    DC_PKG_DTYPE_FLOAT8_E5M2FNUZ,
    DC_PKG_DTYPE_FLOAT8_E8M0FNU,
    DC_PKG_COUNT
} dc_pk_global;

/* "module.name" of an allowlisted global. */
const char *dc_pk_global_name(dc_pk_global g);

typedef struct dc_pk_value dc_pk_value;
struct dc_pk_value {
    dc_pk_kind kind;
    uint64_t offset; /* byte offset (plus the caller's base) of the opcode that made it */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *ptr; /* borrowed from the input buffer; not NUL-terminated */
            size_t len;
        } str; /* STR, BYTES, BIGINT */
        struct {
            dc_pk_value **items;
            size_t len, cap;
        } seq; /* TUPLE, LIST */
        struct {
            dc_pk_value **keys, **vals;
            size_t len, cap;
        } dict;
        dc_pk_global global;
        struct {
            dc_pk_global fn;
            dc_pk_value *args; /* a TUPLE */
        } call;
        dc_pk_value *persid;
    } u;
};

typedef struct dc_pickle dc_pickle;

/* Interprets one pickle starting at buf (up to and including its STOP). `base` is added to
 * offsets in details and dc_pk_value.offset (the pickle's position in its file); `label`
 * names the file. *consumed (may be NULL) receives the number of bytes read. Strings in the
 * result borrow from buf, which must outlive the dc_pickle. The result graph may share nodes
 * (memo references) and may even contain cycles: walk it with a depth limit. */
dc_status dc_pickle_parse(const uint8_t *buf, size_t len, uint64_t base, const char *label,
                          dc_pickle **out, size_t *consumed);
const dc_pk_value *dc_pickle_root(const dc_pickle *p);
/* Every persistent-id node the pickle created (BINPERSID), in stream order: torch needs all
 * referenced storages, including those under values the caller does not otherwise visit. */
size_t dc_pickle_persid_count(const dc_pickle *p);
const dc_pk_value *dc_pickle_persid_at(const dc_pickle *p, size_t i);
void dc_pickle_free(dc_pickle *p);

/* Convenience: true when v is a STR equal to s. */
bool dc_pk_str_eq(const dc_pk_value *v, const char *s);

#endif
