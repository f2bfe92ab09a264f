/* The CPU's FP8 / FP4 codecs (src/tensor/quant_fp8.c, quant_fp4.c) are compiled into this
 * library too: nvfp4 / mxfp4 weights are encoded on the host at load by the same code the CPU
 * tests check bit for bit. Their dc_fail calls land here and go to the host's thread-local
 * detail through dc_cu_fail, as the library's own failures do (hidden symbols: the host's
 * dc_fail is not shadowed). */
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "gpu/cu_internal.h"

static dc_status forward(dc_status s, const char *suffix, const char *fmt, va_list ap) {
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return dc_cu_fail(s, "%s%s", msg, suffix);
}

dc_status dc_fail(dc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dc_status r = forward(s, "", fmt, ap);
    va_end(ap);
    return r;
}

/* The host's detail cannot be read from here: the context replaces it. */
dc_status dc_fail_context(dc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dc_status r = forward(s, ": failed", fmt, ap);
    va_end(ap);
    return r;
}
