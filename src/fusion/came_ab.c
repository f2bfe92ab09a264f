/* CAME-AB bridge (seed L24; methods §2.2): cross-attention across the five modality groups.
 *
 * Each present group g becomes a token t_g = S_g·z_g, its share of the shared JL map (so the
 * tokens sum to S·z). One pre-norm multi-head attention block lets every group attend to the
 * others (absent groups are masked out of the keys), with a residual:
 *     u_g = LN(t_g + e_g);  a_g = W_o·Attn(q = W_q u_g; k, v = W_k u, W_v u) + b_o
 *     enhanced = Σ_g (t_g + a_g)
 * W_o starts at zero, so untrained the bridge returns S·z — the similarity-preserving part of
 * the fused vector — and blending it in never scrambles similarities. The pipeline blends
 * final = L2((1−w)·fused + w·L2(enhanced)); w = 0 skips the bridge entirely. */
#include <math.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "fusion/internal.h"

const char *const dc_fusion_group_names[DC_FUSION_GROUPS] = {"semantic", "temporal", "structural",
                                                             "code", "multimodal"};
/* E1, E5, E6, E12 semantic; E2–E4 temporal; E8, E9, E11 structural; E7 code; E10 multimodal */
const uint8_t dc_fusion_model_group[DC_NUM_MODELS] = {0, 1, 1, 1, 0, 0, 3, 2, 2, 4, 2, 0};

#define D DC_FUSION_OUT
#define A DC_FUSION_BRIDGE_DIM
#define G DC_FUSION_GROUPS

size_t dc_fusion_bridge_work_floats(void) { return 3 * (size_t)G * D + 4 * (size_t)G * A; }

static void add_bias(float *y, const float *b, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) y[r * cols + c] += b[c];
}

void dc_fusion_bridge_row(const dc_fusion_weights *w, const float *z, uint32_t mask, float *out,
                          float *work) {
    const dc_fusion_layout *l = &w->layout;
    const float *P = w->arena;
    float *t = work, *u = t + (size_t)G * D, *a = u + (size_t)G * D;
    float *q = a + (size_t)G * D, *k = q + (size_t)G * A, *v = k + (size_t)G * A,
          *att = v + (size_t)G * A;
    int present[G], np = 0;
    for (int g = 0; g < G; g++) {
        bool any = false;
        for (int m = 0; m < DC_NUM_MODELS; m++)
            any |= dc_fusion_model_group[m] == g && (mask & (1u << m));
        if (any) present[np++] = g;
    }
    /* tokens, packed in the order of present groups */
    for (int i = 0; i < np; i++) {
        float *ti = t + (size_t)i * D;
        memset(ti, 0, D * sizeof *ti);
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            if (dc_fusion_model_group[m] != present[i] || !(mask & (1u << m))) continue;
            const dc_model_info *info = dc_model_info_get((dc_model_id)m);
            dc_jl_accumulate(w->jl, z, info->offset, info->offset + info->dim, ti);
        }
        float tmp[D];
        const float *e = P + l->br_type + (size_t)present[i] * D;
        for (size_t c = 0; c < D; c++) tmp[c] = ti[c] + e[c];
        dc_fusion_layernorm_row(tmp, P + l->br_ln_g, P + l->br_ln_b, D, u + (size_t)i * D, NULL,
                                NULL);
    }
    dnnl_sgemm('N', 'T', np, A, D, 1.0f, u, D, P + l->br_wq, D, 0.0f, q, A);
    dnnl_sgemm('N', 'T', np, A, D, 1.0f, u, D, P + l->br_wk, D, 0.0f, k, A);
    dnnl_sgemm('N', 'T', np, A, D, 1.0f, u, D, P + l->br_wv, D, 0.0f, v, A);
    add_bias(q, P + l->br_bq, np, A);
    add_bias(k, P + l->br_bk, np, A);
    add_bias(v, P + l->br_bv, np, A);
    const int hd = A / DC_FUSION_BRIDGE_HEADS;
    const double scale = 1.0 / sqrt((double)hd);
    for (int i = 0; i < np; i++)
        for (int h = 0; h < DC_FUSION_BRIDGE_HEADS; h++) {
            double s[G], mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < np; j++) {
                double d = 0.0;
                for (int c = 0; c < hd; c++)
                    d += (double)q[(size_t)i * A + h * hd + c] * k[(size_t)j * A + h * hd + c];
                s[j] = d * scale;
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j < np; j++) {
                s[j] = exp(s[j] - mx);
                sum += s[j];
            }
            for (int c = 0; c < hd; c++) {
                double acc = 0.0;
                for (int j = 0; j < np; j++) acc += s[j] * v[(size_t)j * A + h * hd + c];
                att[(size_t)i * A + h * hd + c] = (float)(acc / sum);
            }
        }
    dnnl_sgemm('N', 'T', np, D, A, 1.0f, att, A, P + l->br_wo, A, 0.0f, a, D);
    add_bias(a, P + l->br_bo, np, D);
    memset(out, 0, D * sizeof *out);
    for (int i = 0; i < np; i++)
        for (size_t c = 0; c < D; c++) out[c] += t[(size_t)i * D + c] + a[(size_t)i * D + c];
}
