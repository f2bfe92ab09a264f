/* Configuration: seed defaults, the file / environment / override layers, every validation rule
 * (status and key named), and the show -> parse round trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"
#include "test_support.h"

/* A heap config: dc_config is ~25 KB, kept off cmocka's stack frames. */
static dc_config *new_defaults(void) {
    dc_config *c = malloc(sizeof *c);
    assert_non_null(c);
    dc_config_defaults(c);
    return c;
}

static dc_status load_text(const char *text, dc_config *c, const char **path_out) {
    const char *path = dc_test_write_temp(text, strlen(text), ".toml");
    if (path_out) *path_out = path;
    return dc_config_load_file(path, c);
}

/* Loads `text` from a file expecting DC_ERR_CONFIG whose detail starts "PATH:LINE:" and contains
 * `needle`. line 0 = no location expected. */
#define LOAD_FAILS(text, line, needle)                                                             \
    do {                                                                                           \
        dc_config *c_ = malloc(sizeof *c_);                                                        \
        const char *p_ = NULL;                                                                     \
        assert_status(load_text((text), c_, &p_), DC_ERR_CONFIG);                                  \
        char loc_[600];                                                                            \
        snprintf(loc_, sizeof loc_, "%s:%d:", p_, (line));                                         \
        if ((line) > 0) {                                                                          \
            if (strncmp(dc_error_detail(), loc_, strlen(loc_)) != 0)                               \
                fail_msg("detail \"%s\" does not start with \"%s\"", dc_error_detail(), loc_);     \
        }                                                                                          \
        assert_detail_contains(needle);                                                            \
        free(c_);                                                                                  \
    } while (0)

/* ---------------------------------------------------------------- defaults */

static void test_defaults_are_the_seed_values(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    assert_string_equal(c->models.models_dir, "./models");
    assert_true(c->models.lazy_loading);
    assert_int_equal(c->models.preload_count, 0);
    assert_false(c->models.auto_download);
    assert_int_equal(c->models.max_concurrent_loads, 2);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_config *m = &c->models.model[i];
        assert_true(m->enabled);
        assert_int_equal(m->device.kind, DC_DEVICE_AUTO);
        assert_int_equal(m->quantization, DC_QUANTIZATION_NONE);
        assert_int_equal(m->max_batch_size, 32);
        assert_true(m->use_flash_attention);
        assert_int_equal(m->max_tokens, 0);
        assert_string_equal(m->path, "");
    }
    assert_int_equal(c->batch.max_batch_size, 32);
    assert_int_equal(c->batch.min_batch_size, 1);
    assert_int_equal(c->batch.max_wait_ms, 50);
    assert_true(c->batch.dynamic_batching);
    assert_int_equal(c->batch.padding_strategy, DC_PADDING_DYNAMIC_MAX);
    assert_int_equal(c->batch.bucket_count, 4);
    assert_int_equal(c->batch.bucket_sizes[0], 64);
    assert_int_equal(c->batch.bucket_sizes[3], 512);
    assert_true(c->batch.sort_by_length);
    assert_int_equal(c->batch.max_tokens_per_batch, 16384);
    assert_int_equal(c->batch.queue_capacity, 1024);
    assert_int_equal(c->fusion.num_experts, 8);
    assert_int_equal(c->fusion.top_k, 2);
    assert_int_equal(c->fusion.output_dim, 1536);
    assert_int_equal(c->fusion.expert_hidden_dim, 1024);
    assert_string_equal(c->fusion.gating, "softmax");
    assert_int_equal(c->fusion.jl_nnz, 8);
    assert_string_equal(c->fusion.gate_init, "xavier_uniform");
    assert_string_equal(c->fusion.expert_init, "kaiming_uniform");
    assert_string_equal(c->fusion.output_init, "zeros");
    assert_string_equal(c->fusion.checkpoint, "");
    assert_false(c->fusion.checkpoint_strict);
    assert_true(c->fusion.verify_checksum);
    assert_false(c->fusion.came_ab);
    assert_true(c->fusion.came_ab_blend == 0.0);
    assert_string_equal(c->fusion.weights, "f32");
    assert_int_equal(c->fusion.small_batch, 16);
    assert_int_equal(c->fusion.history, 4);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        assert_true(c->models.model[i].fusion_weight == 1.0);
    assert_true(c->fusion.load_balance_coef == 0.01);
    assert_true(c->fusion.capacity_factor == 1.25);
    assert_true(c->fusion.temperature == 1.0);
    assert_true(c->fusion.noise_std == 0.0);
    assert_true(c->fusion.laplace_alpha == 0.01);
    assert_int_equal(c->fusion.seed, 42);
    assert_true(c->cache.enabled);
    assert_int_equal(c->cache.max_entries, 100000);
    assert_int_equal(c->cache.max_bytes, 1073741824ull);
    assert_int_equal(c->cache.ttl_seconds, 0);
    assert_int_equal(c->cache.eviction_policy, DC_EVICTION_LRU);
    assert_false(c->cache.persist_to_disk);
    assert_string_equal(c->cache.disk_path, "");
    assert_string_equal(c->cache.redis_url, "");
    assert_true(c->gpu.enabled);
    assert_int_equal(c->gpu.device_count, 1);
    assert_int_equal(c->gpu.device_ids[0], 0);
    assert_true(c->gpu.memory_fraction == 0.9);
    assert_true(c->gpu.use_cuda_graphs);
    assert_true(c->gpu.mixed_precision);
    assert_false(c->gpu.green_contexts);
    assert_int_equal(c->gpu.green_partitions, 4);
    assert_true(c->gpu.direct_weights);
    assert_true(c->pii.enabled);
    assert_int_equal(c->pii.mode, DC_PII_PLACEHOLDER);
    assert_int_equal(c->pii.sensitivity, DC_PII_MODERATE);
    assert_string_equal(c->pii.hmac_key, "");
    assert_string_equal(c->pii.hmac_key_file, "");
    assert_int_equal(c->pii.custom_pattern_count, 0);
    assert_string_equal(c->server.host, "127.0.0.1");
    assert_int_equal(c->server.port, 8080);
    assert_int_equal(c->server.threads, 0);
    assert_int_equal(c->server.max_body_bytes, 8u << 20);
    assert_int_equal(c->server.max_batch_items, 256);
    assert_int_equal(c->server.max_input_chars, 262144);
    assert_string_equal(c->server.api_key, "");
    assert_false(c->trace.enabled);
    assert_true(c->trace.sample_rate == 1.0);
    assert_int_equal(c->pipeline.deadline_ms, 0);
    assert_int_equal(c->pipeline.min_models, 7);
    assert_int_equal(dc_config_deadline_ms(c, true), 150);
    assert_int_equal(dc_config_deadline_ms(c, false), 2000);
    c->pipeline.deadline_ms = 300;
    assert_int_equal(dc_config_deadline_ms(c, true), 300);
    c->pipeline.deadline_ms = 0;
    assert_ok(dc_config_validate(c));
    free(c);
}

/* The configuration reference documents the defaults: loading it must give exactly them. */
static void test_example_file_loads_and_documents_the_defaults(void **state) {
    (void)state;
    dc_config *c = new_defaults(), *d = new_defaults();
    assert_ok(dc_config_load_file(dc_test_data_path("config/dodeca.example.toml"), c));
    assert_true(dc_config_equal(c, d));
    free(c);
    free(d);
}

