/* E9 hyperdimensional model: golden values from an independent Python implementation, the
 * algebra (bind, permute, bundle), the text encoder's promises and the dc_model wrapper. */
#include <math.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "models/custom.h"
#include "models/hdc.h"
#include "test_support.h"

static dc_hdc_memory *mem; /* seed 42, ngram 3, 4096 symbols: the defaults */
static dc_hdc_scratch *scratch;

static int setup(void **state) {
    (void)state;
    if (dc_hdc_memory_generate(42, 3, 4096, &mem) != DC_OK) return -1;
    return dc_hdc_scratch_create(&scratch) == DC_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    dc_hdc_memory_free(mem);
    dc_hdc_scratch_free(scratch);
    return 0;
}

static void enc(const char *text, float out[DC_HDC_OUT_DIM]) {
    dc_hdc_result r;
    assert_ok(dc_hdc_encode(mem, scratch, text, strlen(text), 4096, false, out, &r));
}

static double cos_text(const char *a, const char *b) {
    float x[DC_HDC_OUT_DIM], y[DC_HDC_OUT_DIM];
    enc(a, x);
    enc(b, y);
    return dc_vec_cosine(x, y, DC_HDC_OUT_DIM);
}

static void random_hv(dc_hv *v, uint32_t i) {
    dc_hv_random(v, dc_hdc_key(7, DC_HDC_KEY_SYMBOL, i));
}

/* ---------------- golden values (tests/data/hdc/hdc_reference.py) ---------------- */

static uint32_t crc_of(const float *v, size_t n) {
    uint8_t bytes[4 * DC_HDC_OUT_DIM];
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) bytes[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    return (uint32_t)crc32(0L, bytes, (uInt)(4 * n));
}

static size_t unhex(const char *hex, char *out) {
    size_t n = 0;
    for (; hex[0] && hex[1] && hex[0] != '\n'; hex += 2) {
        unsigned b;
        sscanf(hex, "%2x", &b);
        out[n++] = (char)b;
    }
    return n;
}

static void test_matches_the_independent_reference(void **state) {
    (void)state;
    FILE *f = fopen(dc_test_data_path("hdc/golden.txt"), "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int bases = 0, texts = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "base ", 5) == 0) {
            unsigned long long seed;
            unsigned cp;
            unsigned long long w[4];
            assert_int_equal(sscanf(line + 5, "%llu %u %llx %llx %llx %llx", &seed, &cp, &w[0],
                                    &w[1], &w[2], &w[3]),
                             6);
            dc_hv v;
            dc_hv_random(&v, dc_hdc_key(seed, DC_HDC_KEY_SYMBOL, cp));
            for (int i = 0; i < 4; i++) assert_true(v.w[i] == w[i]);
            bases++;
        } else if (strncmp(line, "e9 ", 3) == 0) {
            unsigned crc;
            float first[4];
            int used = 0;
            assert_int_equal(sscanf(line + 3, "%x %g %g %g %g %n", &crc, &first[0], &first[1],
                                    &first[2], &first[3], &used),
                             5);
            char *text = malloc(strlen(line));
            size_t len = unhex(line + 3 + used, text);
            float v[DC_HDC_OUT_DIM];
            dc_hdc_result r;
            assert_ok(dc_hdc_encode(mem, scratch, text, len, 4096, false, v, &r));
            for (int i = 0; i < 4; i++) assert_true(v[i] == first[i]);
            if (crc_of(v, DC_HDC_OUT_DIM) != crc)
                fail_msg("E9 of line %d differs from the reference (crc %08x, want %08x)", texts,
                         crc_of(v, DC_HDC_OUT_DIM), crc);
            free(text);
            texts++;
        }
    }
    free(line);
    fclose(f);
    assert_int_equal(bases, 4);
    assert_true(texts >= 8);
}

