/* FuseMoE options, parameter layout, seeded initialisation and the refcounted weights object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <openssl/evp.h>

#include "core/bytes.h"
#include "core/error.h"
#include "fusion/internal.h"
#include "fusion/rng.h"

/* ---- names ---- */

static const char *const gating_names[] = {"softmax", "laplace"};
static const char *const init_names[] = {"zeros",          "xavier_uniform", "xavier_normal",
                                         "kaiming_uniform", "kaiming_normal", "orthogonal"};

const char *dc_gating_kind_name(dc_gating_kind k) {
    return (unsigned)k < 2 ? gating_names[k] : "unknown";
}

dc_status dc_gating_kind_parse(const char *s, dc_gating_kind *out) {
    for (unsigned i = 0; s && i < 2; i++)
        if (!strcmp(s, gating_names[i])) {
            *out = (dc_gating_kind)i;
            return DC_OK;
        }
    return dc_fail(DC_ERR_CONFIG, "fusion gating \"%s\" is not softmax or laplace", s ? s : "");
}

const char *dc_init_scheme_name(dc_init_scheme s) {
    return (unsigned)s < 6 ? init_names[s] : "unknown";
}

dc_status dc_init_scheme_parse(const char *s, dc_init_scheme *out) {
    for (unsigned i = 0; s && i < 6; i++)
        if (!strcmp(s, init_names[i])) {
            *out = (dc_init_scheme)i;
            return DC_OK;
        }
    return dc_fail(DC_ERR_CONFIG,
                   "fusion init \"%s\" is not one of zeros, xavier_uniform, xavier_normal, "
                   "kaiming_uniform, kaiming_normal, orthogonal",
                   s ? s : "");
}

/* ---- options ---- */

void dc_fusion_options_default(dc_fusion_options *o) {
    memset(o, 0, sizeof *o);
    o->num_experts = DC_NUM_EXPERTS;
    o->top_k = DC_DEFAULT_TOP_K;
    o->hidden = DC_FUSION_DEFAULT_HIDDEN;
    o->gating = DC_GATING_SOFTMAX;
    o->temperature = 1.0;
    o->laplace_alpha = 0.01;
    o->noise_std = 0.0;
    o->capacity_factor = 1.25;
    o->load_balance_coef = 0.01;
    o->seed = 42;
    for (int m = 0; m < DC_NUM_MODELS; m++) o->block_weights[m] = 1.0f / DC_NUM_MODELS;
    o->jl_nnz = DC_FUSION_DEFAULT_JL_NNZ;
    o->gate_init = DC_INIT_XAVIER_UNIFORM;
    o->expert_init = DC_INIT_KAIMING_UNIFORM;
    o->output_init = DC_INIT_ZEROS;
    o->bridge = false;
    o->bridge_blend = 0.0f;
    o->checkpoint = NULL;
    o->checkpoint_strict = false;
    o->verify_checksum = true;
    o->backend = NULL;
    o->history = 4;
    o->weights = DC_FUSION_WEIGHTS_F32;
    o->small_batch = 16;
    o->device = (dc_device){DC_DEVICE_CPU, 0};
    o->gpu_enabled = true;
    o->gpu_device = 0;
    o->gpu_memory_fraction = 0.9;
}

