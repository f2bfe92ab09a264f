/* FuseMoE trainer: forward in training mode, analytic backward, AdamW (train.h). GEMMs run
 * through oneDNN's sgemm on the plain parameter arrays (they change every step, so nothing is
 * prepared); the gate and LayerNorm are row loops in double like the inference path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "fusion/rng.h"
#include "fusion/train.h"

#define IN DC_FUSION_IN
#define OUT DC_FUSION_OUT

struct dc_fusion_trainer {
    dc_fusion_weights *w; /* owns the parameter arena (never prepared or shared) */
    dc_fusion_train_options t;
    double lb_coef;
    float *grad, *m, *v;
    uint64_t steps;
    uint64_t noise_counter;
    uint64_t routing_hash;
    double last[2]; /* contrastive and balance parts of the last step's loss */
};

void dc_fusion_train_options_default(dc_fusion_train_options *t) {
    memset(t, 0, sizeof *t);
    t->epochs = 10;
    t->batch = 64;
    t->lr = 1e-3;
    t->weight_decay = 0.01;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->tau = 0.1;
    t->load_balance_coef = -1.0;
    t->seed = 1;
}

static dc_status check_train_options(const dc_fusion_train_options *t) {
    if (t->epochs < 1 || t->epochs > 100000)
        return dc_fail(DC_ERR_CONFIG, "train: epochs (%u) must be 1..100000", t->epochs);
    if (t->batch < 2 || t->batch > 65536)
        return dc_fail(DC_ERR_CONFIG, "train: batch (%u) must be 2..65536 (in-batch negatives)",
                       t->batch);
    if (!(t->lr > 0.0 && t->lr < 10.0))
        return dc_fail(DC_ERR_CONFIG, "train: lr (%g) must be in (0, 10)", t->lr);
    if (!(t->weight_decay >= 0.0 && t->weight_decay < 1.0))
        return dc_fail(DC_ERR_CONFIG, "train: weight_decay (%g) must be in [0, 1)", t->weight_decay);
    if (!(t->beta1 >= 0.0 && t->beta1 < 1.0) || !(t->beta2 >= 0.0 && t->beta2 < 1.0) ||
        !(t->eps > 0.0))
        return dc_fail(DC_ERR_CONFIG, "train: Adam betas must be in [0, 1) and eps > 0");
    if (!(t->tau > 0.0 && t->tau <= 10.0))
        return dc_fail(DC_ERR_CONFIG, "train: tau (%g) must be in (0, 10]", t->tau);
    if (!isfinite(t->load_balance_coef) || t->load_balance_coef > 100.0)
        return dc_fail(DC_ERR_CONFIG, "train: load_balance_coef (%g) is out of range",
                       t->load_balance_coef);
    return DC_OK;
}

static dc_status copy_weights(const dc_fusion_weights *src, dc_fusion_weights **out) {
    dc_fusion_weights *w = NULL;
    dc_status st = dc_fusion_weights_alloc(&src->opt, &w);
    if (st != DC_OK) return st;
    memcpy(w->arena, src->arena, src->layout.total * sizeof(float));
    w->info = src->info;
    w->info.serial = dc_fusion_next_serial();
    w->info.fallback_reason[0] = 0;
    *out = w;
    return DC_OK;
}

dc_status dc_fusion_trainer_create(const dc_fusion_weights *init, const dc_fusion_train_options *t,
                                   dc_fusion_trainer **out) {
    if (!init || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "trainer: NULL argument");
    *out = NULL;
    dc_fusion_train_options def;
    if (!t) {
        dc_fusion_train_options_default(&def);
        t = &def;
    }
    dc_status st = check_train_options(t);
    if (st != DC_OK) return st;
    dc_fusion_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer");
    tr->t = *t;
    if ((st = copy_weights(init, &tr->w)) != DC_OK) {
        free(tr);
        return st;
    }
    tr->lb_coef = t->load_balance_coef >= 0.0 ? t->load_balance_coef : init->opt.load_balance_coef;
    size_t n = tr->w->layout.total;
    tr->grad = calloc(n, sizeof(float));
    tr->m = calloc(n, sizeof(float));
    tr->v = calloc(n, sizeof(float));
    if (!tr->grad || !tr->m || !tr->v) {
        dc_fusion_trainer_destroy(tr);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer: optimizer state for %zu parameters", n);
    }
    *out = tr;
    return DC_OK;
}

