/* E2, E3, E4: the properties their formulas promise (docs/custom-models.md,
 * methods.md §4 "What a test could check"), checked on the encoders and through dc_model. */
#include <float.h>
#include <math.h>
#include <time.h>

#include "models/custom.h"
#include "models/temporal_encode.h"
#include "test_support.h"

#define DAY  86400.0
#define HOUR 3600.0
#define YEAR (365.25 * DAY)
/* 2024-02-29T12:00:00Z, a leap day */
#define T_LEAP 1709208000.0

static dc_temporal_tables tab;

static int setup(void **state) {
    (void)state;
    dc_temporal_tables_init(&tab);
    return 0;
}

static double norm(const float *v) {
    return dc_vec_l2_norm(v, DC_TEMPORAL_DIM);
}

static double dot(const float *a, const float *b, int from, int to) {
    double s = 0;
    for (int i = from; i < to; i++) s += (double)a[i] * b[i];
    return s;
}

static void assert_unit_and_finite(const float *v) {
    assert_ok(dc_vec_check_finite(v, DC_TEMPORAL_DIM, "vector"));
    assert_true(fabs(norm(v) - 1.0) < 1e-5);
}

/* Extreme and awkward instants: before 1970, the int32 overflow second, 2100 (not leap),
 * leap days, the last second of leap years, a US DST change, both ends of the range. */
static const double awkward_times[] = {-1.0,
                                       -86400.0 * 365 * 30,
                                       0.0,
                                       2147483647.0,
                                       2147483648.0,
                                       4102444800.0 /* 2100-01-01 */,
                                       4107542400.0 /* 2100-03-01 */,
                                       T_LEAP,
                                       951825600.0 /* 2000-02-29T12Z */,
                                       1735689599.0 /* 2024-12-31T23:59:59Z */,
                                       1710054000.0 /* 2024-03-10T07:00Z, US DST */,
                                       1730613600.0 /* 2024-11-03T06:00Z, US DST end */,
                                       1709208000.5,
                                       -0.25,
                                       DC_TEMPORAL_MIN_SECONDS,
                                       DC_TEMPORAL_MAX_SECONDS};
#define N_AWKWARD (sizeof awkward_times / sizeof awkward_times[0])

/* ---------------- E2 ---------------- */

static void test_e2_decay_blocks_at_zero_and_at_tau(void **state) {
    (void)state;
    double raw[DC_TEMPORAL_DIM];
    dc_temporal_recent_raw(&tab, 1e9, 1e9, raw);
    for (int k = 0; k < DC_E2_SCALES; k++) {
        assert_true(fabs(raw[DC_E2_EXP_OFFSET + k] * sqrt(128.0) - 1.0) < 1e-12);
        assert_true(fabs(raw[DC_E2_HYP_OFFSET + k] * sqrt(128.0) - 1.0) < 1e-12);
    }
    assert_true(fabs(tab.tau[0] - 60.0) < 1e-9);
    assert_true(fabs(tab.tau[DC_E2_SCALES - 1] - 3.16e8) < 1e-3);
    for (int k = 0; k < DC_E2_SCALES; k += 9) {
        dc_temporal_recent_raw(&tab, 1e9 - tab.tau[k], 1e9, raw);
        assert_true(fabs(raw[DC_E2_EXP_OFFSET + k] * sqrt(128.0) - exp(-1.0)) < 1e-6);
        assert_true(fabs(raw[DC_E2_HYP_OFFSET + k] * sqrt(128.0) - 0.5) < 1e-6);
    }
}

static void test_e2_each_decay_feature_is_non_increasing(void **state) {
    (void)state;
    double prev[DC_TEMPORAL_DIM], cur[DC_TEMPORAL_DIM];
    dc_temporal_recent_raw(&tab, 0, 0, prev);
    for (double dt = 0.5; dt < 3.2e11; dt *= 1.3) {
        dc_temporal_recent_raw(&tab, 0, dt, cur); /* t_event = 0, t_ref = dt */
        for (int i = 0; i < 2 * DC_E2_SCALES; i++) assert_true(cur[i] <= prev[i]);
        memcpy(prev, cur, sizeof prev);
    }
}