void dc_fusion_options_from_config(const dc_config *config, dc_fusion_options *o) {
    dc_fusion_options_default(o);
    if (!config) return;
    const dc_fusion_config *cfg = &config->fusion;
    o->num_experts = cfg->num_experts;
    o->top_k = cfg->top_k;
    o->hidden = cfg->expert_hidden_dim;
    o->load_balance_coef = cfg->load_balance_coef;
    o->capacity_factor = cfg->capacity_factor;
    o->temperature = cfg->temperature;
    o->noise_std = cfg->noise_std;
    o->laplace_alpha = cfg->laplace_alpha;
    o->seed = cfg->seed;
    (void)dc_gating_kind_parse(cfg->gating, &o->gating);
    o->jl_nnz = cfg->jl_nnz;
    (void)dc_init_scheme_parse(cfg->gate_init, &o->gate_init);
    (void)dc_init_scheme_parse(cfg->expert_init, &o->expert_init);
    (void)dc_init_scheme_parse(cfg->output_init, &o->output_init);
    o->checkpoint = cfg->checkpoint[0] ? cfg->checkpoint : NULL;
    o->checkpoint_strict = cfg->checkpoint_strict;
    o->verify_checksum = cfg->verify_checksum;
    o->bridge = cfg->came_ab;
    o->bridge_blend = (float)cfg->came_ab_blend;
    o->weights = strcmp(cfg->weights, "bf16") == 0 ? DC_FUSION_WEIGHTS_BF16
                                                    : DC_FUSION_WEIGHTS_F32;
    o->small_batch = cfg->small_batch;
    o->history = cfg->history;
    o->device = cfg->device;
    o->gpu_enabled = config->gpu.enabled;
    o->gpu_device = config->gpu.device_count ? config->gpu.device_ids[0] : 0;
    o->gpu_memory_fraction = config->gpu.memory_fraction;
    /* block weights are relative: normalise them to sum 1 (validated: some are > 0) */
    double sum = 0.0;
    for (int m = 0; m < DC_NUM_MODELS; m++) sum += config->models.model[m].fusion_weight;
    if (sum > 0.0)
        for (int m = 0; m < DC_NUM_MODELS; m++)
            o->block_weights[m] = (float)(config->models.model[m].fusion_weight / sum);
}

dc_status dc_fusion_options_validate(const dc_fusion_options *o) {
    if (!o) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion options are NULL");
    if (o->num_experts < 1 || o->num_experts > DC_NUM_EXPERTS)
        return dc_fail(DC_ERR_CONFIG, "fusion num_experts (%u) must be between 1 and %d",
                       o->num_experts, DC_NUM_EXPERTS);
    if (o->top_k < 1 || o->top_k > o->num_experts)
        return dc_fail(DC_ERR_CONFIG, "fusion top_k (%u) must be between 1 and num_experts (%u)",
                       o->top_k, o->num_experts);
    if (o->hidden < 1 || o->hidden > 65536)
        return dc_fail(DC_ERR_CONFIG, "fusion expert_hidden_dim (%u) must be between 1 and 65536",
                       o->hidden);
    if (!(o->temperature > 0.0) || !isfinite(o->temperature))
        return dc_fail(DC_ERR_CONFIG, "fusion temperature (%g) must be finite and > 0",
                       o->temperature);
    if (!(o->laplace_alpha >= 0.0) || !isfinite(o->laplace_alpha))
        return dc_fail(DC_ERR_CONFIG, "fusion laplace_alpha (%g) must be finite and >= 0",
                       o->laplace_alpha);
    if (!(o->noise_std >= 0.0) || !isfinite(o->noise_std))
        return dc_fail(DC_ERR_CONFIG, "fusion noise_std (%g) must be finite and >= 0",
                       o->noise_std);
    if (!(o->capacity_factor >= 1.0) || !isfinite(o->capacity_factor))
        return dc_fail(DC_ERR_CONFIG, "fusion capacity_factor (%g) must be finite and >= 1",
                       o->capacity_factor);
    if (!(o->load_balance_coef >= 0.0) || !isfinite(o->load_balance_coef))
        return dc_fail(DC_ERR_CONFIG, "fusion load_balance_coef (%g) must be finite and >= 0",
                       o->load_balance_coef);
    double sum = 0.0;
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(o->block_weights[m] >= 0.0f) || !isfinite(o->block_weights[m]))
            return dc_fail(DC_ERR_CONFIG, "fusion block_weights[%d] (%g) must be finite and >= 0",
                           m, (double)o->block_weights[m]);
        sum += o->block_weights[m];
    }
    if (!(sum > 0.0))
        return dc_fail(DC_ERR_CONFIG, "fusion block_weights must not all be 0");
    if (o->jl_nnz == 0 || o->jl_nnz > 64 || DC_FUSION_OUT % o->jl_nnz != 0)
        return dc_fail(DC_ERR_CONFIG,
                       "fusion jl_nnz (%u) must divide %d and be between 1 and 64", o->jl_nnz,
                       DC_FUSION_OUT);
    if ((unsigned)o->gate_init > DC_INIT_ORTHOGONAL ||
        (unsigned)o->expert_init > DC_INIT_ORTHOGONAL ||
        (unsigned)o->output_init > DC_INIT_ORTHOGONAL)
        return dc_fail(DC_ERR_CONFIG, "fusion init scheme out of range");
    if ((unsigned)o->gating > DC_GATING_LAPLACE)
        return dc_fail(DC_ERR_CONFIG, "fusion gating %d out of range", (int)o->gating);
    if (!(o->bridge_blend >= 0.0f && o->bridge_blend <= 1.0f))
        return dc_fail(DC_ERR_CONFIG, "fusion came_ab_blend (%g) must be in [0, 1]",
                       (double)o->bridge_blend);
    if (o->bridge_blend > 0.0f && !o->bridge)
        return dc_fail(DC_ERR_CONFIG, "fusion came_ab_blend (%g) > 0 needs the CAME-AB bridge "
                       "enabled", (double)o->bridge_blend);
    if ((unsigned)o->weights > DC_FUSION_WEIGHTS_BF16)
        return dc_fail(DC_ERR_CONFIG, "fusion weights dtype %d out of range", (int)o->weights);
    if ((unsigned)o->device.kind > DC_DEVICE_CUDA)
        return dc_fail(DC_ERR_CONFIG, "fusion.device kind %d out of range (auto, cpu, cuda:N)",
                       (int)o->device.kind);
    if (o->history > 64)
        return dc_fail(DC_ERR_CONFIG, "fusion history (%u) must be <= 64", o->history);
    return DC_OK;
}