/* ... and lists every key the settings table knows, for every model. */
static void test_example_file_lists_every_key(void **state) {
    (void)state;
    size_t len = 0;
    char *text = dc_test_read_file(dc_test_data_path("config/dodeca.example.toml"), &len);
    assert_non_null(text);
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(text, len, "example", &t));
    for (size_t i = 0; i < dc_cfg_setting_count(); i++) {
        dc_cfg_setting s = dc_cfg_setting_at(i);
        char key[160];
        dc_cfg_key_name(&s, key, sizeof key);
        if (!dc_toml_get_path(t, key)) fail_msg("the example does not document %s", key);
    }
    dc_toml_free(t);
    free(text);
}

/* ---------------------------------------------------------------- files */

static void test_load_full_file(void **state) {
    (void)state;
    const char *text = "[models]\n"
                       "models_dir = \"/srv/models\"\n"
                       "preload = [\"semantic\", \"E7\", \"all-MiniLM-L6-v2\"]\n"
                       "lazy_loading = false\n"
                       "[models.semantic]\n"
                       "device = \"cuda:1\"\n"
                       "quantization = \"bf16\"\n"
                       "max_tokens = 256\n"
                       "[models.multimodal]\n"
                       "enabled = false\n"
                       "path = '/opt/clip'\n"
                       "[batch]\n"
                       "max_batch_size = 64\n"
                       "min_batch_size = 4\n"
                       "padding_strategy = \"DynamicMax\"\n" /* the S08 spelling reads too */
                       "bucket_sizes = [32, 64]\n"
                       "[fusion]\n"
                       "temperature = 2\n" /* an integer is accepted for a float key */
                       "noise_std = 0.1\n"
                       "seed = 0x7FFFFFFFFFFFFFFF\n"
                       "[cache]\n"
                       "eviction_policy = \"TtlLru\"\n"
                       "ttl_seconds = 3600\n"
                       "redis_url = \"redis://localhost:6379/0\"\n"
                       "[gpu]\n"
                       "device_ids = [0, 1]\n"
                       "memory_fraction = 1.0\n"
                       "[pii]\n"
                       "mode = \"hash\"\n"
                       "sensitivity = \"Strict\"\n"
                       "hmac_key = \"0123456789abcdef0123\"\n"
                       "custom_patterns = [\"EMPLOYEE_ID=EMP-\\\\d{6}\", 'TICKET=T-[0-9]{4,}']\n"
                       "[server]\n"
                       "port = 9000\n"
                       "api_key = \"s3cr\\u00e9t\"\n"
                       "[trace]\n"
                       "enabled = true\n"
                       "sample_rate = 0.25\n"
                       "[pipeline]\n"
                       "deadline_ms = 500\n"
                       "min_models = 3\n";
    dc_config *c = new_defaults();
    assert_ok(load_text(text, c, NULL));
    assert_string_equal(c->models.models_dir, "/srv/models");
    assert_int_equal(c->models.preload_count, 3);
    assert_int_equal(c->models.preload[0], DC_MODEL_SEMANTIC);
    assert_int_equal(c->models.preload[1], DC_MODEL_CODE);
    assert_int_equal(c->models.preload[2], DC_MODEL_ENTITY);
    assert_false(c->models.lazy_loading);
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].device.kind, DC_DEVICE_CUDA);
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].device.index, 1);
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].quantization, DC_QUANTIZATION_BF16);
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].max_tokens, 256);
    assert_false(c->models.model[DC_MODEL_MULTIMODAL].enabled);
    assert_string_equal(c->models.model[DC_MODEL_MULTIMODAL].path, "/opt/clip");
    assert_true(c->models.model[DC_MODEL_CODE].enabled);
    assert_int_equal(c->batch.max_batch_size, 64);
    assert_int_equal(c->batch.min_batch_size, 4);
    assert_int_equal(c->batch.padding_strategy, DC_PADDING_DYNAMIC_MAX);
    assert_int_equal(c->batch.bucket_count, 2);
    assert_int_equal(c->batch.bucket_sizes[1], 64);
    assert_true(c->fusion.temperature == 2.0);
    assert_true(c->fusion.noise_std == 0.1);
    assert_int_equal(c->fusion.seed, INT64_MAX);
    assert_int_equal(c->cache.eviction_policy, DC_EVICTION_TTL_LRU);
    assert_int_equal(c->cache.ttl_seconds, 3600);
    assert_int_equal(c->gpu.device_count, 2);
    assert_int_equal(c->gpu.device_ids[1], 1);
    assert_int_equal(c->pii.mode, DC_PII_HASH);
    assert_int_equal(c->pii.sensitivity, DC_PII_STRICT);
    assert_string_equal(c->pii.hmac_key, "0123456789abcdef0123");
    assert_int_equal(c->pii.custom_pattern_count, 2);
    assert_string_equal(c->pii.custom_patterns[0], "EMPLOYEE_ID=EMP-\\d{6}");
    assert_string_equal(c->pii.custom_patterns[1], "TICKET=T-[0-9]{4,}");
    assert_int_equal(c->server.port, 9000);
    assert_string_equal(c->server.api_key, "s3cr\xC3\xA9t");
    assert_true(c->trace.enabled);
    assert_true(c->trace.sample_rate == 0.25);
    assert_int_equal(c->pipeline.deadline_ms, 500);
    assert_int_equal(c->pipeline.min_models, 3);
    /* keys not in the file keep their defaults */
    assert_int_equal(c->batch.max_wait_ms, 50);
    assert_int_equal(c->fusion.num_experts, 8);
    free(c);
}

static void test_missing_file_is_io_error(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    c->batch.max_batch_size = 5;
    assert_status(dc_config_load_file("/nonexistent/dir/dodeca.toml", c), DC_ERR_IO);
    assert_detail_contains("/nonexistent/dir/dodeca.toml");
    assert_int_equal(c->batch.max_batch_size, 32);         /* left at the defaults */
    assert_status(dc_config_load_file("/", c), DC_ERR_IO); /* a directory */
    assert_detail_contains("/");
    free(c);
}

static void test_bad_toml_names_file_and_line(void **state) {
    (void)state;
    LOAD_FAILS("[batch]\nmax_batch_size = 32\nmax_batch_size = 64\n", 3,
               "duplicate key 'batch.max_batch_size' (first defined at line 2)");
    LOAD_FAILS("[batch]\nmax_wait_ms 5\n", 2, "expected '='");
    LOAD_FAILS("[cache]\nredis_url = \"redis://x\n", 2, "unterminated string");
}

static void test_unknown_sections_and_keys(void **state) {
    (void)state;
    LOAD_FAILS("[batch]\nmax_batch_size = 8\n\n[batchh]\nx = 1\n", 4, "unknown section [batchh]");
    LOAD_FAILS("title = \"x\"\n", 1, "unknown top-level key 'title'");
    LOAD_FAILS("[batch]\nmax_size = 64\n", 2, "unknown key 'batch.max_size'");
    LOAD_FAILS("[batch]\nmax_size = 64\n", 2, "max_batch_size"); /* lists the known keys */
    LOAD_FAILS("[gpu]\n[gpu.extra]\n", 2, "unknown key 'gpu.extra'");
    LOAD_FAILS("[models.semantics]\n", 1, "unknown model table [models.semantics]");
    LOAD_FAILS("[models.E1]\ndevice = \"cpu\"\n", 1, "write [models.semantic] for [models.E1]");
    LOAD_FAILS("[models.code]\nflash = true\n", 2, "unknown key 'models.code.flash'");
    LOAD_FAILS("[models]\nsemantic = 1\n", 2, "unknown key 'models.semantic'");
    LOAD_FAILS("[models]\ncode.device = \"cpu\"\ncode.colour = 1\n", 3,
               "unknown key 'models.code.colour'");
}

