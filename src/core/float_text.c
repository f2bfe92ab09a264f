/* Shortest-enough text for a float32: nine significant digits, which read back to the same
 * float. Used wherever vectors are written as JSON (dodeca embed, encode, the HTTP API). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/float_text.h"

/* Powers of ten 1e-60 … 1e60 as doubles (the scale factors a float32 can need). */
static double pow10_tab[121];
static pthread_once_t pow10_once = PTHREAD_ONCE_INIT;

static void pow10_init(void) {
    for (int i = 0; i < 121; i++) pow10_tab[i] = pow(10.0, i - 60);
}

static double pow10i(int k) {
    pthread_once(&pow10_once, pow10_init);
    return pow10_tab[k + 60];
}

size_t dc_format_float(float v, char out[DC_FLOAT_TEXT_MAX]) {
    /* Nine significant digits identify every float32. The digits come from one multiplication
     * in double precision (error ~1e-16, far below half a unit of the ninth digit), which is
     * ~20× faster than printf("%.9g") — a 1536-float vector is 1536 of these. */
    char *o = out;
    if (!isfinite(v) || v == 0.0f) {
        *o++ = '0';
        *o = '\0';
        return 1;
    }
    if (v < 0) *o++ = '-';
    double d = fabs((double)v);
    int be = 0;
    frexp(d, &be); /* d in [2^(be-1), 2^be): the decimal exponent is this or one more */
    int e = (int)floor((be - 1) * 0.30102999566398120);
    int64_t m = llround(d * pow10i(8 - e));
    if (m >= 1000000000) { /* log10 rounded up, or 9.999999995 rounded to 10 */
        e++;
        m = llround(d * pow10i(8 - e));
    } else if (m < 100000000) {
        e--;
        m = llround(d * pow10i(8 - e));
    }
    char dig[10];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + m % 10);
        m /= 10;
    }
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (e >= -5 && e < 0) { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++) *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else if (e >= 0 && e < 9) { /* ddd.ddd */
        for (int i = 0; i <= e || i < nd; i++) {
            if (i == e + 1) *o++ = '.';
            *o++ = i < nd ? dig[i] : '0';
        }
    } else { /* d.ddde±XX */
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        o += snprintf(o, 6, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    *o = '\0';
    return (size_t)(o - out);
}

