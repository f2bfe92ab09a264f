/* E2, E3, E4 formulas (docs/custom-models.md). All phases in float64; output rounded last. */
#include "models/temporal_encode.h"

#include <float.h>
#include <math.h>

#include "core/error.h"

#define TWO_PI 6.283185307179586476925286766559

const uint16_t dc_e3_cycle_offset[DC_E3_CYCLES] = {0, 128, 192, 256, 448, 500};
const uint16_t dc_e3_cycle_harmonics[DC_E3_CYCLES] = {64, 32, 32, 96, 26, 6};

_Static_assert(128 + 64 + 64 + 192 + 52 + 12 == DC_TEMPORAL_DIM, "E3 blocks fill 512 dims");
_Static_assert(DC_E2_LOG_OFFSET + DC_E2_LOG_BUMPS == DC_E2_FLAG_FUTURE, "E2 layout");
_Static_assert(DC_E4_POS_OFFSET + 2 * DC_E4_POS_PAIRS == DC_TEMPORAL_DIM, "E4 layout");

void dc_temporal_tables_init(dc_temporal_tables *t) {
    double ratio = log(DC_E2_TAU_MAX / DC_E2_TAU_MIN);
    for (int k = 0; k < DC_E2_SCALES; k++)
        t->tau[k] = DC_E2_TAU_MIN * exp(ratio * k / (DC_E2_SCALES - 1));
    double step = (DC_E2_LOG_CENTRE_MAX - DC_E2_LOG_CENTRE_MIN) / (DC_E2_LOG_BUMPS - 1);
    for (int j = 0; j < DC_E2_LOG_BUMPS; j++) t->bump_centre[j] = DC_E2_LOG_CENTRE_MIN + step * j;
    /* Scale the bump block to unit norm at a point well inside the centre range; the norm is
     * flat there (spacing << sigma), so the block weighs about as much as each decay block. */
    double sq = 0;
    for (int j = 0; j < DC_E2_LOG_BUMPS; j++) {
        double z = (13.0 - t->bump_centre[j]) / DC_E2_LOG_SIGMA;
        sq += exp(-z * z);
    }
    t->bump_scale = 1.0 / sqrt(sq);
    double pratio = log(DC_E4_TIME_PERIOD_MAX);
    for (int i = 0; i < DC_E4_TIME_PAIRS; i++)
        t->period[i] = exp(pratio * i / (DC_E4_TIME_PAIRS - 1));
    t->period[0] = 1.0; /* exactly one second */
    for (int i = 0; i < DC_E4_POS_PAIRS; i++)
        t->pos_freq[i] = exp(-(2.0 * i / (2.0 * DC_E4_POS_PAIRS)) * log(DC_E4_POS_BASE));
}

dc_status dc_temporal_check_time(double t, const char *what) {
    if (!isfinite(t) || t < DC_TEMPORAL_MIN_SECONDS || t > DC_TEMPORAL_MAX_SECONDS)
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "%s = %.17g is outside the supported range 0001-01-01 .. 9999-12-31 "
                       "(Unix seconds %.0f .. %.0f)",
                       what, t, DC_TEMPORAL_MIN_SECONDS, DC_TEMPORAL_MAX_SECONDS);
    return DC_OK;
}

/* ---- E2 ---- */

void dc_temporal_recent_raw(const dc_temporal_tables *t, double t_event, double t_ref,
                            double out[DC_TEMPORAL_DIM]) {
    bool future = t_event > t_ref;
    double dt = future ? 0.0 : t_ref - t_event;
    const double inv_sqrt_scales = 1.0 / sqrt((double)DC_E2_SCALES);
    for (int k = 0; k < DC_E2_SCALES; k++) {
        double x = dt / t->tau[k];
        out[DC_E2_EXP_OFFSET + k] = exp(-x) * inv_sqrt_scales;
        out[DC_E2_HYP_OFFSET + k] = inv_sqrt_scales / (1.0 + x);
    }
    double u = log1p(dt);
    for (int j = 0; j < DC_E2_LOG_BUMPS; j++) {
        double z = (u - t->bump_centre[j]) / DC_E2_LOG_SIGMA;
        out[DC_E2_LOG_OFFSET + j] = exp(-0.5 * z * z) * t->bump_scale;
    }
    out[DC_E2_FLAG_FUTURE] = future ? DC_E2_FLAG_WEIGHT : 0.0;
    out[DC_E2_FLAG_NOW] = t_event == t_ref ? DC_E2_FLAG_WEIGHT : 0.0;
}

void dc_temporal_recent_encode(const dc_temporal_tables *t, double t_event, double t_ref,
                               float out[DC_TEMPORAL_DIM]) {
    double raw[DC_TEMPORAL_DIM], sq = 0;
    dc_temporal_recent_raw(t, t_event, t_ref, raw);
    for (int i = 0; i < DC_TEMPORAL_DIM; i++) sq += raw[i] * raw[i];
    double inv = 1.0 / sqrt(sq); /* > 0: the bump block is never all zero in range */
    for (int i = 0; i < DC_TEMPORAL_DIM; i++) {
        double x = raw[i] * inv;
        /* Decays of old events fall below float's normal range: store 0, not denormals that
         * slow down every later product. */
        out[i] = x < FLT_MIN ? 0.0f : (float)x;
    }
}