/* Byte-identical embeddings in another process (fresh address space, fresh item memory). */
static void test_two_processes_agree(void **state) {
    (void)state;
    const char *text = "deterministic across restarts: 0123456789 ÄÖÜ 漢字";
    float mine[DC_HDC_OUT_DIM], theirs[DC_HDC_OUT_DIM];
    enc(text, mine);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        dc_hdc_memory *m2 = NULL;
        dc_hdc_scratch *s2 = NULL;
        float v[DC_HDC_OUT_DIM];
        dc_hdc_result r;
        int ok = dc_hdc_memory_generate(42, 3, 4096, &m2) == DC_OK &&
                 dc_hdc_scratch_create(&s2) == DC_OK &&
                 dc_hdc_encode(m2, s2, text, strlen(text), 4096, false, v, &r) == DC_OK &&
                 write(fd[1], v, sizeof v) == (ssize_t)sizeof v;
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t k = read(fd[0], (char *)theirs + got, sizeof theirs - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof theirs);
    assert_memory_equal(mine, theirs, sizeof mine);
}

/* ---------------- algebra ---------------- */

static void test_bind_is_xor_self_inverse_and_commutative(void **state) {
    (void)state;
    dc_hv a, b, c, ab, ba, abb, t1, t2;
    random_hv(&a, 1);
    random_hv(&b, 2);
    random_hv(&c, 3);
    dc_hv_bind(&ab, &a, &b);
    dc_hv_bind(&ba, &b, &a);
    assert_memory_equal(&ab, &ba, sizeof ab);
    dc_hv_bind(&abb, &ab, &b);
    assert_memory_equal(&abb, &a, sizeof a); /* (a * b) * b == a */
    dc_hv_bind(&t1, &ab, &c);
    dc_hv_bind(&t2, &b, &c);
    dc_hv_bind(&t2, &a, &t2); /* in place */
    assert_memory_equal(&t1, &t2, sizeof t1);
    /* binding with a random vector gives something unlike either input */
    assert_true(fabs(dc_hv_similarity(&ab, &a)) < 0.05);
    assert_true(fabs(dc_hv_similarity(&ab, &b)) < 0.05);
    assert_int_equal(dc_hv_hamming(&a, &a), 0);
    dc_hv na;
    for (int i = 0; i < DC_HV_WORDS; i++) na.w[i] = ~a.w[i];
    assert_true(dc_hv_similarity(&a, &na) == -1.0);
}

static void test_permutation_is_a_cyclic_shift_and_invertible(void **state) {
    (void)state;
    dc_hv a, b, r, back, t, ab, rab, ra, rb;
    random_hv(&a, 10);
    random_hv(&b, 11);
    const int64_t ks[] = {1, 5, 63, 64, 65, 127, 640, 10239, -1, -64, -700, 10240 * 3 + 17};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        int64_t k = ks[i];
        dc_hv_permute(&r, &a, k);
        for (uint32_t bit = 0; bit < DC_HV_BITS; bit += 37) { /* rho^k(a)[i] = a[i - k] */
            int64_t from = ((int64_t)bit - k) % DC_HV_BITS;
            if (from < 0) from += DC_HV_BITS;
            assert_int_equal(dc_hv_get_bit(&r, bit), dc_hv_get_bit(&a, (uint32_t)from));
        }
        dc_hv_permute(&back, &r, -k);
        assert_memory_equal(&back, &a, sizeof a);
        assert_true(fabs(dc_hv_similarity(&r, &a)) < 0.05); /* a shifted vector is unrelated */
        /* rho distributes over bind */
        dc_hv_bind(&ab, &a, &b);
        dc_hv_permute(&rab, &ab, k);
        dc_hv_permute(&ra, &a, k);
        dc_hv_permute(&rb, &b, k);
        dc_hv_bind(&t, &ra, &rb);
        assert_memory_equal(&t, &rab, sizeof t);
    }
    /* order D: rho^D is the identity, rho^1 is not; composition adds exponents */
    dc_hv_permute(&r, &a, DC_HV_BITS);
    assert_memory_equal(&r, &a, sizeof a);
    dc_hv_permute(&r, &a, 1);
    assert_memory_not_equal(&r, &a, sizeof a);
    dc_hv_permute(&t, &r, 99);
    dc_hv_permute(&r, &a, 100);
    assert_memory_equal(&t, &r, sizeof t);
}

static void test_symbol_vectors_are_nearly_orthogonal(void **state) {
    (void)state;
    dc_hv a, b;
    double worst = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        dc_hdc_memory_symbol(mem, i, &a);
        dc_hdc_memory_symbol(mem, 5000 + 7 * i, &b); /* generated on demand */
        double s = fabs(dc_hv_similarity(&a, &b));
        if (s > worst) worst = s;
    }
    assert_true(worst < 0.05); /* std 1/sqrt(10240) ~ 0.0099 */
    /* table entries equal on-demand generation */
    dc_hdc_memory_symbol(mem, 'q', &a);
    dc_hv_random(&b, dc_hdc_key(42, DC_HDC_KEY_SYMBOL, 'q'));
    assert_memory_equal(&a, &b, sizeof a);
}