/* ---- layout ---- */

static size_t add_tensor(dc_fusion_layout *l, size_t *at, const char *name, uint64_t d0,
                         uint64_t d1, bool decay) {
    dc_fusion_tensor *t = &l->tensors[l->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = *at;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = (size_t)d0 * (d1 ? d1 : 1);
    t->decay = decay;
    /* keep every tensor 64-byte aligned inside the arena */
    *at += (t->numel + 15) / 16 * 16;
    return t->offset;
}

void dc_fusion_layout_build(const dc_fusion_options *o, dc_fusion_layout *l) {
    memset(l, 0, sizeof *l);
    size_t at = 0;
    char name[48];
    l->ln_g = add_tensor(l, &at, "gate.norm.weight", DC_FUSION_IN, 0, false);
    l->ln_b = add_tensor(l, &at, "gate.norm.bias", DC_FUSION_IN, 0, false);
    l->gate_w = add_tensor(l, &at,
                           o->gating == DC_GATING_LAPLACE ? "gate.centres" : "gate.proj.weight",
                           o->num_experts, DC_FUSION_GATE_IN, o->gating == DC_GATING_SOFTMAX);
    if (o->gating == DC_GATING_SOFTMAX) /* Laplace scores have no bias */
        l->gate_b = add_tensor(l, &at, "gate.proj.bias", o->num_experts, 0, false);
    for (uint32_t e = 0; e < o->num_experts; e++) {
        snprintf(name, sizeof name, "experts.%u.fc1.weight", e);
        l->fc1_w[e] = add_tensor(l, &at, name, o->hidden, DC_FUSION_IN, true);
        snprintf(name, sizeof name, "experts.%u.fc1.bias", e);
        l->fc1_b[e] = add_tensor(l, &at, name, o->hidden, 0, false);
        snprintf(name, sizeof name, "experts.%u.fc2.weight", e);
        l->fc2_w[e] = add_tensor(l, &at, name, DC_FUSION_OUT, o->hidden, true);
        snprintf(name, sizeof name, "experts.%u.fc2.bias", e);
        l->fc2_b[e] = add_tensor(l, &at, name, DC_FUSION_OUT, 0, false);
    }
    if (o->bridge) {
        l->br_type = add_tensor(l, &at, "bridge.group_embedding", DC_FUSION_GROUPS,
                                DC_FUSION_OUT, false);
        l->br_ln_g = add_tensor(l, &at, "bridge.norm.weight", DC_FUSION_OUT, 0, false);
        l->br_ln_b = add_tensor(l, &at, "bridge.norm.bias", DC_FUSION_OUT, 0, false);
        l->br_wq = add_tensor(l, &at, "bridge.q.weight", DC_FUSION_BRIDGE_DIM, DC_FUSION_OUT, true);
        l->br_bq = add_tensor(l, &at, "bridge.q.bias", DC_FUSION_BRIDGE_DIM, 0, false);
        l->br_wk = add_tensor(l, &at, "bridge.k.weight", DC_FUSION_BRIDGE_DIM, DC_FUSION_OUT, true);
        l->br_bk = add_tensor(l, &at, "bridge.k.bias", DC_FUSION_BRIDGE_DIM, 0, false);
        l->br_wv = add_tensor(l, &at, "bridge.v.weight", DC_FUSION_BRIDGE_DIM, DC_FUSION_OUT, true);
        l->br_bv = add_tensor(l, &at, "bridge.v.bias", DC_FUSION_BRIDGE_DIM, 0, false);
        l->br_wo = add_tensor(l, &at, "bridge.out.weight", DC_FUSION_OUT, DC_FUSION_BRIDGE_DIM, true);
        l->br_bo = add_tensor(l, &at, "bridge.out.bias", DC_FUSION_OUT, 0, false);
    }
    l->total = at;
}

/* ---- initialisation ---- */

static uint64_t name_stream(const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a: the stream follows the tensor's name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* Cholesky of the r×r SPD matrix g (double, in place, lower); false when not positive. */
static bool cholesky(double *g, uint32_t r) {
    for (uint32_t j = 0; j < r; j++) {
        double d = g[(size_t)j * r + j];
        for (uint32_t k = 0; k < j; k++) d -= g[(size_t)j * r + k] * g[(size_t)j * r + k];
        if (!(d > 0.0)) return false;
        d = sqrt(d);
        g[(size_t)j * r + j] = d;
        for (uint32_t i = j + 1; i < r; i++) {
            double s = g[(size_t)i * r + j];
            for (uint32_t k = 0; k < j; k++) s -= g[(size_t)i * r + k] * g[(size_t)j * r + k];
            g[(size_t)i * r + j] = s / d;
        }
    }
    return true;
}

/* One CholeskyQR pass on the rows of a (r ≤ c): a ← L⁻¹ a where L Lᵀ = a aᵀ. */
static dc_status cholqr_pass(float *a, uint32_t r, uint32_t c) {
    dc_status st = DC_OK;
    float *gf = malloc((size_t)r * r * sizeof *gf);
    double *g = malloc((size_t)r * r * sizeof *g);
    float *linv = calloc((size_t)r * r, sizeof *linv);
    float *q = malloc((size_t)r * c * sizeof *q);
    if (!gf || !g || !linv || !q) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "orthogonal init of %u x %u", r, c);
        goto done;
    }
    if (dnnl_sgemm('N', 'T', r, r, c, 1.0f, a, c, a, c, 0.0f, gf, r) != dnnl_success) {
        st = dc_fail(DC_ERR_INTERNAL, "orthogonal init: gram matrix product failed");
        goto done;
    }
    for (size_t i = 0; i < (size_t)r * r; i++) g[i] = gf[i];
    if (!cholesky(g, r)) {
        st = dc_fail(DC_ERR_INTERNAL, "orthogonal init: gram matrix of %u x %u is singular", r, c);
        goto done;
    }
    /* invert the lower triangle column by column (double), then q = L⁻¹·a as one product */
    for (uint32_t j = 0; j < r; j++) {
        for (uint32_t i = j; i < r; i++) {
            double s = (i == j) ? 1.0 : 0.0;
            for (uint32_t k = j; k < i; k++) s -= g[(size_t)i * r + k] * linv[(size_t)k * r + j];
            linv[(size_t)i * r + j] = (float)(s / g[(size_t)i * r + i]);
        }
    }
    if (dnnl_sgemm('N', 'N', r, c, r, 1.0f, linv, r, a, c, 0.0f, q, c) != dnnl_success) {
        st = dc_fail(DC_ERR_INTERNAL, "orthogonal init: triangular product failed");
        goto done;
    }
    memcpy(a, q, (size_t)r * c * sizeof *a);
done:
    free(gf);
    free(g);
    free(linv);
    free(q);
    return st;
}

