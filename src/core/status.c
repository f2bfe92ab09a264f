#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define DC_DETAIL_CAP 1024

static _Thread_local char dc_detail[DC_DETAIL_CAP];

static const struct {
    const char *name;
    const char *text;
} dc_status_table[DC_STATUS_COUNT] = {
    [DC_OK] = {"OK", "success"},
    [DC_ERR_MODEL_NOT_FOUND] = {"MODEL_NOT_FOUND", "model not found"},
    [DC_ERR_MODEL_LOAD] = {"MODEL_LOAD", "model load error"},
    [DC_ERR_INVALID_DIMENSION] = {"INVALID_DIMENSION", "invalid dimension"},
    [DC_ERR_INVALID_VALUE] = {"INVALID_VALUE", "invalid value"},
    [DC_ERR_INPUT_TOO_LONG] = {"INPUT_TOO_LONG", "input too long"},
    [DC_ERR_EMPTY_INPUT] = {"EMPTY_INPUT", "empty input"},
    [DC_ERR_BATCH] = {"BATCH", "batch error"},
    [DC_ERR_FUSION] = {"FUSION", "fusion error"},
    [DC_ERR_CACHE] = {"CACHE", "cache error"},
    [DC_ERR_GPU] = {"GPU", "GPU error"},
    [DC_ERR_TOKENIZATION] = {"TOKENIZATION", "tokenization error"},
    [DC_ERR_IO] = {"IO", "I/O error"},
    [DC_ERR_SERIALIZATION] = {"SERIALIZATION", "serialization error"},
    [DC_ERR_TIMEOUT] = {"TIMEOUT", "timeout"},
    [DC_ERR_NOT_INITIALIZED] = {"NOT_INITIALIZED", "not initialized"},
    [DC_ERR_UNSUPPORTED_MODALITY] = {"UNSUPPORTED_MODALITY", "unsupported modality"},
    [DC_ERR_CONFIG] = {"CONFIG", "configuration error"},
    [DC_ERR_CHECKPOINT_CORRUPTED] = {"CHECKPOINT_CORRUPTED", "checkpoint corrupted"},
    [DC_ERR_MEMORY_BUDGET_EXCEEDED] = {"MEMORY_BUDGET_EXCEEDED", "memory budget exceeded"},
    [DC_ERR_OUT_OF_MEMORY] = {"OUT_OF_MEMORY", "out of memory"},
    [DC_ERR_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", "invalid argument"},
    [DC_ERR_UNSAFE_PICKLE] = {"UNSAFE_PICKLE", "unsafe pickle refused"},
    [DC_ERR_UNSUPPORTED_FORMAT] = {"UNSUPPORTED_FORMAT", "unsupported format"},
    [DC_ERR_NOT_FOUND] = {"NOT_FOUND", "not found"},
    [DC_ERR_OVERLOADED] = {"OVERLOADED", "overloaded"},
    [DC_ERR_INTERNAL] = {"INTERNAL", "internal error"},
    [DC_ERR_CANCELLED] = {"CANCELLED", "cancelled"},
};

const char *dc_status_name(dc_status s) {
    if ((unsigned)s >= DC_STATUS_COUNT) return "UNKNOWN_STATUS";
    return dc_status_table[s].name;
}

const char *dc_status_str(dc_status s) {
    if ((unsigned)s >= DC_STATUS_COUNT) return "unknown status";
    return dc_status_table[s].text;
}

const char *dc_error_detail(void) { return dc_detail; }

void dc_error_clear(void) { dc_detail[0] = '\0'; }

dc_status dc_fail(dc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dc_detail, sizeof dc_detail, fmt, ap);
    va_end(ap);
    return s;
}

dc_status dc_fail_context(dc_status s, const char *fmt, ...) {
    char old[DC_DETAIL_CAP];
    memcpy(old, dc_detail, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dc_detail, sizeof dc_detail, fmt, ap);
    va_end(ap);
    /* Append ": <old detail>", truncating at the buffer end (details are for people, so a cut
     * tail is acceptable; a cut head would lose the context). */
    size_t used = n < 0 ? 0 : (size_t)n;
    if (old[0] && used + 2 < sizeof dc_detail) {
        memcpy(dc_detail + used, ": ", 2);
        used += 2;
        size_t room = sizeof dc_detail - used - 1;
        size_t len = strlen(old);
        if (len > room) len = room;
        memcpy(dc_detail + used, old, len);
        dc_detail[used + len] = '\0';
    }
    return s;
}