void dc_fusion_trainer_destroy(dc_fusion_trainer *tr) {
    if (!tr) return;
    dc_fusion_weights_release(tr->w);
    free(tr->grad);
    free(tr->m);
    free(tr->v);
    free(tr);
}

float *dc_fusion_trainer_params(dc_fusion_trainer *tr) { return tr->w->arena; }
const dc_fusion_weights *dc_fusion_trainer_shape(const dc_fusion_trainer *tr) { return tr->w; }
uint64_t dc_fusion_trainer_routing_hash(const dc_fusion_trainer *tr) { return tr->routing_hash; }

dc_status dc_fusion_trainer_weights(const dc_fusion_trainer *tr, dc_fusion_weights **out) {
    if (!tr || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "trainer weights: NULL argument");
    dc_status st = copy_weights(tr->w, out);
    if (st != DC_OK) return st;
    snprintf((*out)->info.version, sizeof (*out)->info.version, "0.0.0-trained");
    snprintf((*out)->info.source, sizeof (*out)->info.source, "dodeca fusion train (seed %llu)",
             (unsigned long long)tr->w->opt.seed);
    (*out)->info.created[0] = 0;
    return dc_fusion_checksum(&(*out)->layout, (*out)->arena, (*out)->info.checksum);
}

/* ---- forward + backward ---- */

static float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
static float gelu_grad(float x) {
    return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) +
           x * expf(-0.5f * x * x) * 0.39894228040143268f;
}

static dc_status sgemm(char ta, char tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (!m || !n) return DC_OK;
    if (!k) { /* C = beta·C */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) c[i * ldc + j] *= beta;
        return DC_OK;
    }
    dnnl_status_t s = dnnl_sgemm(ta, tb, (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, alpha, a,
                                 (dnnl_dim_t)lda, b, (dnnl_dim_t)ldb, beta, c, (dnnl_dim_t)ldc);
    return s == dnnl_success ? DC_OK
                             : dc_fail(DC_ERR_INTERNAL, "trainer: sgemm %zux%zux%zu failed", m, n, k);
}

typedef struct row_gate {
    double q[DC_NUM_EXPERTS];  /* softmax(s/T), unsmoothed */
    double pp[DC_NUM_EXPERTS]; /* smoothed */
    uint8_t sel[DC_NUM_EXPERTS];
    float g[DC_NUM_EXPERTS];   /* combination weight per rank */
    double dist[DC_NUM_EXPERTS]; /* Laplace distances */
    uint32_t k;
} row_gate;

typedef struct tbuf {
    float *z, *h, *nrm, *y, *f, *dh;
    float *rstd;
    row_gate *rg;
    float *eo;   /* rows·k × OUT: expert outputs per (row, rank) */
    float *x, *a, *u, *o, *dO, *dU, *dX; /* per expert group */
    size_t *slot;
} tbuf;

static void tbuf_free(tbuf *b) {
    free(b->z); free(b->h); free(b->nrm); free(b->y); free(b->f); free(b->dh); free(b->rstd);
    free(b->rg); free(b->eo); free(b->x); free(b->a); free(b->u); free(b->o); free(b->dO);
    free(b->dU); free(b->dX); free(b->slot);
}