/* The promise of issue 6 item 1: nearer events are more similar to "now", at every scale. */
static void test_e2_nearer_is_more_similar_to_now_at_every_scale(void **state) {
    (void)state;
    float now[DC_TEMPORAL_DIM], v[DC_TEMPORAL_DIM];
    const double t_ref = 1.7e9;
    dc_temporal_recent_encode(&tab, t_ref, t_ref, now);
    double prev = 1.0 + 1e-9;
    int steps = 0;
    for (double dt = 1e-3; dt < 3e11; dt *= 1.05, steps++) {
        dc_temporal_recent_encode(&tab, t_ref - dt, t_ref, v);
        double c = dc_vec_cosine(now, v, DC_TEMPORAL_DIM);
        if (!(c < prev)) fail_msg("cos(now, dt=%g s) = %.9f is not below %.9f", dt, c, prev);
        prev = c;
    }
    assert_true(steps > 600);
    assert_true(prev < 0.05); /* a decade-old event is almost unrelated to now */
}

static double e2_cos(double dt1, double dt2) {
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    dc_temporal_recent_encode(&tab, 2e9 - dt1, 2e9, a);
    dc_temporal_recent_encode(&tab, 2e9 - dt2, 2e9, b);
    return dc_vec_cosine(a, b, DC_TEMPORAL_DIM);
}

static void test_e2_similarity_follows_ratios_of_elapsed_time(void **state) {
    (void)state;
    /* 1 h vs 2 h is about as similar as 1 day vs 2 days (log-time bumps) ... */
    double h = e2_cos(HOUR, 2 * HOUR), d = e2_cos(DAY, 2 * DAY), y = e2_cos(YEAR, 2 * YEAR);
    assert_true(h > 0.8 && d > 0.8 && y > 0.7);
    assert_true(fabs(h - d) < 0.05);
    /* ... and similarity falls as the ratio grows. */
    assert_true(e2_cos(HOUR, 1.1 * HOUR) > h);
    assert_true(h > e2_cos(HOUR, DAY));
    assert_true(e2_cos(HOUR, DAY) > e2_cos(HOUR, 30 * DAY));
    assert_true(e2_cos(HOUR, 30 * DAY) > e2_cos(HOUR, YEAR));
    assert_true(e2_cos(HOUR, YEAR) < 0.3);
}

static void test_e2_future_events_are_clamped_and_flagged(void **state) {
    (void)state;
    double now_raw[DC_TEMPORAL_DIM], fut[DC_TEMPORAL_DIM], past[DC_TEMPORAL_DIM];
    dc_temporal_recent_raw(&tab, 1e9, 1e9, now_raw);
    dc_temporal_recent_raw(&tab, 1e9 + DAY, 1e9, fut);
    dc_temporal_recent_raw(&tab, 1e9 - 1, 1e9, past);
    assert_true(now_raw[DC_E2_FLAG_NOW] > 0 && now_raw[DC_E2_FLAG_FUTURE] == 0);
    assert_true(fut[DC_E2_FLAG_FUTURE] > 0 && fut[DC_E2_FLAG_NOW] == 0);
    assert_true(past[DC_E2_FLAG_FUTURE] == 0 && past[DC_E2_FLAG_NOW] == 0);
    /* clamped: every feature but the flags equals dt = 0 */
    assert_memory_equal(fut, now_raw, DC_E2_FLAG_FUTURE * sizeof(double));
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    dc_temporal_recent_encode(&tab, 1e9 + DAY, 1e9, a);
    dc_temporal_recent_encode(&tab, 1e9 + YEAR, 1e9, b);
    assert_memory_equal(a, b, sizeof a); /* how far in the future does not matter */
    assert_unit_and_finite(a);
}

static void test_e2_unit_norm_for_any_pair_of_awkward_times(void **state) {
    (void)state;
    float v[DC_TEMPORAL_DIM];
    for (size_t i = 0; i < N_AWKWARD; i++)
        for (size_t j = 0; j < N_AWKWARD; j++) {
            dc_temporal_recent_encode(&tab, awkward_times[i], awkward_times[j], v);
            assert_unit_and_finite(v);
        }
}

/* ---------------- E3 ---------------- */