static void test_wrong_types_and_ranges(void **state) {
    (void)state;
    LOAD_FAILS("[batch]\nmax_batch_size = \"32\"\n", 2,
               "batch.max_batch_size: expected an integer, got a string");
    LOAD_FAILS("[batch]\nmax_batch_size = 32.0\n", 2, "batch.max_batch_size: expected an integer");
    LOAD_FAILS("[batch]\nmax_batch_size = -1\n", 2, "batch.max_batch_size: -1 is negative");
    LOAD_FAILS("[batch]\nmax_batch_size = 4294967296\n", 2,
               "batch.max_batch_size: 4294967296 is too large (at most 4294967295)");
    LOAD_FAILS("[cache]\nenabled = 1\n", 2,
               "cache.enabled: expected true or false, got an integer");
    LOAD_FAILS("[fusion]\ntemperature = \"hot\"\n", 2, "fusion.temperature: expected a number");
    LOAD_FAILS("[server]\nhost = 127\n", 2, "server.host: expected a string, got an integer");
    LOAD_FAILS("[gpu]\ndevice_ids = 0\n", 2, "gpu.device_ids: expected an array");
    LOAD_FAILS("[gpu]\ndevice_ids = [0, \"1\"]\n", 2, "gpu.device_ids: expected an integer");
    LOAD_FAILS("[gpu]\ndevice_ids = [0, -1]\n", 2, "gpu.device_ids: -1 is negative");
    LOAD_FAILS("[gpu]\ndevice_ids = [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n", 2,
               "gpu.device_ids: has 17 entries (at most 16)");
    LOAD_FAILS("[models]\npreload = [\"semantic\", \"bogus\"]\n", 2,
               "models.preload: unknown model \"bogus\"");
    LOAD_FAILS("[models]\npreload = [\"code\", \"E7\"]\n", 2,
               "models.preload: lists model \"code\" twice");
    LOAD_FAILS("[models]\npreload = [1]\n", 2, "models.preload: expected model names");
    LOAD_FAILS("[batch]\npadding_strategy = \"longest\"\n", 2,
               "batch.padding_strategy: unknown padding strategy \"longest\"");
    LOAD_FAILS("[cache]\neviction_policy = \"fifo\"\n", 2,
               "cache.eviction_policy: unknown eviction policy \"fifo\"");
    LOAD_FAILS("[pii]\nmode = \"remove\"\n", 2,
               "pii.mode: unknown PII mode \"remove\" (expected placeholder, redact, mask, hash "
               "or off)");
    LOAD_FAILS("[pii]\nsensitivity = \"high\"\n", 2,
               "pii.sensitivity: unknown PII sensitivity \"high\" (expected permissive, moderate "
               "or strict)");
    LOAD_FAILS("[pii]\ncustom_patterns = \"A=b\"\n", 2,
               "pii.custom_patterns: expected an array of strings, got a string");
    LOAD_FAILS("[pii]\ncustom_patterns = [\"A=b\", 3]\n", 2,
               "pii.custom_patterns: entry 1: expected a string, got an integer");
    LOAD_FAILS("[pii]\ncustom_patterns = [\"A=1\",\"A=2\",\"A=3\",\"A=4\",\"A=5\",\"A=6\","
               "\"A=7\",\"A=8\",\"A=9\",\"A=10\",\"A=11\",\"A=12\",\"A=13\",\"A=14\","
               "\"A=15\",\"A=16\",\"A=17\"]\n",
               2, "pii.custom_patterns: has 17 entries (at most 16)");
    LOAD_FAILS("[models.code]\nquantization = \"int4\"\n", 2,
               "models.code.quantization: unknown quantization \"int4\"");
    LOAD_FAILS("[models.code]\ndevice = \"gpu\"\n", 2,
               "models.code.device: unknown device \"gpu\"");
    LOAD_FAILS("[models.code]\ndevice = \"cuda:x\"\n", 2, "models.code.device: bad CUDA device");
    LOAD_FAILS("[models.code]\ndevice = \"cpu:1\"\n", 2, "models.code.device: unknown device");
    LOAD_FAILS("[models.code]\ndevice = \"cuda:\"\n", 2, "models.code.device: unknown device");
    LOAD_FAILS("[models.code]\ndevice = \"cuda:99999999999\"\n", 2, "bad CUDA device");
}

static void test_too_long_string_is_an_error(void **state) {
    (void)state;
    size_t n = DC_CONFIG_PATH_MAX; /* one byte more than fits with the NUL */
    char *text = malloc(n + 64);
    assert_non_null(text);
    int k = sprintf(text, "[models]\nmodels_dir = \"");
    memset(text + k, 'd', n);
    sprintf(text + k + n, "\"\n");
    LOAD_FAILS(text, 2, "models.models_dir: is 1024 bytes long (at most 1023)");
    /* exactly the maximum fits, untruncated */
    sprintf(text + k + n - 1, "\"\n");
    dc_config *c = new_defaults();
    assert_ok(load_text(text, c, NULL));
    assert_int_equal(strlen(c->models.models_dir), DC_CONFIG_PATH_MAX - 1);
    free(c);
    free(text);
}

/* ---------------------------------------------------------------- validation rules */

typedef struct rule_case {
    const char *toml;
    int line;           /* line the error points at */
    const char *needle; /* names the key and the value */
} rule_case;