/* ---------------- bundling ---------------- */

static void test_bundler_counts_like_naive_counting(void **state) {
    (void)state;
    dc_hv_bundler *b = calloc(1, sizeof *b);
    dc_hv *vs = malloc(70 * sizeof *vs);
    for (uint32_t i = 0; i < 70; i++) random_hv(&vs[i], 100 + i);
    const uint32_t sizes[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 70};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        dc_hv_bundler_reset(b, 1);
        for (uint32_t i = 0; i < n; i++) dc_hv_bundler_add(b, &vs[i]);
        for (uint32_t bit = 0; bit < DC_HV_BITS; bit += 13) {
            uint32_t want = 0;
            for (uint32_t i = 0; i < n; i++) want += dc_hv_get_bit(&vs[i], bit);
            assert_int_equal(dc_hv_bundler_counter(b, bit), want);
        }
    }
    /* n-grams in bulk (chunked passes) == the same items added one by one */
    const uint64_t *seq[64];
    for (int i = 0; i < 64; i++) seq[i] = mem->base2 + (size_t)(i % 23) * 2 * DC_HV_WORDS;
    const size_t off[3] = {DC_HV_WORDS - 2, DC_HV_WORDS - 1, DC_HV_WORDS};
    dc_hv_bundler *b2 = calloc(1, sizeof *b2);
    dc_hv m1, m2, tie;
    random_hv(&tie, 999);
    for (size_t len = 1; len <= 64; len += 3) {
        dc_hv_bundler_reset(b, 3);
        dc_hv_bundler_add_ngrams(b, seq, len, off);
        dc_hv_bundler_reset(b2, 3);
        for (size_t i = 0; i + 3 <= len; i++) {
            const uint64_t *src[3] = {seq[i] + off[0], seq[i + 1] + off[1], seq[i + 2] + off[2]};
            dc_hv_bundler_add_xor(b2, src);
        }
        assert_int_equal(b->count, b2->count);
        for (uint32_t bit = 0; bit < DC_HV_BITS; bit += 101)
            assert_int_equal(dc_hv_bundler_counter(b, bit), dc_hv_bundler_counter(b2, bit));
        dc_hv_bundler_majority(b, &tie, &m1);
        dc_hv_bundler_majority(b2, &tie, &m2);
        assert_memory_equal(&m1, &m2, sizeof m1);
    }
    /* weighted: each distinct n-gram once with its count == every occurrence */
    for (size_t len = 3; len <= 64; len += 5) {
        uint32_t start[64], weight[64];
        size_t n = 0;
        for (size_t i = 0; i + 3 <= len; i++) { /* windows 0..4 repeat (seq period 23) */
            size_t k = 0;
            while (k < n && start[k] % 23 != i % 23) k++;
            if (k == n) {
                start[n] = (uint32_t)i;
                weight[n++] = 0;
            }
            weight[k]++;
        }
        dc_hv_bundler_reset(b, 3);
        dc_hv_bundler_add_ngrams(b, seq, len, off);
        dc_hv_bundler_reset(b2, 3);
        dc_hv_bundler_add_ngrams_weighted(b2, seq, off, start, weight, n);
        assert_int_equal(b->count, b2->count);
        for (uint32_t bit = 0; bit < DC_HV_BITS; bit += 61)
            assert_int_equal(dc_hv_bundler_counter(b, bit), dc_hv_bundler_counter(b2, bit));
    }
    /* large weights: 1000 x a + 37 x c + 1 x d, all bits of the weights exercised */
    const uint64_t *one[3] = {seq[0] + off[0], seq[1] + off[1], seq[2] + off[2]};
    uint32_t start2[3] = {0, 2, 3}, weight2[3] = {1000, 37, 1};
    dc_hv_bundler_reset(b, 3);
    dc_hv_bundler_add_ngrams_weighted(b, seq, off, start2, weight2, 3);
    assert_int_equal(b->count, 1038);
    dc_hv_bundler_reset(b2, 3);
    for (int i = 0; i < 1000; i++) dc_hv_bundler_add_xor(b2, one);
    for (int i = 0; i < 37; i++) {
        const uint64_t *c3[3] = {seq[2] + off[0], seq[3] + off[1], seq[4] + off[2]};
        dc_hv_bundler_add_xor(b2, c3);
    }
    const uint64_t *d3[3] = {seq[3] + off[0], seq[4] + off[1], seq[5] + off[2]};
    dc_hv_bundler_add_xor(b2, d3);
    for (uint32_t bit = 0; bit < DC_HV_BITS; bit += 7)
        assert_int_equal(dc_hv_bundler_counter(b, bit), dc_hv_bundler_counter(b2, bit));
    free(b2);
    free(vs);
    free(b);
}