static void test_e3_civil_calendar(void **state) {
    (void)state;
    dc_civil_time c;
    dc_temporal_civil(0, &c);
    assert_true(c.year == 1970 && c.month == 1 && c.day == 1 && c.weekday == 4 &&
                c.day_of_year == 1 && c.second_of_day == 0);
    dc_temporal_civil((int64_t)T_LEAP, &c);
    assert_true(c.year == 2024 && c.month == 2 && c.day == 29 && c.day_of_year == 60 &&
                c.weekday == 4 && c.second_of_day == 43200 && c.days_in_month == 29 &&
                c.days_in_year == 366);
    dc_temporal_civil(-1, &c); /* 1969-12-31T23:59:59Z, a Wednesday */
    assert_true(c.year == 1969 && c.month == 12 && c.day == 31 && c.day_of_year == 365 &&
                c.weekday == 3 && c.second_of_day == 86399);
    dc_temporal_civil(1735689599, &c); /* 2024-12-31T23:59:59Z */
    assert_true(c.day_of_year == 366 && c.weekday == 2);
    dc_temporal_civil(4107542400, &c); /* 2100-03-01: 2100 is not a leap year */
    assert_true(c.year == 2100 && c.month == 3 && c.day == 1 && c.day_of_year == 60 &&
                c.days_in_year == 365 && c.weekday == 1);
    dc_temporal_civil((int64_t)DC_TEMPORAL_MIN_SECONDS, &c);
    assert_true(c.year == 1 && c.month == 1 && c.day == 1 && c.weekday == 1);
    dc_temporal_civil((int64_t)DC_TEMPORAL_MAX_SECONDS, &c);
    assert_true(c.year == 9999 && c.month == 12 && c.day == 31 && c.second_of_day == 86399);
}

static void block_equal(const float *a, const float *b, dc_e3_cycle cyc) {
    size_t off = dc_e3_cycle_offset[cyc], len = 2u * dc_e3_cycle_harmonics[cyc];
    assert_memory_equal(a + off, b + off, len * sizeof(float));
}

static bool block_differs(const float *a, const float *b, dc_e3_cycle cyc) {
    size_t off = dc_e3_cycle_offset[cyc], len = 2u * dc_e3_cycle_harmonics[cyc];
    return memcmp(a + off, b + off, len * sizeof(float)) != 0;
}

static void test_e3_each_cycle_repeats_with_its_period(void **state) {
    (void)state;
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    const double t = 1718461845.25; /* 2024-06-15T14:30:45.25Z, a Saturday */
    dc_temporal_periodic_encode(t, 0, a);
    dc_temporal_periodic_encode(t + DAY, 0, b);
    block_equal(a, b, DC_E3_DAY);
    block_equal(a, b, DC_E3_HOUR);
    assert_true(block_differs(a, b, DC_E3_WEEK) && block_differs(a, b, DC_E3_YEAR));
    dc_temporal_periodic_encode(t + 7 * DAY, 0, b);
    block_equal(a, b, DC_E3_DAY);
    block_equal(a, b, DC_E3_WEEK);
    block_equal(a, b, DC_E3_HOUR);
    block_equal(a, b, DC_E3_MONTH_OF_YEAR); /* still June */
    dc_temporal_periodic_encode(t + HOUR, 0, b);
    block_equal(a, b, DC_E3_HOUR);
    assert_true(block_differs(a, b, DC_E3_DAY));
    /* 2024-06-15 vs 2024-07-15, same time of day: day-of-month phase (x-1)/30 vs (x-1)/31
     * differs, but 2024-07-15 vs 2024-08-15 (both 31-day months) does not. */
    float c[DC_TEMPORAL_DIM], d[DC_TEMPORAL_DIM];
    dc_temporal_periodic_encode(t + 30 * DAY, 0, c);
    dc_temporal_periodic_encode(t + 61 * DAY, 0, d);
    block_equal(c, d, DC_E3_MONTH);
    assert_true(block_differs(a, c, DC_E3_MONTH));
    /* Year: 2021-06-15 and 2022-06-15 (both common years) share the day-of-year phase. */
    dc_temporal_periodic_encode(1623767445.0, 0, c);
    dc_temporal_periodic_encode(1623767445.0 + 365 * DAY, 0, d);
    block_equal(c, d, DC_E3_YEAR);
    block_equal(c, d, DC_E3_DAY);
}

