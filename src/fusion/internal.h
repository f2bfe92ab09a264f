/* Fusion internals shared by the weights, forward, checkpoint, bridge and trainer code. */
#ifndef DC_FUSION_INTERNAL_H
#define DC_FUSION_INTERNAL_H

#include <stdatomic.h>

#include "fusion/fusemoe.h"

/* One named parameter tensor inside the flat arena. */
typedef struct dc_fusion_tensor {
    char name[48];
    size_t offset; /* in floats */
    size_t numel;
    uint32_t ndim;
    uint64_t shape[2];
    bool decay;    /* AdamW weight decay applies (matrices, not biases or norms) */
} dc_fusion_tensor;

#define DC_FUSION_MAX_TENSORS (4 + 4 * DC_NUM_EXPERTS + 12)

/* Offsets (in floats) of every parameter inside the arena. */
typedef struct dc_fusion_layout {
    size_t ln_g, ln_b;       /* [8320] each */
    size_t gate_w;           /* [E, 8332]: softmax weights or Laplace centres */
    size_t gate_b;           /* [E] softmax bias (unused by Laplace, kept zero) */
    size_t fc1_w[DC_NUM_EXPERTS], fc1_b[DC_NUM_EXPERTS]; /* [H, 8320], [H] */
    size_t fc2_w[DC_NUM_EXPERTS], fc2_b[DC_NUM_EXPERTS]; /* [1536, H], [1536] */
    /* CAME-AB bridge (only when options.bridge) */
    size_t br_type;          /* [5, 1536] modality-group embeddings */
    size_t br_ln_g, br_ln_b; /* [1536] pre-norm */
    size_t br_wq, br_bq, br_wk, br_bk, br_wv, br_bv; /* [256, 1536], [256] */
    size_t br_wo, br_bo;     /* [1536, 256], [1536]; zero at initialisation */
    size_t total;
    size_t n_tensors;
    dc_fusion_tensor tensors[DC_FUSION_MAX_TENSORS];
} dc_fusion_layout;

/* Fills the layout for the shapes in `o` (num_experts, hidden, gating, bridge). */
void dc_fusion_layout_build(const dc_fusion_options *o, dc_fusion_layout *l);

struct dc_jl_map {
    uint64_t seed;
    uint32_t nnz;
    float scale;       /* 1/√nnz */
    uint16_t *col;     /* DC_FUSION_IN · nnz: row | sign << 15 (by column: block ranges) */
    uint32_t *row_ptr; /* DC_FUSION_OUT + 1 offsets into row_col */
    uint16_t *row_col; /* column | sign << 15, ascending columns within a row (the full apply) */
};

/* The five CAME-AB modality groups (seed L24) and which models belong to each. */
extern const char *const dc_fusion_group_names[DC_FUSION_GROUPS];
extern const uint8_t dc_fusion_model_group[DC_NUM_MODELS];

struct dc_fusion_weights {
    atomic_uint refs;
    dc_fusion_options opt;  /* checkpoint/backend pointers cleared; block weights normalised */
    dc_fusion_layout layout;
    float *arena;           /* layout.total floats, owned */
    dc_fusion_version info;
    dc_jl_map *jl;
    float block_scale[DC_NUM_MODELS]; /* √w_m */
    atomic_uint users;      /* fusemoes using it: its version record is read-only meanwhile */
};

/* A weights object with a zeroed arena for `o` (no initialisation, not prepared). */
dc_status dc_fusion_weights_alloc(const dc_fusion_options *o, dc_fusion_weights **out);
/* Fills the arena from the options' schemes and seed. */
void dc_fusion_weights_seed(dc_fusion_weights *w);
/* "sha256:<hex>" over the tensors in canonical order: name, NUL, shape as u64 LE, F32 LE data. */
dc_status dc_fusion_checksum(const dc_fusion_layout *l, const float *arena, char out[80]);
/* Version strings: 1..63 of [A-Za-z0-9._+-], not starting with '.' (they become file names). */
dc_status dc_fusion_version_check(const char *version);
/* Next process-unique serial. */
uint64_t dc_fusion_next_serial(void);

/* Row-level helpers shared by the forward and the trainer. */
/* LayerNorm of one row (double accumulation); writes the normalised values n (may be NULL) and
 * the inverse standard deviation. */
void dc_fusion_layernorm_row(const float *x, const float *g, const float *b, size_t cols,
                             float *y, float *n, float *rstd);
/* Raw gate scores of one row from h (8320) and the presence mask. */
void dc_fusion_gate_scores(const dc_fusion_weights *w, const float *h, uint32_t mask,
                           double *score);
/* Block-scales a concatenation: z = scale_m · x_m for present m, 0 elsewhere. */
void dc_fusion_scale_input(const float *x, uint32_t mask, const float scales[DC_NUM_MODELS],
                           float *z);

/* Initialises `n` floats of a [rows, cols] matrix with `scheme` from (seed, stream). */
dc_status dc_fusion_init_matrix(float *dst, uint32_t rows, uint32_t cols, dc_init_scheme scheme,
                                uint64_t seed, uint64_t stream);

/* y[m×n] = x[m×k]·Wᵀ + bias (bias may be NULL), W [n×k] f32 or bf16 (gemm.c). A row's result
 * does not depend on the other rows. */
void dc_fusion_gemm(const float *x, size_t m, const void *w, bool bf16, const float *bias,
                    uint32_t n, uint32_t k, float *y);
void dc_fusion_gemm_force_generic(bool on);
uint16_t dc_fusion_f32_to_bf16(float f);

/* CAME-AB bridge forward for one row: given z (block-scaled input) and the mask, writes the
 * enhanced vector (unnormalised) into out[1536]. `work` holds dc_fusion_bridge_work_floats(). */
size_t dc_fusion_bridge_work_floats(void);
void dc_fusion_bridge_row(const dc_fusion_weights *w, const float *z, uint32_t mask, float *out,
                          float *work);

/* ---- the experts on the CUDA backend (experts_gpu.c) ---- */

#define DC_FGPU_PAD 8 /* augmented columns per layer: the bias parts, then zeros (alignment) */
typedef struct dc_fusion_gpu dc_fusion_gpu;
/* Uploads every expert not in skip[] (may be NULL) in the augmented layout, f32 or bf16. */
dc_status dc_fusion_gpu_prepare(dc_backend *be, const dc_fusion_weights *w, bool bf16,
                                const bool *skip, dc_fusion_gpu **out);
void dc_fusion_gpu_free(dc_fusion_gpu *g);
size_t dc_fusion_gpu_bytes(const dc_fusion_gpu *g);
/* Expert outputs of Σ count[e] rows: rows[] index h (8320 floats a row, host), grouped by
 * expert in increasing order (count[e] rows for expert e); out (host) gets 1536 floats a row
 * in the same order. */
dc_status dc_fusion_gpu_run(dc_fusion_gpu *g, const float *h, const uint32_t *rows,
                            const uint32_t *count, float *out);
/* Tests: one cublasGemmEx per expert instead of the grouped call. */
void dc_fusion_gpu_force_fallback(bool on);

/* The backend the experts run on, from o->device (cpu, auto, cuda:N). *cuda says which; desc
 * says where and, for auto on the CPU, why ("cpu (auto: gpu.enabled = false)"). */
dc_status dc_fusion_backend_open(const dc_fusion_options *o, dc_backend **out, bool *cuda,
                                 char *desc, size_t cap);
void dc_fusion_backend_close(dc_backend *be, bool cuda);

#endif
