/* Float32 to JSON number text that round-trips exactly, ~20x faster than printf("%.9g"). */
#ifndef DC_CORE_FLOAT_TEXT_H
#define DC_CORE_FLOAT_TEXT_H

#include <stddef.h>

#define DC_FLOAT_TEXT_MAX 24

/* Writes v as a JSON number with nine significant digits, trailing zeros dropped (so it reads
 * back to the same float); non-finite values are written as 0. Returns the length written,
 * excluding the NUL. */
size_t dc_format_float(float v, char out[DC_FLOAT_TEXT_MAX]);

#endif