static void test_e3_norm_and_phases_at_awkward_dates(void **state) {
    (void)state;
    float v[DC_TEMPORAL_DIM];
    double ph[DC_E3_CYCLES];
    for (size_t i = 0; i < N_AWKWARD; i++) {
        for (int off = -DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES;
             off <= DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES; off += 270) {
            dc_temporal_periodic_phases(awkward_times[i], off, ph);
            for (int c = 0; c < DC_E3_CYCLES; c++) assert_true(ph[c] >= 0.0 && ph[c] < 1.0);
            dc_temporal_periodic_encode(awkward_times[i], off, v);
            assert_unit_and_finite(v);
            for (int p = 0; p < DC_TEMPORAL_DIM; p += 2) /* every pair sits on the unit circle */
                assert_true(fabs((double)v[p] * v[p] + (double)v[p + 1] * v[p + 1] - 1.0 / 256) <
                            1e-8);
        }
    }
    /* Last second of a leap year: day-of-year phase is 365.99999/366, not past 1. */
    dc_temporal_periodic_phases(1735689599.0, 0, ph);
    assert_true(ph[DC_E3_YEAR] > 0.9999 && ph[DC_E3_YEAR] < 1.0);
    dc_temporal_periodic_phases(T_LEAP, 0, ph);
    assert_true(fabs(ph[DC_E3_MONTH] - 28.5 / 29) < 1e-12);
    assert_true(fabs(ph[DC_E3_YEAR] - 59.5 / 366) < 1e-12);
    assert_true(fabs(ph[DC_E3_WEEK] - 3.5 / 7) < 1e-12);
}

static void test_e3_utc_offset_shifts_local_time(void **state) {
    (void)state;
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    /* 2024-03-10T07:00Z: US Eastern switches from -5 h to -4 h. With fixed offsets the two
     * readings are exactly one local hour apart. */
    dc_temporal_periodic_encode(1710054000.0, -240, a);
    dc_temporal_periodic_encode(1710054000.0 + HOUR, -300, b);
    assert_memory_equal(a, b, sizeof a);
    double ph[DC_E3_CYCLES];
    dc_temporal_periodic_phases(1710054000.0, -300, ph);
    assert_true(fabs(ph[DC_E3_DAY] - 2.0 / 24) < 1e-12); /* 02:00 local */
}

/* ---------------- E4 ---------------- */

static void test_e4_dot_depends_only_on_time_difference(void **state) {
    (void)state;
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM], c[DC_TEMPORAL_DIM], d[DC_TEMPORAL_DIM];
    const double gaps[] = {1, 37.5, HOUR, DAY, 1000 * DAY, 30 * YEAR};
    const double bases[][2] = {{0, 1.7e9}, {-2e9, 2.5e11}, {2147483600.0, 4102444800.0}};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++)
        for (size_t k = 0; k < sizeof bases / sizeof bases[0]; k++) {
            double t1 = bases[k][0], t2 = bases[k][1];
            dc_temporal_positional_encode(&tab, t1, 3, a);
            dc_temporal_positional_encode(&tab, t1 + gaps[g], 3, b);
            dc_temporal_positional_encode(&tab, t2, 3, c);
            dc_temporal_positional_encode(&tab, t2 + gaps[g], 3, d);
            double d1 = dot(a, b, 0, DC_TEMPORAL_DIM), d2 = dot(c, d, 0, DC_TEMPORAL_DIM);
            if (fabs(d1 - d2) > 1e-4) fail_msg("gap %g: %.7f vs %.7f", gaps[g], d1, d2);
            /* and it is the closed form sum_i cos(2 pi gap / P_i) / 256 + position part */
            double want = 0;
            for (int i = 0; i < DC_E4_TIME_PAIRS; i++)
                want +=
                    cos(2 * 3.14159265358979323846 * fmod(gaps[g], tab.period[i]) / tab.period[i]) /
                    256;
            assert_true(fabs(dot(a, b, 0, DC_E4_POS_OFFSET) - want) < 1e-4);
        }
}