static void test_majority_bundle_similarity_and_ties(void **state) {
    (void)state;
    dc_hv_bundler *b = calloc(1, sizeof *b);
    dc_hv v[9], other, tie, maj;
    random_hv(&tie, 500);
    random_hv(&other, 501);
    for (int i = 0; i < 9; i++) random_hv(&v[i], 510 + (uint32_t)i);
    /* a majority of n random vectors resembles each member: n = 3 -> 0.5, 5 -> 0.375, 9 -> 0.273 */
    const int ns[] = {3, 5, 9};
    const double want[] = {0.5, 0.375, 0.2734};
    for (int t = 0; t < 3; t++) {
        dc_hv_bundler_reset(b, 1);
        for (int i = 0; i < ns[t]; i++) dc_hv_bundler_add(b, &v[i]);
        dc_hv_bundler_majority(b, &tie, &maj);
        for (int i = 0; i < ns[t]; i++)
            assert_true(fabs(dc_hv_similarity(&maj, &v[i]) - want[t]) < 0.04);
        assert_true(fabs(dc_hv_similarity(&maj, &other)) < 0.05);
    }
    /* two vectors: equal bits are kept, differing bits come from the tie vector */
    dc_hv_bundler_reset(b, 1);
    dc_hv_bundler_add(b, &v[0]);
    dc_hv_bundler_add(b, &v[1]);
    dc_hv_bundler_majority(b, &tie, &maj);
    for (int w = 0; w < DC_HV_WORDS; w++) {
        uint64_t same = ~(v[0].w[w] ^ v[1].w[w]);
        assert_true(maj.w[w] == ((v[0].w[w] & same) | (tie.w[w] & ~same)));
    }
    /* one vector: the majority is the vector itself */
    dc_hv_bundler_reset(b, 1);
    dc_hv_bundler_add(b, &v[4]);
    dc_hv_bundler_majority(b, &tie, &maj);
    assert_memory_equal(&maj, &v[4], sizeof maj);
    free(b);
}

/* ---------------- the text encoder ---------------- */

static void encode_hv(const char *text, dc_hv *hv) {
    dc_hdc_result r;
    assert_ok(dc_hdc_encode_hv(mem, scratch, text, strlen(text), 4096, false, hv, &r));
}

static void test_ngrams_are_rotated_and_bound_symbols(void **state) {
    (void)state;
    dc_hv a, b, c, ra, rb, t, hv;
    dc_hdc_memory_symbol(mem, 'a', &a);
    dc_hdc_memory_symbol(mem, 'b', &b);
    dc_hdc_memory_symbol(mem, 'c', &c);
    /* "abc" is one trigram: rho^128(a) xor rho^64(b) xor c, computed with the algebra */
    dc_hv_permute(&ra, &a, 128);
    dc_hv_permute(&rb, &b, 64);
    dc_hv_bind(&t, &ra, &rb);
    dc_hv_bind(&t, &t, &c);
    encode_hv("abc", &hv);
    assert_memory_equal(&hv, &t, sizeof t);
    encode_hv("ABC", &hv); /* lower-cased */
    assert_memory_equal(&hv, &t, sizeof t);
    /* shorter than a trigram: the characters take the last slots */
    dc_hv_permute(&ra, &a, 64);
    dc_hv_bind(&t, &ra, &b);
    encode_hv("ab", &hv);
    assert_memory_equal(&hv, &t, sizeof t);
    encode_hv("a", &hv);
    assert_memory_equal(&hv, &a, sizeof a);
    /* order matters inside an n-gram */
    dc_hv cba;
    encode_hv("abc", &hv);
    encode_hv("cba", &cba);
    assert_true(fabs(dc_hv_similarity(&hv, &cba)) < 0.05);
    /* the text "abcde" bundles 3 trigrams, so it resembles each at about 0.5 */
    dc_hv abcde, cde;
    encode_hv("abcde", &abcde);
    encode_hv("cde", &cde);
    assert_true(fabs(dc_hv_similarity(&abcde, &hv) - 0.5) < 0.04);
    assert_true(fabs(dc_hv_similarity(&abcde, &cde) - 0.5) < 0.04);
}