static const rule_case rule_cases[] = {
    /* batch (F13) */
    {"[batch]\nmax_batch_size = 0\nmin_batch_size = 0\n", 2,
     "batch.max_batch_size (0) must be > 0"},
    {"[batch]\nmin_batch_size = 0\n", 2, "batch.min_batch_size (0) must be >= 1"},
    {"[batch]\nmin_batch_size = 64\n", 2, "batch.min_batch_size (64) > batch.max_batch_size (32)"},
    {"[batch]\nmax_batch_size = 8\n\nmin_batch_size = 9\n", 4,
     "batch.min_batch_size (9) > batch.max_batch_size (8)"},
    {"[batch]\nmin_batch_size = 4\nmax_wait_ms = 0\n", 3,
     "batch.max_wait_ms (0) must be > 0 when batch.min_batch_size (4) > 1"},
    {"[batch]\nmax_tokens_per_batch = 0\n", 2, "batch.max_tokens_per_batch (0) must be > 0"},
    {"[batch]\nqueue_capacity = 16\n", 2, "batch.queue_capacity (16) < batch.max_batch_size (32)"},
    {"[batch]\npadding_strategy = \"bucket\"\nbucket_sizes = []\n", 3,
     "batch.padding_strategy = \"bucket\" needs a non-empty batch.bucket_sizes"},
    {"[batch]\nbucket_sizes = [64, 64]\n", 2, "batch.bucket_sizes must increase (64 after 64)"},
    {"[batch]\nbucket_sizes = [0, 64]\n", 2, "batch.bucket_sizes[0] is 0"},
    /* fusion (F14) */
    {"[fusion]\nnum_experts = 0\n", 2, "fusion.num_experts (0) must be between 1 and 8"},
    {"[fusion]\nnum_experts = 9\n", 2, "fusion.num_experts (9) must be between 1 and 8"},
    {"[fusion]\ntop_k = 0\n", 2, "fusion.top_k (0) must be between 1 and fusion.num_experts (8)"},
    {"[fusion]\nnum_experts = 4\ntop_k = 5\n", 3,
     "fusion.top_k (5) must be between 1 and fusion.num_experts (4)"},
    {"[fusion]\noutput_dim = 0\n", 2, "fusion.output_dim (0) must be 1536"},
    {"[fusion]\noutput_dim = 768\n", 2, "fusion.output_dim (768) must be 1536"},
    {"[fusion]\nexpert_hidden_dim = 0\n", 2, "fusion.expert_hidden_dim (0) must be > 0"},
    {"[fusion]\ntemperature = 0.0\n", 2, "fusion.temperature (0) must be > 0"},
    {"[fusion]\ntemperature = -1\n", 2, "fusion.temperature (-1) must be > 0"},
    {"[fusion]\ntemperature = nan\n", 2, "fusion.temperature (nan) must be > 0"},
    {"[fusion]\ncapacity_factor = 0.99\n", 2, "fusion.capacity_factor (0.99) must be >= 1.0"},
    {"[fusion]\ncapacity_factor = inf\n", 2, "fusion.capacity_factor (inf) must be >= 1.0"},
    {"[fusion]\nlaplace_alpha = -0.01\n", 2, "fusion.laplace_alpha (-0.01) must be >= 0"},
    {"[fusion]\nnoise_std = -1e-9\n", 2, "fusion.noise_std (-1e-09) must be >= 0"},
    {"[fusion]\nload_balance_coef = -0.5\n", 2, "fusion.load_balance_coef (-0.5) must be >= 0"},
    {"[fusion]\ngating = \"dense\"\n", 2,
     "fusion.gating = \"dense\" is not one of \"softmax\", \"laplace\""},
    {"[fusion]\nexpert_init = \"he\"\n", 2, "fusion.expert_init = \"he\" is not one of \"zeros\""},
    {"[fusion]\nweights = \"fp8\"\n", 2, "fusion.weights = \"fp8\" is not one of \"f32\", \"bf16\""},
    {"[fusion]\njl_nnz = 7\n", 2, "fusion.jl_nnz (7) must divide 1536"},
    {"[fusion]\ncame_ab_blend = 1.5\n", 2, "fusion.came_ab_blend (1.5) must be between 0 and 1"},
    {"[fusion]\n\ncame_ab_blend = 0.5\n", 3,
     "fusion.came_ab_blend (0.5) > 0 needs fusion.came_ab = true"},
    {"[fusion]\nhistory = 65\n", 2, "fusion.history (65) must be at most 64"},
    {"[fusion]\ncheckpoint_strict = true\n", 2,
     "fusion.checkpoint_strict = true needs fusion.checkpoint"},
    {"[models.hdc]\nfusion_weight = -1\n", 2,
     "models.hdc.fusion_weight (-1) must be finite and >= 0"},
    /* cache (F15) */
    {"[cache]\nmax_entries = 0\n", 2,
     "cache.max_entries (0) must be > 0 when the cache is enabled"},
    {"[cache]\nmax_bytes = 0\n", 2, "cache.max_bytes (0) must be > 0 when the cache is enabled"},
    {"[cache]\npersist_to_disk = true\n", 2, "cache.persist_to_disk = true needs cache.disk_path"},
    {"[cache]\nttl_seconds = 0\neviction_policy = \"ttl_lru\"\n", 3,
     "cache.eviction_policy = \"ttl_lru\" needs cache.ttl_seconds > 0"},
    {"[cache]\nredis_url = \"localhost:6379\"\n", 2,
     "cache.redis_url (\"localhost:6379\") must start with redis://"},
    /* gpu (F15) */
    {"[gpu]\nmemory_fraction = 0.0\n", 2, "gpu.memory_fraction (0) must be in (0, 1]"},
    {"[gpu]\nmemory_fraction = 1.5\n", 2, "gpu.memory_fraction (1.5) must be in (0, 1]"},
    {"[gpu]\nenabled = false\nmemory_fraction = -0.1\n", 3,
     "gpu.memory_fraction (-0.1) must be in [0, 1]"},
    {"[gpu]\ndevice_ids = []\n", 2, "gpu.device_ids must list at least one device"},
    {"[gpu]\ndevice_ids = [1, 0, 1]\n", 2, "gpu.device_ids lists device 1 twice"},
    {"[gpu]\ngreen_partitions = 1\n", 2, "gpu.green_partitions (1) must be in [2, 16]"},
    {"[gpu]\ngreen_partitions = 17\n", 2, "gpu.green_partitions (17) must be in [2, 16]"},
    /* server */
    {"[server]\nport = 0\n", 2, "server.port (0) must be between 1 and 65535"},
    {"[server]\nport = 65536\n", 2, "server.port (65536) must be between 1 and 65535"},
    {"[server]\nhost = \"\"\n", 2, "server.host must not be empty"},
    {"[server]\nthreads = 100000\n", 2, "server.threads (100000) must be at most 4096"},
    {"[server]\nmax_body_bytes = 0\n", 2, "server.max_body_bytes (0) must be > 0"},
    {"[server]\nmax_batch_items = 0\n", 2, "server.max_batch_items (0) must be > 0"},
    {"[server]\nmax_input_chars = 0\n", 2, "server.max_input_chars (0) must be > 0"},
    /* trace */
    {"[trace]\nsample_rate = -0.1\n", 2, "trace.sample_rate (-0.1) must be in [0, 1]"},
    {"[trace]\nsample_rate = 1.5\n", 2, "trace.sample_rate (1.5) must be in [0, 1]"},
    {"[trace]\notlp_endpoint = \"grpc://x:4317\"\n", 2, "must start with http:// or https://"},
    {"[trace]\notlp_headers = [\"X-Key k\"]\n", 2, "trace.otlp_headers[0] \"X-Key k\" must read"},
    {"[trace]\notlp_headers = [\"a: 1\", \"Bad Name: 2\"]\n", 2, "trace.otlp_headers[1]"},
    /* pipeline */
    {"[pipeline]\nmin_models = 0\n", 2, "pipeline.min_models (0) must be between 1 and 12"},
    {"[pipeline]\nmin_models = 13\n", 2, "pipeline.min_models (13) must be between 1 and 12"},
    {"[models.code]\nenabled = false\n[models.sparse]\nenabled = false\n[pipeline]\nmin_models = "
     "11\n",
     6, "pipeline.min_models (11) exceeds the 10 enabled models"},
    /* models (F12) */
    {"[models]\nmodels_dir = \"\"\n", 2, "models.models_dir must not be empty"},
    {"[models]\nmax_concurrent_loads = 0\n", 2,
     "models.max_concurrent_loads (0) must be at least 1"},
    {"[models.semantic]\nenabled = false\n", 2,
     "models.semantic.enabled = false: the semantic model (E1) is required"},
    {"[models.graph]\nmax_batch_size = 0\n", 2,
     "models.graph.max_batch_size (0) must be at least 1"},
    {"[models.graph]\nmax_tokens = 129\n", 2,
     "models.graph.max_tokens (129) exceeds the model's limit of 128"},
    {"[models.temporal_recent]\nmax_tokens = 1\n", 2,
     "models.temporal_recent.max_tokens (1) must be 0: temporal_recent takes no text"},
    {"[gpu]\nenabled = false\n[models.code]\ndevice = \"cuda:0\"\n", 4,
     "models.code.device = \"cuda:0\" but gpu.enabled = false"},
    {"[models.code]\ndevice = \"cuda:3\"\n", 2,
     "models.code.device = \"cuda:3\" is not in gpu.device_ids"},
    {"[models]\npreload = [\"code\"]\n[models.code]\nenabled = false\n", 2,
     "models.preload lists \"code\" but models.code.enabled = false"},
    /* pii */
    {"[pii]\nmode = \"hash\"\n", 2,
     "pii.mode = \"hash\" needs a key: set pii.hmac_key or pii.hmac_key_file"},
    {"[pii]\nhmac_key = \"short-key\"\n", 2,
     "pii.hmac_key is 9 bytes long; a key needs at least 16 bytes"},
    {"[pii]\nhmac_key = \"0123456789abcdef\"\nhmac_key_file = \"/k\"\n", 3,
     "set pii.hmac_key or pii.hmac_key_file, not both"},
    {"[pii]\ncustom_patterns = [\"EMP-\\\\d+\"]\n", 2,
     "pii.custom_patterns[0]: expected NAME=REGEX"},
    {"[pii]\ncustom_patterns = [\"ok=x\"]\n", 2,
     "pii.custom_patterns[0]: NAME \"ok\" must match [A-Z][A-Z0-9_]*"},
    {"[pii]\ncustom_patterns = [\"A=x\", \"ID=(EMP\"]\n", 2,
     "pii.custom_patterns[1]: ID: regex error at offset 4: missing closing parenthesis"},
    {"[pii]\ncustom_patterns = [\"ID=\\\\d*\"]\n", 2,
     "pii.custom_patterns[0]: ID: the regex matches the empty string"},
    {"[pii]\ncustom_patterns = [\"ID=\"]\n", 2, "pii.custom_patterns[0]: empty REGEX"},
};