static void test_e4_position_half_is_the_transformer_formula(void **state) {
    (void)state;
    float v[DC_TEMPORAL_DIM];
    for (int p = 0; p < 512; p++) {
        dc_temporal_positional_encode(&tab, 1.7e9, p, v);
        for (int i = 0; i < DC_E4_POS_PAIRS; i++) {
            double w = p / pow(10000.0, 2.0 * i / 256);
            assert_true(fabs(v[DC_E4_POS_OFFSET + 2 * i] * 16.0 - sin(w)) < 1e-6);
            assert_true(fabs(v[DC_E4_POS_OFFSET + 2 * i + 1] * 16.0 - cos(w)) < 1e-6);
        }
        assert_unit_and_finite(v);
    }
    /* nearby positions are more alike than distant ones */
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM], c[DC_TEMPORAL_DIM];
    dc_temporal_positional_encode(&tab, 0, 10, a);
    dc_temporal_positional_encode(&tab, 0, 11, b);
    dc_temporal_positional_encode(&tab, 0, 400, c);
    assert_true(dot(a, b, DC_E4_POS_OFFSET, 512) > dot(a, c, DC_E4_POS_OFFSET, 512));
}

static void test_e4_periods_and_awkward_times(void **state) {
    (void)state;
    assert_true(tab.period[0] == 1.0);
    assert_true(fabs(tab.period[DC_E4_TIME_PAIRS - 1] / 3.16e10 - 1) < 1e-12);
    float v[DC_TEMPORAL_DIM];
    for (size_t i = 0; i < N_AWKWARD; i++) {
        dc_temporal_positional_encode(&tab, awkward_times[i], (int64_t)i * 1000, v);
        assert_unit_and_finite(v);
    }
    dc_temporal_positional_encode(&tab, 0, INT64_MAX, v);
    assert_unit_and_finite(v);
    /* the one-second period sees the fraction of a second only */
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    dc_temporal_positional_encode(&tab, 100.25, 0, a);
    dc_temporal_positional_encode(&tab, 7.25, 0, b);
    assert_true(a[0] == b[0] && a[1] == b[1]);
    assert_true(fabs(a[0] * 16.0 - 1.0) < 1e-6); /* sin(pi/2) */
}

static void test_rfc3339_times(void **state) {
    (void)state;
    double t;
    assert_ok(dc_temporal_parse_rfc3339("2024-02-29T12:00:00Z", &t));
    assert_true(t == T_LEAP);
    assert_ok(dc_temporal_parse_rfc3339("2024-02-29t17:30:00.25+05:30", &t));
    assert_true(t == T_LEAP + 0.25);
    assert_ok(dc_temporal_parse_rfc3339("2024-02-29 07:00:00-05:00", &t));
    assert_true(t == T_LEAP);
    assert_ok(dc_temporal_parse_rfc3339("1969-12-31T23:59:59z", &t));
    assert_true(t == -1);
    assert_ok(dc_temporal_parse_rfc3339("2016-12-31T23:59:60Z", &t)); /* leap second */
    assert_true(t == 1483228800.0);
    assert_ok(dc_temporal_parse_rfc3339("0001-01-01T00:00:00Z", &t));
    assert_true(t == DC_TEMPORAL_MIN_SECONDS);
    static const char *bad[] = {"",
                                "2024",
                                "2024-02-30T00:00:00Z",
                                "2023-02-29T00:00:00Z",
                                "2024-13-01T00:00:00Z",
                                "2024-02-29T24:00:00Z",
                                "2024-02-29T12:00:00",
                                "2024-02-29T12:00:00+",
                                "2024-02-29T12:00:00+5:00",
                                "2024-02-29T12:00:00.Z",
                                "2024-02-29T12:00:00Zjunk",
                                "2024-02-29X12:00:00Z",
                                "0000-12-31T23:59:59Z",
                                "1709208000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_status st = dc_temporal_parse_rfc3339(bad[i], &t);
        if (st != DC_ERR_INVALID_VALUE) fail_msg("\"%s\" parsed", bad[i]);
    }
}

static void test_e2_stores_no_denormals(void **state) {
    (void)state;
    float v[DC_TEMPORAL_DIM];
    dc_temporal_recent_encode(&tab, 0, 3e11, v);
    for (int i = 0; i < DC_TEMPORAL_DIM; i++) assert_true(v[i] == 0.0f || fabsf(v[i]) >= FLT_MIN);
    assert_unit_and_finite(v);
}

/* ---------------- through dc_model ---------------- */

typedef dc_status (*create_fn)(const dc_temporal_options *, dc_model **);

static dc_model *open_model(create_fn fn, const dc_temporal_options *opt) {
    dc_model *m = NULL;
    assert_ok(fn(opt, &m));
    assert_ok(dc_model_load(m));
    assert_true(dc_model_memory_usage(m) > 0);
    return m;
}