static void test_similar_strings_are_similar(void **state) {
    (void)state;
    const char *base = "the quick brown fox jumps over the lazy dog near the river bank";
    double typo = cos_text(base, "the quick brown fox jumps over the lazy dog near the rivr bank");
    double reorder =
        cos_text(base, "the lazy dog jumps over the quick brown fox near the river bank");
    double replace =
        cos_text(base, "the quick brown cat leaps over the lazy dog near the river bank");
    double other = cos_text(base, "stock markets fell sharply on tuesday amid inflation worries");
    assert_true(typo > 0.75);
    assert_true(reorder > replace); /* reordering words keeps their inner n-grams */
    assert_true(replace > other + 0.3);
    assert_true(cos_text("Hello World", "hello world") == 1.0);
    assert_true(cos_text(base, base) > 0.99999);
}

/* Unrelated texts share common n-grams ("the", " a "), so raw cosines are slightly positive;
 * after removing the corpus mean they are close to 0, while a paraphrase pair stays high. */
static void test_unrelated_texts_are_near_zero_after_centring(void **state) {
    (void)state;
    static const char *corpus[] = {
        "stock markets fell sharply on tuesday amid inflation worries",
        "the recipe calls for two cups of flour and a pinch of salt",
        "quantum computers use qubits that can exist in superposition",
        "our team won the championship after a thrilling overtime finish",
        "please remember to water the tomato plants every morning",
        "the museum opens a new exhibition of impressionist paintings",
        "heavy snowfall closed several mountain passes overnight",
        "she practised the violin concerto for six hours straight",
        "the server returned a timeout error after thirty seconds",
        "migratory birds travel thousands of kilometres each autumn",
        "he repaired the bicycle chain with a borrowed toolkit",
        "interest rates remained unchanged at the central bank meeting",
    };
    enum { N = sizeof corpus / sizeof corpus[0] };
    static float v[N][DC_HDC_OUT_DIM];
    double mean[DC_HDC_OUT_DIM] = {0};
    for (int i = 0; i < N; i++) {
        enc(corpus[i], v[i]);
        for (int k = 0; k < DC_HDC_OUT_DIM; k++) mean[k] += v[i][k] / N;
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < DC_HDC_OUT_DIM; k++) v[i][k] -= (float)mean[k];
    double worst = 0, sum = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double c = dc_vec_cosine(v[i], v[j], DC_HDC_OUT_DIM);
            sum += c;
            if (fabs(c) > worst) worst = fabs(c);
        }
    /* centring N vectors makes the average pair cosine about -1/(N-1); each pair is small */
    assert_true(worst < 0.2);
    assert_true(fabs(sum / (N * (N - 1) / 2)) < 0.12);
}

static void test_truncation_counts_code_points(void **state) {
    (void)state;
    size_t n = 5000 * 2;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i += 2) memcpy(text + i, "\xc3\xa9", 2); /* é, 2 bytes */
    float a[DC_HDC_OUT_DIM], b[DC_HDC_OUT_DIM];
    dc_hdc_result r;
    assert_ok(dc_hdc_encode(mem, scratch, text, 4096 * 2, 4096, false, a, &r));
    assert_int_equal(r.chars_used, 4096);
    assert_false(r.truncated);
    assert_int_equal(r.ngrams, 4094);
    assert_ok(dc_hdc_encode(mem, scratch, text, 4097 * 2, 4096, false, b, &r));
    assert_int_equal(r.chars_used, 4096);
    assert_true(r.truncated);
    assert_memory_equal(a, b, sizeof a); /* only the first 4096 characters count */
    assert_ok(dc_hdc_encode(mem, scratch, text, n, 100, false, b, &r));
    assert_int_equal(r.chars_used, 100);
    assert_true(r.truncated);
    free(text);
}