dc_status dc_fusion_trainer_loss(dc_fusion_trainer *tr, const float *xa, const uint32_t *mask_a,
                                 const float *xb, const uint32_t *mask_b, size_t n, double *loss,
                                 float *grad, double components[2]) {
    if (!tr || !xa || !xb || !mask_a || !mask_b || !loss)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "trainer loss: NULL argument");
    if (n < 2) return dc_fail(DC_ERR_BATCH, "trainer: a batch needs at least 2 pairs, got %zu", n);
    const dc_fusion_weights *w = tr->w;
    const dc_fusion_options *o = &w->opt;
    const dc_fusion_layout *L = &w->layout;
    float *P = w->arena;
    const uint32_t E = o->num_experts, H = o->hidden, K = o->top_k;
    const size_t R = 2 * n;
    const double T = o->temperature, alpha = o->laplace_alpha, tau = tr->t.tau;
    dc_status st = DC_OK;
    tbuf b;
    memset(&b, 0, sizeof b);
    b.z = malloc(R * IN * sizeof(float));
    b.h = malloc(R * IN * sizeof(float));
    b.nrm = malloc(R * IN * sizeof(float));
    b.dh = calloc(R * IN, sizeof(float));
    b.y = malloc(R * OUT * sizeof(float));
    b.f = malloc(R * OUT * sizeof(float));
    b.rstd = malloc(R * sizeof(float));
    b.rg = calloc(R, sizeof *b.rg);
    b.eo = calloc(R * K * OUT, sizeof(float));
    b.x = malloc(R * IN * sizeof(float));
    b.dX = malloc(R * IN * sizeof(float));
    b.a = malloc(R * (size_t)H * sizeof(float));
    b.u = malloc(R * (size_t)H * sizeof(float));
    b.dU = malloc(R * (size_t)H * sizeof(float));
    b.o = malloc(R * OUT * sizeof(float));
    b.dO = malloc(R * OUT * sizeof(float));
    b.slot = malloc(R * sizeof(size_t));
    double *logits = malloc(n * n * sizeof(double));
    if (!b.z || !b.h || !b.nrm || !b.dh || !b.y || !b.f || !b.rstd || !b.rg || !b.eo || !b.x ||
        !b.dX || !b.a || !b.u || !b.dU || !b.o || !b.dO || !b.slot || !logits) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer buffers for %zu pairs", n);
        goto done;
    }
    if (grad) memset(grad, 0, L->total * sizeof(float));

    /* rows 0..n-1 are a, n..2n-1 are b */
    uint64_t rh = 1469598103934665603ull;
    for (size_t r = 0; r < R; r++) {
        const float *x = r < n ? xa + r * IN : xb + (r - n) * IN;
        uint32_t mask = r < n ? mask_a[r] : mask_b[r - n];
        float *z = b.z + r * IN, *h = b.h + r * IN;
        dc_fusion_scale_input(x, mask, w->block_scale, z);
        dc_jl_apply(w->jl, z, b.y + r * OUT);
        dc_fusion_layernorm_row(z, P + L->ln_g, P + L->ln_b, IN, h, b.nrm + r * IN, &b.rstd[r]);
        double s[DC_NUM_EXPERTS];
        dc_fusion_gate_scores(w, h, mask, s);
        row_gate *g = &b.rg[r];
        if (o->gating == DC_GATING_LAPLACE)
            for (uint32_t e = 0; e < E; e++) g->dist[e] = -s[e];
        if (o->noise_std > 0.0) /* training mode only: noise on the scores (treated as constant) */
            for (uint32_t e = 0; e < E; e++)
                s[e] += o->noise_std * dc_rand_normal(tr->t.seed, 0x4E4F495345ull, tr->noise_counter++);
        dc_gate_result gr;
        dc_gate_probs(s, E, T, alpha, NULL, K, &gr);
        double mx = -INFINITY, sum = 0.0;
        for (uint32_t e = 0; e < E; e++) mx = fmax(mx, s[e]);
        for (uint32_t e = 0; e < E; e++) sum += (g->q[e] = exp((s[e] - mx) / T));
        for (uint32_t e = 0; e < E; e++) {
            g->q[e] /= sum;
            g->pp[e] = alpha > 0.0 ? (g->q[e] + alpha) / (1.0 + alpha * E) : g->q[e];
        }
        g->k = gr.k;
        double psel = 0.0;
        for (uint32_t j = 0; j < gr.k; j++) psel += g->pp[gr.selected[j]];
        for (uint32_t j = 0; j < gr.k; j++) {
            g->sel[j] = gr.selected[j];
            g->g[j] = (float)(g->pp[gr.selected[j]] / psel);
            rh = (rh ^ gr.selected[j]) * 1099511628211ull;
        }
    }
    tr->routing_hash = rh;

    /* experts, grouped; keep what the backward needs per group by recomputing the gather */
    for (uint32_t e = 0; e < E && st == DC_OK; e++) {
        size_t m = 0;
        for (size_t r = 0; r < R; r++)
            for (uint32_t j = 0; j < b.rg[r].k; j++)
                if (b.rg[r].sel[j] == e) {
                    memcpy(b.x + m * IN, b.h + r * IN, IN * sizeof(float));
                    b.slot[m++] = r * K + j;
                }
        if (!m) continue;
        const float *W1 = P + L->fc1_w[e], *B1 = P + L->fc1_b[e];
        const float *W2 = P + L->fc2_w[e], *B2 = P + L->fc2_b[e];
        if ((st = sgemm('N', 'T', m, H, IN, 1.0f, b.x, IN, W1, IN, 0.0f, b.a, H)) != DC_OK) break;
        for (size_t i = 0; i < m; i++)
            for (uint32_t c = 0; c < H; c++) {
                float v = b.a[i * H + c] + B1[c];
                b.a[i * H + c] = v;
                b.u[i * H + c] = gelu(v);
            }
        if ((st = sgemm('N', 'T', m, OUT, H, 1.0f, b.u, H, W2, H, 0.0f, b.o, OUT)) != DC_OK) break;
        for (size_t i = 0; i < m; i++) {
            float *dst = b.eo + b.slot[i] * OUT;
            for (size_t c = 0; c < OUT; c++) dst[c] = b.o[i * OUT + c] + B2[c];
        }
    }
    if (st != DC_OK) goto done;

    /* combine and normalise */
    for (size_t r = 0; r < R; r++) {
        float *y = b.y + r * OUT;
        for (uint32_t j = 0; j < b.rg[r].k; j++) {
            const float *eo = b.eo + (r * K + j) * OUT;
            float gw = b.rg[r].g[j];
            for (size_t c = 0; c < OUT; c++) y[c] += gw * eo[c];
        }
        double nn = 0.0;
        for (size_t c = 0; c < OUT; c++) nn += (double)y[c] * y[c];
        double inv = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
        for (size_t c = 0; c < OUT; c++) b.f[r * OUT + c] = (float)(y[c] * inv);
    } /* y stays for the backward (‖y‖ is recomputed there) */

    /* InfoNCE, both directions */
    const float *fa = b.f, *fb = b.f + n * OUT;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double d = 0.0;
            for (size_t c = 0; c < OUT; c++) d += (double)fa[i * OUT + c] * fb[j * OUT + c];
            logits[i * n + j] = d / tau;
        }
    double lc = 0.0;
    double *G = grad ? calloc(n * n, sizeof(double)) : NULL; /* dL/dlogit */
    if (grad && !G) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer logits gradient");
        goto done;
    }
    for (size_t i = 0; i < n; i++) { /* rows: a_i against every b_j */
        double mx = -INFINITY, s = 0.0;
        for (size_t j = 0; j < n; j++) mx = fmax(mx, logits[i * n + j]);
        for (size_t j = 0; j < n; j++) s += exp(logits[i * n + j] - mx);
        lc += 0.5 * (mx + log(s) - logits[i * n + i]) / (double)n;
        if (G)
            for (size_t j = 0; j < n; j++)
                G[i * n + j] += 0.5 * (exp(logits[i * n + j] - mx) / s - (i == j)) / (double)n;
    }
    for (size_t j = 0; j < n; j++) { /* columns: b_j against every a_i */
        double mx = -INFINITY, s = 0.0;
        for (size_t i = 0; i < n; i++) mx = fmax(mx, logits[i * n + j]);
        for (size_t i = 0; i < n; i++) s += exp(logits[i * n + j] - mx);
        lc += 0.5 * (mx + log(s) - logits[j * n + j]) / (double)n;
        if (G)
            for (size_t i = 0; i < n; i++)
                G[i * n + j] += 0.5 * (exp(logits[i * n + j] - mx) / s - (i == j)) / (double)n;
    }
    /* Switch load balance over all rows */
    double F[DC_NUM_EXPERTS] = {0}, Pm[DC_NUM_EXPERTS] = {0};
    for (size_t r = 0; r < R; r++) {
        uint32_t top = 0;
        for (uint32_t e = 1; e < E; e++)
            if (b.rg[r].q[e] > b.rg[r].q[top]) top = e;
        F[top] += 1.0 / (double)R;
        for (uint32_t e = 0; e < E; e++) Pm[e] += b.rg[r].q[e] / (double)R;
    }
    double lb = 0.0;
    for (uint32_t e = 0; e < E; e++) lb += F[e] * Pm[e];
    lb *= E;
    *loss = lc + tr->lb_coef * lb;
    if (components) {
        components[0] = lc;
        components[1] = lb;
    }
    if (!grad) goto done;

    /* ---- backward ---- */
    /* dL/df, then through the L2 normalisation: dy = (df − f·(f·df)) / ‖y‖ (in place) */
    float *df = calloc(R * OUT, sizeof(float));
    if (!df) {
        free(G);
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer gradient");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            float gij = (float)(G[i * n + j] / tau);
            if (gij == 0.0f) continue;
            for (size_t c = 0; c < OUT; c++) {
                df[i * OUT + c] += gij * fb[j * OUT + c];
                df[(n + j) * OUT + c] += gij * fa[i * OUT + c];
            }
        }
    free(G);
    for (size_t r = 0; r < R; r++) {
        const float *fr = b.f + r * OUT, *yr = b.y + r * OUT;
        float *d = df + r * OUT;
        double nn = 0.0, dot = 0.0;
        for (size_t c = 0; c < OUT; c++) {
            nn += (double)yr[c] * yr[c];
            dot += (double)fr[c] * d[c];
        }
        double inv = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
        for (size_t c = 0; c < OUT; c++) d[c] = (float)((d[c] - fr[c] * dot) * inv);
    }
    /* dg per (row, rank) and dO = g·dy */
    double *dg = calloc(R * K, sizeof(double));
    if (!dg) {
        free(df);
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "trainer gradient");
        goto done;
    }
    for (size_t r = 0; r < R; r++)
        for (uint32_t j = 0; j < b.rg[r].k; j++) {
            const float *eo = b.eo + (r * K + j) * OUT, *d = df + r * OUT;
            double s = 0.0;
            for (size_t c = 0; c < OUT; c++) s += (double)eo[c] * d[c];
            dg[r * K + j] = s;
        }
    /* experts: recompute each group's forward activations, then backward */
    for (uint32_t e = 0; e < E && st == DC_OK; e++) {
        size_t m = 0;
        for (size_t r = 0; r < R; r++)
            for (uint32_t j = 0; j < b.rg[r].k; j++)
                if (b.rg[r].sel[j] == e) {
                    memcpy(b.x + m * IN, b.h + r * IN, IN * sizeof(float));
                    float gw = b.rg[r].g[j];
                    const float *d = df + r * OUT;
                    for (size_t c = 0; c < OUT; c++) b.dO[m * OUT + c] = gw * d[c];
                    b.slot[m++] = r * K + j;
                }
        if (!m) continue;
        const float *W1 = P + L->fc1_w[e], *B1 = P + L->fc1_b[e], *W2 = P + L->fc2_w[e];
        float *gW1 = grad + L->fc1_w[e], *gB1 = grad + L->fc1_b[e];
        float *gW2 = grad + L->fc2_w[e], *gB2 = grad + L->fc2_b[e];
        if ((st = sgemm('N', 'T', m, H, IN, 1.0f, b.x, IN, W1, IN, 0.0f, b.a, H)) != DC_OK) break;
        for (size_t i = 0; i < m; i++)
            for (uint32_t c = 0; c < H; c++) {
                float v = b.a[i * H + c] + B1[c];
                b.a[i * H + c] = v;
                b.u[i * H + c] = gelu(v);
            }
        /* dW2 += dOᵀ·U, db2 += Σ dO, dU = dO·W2 */
        if ((st = sgemm('T', 'N', OUT, H, m, 1.0f, b.dO, OUT, b.u, H, 1.0f, gW2, H)) != DC_OK) break;
        for (size_t i = 0; i < m; i++)
            for (size_t c = 0; c < OUT; c++) gB2[c] += b.dO[i * OUT + c];
        if ((st = sgemm('N', 'N', m, H, OUT, 1.0f, b.dO, OUT, W2, H, 0.0f, b.dU, H)) != DC_OK) break;
        for (size_t i = 0; i < m * H; i++) b.dU[i] *= gelu_grad(b.a[i]);
        for (size_t i = 0; i < m; i++)
            for (uint32_t c = 0; c < H; c++) gB1[c] += b.dU[i * H + c];
        /* dW1 += dAᵀ·X, dX = dA·W1 → scatter into dh */
        if ((st = sgemm('T', 'N', H, IN, m, 1.0f, b.dU, H, b.x, IN, 1.0f, gW1, IN)) != DC_OK) break;
        if ((st = sgemm('N', 'N', m, IN, H, 1.0f, b.dU, H, W1, IN, 0.0f, b.dX, IN)) != DC_OK) break;
        for (size_t i = 0; i < m; i++) {
            float *dh = b.dh + (b.slot[i] / K) * IN;
            const float *dx = b.dX + i * IN;
            for (size_t c = 0; c < IN; c++) dh[c] += dx[c];
        }
    }
    free(df);
    if (st != DC_OK) {
        free(dg);
        goto done;
    }
    /* gate */
    float *gGW = grad + L->gate_w, *gGB = grad + L->gate_b;
    const float *GW = P + L->gate_w;
    for (size_t r = 0; r < R; r++) {
        const row_gate *g = &b.rg[r];
        uint32_t mask = r < n ? mask_a[r] : mask_b[r - n];
        double dpp[DC_NUM_EXPERTS] = {0}, dq[DC_NUM_EXPERTS] = {0}, ds[DC_NUM_EXPERTS];
        double psel = 0.0, acc = 0.0;
        for (uint32_t j = 0; j < g->k; j++) psel += g->pp[g->sel[j]];
        for (uint32_t j = 0; j < g->k; j++) acc += dg[r * K + j] * g->g[j];
        for (uint32_t j = 0; j < g->k; j++) dpp[g->sel[j]] = (dg[r * K + j] - acc) / psel;
        for (uint32_t e = 0; e < E; e++) {
            dq[e] = alpha > 0.0 ? dpp[e] / (1.0 + alpha * E) : dpp[e];
            dq[e] += tr->lb_coef * E * F[e] / (double)R;
        }
        double qdq = 0.0;
        for (uint32_t e = 0; e < E; e++) qdq += g->q[e] * dq[e];
        for (uint32_t e = 0; e < E; e++) ds[e] = g->q[e] * (dq[e] - qdq) / T;
        const float *h = b.h + r * IN;
        float *dh = b.dh + r * IN;
        if (o->gating == DC_GATING_SOFTMAX) {
            for (uint32_t e = 0; e < E; e++) {
                float se = (float)ds[e];
                float *gw = gGW + (size_t)e * DC_FUSION_GATE_IN;
                const float *wr = GW + (size_t)e * DC_FUSION_GATE_IN;
                for (size_t c = 0; c < IN; c++) {
                    gw[c] += se * h[c];
                    dh[c] += se * wr[c];
                }
                for (int mm = 0; mm < DC_NUM_MODELS; mm++)
                    if (mask & (1u << mm)) gw[IN + mm] += se;
                gGB[e] += se;
            }
        } else {
            for (uint32_t e = 0; e < E; e++) {
                double d = g->dist[e];
                if (!(d > 0.0)) continue;
                float coef = (float)(-ds[e] / d); /* ∂s/∂h = −(h − c)/d */
                float *gw = gGW + (size_t)e * DC_FUSION_GATE_IN;
                const float *cr = GW + (size_t)e * DC_FUSION_GATE_IN;
                for (size_t c = 0; c < IN; c++) {
                    float diff = h[c] - cr[c];
                    dh[c] += coef * diff;
                    gw[c] -= coef * diff;
                }
                for (int mm = 0; mm < DC_NUM_MODELS; mm++)
                    gw[IN + mm] -= coef * ((float)((mask >> mm) & 1u) - cr[IN + mm]);
            }
        }
    }
    free(dg);
    /* LayerNorm parameters */
    float *gG = grad + L->ln_g, *gB = grad + L->ln_b;
    for (size_t r = 0; r < R; r++) {
        const float *dh = b.dh + r * IN, *nr = b.nrm + r * IN;
        for (size_t c = 0; c < IN; c++) {
            gG[c] += dh[c] * nr[c];
            gB[c] += dh[c];
        }
    }