static void embed_one(dc_model *m, const dc_input *in, float out[DC_TEMPORAL_DIM]) {
    dc_model_embedding e;
    assert_ok(dc_model_embed(m, in, &e));
    assert_int_equal(e.dim, DC_TEMPORAL_DIM);
    assert_int_equal(e.tokens_used, 0);
    assert_false(e.truncated);
    memcpy(out, e.vector, DC_TEMPORAL_DIM * sizeof(float));
    dc_model_embedding_free(&e);
}

static dc_input timed(double t_event, double t_ref) {
    dc_input in = dc_input_text("meeting notes", 13, DC_ROLE_PASSAGE);
    in.has_t_event = true;
    in.t_event = t_event;
    in.has_t_ref = true;
    in.t_ref = t_ref;
    return in;
}

static void test_models_match_encoders_and_are_deterministic(void **state) {
    (void)state;
    dc_temporal_options opt = dc_temporal_options_default();
    opt.utc_offset_minutes = 330; /* India */
    dc_model *e2 = open_model(dc_temporal_recent_create, NULL);
    dc_model *e3 = open_model(dc_temporal_periodic_create, &opt);
    dc_model *e4 = open_model(dc_temporal_positional_create, NULL);
    assert_int_equal(dc_model_id_of(e2), DC_MODEL_TEMPORAL_RECENT);
    assert_int_equal(dc_model_id_of(e3), DC_MODEL_TEMPORAL_PERIODIC);
    assert_int_equal(dc_model_id_of(e4), DC_MODEL_TEMPORAL_POSITIONAL);
    dc_input in = timed(T_LEAP - 5000, T_LEAP);
    in.has_position = true;
    in.position = 7;
    float got[DC_TEMPORAL_DIM], again[DC_TEMPORAL_DIM], want[DC_TEMPORAL_DIM];
    embed_one(e2, &in, got);
    dc_temporal_recent_encode(&tab, T_LEAP - 5000, T_LEAP, want);
    assert_memory_equal(got, want, sizeof got);
    embed_one(e3, &in, got);
    dc_temporal_periodic_encode(T_LEAP - 5000, 330, want);
    assert_memory_equal(got, want, sizeof got);
    embed_one(e4, &in, got);
    dc_temporal_positional_encode(&tab, T_LEAP - 5000, 7, want);
    assert_memory_equal(got, want, sizeof got);
    /* No clock inside: a later call with the same input is byte-identical. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    embed_one(e4, &in, again);
    assert_memory_equal(got, again, sizeof got);
    dc_model_destroy(e2);
    dc_model_destroy(e3);
    dc_model_destroy(e4);
}

static void test_missing_times_have_defined_meaning(void **state) {
    (void)state;
    dc_model *e2 = open_model(dc_temporal_recent_create, NULL);
    dc_model *e3 = open_model(dc_temporal_periodic_create, NULL);
    dc_model *e4 = open_model(dc_temporal_positional_create, NULL);
    float a[DC_TEMPORAL_DIM], b[DC_TEMPORAL_DIM];
    dc_input none = dc_input_code("x = 1", 5, NULL); /* code is accepted too */
    dc_input only_ref = timed(0, T_LEAP), only_event = timed(T_LEAP - DAY, 0);
    only_ref.has_t_event = false;
    only_event.has_t_ref = false;

    /* E2: a missing t_event or t_ref means dt = 0, "now". */
    dc_input now = timed(T_LEAP, T_LEAP);
    embed_one(e2, &now, a);
    embed_one(e2, &only_ref, b);
    assert_memory_equal(a, b, sizeof a);
    embed_one(e2, &only_event, b);
    assert_memory_equal(a, b, sizeof a);
    embed_one(e2, &none, b);
    assert_memory_equal(a, b, sizeof a);

    /* E3/E4: the event time falls back to t_ref, then to the Unix epoch; position to 0. */
    dc_input at_ref = timed(T_LEAP, T_LEAP), epoch = timed(0, 0);
    embed_one(e3, &only_ref, a);
    embed_one(e3, &at_ref, b);
    assert_memory_equal(a, b, sizeof a);
    embed_one(e4, &only_ref, a);
    embed_one(e4, &at_ref, b);
    assert_memory_equal(a, b, sizeof a);
    embed_one(e3, &none, a);
    embed_one(e3, &epoch, b);
    assert_memory_equal(a, b, sizeof a);
    epoch.has_position = true;
    epoch.position = 0;
    embed_one(e4, &none, a);
    embed_one(e4, &epoch, b);
    assert_memory_equal(a, b, sizeof a);
    dc_model_destroy(e2);
    dc_model_destroy(e3);
    dc_model_destroy(e4);
}