/* ---- E3 ---- */

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void dc_temporal_civil(int64_t seconds, dc_civil_time *out) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = floor_div(seconds, 86400);
    out->second_of_day = (int)(seconds - days * 86400);
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    out->year = y;
    out->month = m;
    out->day = d;
    out->day_of_year = (int)(days - days_from_civil(y, 1, 1)) + 1;
    int64_t wd = (days + 3) % 7; /* 1970-01-01 was a Thursday (ISO 4) */
    out->weekday = (int)(wd < 0 ? wd + 7 : wd) + 1;
    out->days_in_month = m == 2 && is_leap(y) ? 29 : mdays[m - 1];
    out->days_in_year = is_leap(y) ? 366 : 365;
}

/* Reads exactly n digits; -1 when one is missing. */
static int64_t digits(const char *s, int n) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

dc_status dc_temporal_parse_rfc3339(const char *s, double *out) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int64_t y = digits(p, 4), mo = -1, d = -1, h = -1, mi = -1, sec = -1;
    if (y >= 0 && p[4] == '-') mo = digits(p + 5, 2);
    if (mo >= 0 && p[7] == '-') d = digits(p + 8, 2);
    if (d < 0)
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": expected YYYY-MM-DD at the start", s);
    if (mo < 1 || mo > 12)
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": month %lld", s, (long long)mo);
    int dim = mo == 2 && is_leap(y) ? 29 : mdays[mo - 1];
    if (d < 1 || d > dim)
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": day %lld of a %d-day month", s,
                       (long long)d, dim);
    p += 10;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": expected 'T' after the date", s);
    h = digits(p + 1, 2);
    if (h >= 0 && p[3] == ':') mi = digits(p + 4, 2);
    if (mi >= 0 && p[6] == ':') sec = digits(p + 7, 2);
    if (sec < 0 || h > 23 || mi > 59 || sec > 60)
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": expected a valid HH:MM:SS", s);
    p += 9;
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": empty fraction of a second", s);
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) frac += (*p - '0') * scale;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int64_t oh = digits(p + 1, 2), om = oh >= 0 && p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": bad UTC offset", s);
        offset = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        p += 6;
    } else {
        return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": missing 'Z' or a UTC offset", s);
    }
    if (*p) return dc_fail(DC_ERR_INVALID_VALUE, "time \"%.40s\": unexpected text at the end", s);
    int64_t secs = days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    double t = (double)secs + frac;
    dc_status st = dc_temporal_check_time(t, "time");
    if (st != DC_OK) return st;
    *out = t;
    return DC_OK;
}

/* Rounding can land a phase on exactly 1.0; it is the same point as 0. */
static double wrap_phase(double p) {
    return p >= 1.0 ? p - 1.0 : p;
}

void dc_temporal_periodic_phases(double t, int32_t utc_offset_minutes, double phase[DC_E3_CYCLES]) {
    double whole = floor(t);
    double frac = t - whole; /* exact for |t| < 2^52 */
    int64_t local = (int64_t)whole + (int64_t)utc_offset_minutes * 60;
    dc_civil_time c;
    dc_temporal_civil(local, &c);
    double day_frac = (c.second_of_day + frac) / 86400.0;
    phase[DC_E3_DAY] = wrap_phase(day_frac);
    phase[DC_E3_WEEK] = wrap_phase((c.weekday - 1 + day_frac) / 7.0);
    phase[DC_E3_MONTH] = wrap_phase((c.day - 1 + day_frac) / c.days_in_month);
    phase[DC_E3_YEAR] = wrap_phase((c.day_of_year - 1 + day_frac) / c.days_in_year);
    phase[DC_E3_HOUR] = wrap_phase((c.second_of_day % 3600 + frac) / 3600.0);
    phase[DC_E3_MONTH_OF_YEAR] = (c.month - 1) / 12.0;
}

void dc_temporal_periodic_encode(double t, int32_t utc_offset_minutes, float out[DC_TEMPORAL_DIM]) {
    double phase[DC_E3_CYCLES];
    dc_temporal_periodic_phases(t, utc_offset_minutes, phase);
    /* 256 unit (sin, cos) pairs: the raw norm is exactly 16. */
    for (int c = 0; c < DC_E3_CYCLES; c++) {
        float *o = out + dc_e3_cycle_offset[c];
        for (int n = 1; n <= dc_e3_cycle_harmonics[c]; n++) {
            double x = n * phase[c];
            x -= floor(x); /* reduce before scaling by 2 pi: keeps the angle exact */
            double a = TWO_PI * x;
            o[2 * (n - 1)] = (float)(sin(a) / 16.0);
            o[2 * (n - 1) + 1] = (float)(cos(a) / 16.0);
        }
    }
}

/* ---- E4 ---- */

void dc_temporal_positional_encode(const dc_temporal_tables *tab, double t, int64_t position,
                                   float out[DC_TEMPORAL_DIM]) {
    /* Each half has 128 unit pairs (norm sqrt(128)); dividing by 16 = sqrt(128) * sqrt(2)
     * makes the whole vector unit length. */
    for (int i = 0; i < DC_E4_TIME_PAIRS; i++) {
        double r = fmod(t, tab->period[i]); /* exact */
        if (r < 0) r += tab->period[i];
        double a = TWO_PI * wrap_phase(r / tab->period[i]);
        out[2 * i] = (float)(sin(a) / 16.0);
        out[2 * i + 1] = (float)(cos(a) / 16.0);
    }
    double p = (double)position;
    for (int i = 0; i < DC_E4_POS_PAIRS; i++) {
        double a = p * tab->pos_freq[i];
        out[DC_E4_POS_OFFSET + 2 * i] = (float)(sin(a) / 16.0);
        out[DC_E4_POS_OFFSET + 2 * i + 1] = (float)(cos(a) / 16.0);
    }
}