done:
    free(logits);
    tbuf_free(&b);
    return st;
}

dc_status dc_fusion_trainer_step(dc_fusion_trainer *tr, const float *a, const uint32_t *mask_a,
                                 const float *b, const uint32_t *mask_b, size_t n, double *loss) {
    double l = 0.0;
    dc_status st = dc_fusion_trainer_loss(tr, a, mask_a, b, mask_b, n, &l, tr->grad, tr->last);
    if (st != DC_OK) return st;
    if (!isfinite(l)) return dc_fail(DC_ERR_FUSION, "trainer: the loss is not finite at step %llu",
                                     (unsigned long long)tr->steps);
    if (loss) *loss = l;
    tr->steps++;
    const dc_fusion_train_options *t = &tr->t;
    const double c1 = 1.0 - pow(t->beta1, (double)tr->steps);
    const double c2 = 1.0 - pow(t->beta2, (double)tr->steps);
    const dc_fusion_layout *L = &tr->w->layout;
    float *p = tr->w->arena;
    const float b1 = (float)t->beta1, b2 = (float)t->beta2;
    const float lr = (float)t->lr, eps = (float)t->eps, wd = (float)t->weight_decay;
    const float ic1 = (float)(1.0 / c1), ic2 = (float)(1.0 / c2);
    for (size_t ti = 0; ti < L->n_tensors; ti++) {
        const dc_fusion_tensor *ts = &L->tensors[ti];
        if (!strncmp(ts->name, "bridge.", 7)) continue; /* the bridge is not trained (yet) */
        float decay = ts->decay ? wd : 0.0f;
        for (size_t i = ts->offset; i < ts->offset + ts->numel; i++) {
            float g = tr->grad[i];
            tr->m[i] = b1 * tr->m[i] + (1.0f - b1) * g;
            tr->v[i] = b2 * tr->v[i] + (1.0f - b2) * g * g;
            float mh = tr->m[i] * ic1, vh = tr->v[i] * ic2;
            p[i] -= lr * (mh / (sqrtf(vh) + eps) + decay * p[i]);
        }
    }
    return DC_OK;
}