static void test_every_validation_rule(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        const rule_case *rc = &rule_cases[i];
        dc_config *c = malloc(sizeof *c);
        const char *path = NULL;
        dc_status st = load_text(rc->toml, c, &path);
        if (st != DC_ERR_CONFIG)
            fail_msg("case %zu (%s): got %s (%s)", i, rc->needle, dc_status_name(st),
                     dc_error_detail());
        char loc[600];
        snprintf(loc, sizeof loc, "%s:%d: ", path, rc->line);
        if (strncmp(dc_error_detail(), loc, strlen(loc)) != 0 ||
            !strstr(dc_error_detail(), rc->needle))
            fail_msg("case %zu: detail \"%s\" lacks \"%s\" at \"%s\"", i, dc_error_detail(),
                     rc->needle, loc);
        free(c);
    }
}

static void test_validation_boundaries_accepted(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    const char *ok_cases[] = {
        "[batch]\nmin_batch_size = 32\nmax_wait_ms = 1\n", /* min == max */
        "[batch]\nmin_batch_size = 1\nmax_wait_ms = 0\n",  /* no wait needed for min 1 */
        "[fusion]\nnum_experts = 1\ntop_k = 1\n",
        "[fusion]\ntop_k = 8\ncapacity_factor = 1.0\nlaplace_alpha = 0.0\n",
        "[fusion]\ngating = \"laplace\"\nweights = \"bf16\"\njl_nnz = 1\nhistory = 0\n",
        "[fusion]\ncame_ab = true\ncame_ab_blend = 1.0\noutput_init = \"orthogonal\"\n",
        "[fusion]\ncheckpoint = \"w.safetensors\"\ncheckpoint_strict = true\n",
        "[models.hdc]\nfusion_weight = 0.0\n",
        "[cache]\nenabled = false\nmax_entries = 0\nmax_bytes = 0\n",
        "[cache]\npersist_to_disk = true\ndisk_path = \"/var/cache/dodeca\"\n",
        "[cache]\neviction_policy = \"ttl_lru\"\nttl_seconds = 1\nredis_url = \"unix:///r.sock\"\n",
        "[gpu]\nmemory_fraction = 1.0\n",
        "[gpu]\nenabled = false\nmemory_fraction = 0.0\ndevice_ids = []\n",
        "[server]\nport = 1\n",
        "[server]\nport = 65535\n",
        "[trace]\nsample_rate = 0.0\n",
        "[trace]\nsample_rate = 1\n",
        "[pipeline]\nmin_models = 12\n",
        "[pipeline]\nmin_models = 1\n",
        "[models.graph]\nmax_tokens = 128\n",
        "[models.code]\ndevice = \"cuda:0\"\n",
        "[gpu]\ndevice_ids = [2, 5]\n[models.code]\ndevice = \"cuda:5\"\n",
        "[models]\npreload = [\"semantic\"]\n",
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        dc_status st = load_text(ok_cases[i], c, NULL);
        if (st != DC_OK) fail_msg("case %zu rejected: %s", i, dc_error_detail());
    }
    free(c);
}

static void test_validate_in_memory_names_key_without_location(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    c->batch.min_batch_size = 64;
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_string_equal(dc_error_detail(), "batch.min_batch_size (64) > batch.max_batch_size (32)");
    dc_config_defaults(c);
    c->batch.padding_strategy = (dc_padding_strategy)99;
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_detail_contains("batch.padding_strategy");
    dc_config_defaults(c);
    c->models.preload[0] = (dc_model_id)77;
    c->models.preload_count = 1;
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_detail_contains("models.preload");
    assert_status(dc_config_validate(NULL), DC_ERR_INVALID_ARGUMENT);
    free(c);
}