dc_status dc_fusion_init_matrix(float *dst, uint32_t rows, uint32_t cols, dc_init_scheme scheme,
                                uint64_t seed, uint64_t stream) {
    size_t n = (size_t)rows * cols;
    double fan_in = cols, fan_out = rows;
    switch (scheme) {
    case DC_INIT_ZEROS:
        memset(dst, 0, n * sizeof *dst);
        return DC_OK;
    case DC_INIT_XAVIER_UNIFORM:
    case DC_INIT_KAIMING_UNIFORM: {
        double bound = scheme == DC_INIT_XAVIER_UNIFORM ? sqrt(6.0 / (fan_in + fan_out))
                                                        : sqrt(3.0) / sqrt(fan_in);
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((2.0 * dc_rand_unit(seed, stream, i) - 1.0) * bound);
        return DC_OK;
    }
    case DC_INIT_XAVIER_NORMAL:
    case DC_INIT_KAIMING_NORMAL: {
        double sd = scheme == DC_INIT_XAVIER_NORMAL ? sqrt(2.0 / (fan_in + fan_out))
                                                    : 1.0 / sqrt(fan_in);
        for (size_t i = 0; i < n; i++) dst[i] = (float)(dc_rand_normal(seed, stream, i) * sd);
        return DC_OK;
    }
    case DC_INIT_ORTHOGONAL: {
        /* orthonormal rows when rows <= cols, else orthonormal columns (built transposed) */
        uint32_t r = rows <= cols ? rows : cols, c = rows <= cols ? cols : rows;
        float *a = rows <= cols ? dst : malloc(n * sizeof *a);
        if (!a) return dc_fail(DC_ERR_OUT_OF_MEMORY, "orthogonal init of %u x %u", rows, cols);
        for (size_t i = 0; i < n; i++) a[i] = (float)dc_rand_normal(seed, stream, i);
        dc_status st = cholqr_pass(a, r, c);
        if (st == DC_OK) st = cholqr_pass(a, r, c); /* CholeskyQR2: second pass restores orthogonality */
        if (st == DC_OK && a != dst)
            for (uint32_t i = 0; i < r; i++)
                for (uint32_t j = 0; j < c; j++) dst[(size_t)j * r + i] = a[(size_t)i * c + j];
        if (a != dst) free(a);
        return st;
    }
    }
    return dc_fail(DC_ERR_CONFIG, "init scheme %d out of range", (int)scheme);
}