static void test_any_code_point_and_bad_bytes(void **state) {
    (void)state;
    /* a table of 0 symbols generates every base vector on demand: same embedding */
    dc_hdc_memory *none = NULL;
    assert_ok(dc_hdc_memory_generate(42, 3, 0, &none));
    const char *text = "mixed: 日本語のテキスト, ελληνικά, emoji \xf0\x9f\x98\x80, ascii";
    float a[DC_HDC_OUT_DIM], b[DC_HDC_OUT_DIM];
    dc_hdc_result r;
    assert_ok(dc_hdc_encode(mem, scratch, text, strlen(text), 4096, false, a, &r));
    assert_ok(dc_hdc_encode(none, scratch, text, strlen(text), 4096, false, b, &r));
    assert_memory_equal(a, b, sizeof a);
    dc_hdc_memory_free(none);
    /* malformed UTF-8 reads as U+FFFD, one per bad byte */
    assert_ok(dc_hdc_encode(mem, scratch, "x\xff\xc3y", 4, 4096, false, a, &r));
    assert_int_equal(r.chars_used, 4);
    const char *fffd = "x\xef\xbf\xbd\xef\xbf\xbdy";
    assert_ok(dc_hdc_encode(mem, scratch, fffd, strlen(fffd), 4096, false, b, &r));
    assert_memory_equal(a, b, sizeof a);
    assert_status(dc_hdc_encode(mem, scratch, "", 0, 4096, false, a, &r), DC_ERR_EMPTY_INPUT);
    assert_status(dc_hdc_encode(mem, scratch, "x", 1, 0, false, a, &r), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hdc_encode(mem, scratch, "x", 1, DC_HDC_MAX_MAX_CHARS + 1, false, a, &r),
                  DC_ERR_INVALID_ARGUMENT);
    /* case-sensitive mode keeps capitals distinct */
    float c[DC_HDC_OUT_DIM];
    assert_ok(dc_hdc_encode(mem, scratch, "Hello", 5, 4096, true, a, &r));
    assert_ok(dc_hdc_encode(mem, scratch, "hello", 5, 4096, true, c, &r));
    assert_true(dc_vec_cosine(a, c, DC_HDC_OUT_DIM) < 0.9);
}

static void test_every_ngram_size_gives_unit_vectors(void **state) {
    (void)state;
    const char *text = "int main(void) { return strlen(\"hyperdimensional\") > 3; }";
    for (uint32_t n = 1; n <= DC_HDC_MAX_NGRAM; n++) {
        dc_hdc_memory *m = NULL;
        assert_ok(dc_hdc_memory_generate(42, n, 256, &m));
        float v[DC_HDC_OUT_DIM];
        dc_hdc_result r;
        for (size_t len = 1; len <= strlen(text); len += 7) {
            assert_ok(dc_hdc_encode(m, scratch, text, len, 4096, false, v, &r));
            assert_ok(dc_vec_check_finite(v, DC_HDC_OUT_DIM, "E9"));
            assert_true(fabs(dc_vec_l2_norm(v, DC_HDC_OUT_DIM) - 1.0) < 1e-5);
            assert_int_equal(r.ngrams, len >= n ? len - n + 1 : 1);
        }
        dc_hdc_memory_free(m);
    }
}

/* ---------------- through dc_model ---------------- */

static void test_model_embeds_text_and_code(void **state) {
    (void)state;
    dc_model *m = NULL;
    dc_hdc_options opt = dc_hdc_options_default();
    opt.max_chars = 10;
    assert_ok(dc_hdc_create(&opt, &m));
    assert_int_equal(dc_model_memory_usage(m), 0);
    dc_input in[2] = {dc_input_text("short", 5, DC_ROLE_PASSAGE),
                      dc_input_code("int long_name = 12345;", 22, "c")};
    dc_model_embedding out[2];
    assert_status(dc_model_embed_batch(m, in, 2, out), DC_ERR_NOT_INITIALIZED);
    assert_ok(dc_model_load(m));
    assert_true(dc_model_memory_usage(m) > 4096u * DC_HV_WORDS * 8);
    assert_ok(dc_model_embed_batch(m, in, 2, out));
    assert_int_equal(out[0].dim, DC_DIM_HDC);
    assert_int_equal(out[0].tokens_used, 5);
    assert_false(out[0].truncated);
    assert_int_equal(out[1].tokens_used, 10);
    assert_true(out[1].truncated);
    float want[DC_HDC_OUT_DIM];
    dc_hdc_result r;
    assert_ok(dc_hdc_encode(mem, scratch, "short", 5, 10, false, want, &r));
    assert_memory_equal(out[0].vector, want, sizeof want);
    for (int i = 0; i < 2; i++) dc_model_embedding_free(&out[i]);
    dc_input img = dc_input_image((const uint8_t *)"GIF8", 4, DC_IMAGE_GIF);
    assert_status(dc_model_embed(m, &img, out), DC_ERR_UNSUPPORTED_MODALITY);
    assert_ok(dc_model_unload(m));
    assert_int_equal(dc_model_memory_usage(m), 0);
    dc_model_destroy(m);
}