static void test_bad_times_and_options_are_rejected(void **state) {
    (void)state;
    dc_model *m = open_model(dc_temporal_periodic_create, NULL);
    dc_input in[2] = {timed(T_LEAP, T_LEAP), timed(1e300, T_LEAP)};
    dc_model_embedding out[2];
    assert_status(dc_model_embed_batch(m, in, 2, out), DC_ERR_INVALID_VALUE);
    assert_detail_contains("item 1");
    assert_detail_contains("t_event");
    in[1] = timed(T_LEAP, DC_TEMPORAL_MIN_SECONDS - 1);
    assert_status(dc_model_embed_batch(m, in, 2, out), DC_ERR_INVALID_VALUE);
    assert_detail_contains("t_ref");
    in[1].t_ref = NAN; /* caught by input validation before the model runs */
    assert_status(dc_model_embed_batch(m, in, 2, out), DC_ERR_INVALID_VALUE);
    dc_input img = dc_input_image((const uint8_t *)"\x89PNG", 4, DC_IMAGE_PNG);
    assert_status(dc_model_embed(m, &img, out), DC_ERR_UNSUPPORTED_MODALITY);
    dc_model_destroy(m);

    dc_temporal_options opt = dc_temporal_options_default();
    opt.utc_offset_minutes = 19 * 60;
    dc_model *bad = NULL;
    assert_status(dc_temporal_periodic_create(&opt, &bad), DC_ERR_CONFIG);
    assert_detail_contains("utc_offset_minutes");
    assert_null(bad);
    assert_status(dc_temporal_recent_create(NULL, NULL), DC_ERR_INVALID_ARGUMENT);
}

static void test_batch_embeds_each_item(void **state) {
    (void)state;
    dc_model *m = open_model(dc_temporal_recent_create, NULL);
    dc_input in[3] = {timed(T_LEAP - 60, T_LEAP), timed(T_LEAP - DAY, T_LEAP),
                      timed(T_LEAP - YEAR, T_LEAP)};
    dc_model_embedding out[3];
    assert_ok(dc_model_embed_batch(m, in, 3, out));
    float want[DC_TEMPORAL_DIM];
    for (int i = 0; i < 3; i++) {
        dc_temporal_recent_encode(&tab, in[i].t_event, in[i].t_ref, want);
        assert_memory_equal(out[i].vector, want, sizeof want);
        dc_model_embedding_free(&out[i]);
    }
    dc_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2_decay_blocks_at_zero_and_at_tau),
        cmocka_unit_test(test_e2_each_decay_feature_is_non_increasing),
        cmocka_unit_test(test_e2_nearer_is_more_similar_to_now_at_every_scale),
        cmocka_unit_test(test_e2_similarity_follows_ratios_of_elapsed_time),
        cmocka_unit_test(test_e2_future_events_are_clamped_and_flagged),
        cmocka_unit_test(test_e2_unit_norm_for_any_pair_of_awkward_times),
        cmocka_unit_test(test_e3_civil_calendar),
        cmocka_unit_test(test_e3_each_cycle_repeats_with_its_period),
        cmocka_unit_test(test_e3_norm_and_phases_at_awkward_dates),
        cmocka_unit_test(test_e3_utc_offset_shifts_local_time),
        cmocka_unit_test(test_e4_dot_depends_only_on_time_difference),
        cmocka_unit_test(test_e4_position_half_is_the_transformer_formula),
        cmocka_unit_test(test_e4_periods_and_awkward_times),
        cmocka_unit_test(test_rfc3339_times),
        cmocka_unit_test(test_e2_stores_no_denormals),
        cmocka_unit_test(test_models_match_encoders_and_are_deterministic),
        cmocka_unit_test(test_missing_times_have_defined_meaning),
        cmocka_unit_test(test_bad_times_and_options_are_rejected),
        cmocka_unit_test(test_batch_embeds_each_item),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