/* ---- the weights object ---- */

static atomic_uint_fast64_t serial_counter = 1;

uint64_t dc_fusion_next_serial(void) { return atomic_fetch_add(&serial_counter, 1); }

void dc_fusion_block_scales(const float weights[DC_NUM_MODELS], const float *mult,
                            float scales[DC_NUM_MODELS]) {
    double w[DC_NUM_MODELS], sum = 0.0;
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        w[m] = (double)weights[m] * (mult ? (double)mult[m] : 1.0);
        sum += w[m];
    }
    for (int m = 0; m < DC_NUM_MODELS; m++)
        scales[m] = sum > 0.0 ? (float)sqrt(w[m] / sum) : 0.0f;
}

dc_status dc_fusion_weights_alloc(const dc_fusion_options *o, dc_fusion_weights **out) {
    *out = NULL;
    dc_status st = dc_fusion_options_validate(o);
    if (st != DC_OK) return st;
    dc_fusion_weights *w = calloc(1, sizeof *w);
    if (!w) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion weights");
    atomic_init(&w->refs, 1);
    atomic_init(&w->users, 0);
    w->opt = *o;
    w->opt.checkpoint = NULL;
    w->opt.backend = NULL;
    double sum = 0.0;
    for (int m = 0; m < DC_NUM_MODELS; m++) sum += o->block_weights[m];
    for (int m = 0; m < DC_NUM_MODELS; m++)
        w->opt.block_weights[m] = (float)(o->block_weights[m] / sum);
    dc_fusion_block_scales(w->opt.block_weights, NULL, w->block_scale);
    dc_fusion_layout_build(&w->opt, &w->layout);
    w->arena = calloc(w->layout.total, sizeof *w->arena);
    if (!w->arena) {
        size_t total = w->layout.total;
        free(w);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion weights: %zu parameters", total);
    }
    st = dc_jl_create(o->seed, o->jl_nnz, &w->jl);
    if (st != DC_OK) {
        free(w->arena);
        free(w);
        return st;
    }
    w->info.seed = o->seed;
    w->info.serial = dc_fusion_next_serial();
    w->info.metrics.recall_at_1 = -1.0;
    snprintf(w->info.version, sizeof w->info.version, "0.0.0-init");
    snprintf(w->info.source, sizeof w->info.source, "zero-shot-seed-%llu",
             (unsigned long long)o->seed);
    *out = w;
    return DC_OK;
}