/* ---- the training loop ---- */

dc_status dc_fusion_train(const dc_fusion_dataset *d, const dc_fusion_weights *init,
                          const dc_fusion_train_options *t, dc_fusion_weights **out,
                          dc_fusion_metrics *metrics) {
    if (!d || !init || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "train: NULL argument");
    *out = NULL;
    dc_fusion_train_options def;
    if (!t) {
        dc_fusion_train_options_default(&def);
        t = &def;
    }
    if (d->n < 2) return dc_fail(DC_ERR_BATCH, "train: %zu pairs; in-batch negatives need >= 2", d->n);
    dc_fusion_trainer *tr = NULL;
    dc_status st = dc_fusion_trainer_create(init, t, &tr);
    if (st != DC_OK) return st;
    size_t bs = t->batch < d->n ? t->batch : d->n;
    size_t *perm = malloc(d->n * sizeof *perm);
    float *ba = malloc(bs * IN * sizeof(float)), *bb = malloc(bs * IN * sizeof(float));
    uint32_t *ma = malloc(bs * sizeof *ma), *mb = malloc(bs * sizeof *mb);
    if (!perm || !ba || !bb || !ma || !mb) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "train: batch buffers");
        goto done;
    }
    for (size_t i = 0; i < d->n; i++) perm[i] = i;
    double last_epoch_loss = 0.0;
    uint32_t step = 0;
    dc_rng rng = dc_rng_make(t->seed, 0x53485546ull);
    for (uint32_t ep = 0; ep < t->epochs && st == DC_OK; ep++) {
        for (size_t i = d->n - 1; i > 0; i--) { /* Fisher–Yates */
            size_t j = (size_t)(dc_rng_u64(&rng) % (i + 1));
            size_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        double sum = 0.0;
        size_t batches = 0;
        /* full batches only: a tiny last batch would give a noisy contrastive step */
        for (size_t s0 = 0; s0 + bs <= d->n && st == DC_OK; s0 += bs) {
            for (size_t i = 0; i < bs; i++) {
                size_t k = perm[s0 + i];
                memcpy(ba + i * IN, d->a + k * IN, IN * sizeof(float));
                memcpy(bb + i * IN, d->b + k * IN, IN * sizeof(float));
                ma[i] = d->mask_a[k];
                mb[i] = d->mask_b[k];
            }
            double l = 0.0;
            st = dc_fusion_trainer_step(tr, ba, ma, bb, mb, bs, &l);
            if (st != DC_OK) break;
            sum += l;
            batches++;
            step++;
            if (t->progress) t->progress(t->ctx, ep, step, l, tr->last[1]);
        }
        last_epoch_loss = batches ? sum / (double)batches : 0.0;
    }
    if (st == DC_OK) st = dc_fusion_trainer_weights(tr, out);
    if (st == DC_OK) { /* the metrics travel with the weights into their checkpoint */
        dc_fusion_metrics mt = {.present = true, .epoch = t->epochs, .loss = last_epoch_loss,
                                .validation_loss = last_epoch_loss, .learning_rate = t->lr,
                                .recall_at_1 = -1.0};
        (*out)->info.metrics = mt;
        if (metrics) *metrics = mt;
    }
done:
    free(perm);
    free(ba);
    free(bb);
    free(ma);
    free(mb);
    dc_fusion_trainer_destroy(tr);
    return st;
}