/* The [pii] keys: accepted values, and a key that is never echoed back in a message. */
static void test_pii_settings(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    /* hash without a key is fine while scrubbing is disabled */
    assert_ok(load_text("[pii]\nenabled = false\nmode = \"hash\"\n", c, NULL));
    assert_ok(load_text("[pii]\nmode = \"hash\"\nhmac_key_file = \"/run/secrets/pii\"\n", c,
                        NULL));
    assert_string_equal(c->pii.hmac_key_file, "/run/secrets/pii");
    assert_ok(load_text("[pii]\nmode = \"mask\"\nsensitivity = \"permissive\"\n", c, NULL));
    assert_int_equal(c->pii.mode, DC_PII_MASK);
    assert_int_equal(c->pii.sensitivity, DC_PII_PERMISSIVE);
    assert_status(load_text("[pii]\nhmac_key = \"hunter2-sesame\"\n", c, NULL), DC_ERR_CONFIG);
    assert_detail_contains("14 bytes long");
    assert_null(strstr(dc_error_detail(), "hunter2"));
    /* a pattern of exactly the maximum length fits; one more byte does not */
    size_t max = DC_CONFIG_PII_PATTERN_MAX - 1;
    char *text = malloc(max + 64);
    assert_non_null(text);
    int k = sprintf(text, "[pii]\ncustom_patterns = [\"X=");
    memset(text + k, 'a', max - 2);
    sprintf(text + k + max - 2, "\"]\n");
    assert_ok(load_text(text, c, NULL));
    assert_int_equal(strlen(c->pii.custom_patterns[0]), max);
    sprintf(text + k + max - 2, "a\"]\n");
    assert_status(load_text(text, c, NULL), DC_ERR_CONFIG);
    assert_detail_contains("pii.custom_patterns: entry 0 is 512 bytes long (at most 511)");
    free(text);

    /* environment and overrides: a TOML array, or one whole pattern (commas are regex syntax) */
    dc_config_defaults(c);
    char *env[] = {"DODECA_PII_CUSTOM_PATTERNS=ID=\\d{2,4}", "DODECA_PII_SENSITIVITY=strict",
                   "DODECA_PII_MODE=redact", NULL};
    assert_ok(dc_config_apply_env(c, env));
    assert_int_equal(c->pii.custom_pattern_count, 1);
    assert_string_equal(c->pii.custom_patterns[0], "ID=\\d{2,4}");
    assert_int_equal(c->pii.sensitivity, DC_PII_STRICT);
    assert_int_equal(c->pii.mode, DC_PII_REDACT);
    assert_ok(dc_config_set(c, "pii.custom_patterns", "[\"A=x{1,2}\", 'B=y']"));
    assert_int_equal(c->pii.custom_pattern_count, 2);
    assert_string_equal(c->pii.custom_patterns[0], "A=x{1,2}");
    assert_string_equal(c->pii.custom_patterns[1], "B=y");
    assert_ok(dc_config_validate(c));
    assert_ok(dc_config_set(c, "pii.custom_patterns", ""));
    assert_int_equal(c->pii.custom_pattern_count, 0);
    assert_status(dc_config_set(c, "pii.custom_patterns", "[\"A=x\""), DC_ERR_CONFIG);
    assert_detail_contains("override: pii.custom_patterns: expected a TOML array of strings");
    assert_status(dc_config_set(c, "pii.mode", "remove"), DC_ERR_CONFIG);
    assert_ok(dc_config_set(c, "pii.mode", "OFF"));
    assert_int_equal(c->pii.mode, DC_PII_OFF);
    free(c);
}

/* ---------------------------------------------------------------- environment */

static void test_env_overrides(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    char *env[] = {
        "PATH=/usr/bin",
        "DODECA_BATCH_MAX_BATCH_SIZE=64",
        "DODECA_CACHE_ENABLED=false",
        "DODECA_GPU_DEVICE_IDS=0,1",
        "DODECA_MODELS_SEMANTIC_DEVICE=cpu",
        "DODECA_MODELS_LATE_INTERACTION_QUANTIZATION=int8",
        "DODECA_MODELS_MODELS_DIR=/data/models dir",
        "DODECA_MODELS_PRELOAD=semantic, E7",
        "DODECA_FUSION_TEMPERATURE=0.5",
        "DODECA_FUSION_SEED=1_000",
        "DODECA_BATCH_PADDING_STRATEGY=power_of_two",
        "DODECA_BATCH_BUCKET_SIZES=[16, 32]",
        "DODECA_SERVER_API_KEY=",
        "DODECA_CONFIG=/etc/dodeca.toml", /* not a setting: ignored */
        "DODECA_CONFORMANCE_DIR=/x",      /* not a setting: ignored */
        "DODECA_TEST_ANYTHING=1",         /* not a setting: ignored */
        "dodeca_batch_max_batch_size=1",  /* names are case-sensitive */
        NULL,
    };
    assert_ok(dc_config_apply_env(c, env));
    assert_int_equal(c->batch.max_batch_size, 64);
    assert_false(c->cache.enabled);
    assert_int_equal(c->gpu.device_count, 2);
    assert_int_equal(c->gpu.device_ids[1], 1);
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].device.kind, DC_DEVICE_CPU);
    assert_int_equal(c->models.model[DC_MODEL_LATE_INTERACTION].quantization, DC_QUANTIZATION_INT8);
    assert_string_equal(c->models.models_dir, "/data/models dir");
    assert_int_equal(c->models.preload_count, 2);
    assert_int_equal(c->models.preload[1], DC_MODEL_CODE);
    assert_true(c->fusion.temperature == 0.5);
    assert_int_equal(c->fusion.seed, 1000);
    assert_int_equal(c->batch.padding_strategy, DC_PADDING_POWER_OF_TWO);
    assert_int_equal(c->batch.bucket_count, 2);
    assert_int_equal(c->batch.bucket_sizes[0], 16);
    assert_ok(dc_config_validate(c));
    /* an empty list value clears the list */
    char *clear[] = {"DODECA_MODELS_PRELOAD=", NULL};
    assert_ok(dc_config_apply_env(c, clear));
    assert_int_equal(c->models.preload_count, 0);
    assert_ok(dc_config_apply_env(c, NULL));
    free(c);
}

static void test_env_errors_name_the_variable(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    dc_config *before = new_defaults();
    struct {
        const char *var;
        const char *needle1;
        const char *needle2;
    } cases[] = {
        {"DODECA_BATCH_MAX_SIZE=64", "unknown environment variable DODECA_BATCH_MAX_SIZE", NULL},
        {"DODECA_BOGUS=1", "unknown environment variable DODECA_BOGUS", NULL},
        {"DODECA_MODELS_FOO_DEVICE=cpu", "DODECA_MODELS_FOO_DEVICE", NULL},
        {"DODECA_BATCH_MAX_BATCH_SIZE=lots", "environment variable DODECA_BATCH_MAX_BATCH_SIZE",
         "batch.max_batch_size: expected an integer, got \"lots\""},
        {"DODECA_BATCH_MAX_BATCH_SIZE=", "DODECA_BATCH_MAX_BATCH_SIZE", "expected an integer"},
        {"DODECA_BATCH_MAX_BATCH_SIZE=-3", "DODECA_BATCH_MAX_BATCH_SIZE", "-3 is negative"},
        {"DODECA_BATCH_MAX_BATCH_SIZE=1\nx = 2", "DODECA_BATCH_MAX_BATCH_SIZE",
         "expected an integer"},
        {"DODECA_CACHE_ENABLED=yes", "DODECA_CACHE_ENABLED", "expected true or false"},
        {"DODECA_FUSION_TEMPERATURE=warm", "DODECA_FUSION_TEMPERATURE", "expected a number"},
        {"DODECA_GPU_DEVICE_IDS=0,x", "DODECA_GPU_DEVICE_IDS", "expected integers"},
        {"DODECA_GPU_DEVICE_IDS=0,,1", "DODECA_GPU_DEVICE_IDS", "empty item"},
        {"DODECA_MODELS_PRELOAD=semantic,nope", "DODECA_MODELS_PRELOAD", "unknown model \"nope\""},
        {"DODECA_MODELS_SEMANTIC_DEVICE=tpu", "DODECA_MODELS_SEMANTIC_DEVICE",
         "models.semantic.device: unknown device \"tpu\""},
        {"DODECA_SERVER_HOST=\xFF", "DODECA_SERVER_HOST", "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *env[] = {"DODECA_BATCH_MIN_BATCH_SIZE=2", (char *)cases[i].var, NULL};
        assert_status(dc_config_apply_env(c, env), DC_ERR_CONFIG);
        assert_detail_contains(cases[i].needle1);
        if (cases[i].needle2) assert_detail_contains(cases[i].needle2);
        /* all or nothing: the good variable before the bad one was not applied */
        assert_true(dc_config_equal(c, before));
    }
    free(c);
    free(before);
}

static void test_precedence_file_env_override(void **state) {
    (void)state;
    const char *text = "[batch]\nmax_batch_size = 16\nmax_wait_ms = 10\n[server]\nport = 1000\n";
    const char *path = dc_test_write_temp(text, strlen(text), ".toml");
    dc_config *c = new_defaults();
    assert_ok(dc_config_apply_file(c, path));
    assert_int_equal(c->batch.max_batch_size, 16);
    char *env[] = {"DODECA_BATCH_MAX_BATCH_SIZE=64", "DODECA_SERVER_PORT=2000", NULL};
    assert_ok(dc_config_apply_env(c, env));
    assert_int_equal(c->batch.max_batch_size, 64); /* env beats file */
    assert_int_equal(c->batch.max_wait_ms, 10);    /* file beats default */
    assert_ok(dc_config_set(c, "server.port", "3000"));
    assert_int_equal(c->server.port, 3000); /* override beats env */
    assert_ok(dc_config_set(c, "models.semantic.device", "cuda:0"));
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].device.kind, DC_DEVICE_CUDA);
    assert_ok(dc_config_validate(c));

    /* validation errors point at the layer that set the value */
    assert_ok(dc_config_set(c, "batch.min_batch_size", "100"));
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_string_equal(dc_error_detail(),
                        "override: batch.min_batch_size (100) > batch.max_batch_size (64)");
    assert_ok(dc_config_set(c, "batch.min_batch_size", "1"));
    char *env2[] = {"DODECA_GPU_MEMORY_FRACTION=2", NULL};
    assert_ok(dc_config_apply_env(c, env2));
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_detail_contains(
        "environment variable DODECA_GPU_MEMORY_FRACTION: gpu.memory_fraction (2)");
    assert_ok(dc_config_set(c, "gpu.memory_fraction", "0.5"));
    assert_ok(dc_config_set(c, "batch.queue_capacity", "8"));
    assert_ok(dc_config_apply_file(c, path)); /* file lines win back only where the file speaks */
    assert_status(dc_config_validate(c), DC_ERR_CONFIG);
    assert_detail_contains("override: batch.queue_capacity (8) < batch.max_batch_size (16)");
    free(c);
}