static dc_status seed_tensor(dc_fusion_weights *w, const dc_fusion_tensor *t) {
    const dc_fusion_options *o = &w->opt;
    float *p = w->arena + t->offset;
    const char *n = t->name;
    uint64_t stream = name_stream(n);
    size_t len = strlen(n);
    bool is_bias = len > 5 && !strcmp(n + len - 5, ".bias");
    if (!strcmp(n, "gate.norm.weight") || !strcmp(n, "bridge.norm.weight")) {
        for (size_t i = 0; i < t->numel; i++) p[i] = 1.0f;
        return DC_OK;
    }
    if (is_bias) return DC_OK; /* zeros */
    if (!strcmp(n, "gate.proj.weight") || !strcmp(n, "gate.centres"))
        return dc_fusion_init_matrix(p, (uint32_t)t->shape[0], (uint32_t)t->shape[1],
                                     o->gate_init, o->seed, stream);
    if (strstr(n, ".fc1.weight"))
        return dc_fusion_init_matrix(p, (uint32_t)t->shape[0], (uint32_t)t->shape[1],
                                     o->expert_init, o->seed, stream);
    if (strstr(n, ".fc2.weight") || !strcmp(n, "bridge.out.weight"))
        return dc_fusion_init_matrix(p, (uint32_t)t->shape[0], (uint32_t)t->shape[1],
                                     o->output_init, o->seed, stream);
    if (!strcmp(n, "bridge.group_embedding")) {
        for (size_t i = 0; i < t->numel; i++)
            p[i] = (float)(0.02 * dc_rand_normal(o->seed, stream, i));
        return DC_OK;
    }
    /* bridge q/k/v */
    return dc_fusion_init_matrix(p, (uint32_t)t->shape[0], (uint32_t)t->shape[1],
                                 DC_INIT_XAVIER_UNIFORM, o->seed, stream);
}

dc_status dc_fusion_weights_init(const dc_fusion_options *o, dc_fusion_weights **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion weights: NULL output");
    dc_fusion_weights *w = NULL;
    dc_status st = dc_fusion_weights_alloc(o, &w);
    if (st != DC_OK) return st;
    for (size_t i = 0; i < w->layout.n_tensors && st == DC_OK; i++)
        st = seed_tensor(w, &w->layout.tensors[i]);
    if (st == DC_OK) st = dc_fusion_checksum(&w->layout, w->arena, w->info.checksum);
    if (st != DC_OK) {
        dc_fusion_weights_release(w);
        return dc_fail_context(st, "fusion seeded initialisation");
    }
    *out = w;
    return DC_OK;
}

void dc_fusion_weights_seed(dc_fusion_weights *w) {
    for (size_t i = 0; i < w->layout.n_tensors; i++) (void)seed_tensor(w, &w->layout.tensors[i]);
}

dc_fusion_weights *dc_fusion_weights_retain(dc_fusion_weights *w) {
    if (w) atomic_fetch_add(&w->refs, 1);
    return w;
}

void dc_fusion_weights_release(dc_fusion_weights *w) {
    if (!w || atomic_fetch_sub(&w->refs, 1) != 1) return;
    dc_jl_destroy(w->jl);
    free(w->arena);
    free(w);
}

const dc_fusion_version *dc_fusion_weights_version(const dc_fusion_weights *w) {
    return w ? &w->info : NULL;
}

