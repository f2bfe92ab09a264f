/* dodeca — status codes and error detail.
 *
 * Every fallible function returns a dc_status; DC_OK (0) is success. When a function fails it
 * leaves a human-readable detail in a thread-local buffer, naming the file, field, tensor or byte
 * offset at fault; dc_error_detail() returns it until the next failure on the same thread. */
#ifndef DODECA_STATUS_H
#define DODECA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Values are stable: they are part of the ABI and appear in logs and HTTP error bodies. */
typedef enum dc_status {
    DC_OK = 0,
    DC_ERR_MODEL_NOT_FOUND = 1,        /* unknown model id or missing model folder */
    DC_ERR_MODEL_LOAD = 2,             /* model files present but unusable */
    DC_ERR_INVALID_DIMENSION = 3,      /* a vector or tensor has the wrong length or shape */
    DC_ERR_INVALID_VALUE = 4,          /* NaN/Inf or a value outside its allowed range */
    DC_ERR_INPUT_TOO_LONG = 5,
    DC_ERR_EMPTY_INPUT = 6,
    DC_ERR_BATCH = 7,
    DC_ERR_FUSION = 8,
    DC_ERR_CACHE = 9,
    DC_ERR_GPU = 10,
    DC_ERR_TOKENIZATION = 11,
    DC_ERR_IO = 12,                    /* open/read/write/mmap failed (errno in the detail) */
    DC_ERR_SERIALIZATION = 13,         /* bytes that do not decode: bad magic, checksum, lengths */
    DC_ERR_TIMEOUT = 14,
    DC_ERR_NOT_INITIALIZED = 15,       /* model used before load */
    DC_ERR_UNSUPPORTED_MODALITY = 16,  /* the model does not accept this input type */
    DC_ERR_CONFIG = 17,                /* bad configuration: syntax, unknown key, out of range */
    DC_ERR_CHECKPOINT_CORRUPTED = 18,  /* weight file fails validation */
    DC_ERR_MEMORY_BUDGET_EXCEEDED = 19,
    DC_ERR_OUT_OF_MEMORY = 20,         /* allocation failed */
    DC_ERR_INVALID_ARGUMENT = 21,      /* API misuse: NULL where an object is required, bad enum */
    DC_ERR_UNSAFE_PICKLE = 22,         /* a pickle asks for something a state dict never needs */
    DC_ERR_UNSUPPORTED_FORMAT = 23,    /* a well-formed file in a format or dtype we do not read */
    DC_ERR_NOT_FOUND = 24,             /* a named item (tensor, key) is absent */
    DC_ERR_OVERLOADED = 25,            /* queue full; retry later */
    DC_ERR_INTERNAL = 26,              /* broken invariant; a bug */
    DC_ERR_CANCELLED = 27,             /* the caller cancelled the call (dc_cancel_token) */
} dc_status;

#define DC_STATUS_COUNT 28

/* Stable upper-snake name of a status, e.g. "CHECKPOINT_CORRUPTED"; "UNKNOWN_STATUS" otherwise. */
const char *dc_status_name(dc_status s);
/* Short English description, e.g. "checkpoint corrupted". */
const char *dc_status_str(dc_status s);

/* Detail of the last failure on this thread ("" if none). Valid until the next failure. */
const char *dc_error_detail(void);
void dc_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