static void test_set_errors(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    assert_status(dc_config_set(c, "batch.nope", "1"), DC_ERR_CONFIG);
    assert_detail_contains("unknown setting 'batch.nope'");
    assert_status(dc_config_set(c, "models.semantic.nope", "1"), DC_ERR_CONFIG);
    assert_status(dc_config_set(c, "models.nope.device", "cpu"), DC_ERR_CONFIG);
    assert_status(dc_config_set(c, "batch", "1"), DC_ERR_CONFIG);
    assert_status(dc_config_set(c, "server.port", "http"), DC_ERR_CONFIG);
    assert_detail_contains("override: server.port: expected an integer, got \"http\"");
    assert_status(dc_config_set(c, "server.port", "99999999999"), DC_ERR_CONFIG);
    assert_detail_contains("server.port: 99999999999 is too large");
    assert_status(dc_config_set(NULL, "server.port", "1"), DC_ERR_INVALID_ARGUMENT);
    assert_int_equal(c->server.port, 8080);
    free(c);
}

static void test_apply_is_all_or_nothing(void **state) {
    (void)state;
    dc_config *c = new_defaults(), *d = new_defaults();
    const char *text = "[batch]\nmax_batch_size = 8\n[fusion]\ntop_k = \"two\"\n";
    assert_status(dc_config_apply_toml(c, text, strlen(text), "mem.toml"), DC_ERR_CONFIG);
    assert_detail_contains("mem.toml:4:9: fusion.top_k: expected an integer, got a string");
    assert_true(dc_config_equal(c, d));
    free(c);
    free(d);
}

/* ---------------------------------------------------------------- enums */

static void test_enum_parse_and_name_pairs(void **state) {
    (void)state;
    for (int i = 0; i <= DC_QUANTIZATION_MXFP4; i++) {
        dc_quantization q;
        assert_ok(dc_quantization_parse(dc_quantization_name((dc_quantization)i), &q));
        assert_int_equal(q, i);
    }
    for (int i = 0; i <= DC_PADDING_BUCKET; i++) {
        dc_padding_strategy p;
        assert_ok(dc_padding_strategy_parse(dc_padding_strategy_name((dc_padding_strategy)i), &p));
        assert_int_equal(p, i);
    }
    for (int i = 0; i <= DC_EVICTION_ARC; i++) {
        dc_eviction_policy e;
        assert_ok(dc_eviction_policy_parse(dc_eviction_policy_name((dc_eviction_policy)i), &e));
        assert_int_equal(e, i);
    }
    for (int i = 0; i <= DC_PII_OFF; i++) {
        dc_pii_mode m;
        assert_ok(dc_pii_mode_parse(dc_pii_mode_name((dc_pii_mode)i), &m));
        assert_int_equal(m, i);
    }
    for (int i = 0; i <= DC_PII_STRICT; i++) {
        dc_pii_sensitivity v;
        assert_ok(dc_pii_sensitivity_parse(dc_pii_sensitivity_name((dc_pii_sensitivity)i), &v));
        assert_int_equal(v, i);
    }
    assert_string_equal(dc_pii_mode_name(DC_PII_PLACEHOLDER), "placeholder");
    assert_string_equal(dc_pii_mode_name(DC_PII_OFF), "off");
    assert_string_equal(dc_pii_sensitivity_name(DC_PII_PERMISSIVE), "permissive");
    assert_string_equal(dc_pii_sensitivity_name((dc_pii_sensitivity)7), "unknown");
    assert_string_equal(dc_padding_strategy_name(DC_PADDING_POWER_OF_TWO), "power_of_two");
    assert_string_equal(dc_eviction_policy_name(DC_EVICTION_TTL_LRU), "ttl_lru");
    assert_string_equal(dc_quantization_name((dc_quantization)42), "unknown");
    dc_padding_strategy p;
    assert_ok(dc_padding_strategy_parse("PowerOfTwo", &p));
    assert_int_equal(p, DC_PADDING_POWER_OF_TWO);
    assert_ok(dc_padding_strategy_parse("MAX-LENGTH", &p));
    assert_int_equal(p, DC_PADDING_MAX_LENGTH);
    assert_status(dc_padding_strategy_parse("max_len", &p), DC_ERR_CONFIG);
    assert_detail_contains("expected max_length, dynamic_max, power_of_two or bucket");
    assert_status(dc_padding_strategy_parse("", &p), DC_ERR_CONFIG);
    dc_eviction_policy e;
    assert_ok(dc_eviction_policy_parse("TtlLru", &e));
    assert_int_equal(e, DC_EVICTION_TTL_LRU);

    dc_device d;
    char buf[16];
    assert_ok(dc_device_parse("auto", &d));
    assert_int_equal(d.kind, DC_DEVICE_AUTO);
    assert_ok(dc_device_parse("CPU", &d));
    assert_int_equal(d.kind, DC_DEVICE_CPU);
    assert_ok(dc_device_parse("cuda", &d));
    assert_true(d.kind == DC_DEVICE_CUDA && d.index == 0);
    assert_ok(dc_device_parse("cuda:7", &d));
    assert_true(d.kind == DC_DEVICE_CUDA && d.index == 7);
    assert_string_equal(dc_device_name(d, buf, sizeof buf), "cuda:7");
    d.kind = DC_DEVICE_CPU;
    assert_string_equal(dc_device_name(d, buf, sizeof buf), "cpu");
    assert_status(dc_device_parse("cuda:-1", &d), DC_ERR_CONFIG);
    assert_status(dc_device_parse("cuda:1024", &d), DC_ERR_CONFIG);
    assert_status(dc_device_parse("cuda:1a", &d), DC_ERR_CONFIG);
    assert_status(dc_device_parse("auto:1", &d), DC_ERR_CONFIG);
    assert_status(dc_device_parse("metal", &d), DC_ERR_CONFIG);
    assert_status(dc_device_parse(NULL, &d), DC_ERR_CONFIG);
}