const dc_fusion_options *dc_fusion_weights_options(const dc_fusion_weights *w) {
    return w ? &w->opt : NULL;
}

dc_status dc_fusion_version_check(const char *version) {
    size_t n = version ? strlen(version) : 0;
    if (n == 0 || n >= sizeof(((dc_fusion_version *)0)->version))
        return dc_fail(DC_ERR_INVALID_VALUE, "fusion version \"%s\" must be 1..63 bytes",
                       version ? version : "");
    for (size_t i = 0; i < n; i++) {
        char c = version[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == '_' || c == '+') ||
            (i == 0 && c == '.'))
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "fusion version \"%s\": only letters, digits and . - _ + are allowed "
                           "(it becomes a file name)",
                           version);
    }
    return DC_OK;
}

dc_status dc_fusion_weights_set_version(dc_fusion_weights *w, const char *version,
                                        const dc_fusion_metrics *metrics) {
    if (!w) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion weights are NULL");
    if (atomic_load(&w->users))
        return dc_fail(DC_ERR_INVALID_ARGUMENT,
                       "fusion weights %s are in use by a fusemoe; their version cannot change "
                       "meanwhile",
                       w->info.version);
    if (version) {
        dc_status st = dc_fusion_version_check(version);
        if (st != DC_OK) return st;
        memcpy(w->info.version, version, strlen(version) + 1);
    }
    if (metrics) w->info.metrics = *metrics;
    return DC_OK;
}

size_t dc_fusion_weights_param_count(const dc_fusion_weights *w) {
    size_t n = 0;
    for (size_t i = 0; w && i < w->layout.n_tensors; i++) n += w->layout.tensors[i].numel;
    return n;
}

size_t dc_fusion_weights_bytes(const dc_fusion_weights *w) {
    if (!w) return 0;
    return sizeof *w + w->layout.total * sizeof(float) +
           (size_t)DC_FUSION_IN * w->opt.jl_nnz * sizeof(uint16_t);
}

dc_status dc_fusion_checksum(const dc_fusion_layout *l, const float *arena, char out[80]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return dc_fail(DC_ERR_OUT_OF_MEMORY, "sha256 context");
    dc_status st = DC_OK;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        st = dc_fail(DC_ERR_INTERNAL, "sha256 init failed");
        goto done;
    }
    uint8_t buf[4096];
    for (size_t t = 0; t < l->n_tensors; t++) {
        const dc_fusion_tensor *ts = &l->tensors[t];
        EVP_DigestUpdate(ctx, ts->name, strlen(ts->name) + 1);
        uint8_t shape[16];
        dc_put_u64le(shape, ts->shape[0]);
        dc_put_u64le(shape + 8, ts->ndim > 1 ? ts->shape[1] : 0);
        EVP_DigestUpdate(ctx, shape, sizeof shape);
        const float *p = arena + ts->offset;
        size_t i = 0;
        while (i < ts->numel) { /* little-endian bytes, the same on every host */
            size_t k = 0;
            for (; i < ts->numel && k + 4 <= sizeof buf; i++, k += 4)
                dc_put_u32le(buf + k, dc_f32_bits(p[i]));
            EVP_DigestUpdate(ctx, buf, k);
        }
    }
    uint8_t md[32];
    unsigned mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        st = dc_fail(DC_ERR_INTERNAL, "sha256 final failed");
        goto done;
    }
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
done:
    EVP_MD_CTX_free(ctx);
    return st;
}

/* ---- row helpers ---- */

void dc_fusion_scale_input(const float *x, uint32_t mask, const float scales[DC_NUM_MODELS],
                           float *z) {
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        float *zb = z + info->offset;
        if (!(mask & (1u << m)) || scales[m] == 0.0f) {
            memset(zb, 0, info->dim * sizeof *zb);
            continue;
        }
        const float *xb = x + info->offset, s = scales[m];
        for (uint32_t i = 0; i < info->dim; i++) zb[i] = xb[i] * s;
    }
}

/* Sixteen independent float lanes summed in double at the end: the compiler can vectorise the
 * lanes without reassociating anything, so the result is the same on every ISA and does not
 * depend on the batch a row arrives in. */