typedef struct worker {
    dc_model *m;
    const float *want;
    int mismatches;
} worker;

static void *embed_many(void *arg) {
    worker *w = arg;
    const char *text = "concurrent callers share one model and its item memory";
    dc_input in = dc_input_text(text, strlen(text), DC_ROLE_PASSAGE);
    for (int i = 0; i < 40; i++) {
        dc_model_embedding e;
        if (dc_model_embed(w->m, &in, &e) != DC_OK ||
            memcmp(e.vector, w->want, DC_HDC_OUT_DIM * sizeof(float)) != 0)
            w->mismatches++;
        dc_model_embedding_free(&e);
    }
    return NULL;
}

static void test_model_is_safe_to_call_from_threads(void **state) {
    (void)state;
    dc_model *m = NULL;
    assert_ok(dc_hdc_create(NULL, &m));
    assert_ok(dc_model_load(m));
    float want[DC_HDC_OUT_DIM];
    enc("concurrent callers share one model and its item memory", want);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){m, want, 0};
        assert_int_equal(pthread_create(&th[i], NULL, embed_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
    }
    dc_model_destroy(m);
}

static void test_bad_options_are_config_errors(void **state) {
    (void)state;
    dc_model *m = NULL;
    dc_hdc_options o = dc_hdc_options_default();
    o.ngram = 0;
    assert_status(dc_hdc_create(&o, &m), DC_ERR_CONFIG);
    assert_detail_contains("ngram");
    o.ngram = 9;
    assert_status(dc_hdc_create(&o, &m), DC_ERR_CONFIG);
    o = dc_hdc_options_default();
    o.max_chars = 0;
    assert_status(dc_hdc_create(&o, &m), DC_ERR_CONFIG);
    assert_detail_contains("max_chars");
    o = dc_hdc_options_default();
    o.symbols = DC_HDC_MAX_SYMBOLS + 1;
    assert_status(dc_hdc_create(&o, &m), DC_ERR_CONFIG);
    o = dc_hdc_options_default();
    o.item_memory_path = "";
    assert_status(dc_hdc_create(&o, &m), DC_ERR_CONFIG);
    assert_null(m);
    assert_status(dc_hdc_create(NULL, NULL), DC_ERR_INVALID_ARGUMENT);
    assert_ok(dc_hdc_create(NULL, &m)); /* defaults */
    dc_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_the_independent_reference),
        cmocka_unit_test(test_two_processes_agree),
        cmocka_unit_test(test_bind_is_xor_self_inverse_and_commutative),
        cmocka_unit_test(test_permutation_is_a_cyclic_shift_and_invertible),
        cmocka_unit_test(test_symbol_vectors_are_nearly_orthogonal),
        cmocka_unit_test(test_bundler_counts_like_naive_counting),
        cmocka_unit_test(test_majority_bundle_similarity_and_ties),
        cmocka_unit_test(test_ngrams_are_rotated_and_bound_symbols),
        cmocka_unit_test(test_similar_strings_are_similar),
        cmocka_unit_test(test_unrelated_texts_are_near_zero_after_centring),
        cmocka_unit_test(test_truncation_counts_code_points),
        cmocka_unit_test(test_any_code_point_and_bad_bytes),
        cmocka_unit_test(test_every_ngram_size_gives_unit_vectors),
        cmocka_unit_test(test_model_embeds_text_and_code),
        cmocka_unit_test(test_model_is_safe_to_call_from_threads),
        cmocka_unit_test(test_bad_options_are_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