/* ---------------------------------------------------------------- show -> parse round trip */

static void round_trip(const dc_config *c) {
    char *text = NULL;
    size_t len = 0;
    assert_ok(dc_config_to_toml(c, &text, &len));
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    dc_config *back = new_defaults();
    dc_status st = dc_config_apply_toml(back, text, len, "shown.toml");
    if (st) fail_msg("re-parse failed: %s\n%s", dc_error_detail(), text);
    if (!dc_config_equal(c, back)) fail_msg("round trip differs:\n%s", text);
    /* and from a non-default starting point: the output names every key */
    dc_config *other = new_defaults();
    char *env[] = {"DODECA_BATCH_MAX_BATCH_SIZE=3", "DODECA_MODELS_PRELOAD=hdc",
                   "DODECA_MODELS_CODE_PATH=/elsewhere", NULL};
    assert_ok(dc_config_apply_env(other, env));
    assert_ok(dc_config_apply_toml(other, text, len, "shown.toml"));
    assert_true(dc_config_equal(c, other));
    free(other);
    free(back);
    free(text);
}

static void test_show_round_trip_defaults(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    round_trip(c);
    char *text = NULL;
    assert_ok(dc_config_to_toml(c, &text, NULL));
    assert_non_null(strstr(text, "[batch]\nmax_batch_size = 32\n"));
    assert_non_null(strstr(text, "[models.late_interaction]"));
    assert_non_null(strstr(text, "memory_fraction = 0.9\n"));
    assert_non_null(strstr(text, "temperature = 1.0\n"));
    assert_non_null(strstr(text, "padding_strategy = \"dynamic_max\"\n"));
    /* the shown text is itself a valid file */
    const char *path = dc_test_write_temp(text, strlen(text), ".toml");
    dc_config *loaded = new_defaults();
    assert_ok(dc_config_load_file(path, loaded));
    assert_true(dc_config_equal(c, loaded));
    free(loaded);
    free(text);
    free(c);
}

static void test_show_round_trip_everything_changed(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    snprintf(c->models.models_dir, sizeof c->models.models_dir,
             "dir with \"quotes\", \\backslash\\, tab\t, newline\n, bell\x07, caf\xC3\xA9 "
             "\xF0\x9F\x98\x80");
    c->models.lazy_loading = false;
    c->models.preload[0] = DC_MODEL_LATE_INTERACTION;
    c->models.preload[1] = DC_MODEL_SEMANTIC;
    c->models.preload_count = 2;
    c->models.auto_download = true;
    c->models.max_concurrent_loads = 4000000000u;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_model_config *m = &c->models.model[i];
        m->enabled = i % 2 == 0;
        m->device.kind = (dc_device_kind)(i % 3);
        m->device.index = m->device.kind == DC_DEVICE_CUDA ? (uint32_t)i : 0;
        m->quantization = (dc_quantization)(i % 5);
        m->max_batch_size = (uint32_t)(i + 1);
        m->use_flash_attention = i % 3 == 0;
        m->max_tokens = (uint32_t)i;
        snprintf(m->path, sizeof m->path, "/models/%d/'lit'", i);
    }
    c->batch.padding_strategy = DC_PADDING_BUCKET;
    c->batch.bucket_count = 0;
    c->batch.max_tokens_per_batch = UINT32_MAX;
    c->fusion.load_balance_coef = 0.1;
    c->fusion.capacity_factor = 1.0 / 3.0;
    c->fusion.temperature = 1e-300;
    c->fusion.noise_std = 4.9e-324;
    c->fusion.laplace_alpha = -0.0;
    c->fusion.seed = (uint64_t)INT64_MAX;
    c->cache.max_bytes = 0;
    c->cache.ttl_seconds = 123456789012ull;
    c->cache.eviction_policy = DC_EVICTION_ARC;
    c->cache.persist_to_disk = true;
    snprintf(c->cache.redis_url, sizeof c->cache.redis_url, "rediss://user:p%%40ss@h:1/2");
    c->gpu.device_count = DC_CONFIG_MAX_GPUS;
    for (uint32_t i = 0; i < DC_CONFIG_MAX_GPUS; i++) c->gpu.device_ids[i] = 15 - i;
    c->gpu.memory_fraction = 0.123456789012345678;
    c->pii.mode = DC_PII_OFF;
    c->pii.sensitivity = DC_PII_PERMISSIVE;
    snprintf(c->pii.hmac_key_file, sizeof c->pii.hmac_key_file, "/etc/dodeca/pii.key");
    c->pii.custom_pattern_count = 3;
    snprintf(c->pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "ID=\\bID-\\d+\"'#\t");
    snprintf(c->pii.custom_patterns[1], DC_CONFIG_PII_PATTERN_MAX, "X=[, ]");
    snprintf(c->pii.custom_patterns[2], DC_CONFIG_PII_PATTERN_MAX, "Y=\xC3\xA9\\p{L}");
    c->server.port = 0;
    snprintf(c->server.api_key, sizeof c->server.api_key, "#not a comment");
    c->trace.sample_rate = INFINITY;
    c->pipeline.deadline_ms = 150;
    round_trip(c); /* invalid values round-trip too: show never hides what is set */
    c->trace.sample_rate = NAN;
    c->fusion.temperature = -INFINITY;
    round_trip(c);
    free(c);
}

static void test_write_to_file_stream(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_ok(dc_config_write_toml(c, f));
    long n = ftell(f);
    assert_true(n > 1000);
    fclose(f);
    assert_status(dc_config_write_toml(NULL, stdout), DC_ERR_INVALID_ARGUMENT);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_seed_values),
        cmocka_unit_test(test_example_file_loads_and_documents_the_defaults),
        cmocka_unit_test(test_example_file_lists_every_key),
        cmocka_unit_test(test_load_full_file),
        cmocka_unit_test(test_missing_file_is_io_error),
        cmocka_unit_test(test_bad_toml_names_file_and_line),
        cmocka_unit_test(test_unknown_sections_and_keys),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_too_long_string_is_an_error),
        cmocka_unit_test(test_every_validation_rule),
        cmocka_unit_test(test_validation_boundaries_accepted),
        cmocka_unit_test(test_validate_in_memory_names_key_without_location),
        cmocka_unit_test(test_pii_settings),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_env_errors_name_the_variable),
        cmocka_unit_test(test_precedence_file_env_override),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_apply_is_all_or_nothing),
        cmocka_unit_test(test_enum_parse_and_name_pairs),
        cmocka_unit_test(test_show_round_trip_defaults),
        cmocka_unit_test(test_show_round_trip_everything_changed),
        cmocka_unit_test(test_write_to_file_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