#define LANES 16

static double sum_lanes(const float acc[LANES]) {
    double s = 0.0;
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

static double dot_f(const float *a, const float *b, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += a[i + k] * b[i + k];
    double s = sum_lanes(acc);
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double sqdist_f(const float *a, const float *b, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float d = a[i + k] - b[i + k];
            acc[k] += d * d;
        }
    double s = sum_lanes(acc);
    for (; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

void dc_fusion_layernorm_row(const float *x, const float *g, const float *b, size_t cols,
                             float *y, float *n, float *rstd_out) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= cols; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += x[i + k];
    double sum = sum_lanes(acc);
    for (; i < cols; i++) sum += x[i];
    const float mean = (float)(sum / (double)cols);
    float acc2[LANES] = {0};
    for (i = 0; i + LANES <= cols; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float d = x[i + k] - mean;
            acc2[k] += d * d;
        }
    double sq = sum_lanes(acc2);
    for (; i < cols; i++) sq += ((double)x[i] - mean) * ((double)x[i] - mean);
    const float rstd = (float)(1.0 / sqrt(sq / (double)cols + (double)DC_FUSION_LN_EPS));
    for (i = 0; i < cols; i++) {
        float v = (x[i] - mean) * rstd;
        if (n) n[i] = v;
        y[i] = v * g[i] + b[i];
    }
    if (rstd_out) *rstd_out = rstd;
}

void dc_fusion_gate_scores(const dc_fusion_weights *w, const float *h, uint32_t mask,
                           double *score) {
    const uint32_t E = w->opt.num_experts;
    const float *W = w->arena + w->layout.gate_w;
    float p[DC_FUSION_MASK_DIM];
    for (int m = 0; m < DC_NUM_MODELS; m++) p[m] = (float)((mask >> m) & 1u);
    for (uint32_t e = 0; e < E; e++) {
        const float *we = W + (size_t)e * DC_FUSION_GATE_IN;
        if (w->opt.gating == DC_GATING_SOFTMAX) {
            score[e] = dot_f(we, h, DC_FUSION_IN) + dot_f(we + DC_FUSION_IN, p, DC_FUSION_MASK_DIM) +
                       (double)w->arena[w->layout.gate_b + e];
        } else { /* Laplace: −‖[h; mask] − c_e‖, a direct sum of squares (no cancellation) */
            score[e] = -sqrt(sqdist_f(h, we, DC_FUSION_IN) +
                             sqdist_f(p, we + DC_FUSION_IN, DC_FUSION_MASK_DIM));
        }
    }
}

void dc_gate_probs(const double *score, uint32_t e, double temperature, double alpha,
                   const float *bias, uint32_t k, dc_gate_result *r) {
    memset(r, 0, sizeof *r);
    double mx = -INFINITY;
    for (uint32_t i = 0; i < e; i++) {
        r->score[i] = score[i];
        if (score[i] > mx) mx = score[i];
    }
    double p[DC_NUM_EXPERTS], sum = 0.0;
    for (uint32_t i = 0; i < e; i++) {
        p[i] = exp((score[i] - mx) / temperature);
        sum += p[i];
    }
    for (uint32_t i = 0; i < e; i++) {
        p[i] /= sum;
        if (alpha > 0.0) p[i] = (p[i] + alpha) / (1.0 + alpha * e);
        r->prob[i] = (float)p[i];
    }
    /* top-k by selection score, ties to the lower index */
    bool used[DC_NUM_EXPERTS] = {false};
    if (k > e) k = e;
    double wsum = 0.0;
    for (uint32_t j = 0; j < k; j++) {
        int best = -1;
        double bs = 0.0;
        for (uint32_t i = 0; i < e; i++) {
            if (used[i]) continue;
            double s = score[i] + (bias ? (double)bias[i] : 0.0);
            if (best < 0 || s > bs) {
                best = (int)i;
                bs = s;
            }
        }
        used[best] = true;
        r->selected[j] = (uint8_t)best;
        wsum += p[best];
    }
    for (uint32_t j = 0; j < k; j++) r->weight[j] = (float)(p[r->selected[j]] / wsum);
    r->k = k;
}
