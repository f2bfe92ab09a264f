/* The formulas of E2, E3 and E4 as pure functions (docs/custom-models.md).
 *
 * Times are Unix seconds as doubles; every phase is computed in float64 from whole seconds
 * plus a fraction, and only the finished features are rounded to float. Nothing here reads
 * the clock or keeps state: the tables are filled once by dc_temporal_tables_init. */
#ifndef DC_MODELS_TEMPORAL_ENCODE_H
#define DC_MODELS_TEMPORAL_ENCODE_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/status.h"

#define DC_TEMPORAL_DIM 512

/* Supported instants: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define DC_TEMPORAL_MIN_SECONDS (-62135596800.0)
#define DC_TEMPORAL_MAX_SECONDS 253402300799.0

/* ---- E2 layout ---- */
#define DC_E2_SCALES         128 /* decay time scales, 60 s .. 3.16e8 s (10 years) */
#define DC_E2_TAU_MIN        60.0
#define DC_E2_TAU_MAX        3.16e8
#define DC_E2_EXP_OFFSET     0   /* 128 x exp(-dt/tau_k) */
#define DC_E2_HYP_OFFSET     128 /* 128 x 1/(1 + dt/tau_k) */
#define DC_E2_LOG_OFFSET     256 /* 254 Gaussian bumps on u = ln(1 + dt/1 s) */
#define DC_E2_LOG_BUMPS      254
#define DC_E2_LOG_CENTRE_MIN (-3.0)
#define DC_E2_LOG_CENTRE_MAX 29.5
#define DC_E2_LOG_SIGMA      0.7
#define DC_E2_FLAG_FUTURE    510 /* t_event was after t_ref (dt clamped to 0) */
#define DC_E2_FLAG_NOW       511 /* t_event == t_ref */
#define DC_E2_FLAG_WEIGHT    0.5

/* ---- E3 layout: (offset, harmonics) per cycle; each harmonic is a (sin, cos) pair ---- */
typedef enum dc_e3_cycle {
    DC_E3_DAY = 0,           /* seconds since local midnight / 86400, 64 harmonics */
    DC_E3_WEEK = 1,          /* (ISO weekday - 1 + day fraction) / 7, 32 harmonics */
    DC_E3_MONTH = 2,         /* (day of month - 1 + day fraction) / days in month, 32 */
    DC_E3_YEAR = 3,          /* (day of year - 1 + day fraction) / days in year, 96 */
    DC_E3_HOUR = 4,          /* seconds since the hour / 3600, 26 */
    DC_E3_MONTH_OF_YEAR = 5, /* (month - 1) / 12, 6 */
} dc_e3_cycle;
#define DC_E3_CYCLES 6
extern const uint16_t dc_e3_cycle_offset[DC_E3_CYCLES];
extern const uint16_t dc_e3_cycle_harmonics[DC_E3_CYCLES];

/* ---- E4 layout ---- */
#define DC_E4_TIME_PAIRS      128 /* periods 1 s .. 3.16e10 s (~1000 years), geometric */
#define DC_E4_TIME_PERIOD_MAX 3.16e10
#define DC_E4_POS_OFFSET      256 /* Vaswani sinusoids of the position, d = 256, base 10000 */
#define DC_E4_POS_PAIRS       128
#define DC_E4_POS_BASE        10000.0

typedef struct dc_temporal_tables {
    double tau[DC_E2_SCALES];            /* E2 decay scales, seconds */
    double bump_centre[DC_E2_LOG_BUMPS]; /* E2 log-time bump centres */
    double bump_scale;                   /* makes the bump block's norm ~1 */
    double period[DC_E4_TIME_PAIRS];     /* E4 time periods, seconds */
    double pos_freq[DC_E4_POS_PAIRS];    /* E4 position frequencies 10000^(-2i/256) */
} dc_temporal_tables;

void dc_temporal_tables_init(dc_temporal_tables *t);

/* DC_ERR_INVALID_VALUE unless t is finite and within the supported instants. */
dc_status dc_temporal_check_time(double t, const char *what);

/* Parses an RFC 3339 timestamp ("2024-02-29T12:00:00Z", "2024-02-29 12:00:00.25+05:30";
 * "t" and "z" in either case; second 60 reads as the next minute) into Unix seconds. Only the
 * supported instants are accepted. DC_ERR_INVALID_VALUE names the part at fault. */
dc_status dc_temporal_parse_rfc3339(const char *s, double *out);

/* E2 before the final L2 normalisation (blocks already weighted); dt = t_ref - t_event. */
void dc_temporal_recent_raw(const dc_temporal_tables *t, double t_event, double t_ref,
                            double out[DC_TEMPORAL_DIM]);
void dc_temporal_recent_encode(const dc_temporal_tables *t, double t_event, double t_ref,
                               float out[DC_TEMPORAL_DIM]);

/* Broken-down civil time of `seconds` (Unix, already shifted to local time). */
typedef struct dc_civil_time {
    int64_t year;
    int month;         /* 1..12 */
    int day;           /* 1..31 */
    int day_of_year;   /* 1..366 */
    int weekday;       /* ISO: 1 = Monday .. 7 = Sunday */
    int second_of_day; /* 0..86399 */
    int days_in_month;
    int days_in_year;
} dc_civil_time;

void dc_temporal_civil(int64_t seconds, dc_civil_time *out);

/* The six phases in [0, 1) of E3 for instant t at a fixed UTC offset. */
void dc_temporal_periodic_phases(double t, int32_t utc_offset_minutes, double phase[DC_E3_CYCLES]);
void dc_temporal_periodic_encode(double t, int32_t utc_offset_minutes, float out[DC_TEMPORAL_DIM]);

void dc_temporal_positional_encode(const dc_temporal_tables *tab, double t, int64_t position,
                                   float out[DC_TEMPORAL_DIM]);

#endif
