/* test_model_grad.c — the translation model (model/): every layer's backward
 * against central finite differences of a DOUBLE-precision forward written
 * here, then the whole model's loss gradient the same way, plus the
 * properties the trainer relies on (thread-count independence of the masks,
 * determinism, incremental decoding == the training forward).
 *
 * Finite differences: h = MFD_H = 1e-6 on a double forward, so the FD error
 * is ~ h^2 |f'''| + 1e-16 |f| / h < 1e-9 of the O(1) gradients used here; the
 * float backward's own rounding is ~1e-6 relative per layer.  Bounds are
 * |g_float - g_fd| <= rtol * (|g_fd| + max|g_fd| over the tensor):
 *   LAYER_RTOL 1e-5 for one layer (measured worst 8e-7 of the scale over
 *   the scalar, AVX2 and AVX-512 kernels),
 *   MODEL_RTOL 1e-4 for the whole model (float errors compound over ~20
 *   layers; measured worst 5e-6 of the scale).  Tensors whose gradient is
 *   legitimately ~0 (the GPN in the dense / all-fine modes) are compared
 *   against 1e-2 of the model's largest gradient instead of their own.
 * A formula bug (missing term, wrong sign/index, wrong mask) moves a
 * component by a sizeable fraction of the scale and fails both.
 *
 * GPN cross-attention: the mask is discrete, so the double forward uses
 * the straight-through surrogate of docs/SPEC.md §4: the hard keep of key i is
 * replaced by  keep_i + sum_l (pi_l - pi0_l) kappa_il  (pi0 = the GPN
 * probabilities at the unperturbed point, kappa_il = [s_i - m >= theta_l]),
 * whose value equals the hard forward and whose derivative in pi is the
 * STE gradient; plus reg * sum pi_l kappa_il (the expected-density
 * regulariser).  Hence the FD check covers the GPN parameters, the memory
 * and the decoder state through the GPN too.  Levels are frozen (taken from
 * the float forward for one layer; forced with gm_debug_force_levels for the
 * whole model) — the only part not checkable by FD is the argmax itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model.h"
#include "util.h"

#define MFD_H 1e-6
#define LAYER_RTOL 1e-5
#define MODEL_RTOL 1e-4

/* ------------------------------------------------------------ helpers */

static double *dcopy(const float *x, size_t n)
{
    double *y = malloc(sizeof(double) * (n + 1));
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

static float *frand(trng *r, size_t n, double lo, double hi)
{
    float *x = malloc(sizeof(float) * (n + 1));
    fill_unif(r, x, n, lo, hi);
    return x;
}

static float *fzeros(size_t n) { return calloc(n + 1, sizeof(float)); }

typedef double (*lossf)(void *ctx);

/* FD of f w.r.t. x[0..n) (perturbing the double array that f reads) vs the
 * float gradient g: |g - fd| <= rtol * (|fd| + max(max|fd|, floor)).
 * floor: the gradient scale of the surrounding computation, for tensors
 * whose own gradient is (legitimately) ~0 and so is only float noise.
 * expect_nonzero: fail if the FD gradient is all ~0 (a vacuous check). */
static void fd_check2(tcheck *c, const char *what, double *x, size_t n, const float *g,
                      lossf f, void *ctx, double rtol, int expect_nonzero, double floor)
{
    double *fd = malloc(sizeof(double) * (n + 1));
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + MFD_H;
        double lp = f(ctx);
        x[i] = x0 - MFD_H;
        double lm = f(ctx);
        x[i] = x0;
        fd[i] = (lp - lm) / (2.0 * MFD_H);
        if (fabs(fd[i]) > scale)
            scale = fabs(fd[i]);
    }
    if (expect_nonzero)
        tc_true(c, scale > 1e-7, "%s: FD gradient is all zero (vacuous check)", what);
    tc_close_d(c, what, g, fd, (int)n, rtol, scale > floor ? scale : floor);
    free(fd);
}

static void fd_check(tcheck *c, const char *what, double *x, size_t n, const float *g,
                     lossf f, void *ctx, double rtol, int expect_nonzero)
{
    fd_check2(c, what, x, n, g, f, ctx, rtol, expect_nonzero, 0.0);
}

static double dot_d(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* --------------------------------------------------- double references */

static void d_layernorm(double *out, const double *in, const double *w, const double *b,
                        int R, int C)
{
    for (int r = 0; r < R; r++) {
        const double *x = in + (size_t)r * C;
        double mu = 0.0, var = 0.0;
        for (int c = 0; c < C; c++)
            mu += x[c];
        mu /= C;
        for (int c = 0; c < C; c++)
            var += (x[c] - mu) * (x[c] - mu);
        var /= C;
        double rs = 1.0 / sqrt(var + 1e-5);
        for (int c = 0; c < C; c++)
            out[(size_t)r * C + c] = (x[c] - mu) * rs * w[c] + b[c];
    }
}

static void d_linear(double *out, const double *in, const double *W, const double *b, int R,
                     int IN, int OUT)
{
    for (int r = 0; r < R; r++)
        for (int o = 0; o < OUT; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IN; i++)
                s += in[(size_t)r * IN + i] * W[(size_t)o * IN + i];
            out[(size_t)r * OUT + o] = s;
        }
}

static double d_act(double x, gm_act a)
{
    if (a == GM_ACT_RELU)
        return x > 0 ? x : 0;
    double k = sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

/* qkv [T][3d] -> out [T][d] */
static void d_mha(double *out, const double *qkv, int T, int d, int H, int causal)
{
    int dh = d / H;
    double *s = malloc(sizeof(double) * (size_t)(T + 1));
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            int n = causal ? t + 1 : T;
            double m = -INFINITY, Z = 0.0;
            for (int i = 0; i < n; i++) {
                double acc = 0.0;
                for (int j = 0; j < dh; j++)
                    acc += qkv[(size_t)t * 3 * d + h * dh + j] * qkv[(size_t)i * 3 * d + d + h * dh + j];
                s[i] = acc / sqrt((double)dh);
                m = s[i] > m ? s[i] : m;
            }
            for (int i = 0; i < n; i++) {
                s[i] = exp(s[i] - m);
                Z += s[i];
            }
            for (int j = 0; j < dh; j++) {
                double acc = 0.0;
                for (int i = 0; i < n; i++)
                    acc += s[i] / Z * qkv[(size_t)i * 3 * d + 2 * d + h * dh + j];
                out[(size_t)t * d + h * dh + j] = acc;
            }
        }
    free(s);
}

typedef struct dxc {
    int d, H, g, L;
    ga_norm mode;
    int dense;
    float theta8[GA_MAX_LEVELS];
    int random;  /* random-level baseline: lev given, no GPN, no surrogate/regulariser */
    /* top-k baseline (topk_k > 0 or topk_frac > 0): no GPN, no levels; the
     * kept sets keep [T][H][N] are chosen here from the double scores
     * (k largest, ties to the lower index) when choose_keep, else read
     * (frozen, like the levels) */
    int topk_k;
    float topk_frac;
    uint8_t *keep;
    int choose_keep;
} dxc;

static int dxc_topk(const dxc *c) { return !c->dense && (c->topk_k > 0 || c->topk_frac > 0); }

/* The top-k keep mask of one row of double scores s [N] (naive: rank by
 * sorting, independent of model/topk.c): keep the k largest, ties to the
 * lower index; k from the row's N keys as gm_topk_count documents it. */
static void d_topk_keep(const double *s, int N, int topk_k, float topk_frac, uint8_t *keep)
{
    int k = topk_k > 0 ? topk_k : (int)lround((double)topk_frac * N);
    k = k < 1 ? 1 : (k > N ? N : k);
    for (int i = 0; i < N; i++) {
        /* rank of i: keys strictly larger, or equal with a lower index */
        int rank = 0;
        for (int j = 0; j < N; j++)
            rank += s[j] > s[i] || (s[j] == s[i] && j < i);
        keep[i] = rank < k;
    }
}

/* GPN cross-attention in double with the STE surrogate (see the top).
 * lev [T][N]: used as given, or chosen (argmax of double z) when choose;
 * pi0 [T][L][N]: stored when store, else read.  *expd += sum pi kappa.
 * c->random: the hard keep of the given levels only (GPN unused). */
static void d_xattn(const dxc *c, int T, int N, double *out, const double *q, const double *kv,
                    const double *x, const double *mem, const double *U, const double *b1,
                    const double *W, const double *W2, const double *b2, uint8_t *lev,
                    int choose, double *pi0, int store, double *expd)
{
    int d = c->d, H = c->H, dh = d / H, g = c->g, L = c->L;
    double *s = malloc(sizeof(double) * (size_t)(N + 1));
    double *pi = malloc(sizeof(double) * (size_t)(T * L * N + 1));
    double *P = malloc(sizeof(double) * (size_t)(g * N + 1));
    const int topk = dxc_topk(c);
    if (!c->dense && !c->random && !topk) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < g; j++) {
                double acc = b1[j];
                for (int k = 0; k < d; k++)
                    acc += U[(size_t)j * d + k] * mem[(size_t)i * d + k];
                P[(size_t)j * N + i] = acc;
            }
        for (int t = 0; t < T; t++) {
            double r[64];
            for (int j = 0; j < g; j++) {
                double acc = 0.0;
                for (int k = 0; k < d; k++)
                    acc += W[(size_t)j * d + k] * x[(size_t)t * d + k];
                r[j] = acc;
            }
            for (int i = 0; i < N; i++) {
                double z[GA_MAX_LEVELS], zm = -INFINITY, Z = 0.0;
                int best = 0;
                for (int l = 0; l < L; l++) {
                    double acc = b2[l];
                    for (int j = 0; j < g; j++) {
                        double u = P[(size_t)j * N + i] + r[j];
                        acc += W2[(size_t)l * g + j] * (u > 0 ? u : 0);
                    }
                    z[l] = acc;
                    if (acc > zm) {
                        zm = acc;
                        best = l;
                    }
                }
                for (int l = 0; l < L; l++)
                    Z += exp(z[l] - zm);
                for (int l = 0; l < L; l++)
                    pi[((size_t)t * L + l) * N + i] = exp(z[l] - zm) / Z;
                if (choose)
                    lev[(size_t)t * N + i] = (uint8_t)best;
            }
        }
        if (store)
            memcpy(pi0, pi, sizeof(double) * (size_t)T * L * N);
    }
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            double m = -INFINITY;
            for (int i = 0; i < N; i++) {
                double acc = 0.0;
                for (int j = 0; j < dh; j++)
                    acc += q[(size_t)t * d + h * dh + j] * kv[(size_t)i * 2 * d + h * dh + j];
                s[i] = acc / sqrt((double)dh);
                m = s[i] > m ? s[i] : m;
            }
            uint8_t *keep = topk ? c->keep + ((size_t)t * H + h) * N : NULL;
            if (topk && c->choose_keep)
                d_topk_keep(s, N, c->topk_k, c->topk_frac, keep);
            double Z = 0.0, *o = out + (size_t)t * d + h * dh;
            for (int j = 0; j < dh; j++)
                o[j] = 0.0;
            for (int pass = 0; pass < 2; pass++) /* pass 0: Z; pass 1: context */
                for (int i = 0; i < N; i++) {
                    double p = exp(s[i] - m), k = 1.0;
                    if (topk) {
                        k = keep[i];
                    } else if (!c->dense) {
                        int hard = s[i] - m >= (double)c->theta8[lev[(size_t)t * N + i]];
                        k = hard;
                        for (int l = 0; l < L && !c->random; l++)
                            if (s[i] - m >= (double)c->theta8[l]) {
                                size_t pl = ((size_t)t * L + l) * N + i;
                                k += pi[pl] - pi0[pl];
                                if (pass == 0)
                                    *expd += pi[pl];
                            }
                    }
                    double wz = (c->dense || c->mode == GA_NORM_SEED) ? 1.0 : k;
                    if (pass == 0)
                        Z += wz * p;
                    else
                        for (int j = 0; j < dh; j++)
                            o[j] += k * p / Z * kv[(size_t)i * 2 * d + d + h * dh + j];
                }
        }
    free(s);
    free(pi);
    free(P);
}

/* sum over rows of the label-smoothed CE of x E^T (y == 0 ignored) */
static double d_ce(const double *x, const int32_t *y, int R, int d, const double *E, int V,
                   double eps)
{
    double total = 0.0;
    double *l = malloc(sizeof(double) * (size_t)V);
    for (int r = 0; r < R; r++) {
        if (y[r] == GM_PAD)
            continue;
        double m = -INFINITY, Z = 0.0, sum = 0.0;
        for (int v = 0; v < V; v++) {
            l[v] = dot_d(x + (size_t)r * d, E + (size_t)v * d, (size_t)d);
            m = l[v] > m ? l[v] : m;
            sum += l[v];
        }
        for (int v = 0; v < V; v++)
            Z += exp(l[v] - m);
        double lse = m + log(Z);
        total += (1.0 - eps) * (lse - l[y[r]]) + eps * (lse - sum / V);
    }
    free(l);
    return total;
}

/* ================================================= per-layer FD tests */

typedef struct ln_ctx {
    int R, C;
    double *x, *w, *b, *G, *out;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    d_layernorm(c->out, c->x, c->w, c->b, c->R, c->C);
    return dot_d(c->out, c->G, (size_t)c->R * c->C);
}

Test(model_grad, layernorm, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.layernorm");
    trng r;
    rng_init(&r, 1001);
    int R = 3, C = 7;
    size_t n = (size_t)R * C;
    float *x = frand(&r, n, -2, 2), *w = frand(&r, C, 0.5, 1.5), *b = frand(&r, C, -1, 1);
    float *G = frand(&r, n, -1, 1), *out = fzeros(n), *mean = fzeros(R), *rstd = fzeros(R);
    gm_layernorm_forward(out, mean, rstd, x, w, b, R, C);
    ln_ctx ctx = {R, C, dcopy(x, n), dcopy(w, C), dcopy(b, C), dcopy(G, n), malloc(sizeof(double) * n)};
    d_layernorm(ctx.out, ctx.x, ctx.w, ctx.b, R, C);
    tc_close_d(&c, "forward", out, ctx.out, (int)n, 1e-5, 1.0);
    /* accumulating outputs start from 0.25: subtract it after */
    float *dx = frand(&r, n, 0.25, 0.25), *dw = fzeros(C), *db = fzeros(C);
    gm_layernorm_backward(dx, dw, db, G, x, w, mean, rstd, R, C);
    for (size_t i = 0; i < n; i++)
        dx[i] -= 0.25f;
    fd_check(&c, "dx", ctx.x, n, dx, ln_loss, &ctx, LAYER_RTOL, 1);
    fd_check(&c, "dw", ctx.w, C, dw, ln_loss, &ctx, LAYER_RTOL, 1);
    fd_check(&c, "db", ctx.b, C, db, ln_loss, &ctx, LAYER_RTOL, 1);
    free(x); free(w); free(b); free(G); free(out); free(mean); free(rstd);
    free(dx); free(dw); free(db);
    free(ctx.x); free(ctx.w); free(ctx.b); free(ctx.G); free(ctx.out);
    tc_finish(&c);
}

typedef struct lin_ctx {
    int R, IN, OUT;
    double *x, *W, *b, *G, *out;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    d_linear(c->out, c->x, c->W, c->b, c->R, c->IN, c->OUT);
    return dot_d(c->out, c->G, (size_t)c->R * c->OUT);
}

Test(model_grad, linear, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "model_grad.linear");
    tc_init(&c, "model_grad.linear");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        trng r;
        rng_init(&r, 1002);
        int R = 4, IN = 5, OUT = 6;
        float *x = frand(&r, (size_t)R * IN, -1, 1), *W = frand(&r, (size_t)OUT * IN, -1, 1);
        float *b = frand(&r, OUT, -1, 1), *G = frand(&r, (size_t)R * OUT, -1, 1);
        float *out = fzeros((size_t)R * OUT);
        gm_linear_forward(kt, out, x, W, b, R, IN, OUT);
        lin_ctx ctx = {R, IN, OUT, dcopy(x, (size_t)R * IN), dcopy(W, (size_t)OUT * IN),
                       dcopy(b, OUT), dcopy(G, (size_t)R * OUT),
                       malloc(sizeof(double) * (size_t)R * OUT)};
        d_linear(ctx.out, ctx.x, ctx.W, ctx.b, R, IN, OUT);
        tc_close_d(&c, "forward", out, ctx.out, R * OUT, 1e-5, 1.0);
        float *dx = fzeros((size_t)R * IN), *dW = fzeros((size_t)OUT * IN), *db = fzeros(OUT);
        gm_linear_backward(kt, dx, dW, db, G, x, W, R, IN, OUT);
        fd_check(&c, "dx", ctx.x, (size_t)R * IN, dx, lin_loss, &ctx, LAYER_RTOL, 1);
        fd_check(&c, "dW", ctx.W, (size_t)OUT * IN, dW, lin_loss, &ctx, LAYER_RTOL, 1);
        fd_check(&c, "db", ctx.b, OUT, db, lin_loss, &ctx, LAYER_RTOL, 1);
        free(x); free(W); free(b); free(G); free(out); free(dx); free(dW); free(db);
        free(ctx.x); free(ctx.W); free(ctx.b); free(ctx.G); free(ctx.out);
    }
    tc_finish(&c);
}

typedef struct act_ctx {
    int n;
    gm_act a;
    double *x, *G;
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    double s = 0.0;
    for (int i = 0; i < c->n; i++)
        s += d_act(c->x[i], c->a) * c->G[i];
    return s;
}

Test(model_grad, activation, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.activation");
    trng r;
    rng_init(&r, 1003);
    int n = 40;
    for (int a = 0; a < 2; a++) {
        tc_case(&c, "act=%s", a ? "gelu" : "relu");
        float *x = frand(&r, n, -3, 3), *G = frand(&r, n, -1, 1), *out = fzeros(n), *dx = fzeros(n);
        gm_act_forward(out, x, (size_t)n, (gm_act)a);
        act_ctx ctx = {n, (gm_act)a, dcopy(x, n), dcopy(G, n)};
        double *ref = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++)
            ref[i] = d_act(ctx.x[i], (gm_act)a);
        tc_close_d(&c, "forward", out, ref, n, 1e-5, 1.0);
        gm_act_backward(dx, G, x, (size_t)n, (gm_act)a);
        fd_check(&c, "dx", ctx.x, n, dx, act_loss, &ctx, LAYER_RTOL, 1);
        free(x); free(G); free(out); free(dx); free(ctx.x); free(ctx.G); free(ref);
    }
    tc_finish(&c);
}

typedef struct emb_ctx {
    int R, d;
    const int32_t *tok;
    double *E, *G;
    float scale;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    double s = 0.0;
    for (int r = 0; r < c->R; r++)
        for (int j = 0; j < c->d; j++)
            s += c->scale * c->E[(size_t)c->tok[r] * c->d + j] * c->G[(size_t)r * c->d + j];
    return s;
}

Test(model_grad, embedding, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.embedding");
    trng r;
    rng_init(&r, 1004);
    int R = 6, V = 5, d = 4, maxlen = 8;
    int32_t tok[6] = {3, 1, 3, 0, 4, 3}, pos[6] = {0, 1, 2, 3, 0, 1};
    float *E = frand(&r, (size_t)V * d, -1, 1), *G = frand(&r, (size_t)R * d, -1, 1);
    float *pe = fzeros((size_t)maxlen * d), *out = fzeros((size_t)R * d), *dE = fzeros((size_t)V * d);
    gm_posenc_table(pe, maxlen, d);
    tc_true(&c, fabsf(pe[1 * d + 0] - sinf(1.0f)) < 1e-6f && fabsf(pe[1 * d + 1] - cosf(1.0f)) < 1e-6f,
            "posenc table");
    gm_embed_forward(out, tok, pos, R, d, E, 2.0f, pe);
    double ref[24];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < d; j++)
            ref[i * d + j] = 2.0 * E[tok[i] * d + j] + pe[pos[i] * d + j];
    tc_close_d(&c, "forward", out, ref, R * d, 1e-6, 1.0);
    gm_embed_backward(dE, G, tok, R, d, 2.0f);
    emb_ctx ctx = {R, d, tok, dcopy(E, (size_t)V * d), dcopy(G, (size_t)R * d), 2.0f};
    fd_check(&c, "dE", ctx.E, (size_t)V * d, dE, emb_loss, &ctx, LAYER_RTOL, 1);
    free(E); free(G); free(pe); free(out); free(dE); free(ctx.E); free(ctx.G);
    tc_finish(&c);
}

Test(model_grad, dropout, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.dropout");
    int R = 50, C = 40;
    size_t n = (size_t)R * C;
    float p = 0.3f;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = y[i] = g[i] = 1.0f + (float)(i % 7);
    gm_dropout(x, R, C, p, 42, 7, 100);
    /* the same rows split in two calls (row0 offsets): identical masks */
    gm_dropout(y, 20, C, p, 42, 7, 100);
    gm_dropout(y + (size_t)20 * C, R - 20, C, p, 42, 7, 120);
    tc_bits(&c, "split rows == one call", x, y, sizeof(float) * n);
    /* backward = the same call on the gradient: the same mask and scale */
    gm_dropout(g, R, C, p, 42, 7, 100);
    long dropped = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        float orig = 1.0f + (float)(i % 7);
        dropped += x[i] == 0.0f;
        /* scale 1 / (1 - p'), p' = p rounded to 2^-16: within 2e-5 of 1 / (1 - p) */
        if (x[i] != g[i] || (x[i] != 0.0f && fabsf(x[i] - orig / (1.0f - p)) > 2e-5f * orig))
            bad++;
    }
    tc_true(&c, bad == 0, "%ld elements differ between forward and backward masks", bad);
    double frac = (double)dropped / (double)n;
    tc_true(&c, fabs(frac - p) < 0.04, "dropped fraction %.3f, expected %.2f", frac, p);
    /* another stream gives another mask */
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f + (float)(i % 7);
    gm_dropout(y, R, C, p, 42, 8, 100);
    tc_true(&c, memcmp(x, y, sizeof(float) * n) != 0, "streams 7 and 8 give the same mask");
    free(x); free(y); free(g);
    tc_finish(&c);
}

typedef struct mha_ctx {
    int T, d, H, causal;
    double *qkv, *G, *out;
} mha_ctx;

static double mha_loss(void *p)
{
    mha_ctx *c = p;
    d_mha(c->out, c->qkv, c->T, c->d, c->H, c->causal);
    return dot_d(c->out, c->G, (size_t)c->T * c->d);
}

Test(model_grad, self_attention, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "model_grad.self_attention");
    tc_init(&c, "model_grad.self_attention");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (int causal = 0; causal < 2; causal++) {
            tc_case(&c, "causal=%d", causal);
            trng r;
            rng_init(&r, 1005 + causal);
            int T = 5, d = 8, H = 2;
            size_t nq = (size_t)T * 3 * d, no = (size_t)T * d;
            float *qkv = frand(&r, nq, -1.5, 1.5), *G = frand(&r, no, -1, 1);
            float *out = fzeros(no), *att = fzeros((size_t)H * T * T);
            float *scr = fzeros((size_t)2 * T * T), *dqkv = frand(&r, nq, 5, 5);
            gm_mha_forward(kt, out, att, scr, qkv, T, d, H, causal);
            mha_ctx ctx = {T, d, H, causal, dcopy(qkv, nq), dcopy(G, no), malloc(sizeof(double) * no)};
            d_mha(ctx.out, ctx.qkv, T, d, H, causal);
            tc_close_d(&c, "forward", out, ctx.out, (int)no, 1e-5, 1.0);
            gm_mha_backward(kt, dqkv, scr, G, qkv, att, T, d, H, causal); /* overwrites */
            fd_check(&c, "dqkv", ctx.qkv, nq, dqkv, mha_loss, &ctx, LAYER_RTOL, 1);
            free(qkv); free(G); free(out); free(att); free(scr); free(dqkv);
            free(ctx.qkv); free(ctx.G); free(ctx.out);
        }
    }
    tc_finish(&c);
}

/* ----------------------------------------------- GPN cross-attention */

typedef struct xa_ctx {
    dxc c;
    int T, N;
    double *q, *kv, *x, *mem, *U, *b1, *W, *W2, *b2, *G, *out, *pi0;
    uint8_t *lev;
    double reg;
} xa_ctx;

static double xa_loss(void *p)
{
    xa_ctx *c = p;
    double expd = 0.0;
    d_xattn(&c->c, c->T, c->N, c->out, c->q, c->kv, c->x, c->mem, c->U, c->b1, c->W, c->W2,
            c->b2, c->lev, 0, c->pi0, 0, &expd);
    return dot_d(c->out, c->G, (size_t)c->T * c->c.d) + c->reg * expd;
}

static void xattn_case(tcheck *tc, const ga_kernels *kt, int dense, ga_norm mode, int L,
                       int gumbel, float reg, uint64_t seed)
{
    trng r;
    rng_init(&r, seed);
    int T = 4, N = 7, d = 8, H = 2, g = 3;
    gm_xattn_cfg xc;
    memset(&xc, 0, sizeof xc);
    xc.d = d;
    xc.H = H;
    xc.g = g;
    xc.L = L;
    xc.mode = mode;
    xc.dense = dense;
    ga_config acfg;
    test_theta(L, xc.theta8, &acfg);
    xc.gumbel = gumbel;
    xc.gumbel_temp = 1.0f;
    xc.seed = 99;
    xc.stream = 3;
    xc.row0 = 5;
    float *q = frand(&r, (size_t)T * d, -2, 2), *kv = frand(&r, (size_t)N * 2 * d, -2, 2);
    float *x = frand(&r, (size_t)T * d, -1, 1), *mem = frand(&r, (size_t)N * d, -1, 1);
    float *U = frand(&r, (size_t)g * d, -1, 1), *b1 = frand(&r, g, -0.3, 0.3);
    float *W = frand(&r, (size_t)g * d, -1, 1), *W2 = frand(&r, (size_t)L * g, -2, 2);
    float *b2 = frand(&r, L, -0.5, 0.5), *G = frand(&r, (size_t)T * d, -1, 1);
    gm_gpn_params gp = {U, b1, W, W2, b2};
    float *sbuf = fzeros(gm_xattn_saved_words(&xc, T, N));
    float *scr = fzeros(gm_xattn_scratch_words(&xc, T, N));
    gm_xattn_saved sv;
    gm_xattn_saved_carve(&sv, &xc, T, N, sbuf);
    float *out = fzeros((size_t)T * d);
    gm_stats st;
    gm_stats_zero(&st);
    gm_xattn_forward(kt, &xc, T, N, out, q, kv, x, mem, &gp, &sv, &st);

    xa_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c.d = d;
    ctx.c.H = H;
    ctx.c.g = g;
    ctx.c.L = L;
    ctx.c.mode = mode;
    ctx.c.dense = dense;
    ctx.c.random = 0;
    memcpy(ctx.c.theta8, xc.theta8, sizeof xc.theta8);
    ctx.T = T;
    ctx.N = N;
    ctx.q = dcopy(q, (size_t)T * d);
    ctx.kv = dcopy(kv, (size_t)N * 2 * d);
    ctx.x = dcopy(x, (size_t)T * d);
    ctx.mem = dcopy(mem, (size_t)N * d);
    ctx.U = dcopy(U, (size_t)g * d);
    ctx.b1 = dcopy(b1, g);
    ctx.W = dcopy(W, (size_t)g * d);
    ctx.W2 = dcopy(W2, (size_t)L * g);
    ctx.b2 = dcopy(b2, L);
    ctx.G = dcopy(G, (size_t)T * d);
    ctx.out = malloc(sizeof(double) * (size_t)T * d);
    ctx.pi0 = malloc(sizeof(double) * (size_t)(T * L * N + 1));
    ctx.lev = malloc((size_t)T * N);
    ctx.reg = dense ? 0.0 : reg;
    /* levels: exactly those of the float forward (argmax or Gumbel) */
    memcpy(ctx.lev, sv.lev, (size_t)T * N);
    if (!dense && !gumbel) {
        /* the float argmax agrees with the double one on these inputs */
        uint8_t *dl = malloc((size_t)T * N);
        double e = 0.0;
        d_xattn(&ctx.c, T, N, ctx.out, ctx.q, ctx.kv, ctx.x, ctx.mem, ctx.U, ctx.b1, ctx.W,
                ctx.W2, ctx.b2, dl, 1, ctx.pi0, 1, &e);
        tc_eq_u8(tc, "levels (float vs double argmax)", sv.lev, dl, T * N);
        free(dl);
    }
    double expd = 0.0;
    d_xattn(&ctx.c, T, N, ctx.out, ctx.q, ctx.kv, ctx.x, ctx.mem, ctx.U, ctx.b1, ctx.W, ctx.W2,
            ctx.b2, ctx.lev, 0, ctx.pi0, 1, &expd);
    tc_close_d(tc, "forward", out, ctx.out, T * d, 1e-5, 1.0);
    if (!dense) {
        /* the test must exercise the mask: some keys dropped, several levels */
        double dens = st.density_sum / (double)st.density_count;
        int used = 0;
        for (int l = 0; l < L; l++)
            used += st.level_count[l] > 0;
        tc_true(tc, dens < 0.95 && (L == 1 || used >= 2),
                "vacuous case: density %.3f, %d levels used", dens, used);
        tc_true(tc, fabs(st.exp_density_sum - expd) < 1e-4 * (1 + expd),
                "expected density %.9g vs double %.9g", st.exp_density_sum, expd);
    }

    float *dq = frand(&r, (size_t)T * d, 9, 9), *dkv = frand(&r, (size_t)N * 2 * d, 9, 9);
    float *dx = fzeros((size_t)T * d), *dmem = fzeros((size_t)N * d);
    float *dU = fzeros((size_t)g * d), *db1 = fzeros(g), *dW = fzeros((size_t)g * d);
    float *dW2 = fzeros((size_t)L * g), *db2 = fzeros(L);
    gm_gpn_grads gg = {dU, db1, dW, dW2, db2};
    gm_xattn_backward(kt, &xc, T, N, dq, dkv, dx, dmem, G, out, q, x, mem, &gp, &gg, &sv,
                      dense ? 0.0f : reg, scr);
    fd_check(tc, "dq", ctx.q, (size_t)T * d, dq, xa_loss, &ctx, LAYER_RTOL, 1);
    fd_check(tc, "dkv", ctx.kv, (size_t)N * 2 * d, dkv, xa_loss, &ctx, LAYER_RTOL, 1);
    if (!dense) {
        int nz = L > 1; /* L == 1: pi == 1, no GPN gradient at all */
        fd_check(tc, "dx (GPN query)", ctx.x, (size_t)T * d, dx, xa_loss, &ctx, LAYER_RTOL, nz);
        fd_check(tc, "dmem (GPN keys)", ctx.mem, (size_t)N * d, dmem, xa_loss, &ctx, LAYER_RTOL, nz);
        fd_check(tc, "dU", ctx.U, (size_t)g * d, dU, xa_loss, &ctx, LAYER_RTOL, nz);
        fd_check(tc, "db1", ctx.b1, g, db1, xa_loss, &ctx, LAYER_RTOL, 0);
        fd_check(tc, "dW", ctx.W, (size_t)g * d, dW, xa_loss, &ctx, LAYER_RTOL, nz);
        fd_check(tc, "dW2", ctx.W2, (size_t)L * g, dW2, xa_loss, &ctx, LAYER_RTOL, nz);
        fd_check(tc, "db2", ctx.b2, L, db2, xa_loss, &ctx, LAYER_RTOL, nz);
    }
    free(q); free(kv); free(x); free(mem); free(U); free(b1); free(W); free(W2); free(b2);
    free(G); free(sbuf); free(scr); free(out); free(dq); free(dkv); free(dx); free(dmem);
    free(dU); free(db1); free(dW); free(dW2); free(db2);
    free(ctx.q); free(ctx.kv); free(ctx.x); free(ctx.mem); free(ctx.U); free(ctx.b1);
    free(ctx.W); free(ctx.W2); free(ctx.b2); free(ctx.G); free(ctx.out); free(ctx.pi0);
    free(ctx.lev);
}

Test(model_grad, gpn_cross_attention, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "model_grad.gpn_cross_attention");
    tc_init(&c, "model_grad.gpn_cross_attention");
    for (int vi = 0; vi < v.n; vi++) {
        c.isa = v.k[vi]->name;
        tc_case(&c, "dense");
        xattn_case(&c, v.k[vi], 1, GA_NORM_SEED, 3, 0, 0.0f, 2001);
        for (int mode = 0; mode < 2; mode++)
            for (int L = 1; L <= 3; L++) {
                tc_case(&c, "mode=%s L=%d", mode ? "renorm" : "seed", L);
                xattn_case(&c, v.k[vi], 0, (ga_norm)mode, L, 0, 0.05f, 2102 + 10 * mode + L);
            }
        tc_case(&c, "seed L=3 gumbel");
        xattn_case(&c, v.k[vi], 0, GA_NORM_SEED, 3, 1, 0.05f, 2031);
        tc_case(&c, "renorm L=3 gumbel, no regulariser");
        xattn_case(&c, v.k[vi], 0, GA_NORM_RENORM, 3, 1, 0.0f, 2032);
    }
    tc_finish(&c);
}

/* ----------------------------------------------- top-k baseline rows */

/* The kept set of a row of float scores by the naive rule (d_topk_keep on
 * the unpadded keys, k from their count), as a mask [N]. */
static int ref_topk_mask(const float *s, int N, int topk_k, float frac, uint8_t *mask)
{
    double *v = malloc(sizeof(double) * (size_t)(N + 1));
    int *at = malloc(sizeof(int) * (size_t)(N + 1));
    uint8_t *kv = malloc((size_t)N + 1);
    int n = 0, cnt = 0;
    for (int i = 0; i < N; i++) {
        mask[i] = 0;
        if (s[i] > -INFINITY) {
            v[n] = s[i];
            at[n++] = i;
        }
    }
    if (n > 0)
        d_topk_keep(v, n, topk_k, frac, kv);
    for (int j = 0; j < n; j++) {
        mask[at[j]] = kv[j];
        cnt += kv[j];
    }
    free(v);
    free(at);
    free(kv);
    return cnt;
}

/* One row through gm_topk_row against the naive rule: the kept indices
 * (exactly, in increasing order), p = exp(s - m) bitwise as documented
 * (float subtraction, exp in double), Z of the mode within 1e-6 of the
 * double sum of those p (the function sums in double and rounds once). */
static void topk_row_check(tcheck *tc, const float *s, int N, int k, float frac, ga_norm mode)
{
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(N + 1));
    float *p = malloc(sizeof(float) * (size_t)(N + 1)), *scr = malloc(sizeof(float) * (size_t)(N + 1));
    uint8_t *mask = malloc((size_t)N + 1);
    float m, Z;
    int cnt = gm_topk_row(s, N, k, frac, mode, &m, &Z, idx, p, scr);
    int rc = ref_topk_mask(s, N, k, frac, mask);
    tc_eq_long(tc, "kept count", cnt, rc);
    int j = 0, ok = 1;
    for (int i = 0; i < N && ok; i++)
        if (mask[i])
            ok = j < cnt && idx[j++] == i;
    tc_true(tc, ok && j == cnt, "kept indices differ from the naive rule (N %d, k %d, frac %g)", N,
            k, frac);
    float mx = -INFINITY;
    for (int i = 0; i < N; i++)
        mx = s[i] > mx ? s[i] : mx;
    tc_true(tc, m == mx || N == 0, "row max %g vs %g", m, mx);
    double zs = 0.0;
    int pok = 1;
    for (int i = 0, kk = 0; i < N; i++) {
        if (!(s[i] > -INFINITY))
            continue;
        float pi = (float)exp((double)(s[i] - mx));
        if (mask[i] && kk < cnt)
            pok &= p[kk++] == pi;
        if (mode == GA_NORM_SEED || mask[i])
            zs += pi;
    }
    tc_true(tc, pok, "p differs from exp(s - m)");
    tc_true(tc, fabs(Z - zs) <= 1e-6 * zs, "Z %.9g vs %.9g", Z, zs);
    free(idx);
    free(p);
    free(scr);
    free(mask);
}

Test(model_grad, topk_rows, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.topk_rows");
    trng r;
    rng_init(&r, 4242);
    /* k of a row: topk_k, or round(frac * n) half away from zero, in [1, n] */
    tc_eq_long(&c, "count(10, k 3)", gm_topk_count(10, 3, 0), 3);
    tc_eq_long(&c, "count(5, k 7)", gm_topk_count(5, 7, 0), 5);
    tc_eq_long(&c, "count(10, frac 0.25)", gm_topk_count(10, 0, 0.25f), 3);
    tc_eq_long(&c, "count(10, frac 0.2f)", gm_topk_count(10, 0, 0.2f), 2);
    tc_eq_long(&c, "count(3, frac 0.01)", gm_topk_count(3, 0, 0.01f), 1);
    tc_eq_long(&c, "count(7, frac 1)", gm_topk_count(7, 0, 1.0f), 7);
    tc_eq_long(&c, "count(0, k 3)", gm_topk_count(0, 3, 0), 0);
    static const int Ns[] = {1, 2, 3, 7, 16, 17, 33, 64, 257};
    static const int Ks[] = {1, 2, 5, 300};
    static const float Fs[] = {0.05f, 0.2f, 0.5f, 1.0f};
    float *s = malloc(sizeof(float) * 300);
    for (int mode = 0; mode < 2; mode++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
            for (int kind = 0; kind < 5; kind++)
                for (int ki = 0; ki < 8; ki++) {
                    int N = Ns[ni];
                    for (int i = 0; i < N; i++) {
                        double x = rng_range(&r, -4, 4);
                        /* 0 spread, 1 integers (many ties), 2 all equal,
                         * 3 spread with ~30 % padded, 4 ties + padding */
                        s[i] = kind == 1 || kind == 4 ? (float)floor(x) : kind == 2 ? 0.5f : (float)x;
                        if ((kind == 3 || kind == 4) && rng_range(&r, 0, 1) < 0.3)
                            s[i] = -INFINITY;
                    }
                    int k = ki < 4 ? Ks[ki] : 0;
                    float f = ki < 4 ? 0.0f : Fs[ki - 4];
                    tc_case(&c, "%s N %d kind %d k %d frac %g", mode ? "renorm" : "seed", N,
                            kind, k, f);
                    topk_row_check(&c, s, N, k, f, (ga_norm)mode);
                }
    /* ties at the k-th value go to the lower index */
    {
        int32_t idx[8];
        float p[8], scr[8], m, Z;
        const float t1[] = {1, 1, 1, 1};
        tc_case(&c, "ties: four equal, k 2");
        tc_eq_long(&c, "count", gm_topk_row(t1, 4, 2, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 2);
        tc_true(&c, idx[0] == 0 && idx[1] == 1, "kept %d %d, expected 0 1", idx[0], idx[1]);
        const float t2[] = {0, 2, 2, 1, 2};
        tc_case(&c, "ties: 0 2 2 1 2, k 2");
        tc_eq_long(&c, "count", gm_topk_row(t2, 5, 2, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 2);
        tc_true(&c, idx[0] == 1 && idx[1] == 2, "kept %d %d, expected 1 2", idx[0], idx[1]);
        const float t3[] = {3, 1, 2, 2, 0};
        tc_case(&c, "ties: 3 1 2 2 0, k 2");
        tc_eq_long(&c, "count", gm_topk_row(t3, 5, 2, 0, GA_NORM_RENORM, &m, &Z, idx, p, scr), 2);
        tc_true(&c, idx[0] == 0 && idx[1] == 2, "kept %d %d, expected 0 2", idx[0], idx[1]);
        /* padding is never kept and does not count for the fraction:
         * 4 unpadded keys, frac 0.5 -> k 2 */
        const float t4[] = {-INFINITY, 2, -INFINITY, 5, 1, -INFINITY, 3, -INFINITY};
        tc_case(&c, "padding: 4 of 8 keys, frac 0.5");
        tc_eq_long(&c, "count", gm_topk_row(t4, 8, 0, 0.5f, GA_NORM_SEED, &m, &Z, idx, p, scr), 2);
        tc_true(&c, idx[0] == 3 && idx[1] == 6, "kept %d %d, expected 3 6", idx[0], idx[1]);
        tc_case(&c, "padding: k larger than the unpadded keys");
        tc_eq_long(&c, "count", gm_topk_row(t4, 8, 6, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 4);
        /* special rows */
        const float pad[] = {-INFINITY, -INFINITY, -INFINITY};
        tc_case(&c, "all padded");
        tc_eq_long(&c, "count", gm_topk_row(pad, 3, 1, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 0);
        tc_true(&c, Z == 0.0f && m == -INFINITY, "Z %g m %g (expected 0, -inf)", Z, m);
        tc_case(&c, "N = 0");
        tc_eq_long(&c, "count", gm_topk_row(pad, 0, 1, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 0);
        tc_true(&c, Z == 0.0f, "Z %g", Z);
        const float nan_row[] = {1, NAN, 2};
        tc_case(&c, "NaN score");
        tc_eq_long(&c, "count", gm_topk_row(nan_row, 3, 1, 0, GA_NORM_SEED, &m, &Z, idx, p, scr), 0);
        tc_true(&c, Z != Z, "Z %g (expected NaN)", Z);
        const float inf_row[] = {1, INFINITY, 2};
        tc_case(&c, "+inf score");
        tc_eq_long(&c, "count", gm_topk_row(inf_row, 3, 1, 0, GA_NORM_RENORM, &m, &Z, idx, p, scr), 0);
        tc_true(&c, Z != Z, "Z %g (expected NaN)", Z);
    }
    /* backward: padded keys and renorm's dropped keys get exactly 0 even
     * with a NaN g; seed's dropped keys -a c.dc; special rows */
    {
        const float sb[] = {0.5f, -INFINITY, 2.0f, 1.0f};
        int32_t idx[4];
        float p[4], scr[4], m, Z, ds[4];
        const float g[] = {NAN, NAN, -0.7f, 0.3f};
        for (int mode = 0; mode < 2; mode++) {
            tc_case(&c, "backward %s: padding and dropped keys", mode ? "renorm" : "seed");
            int cnt = gm_topk_row(sb, 4, 2, 0, (ga_norm)mode, &m, &Z, idx, p, scr);
            tc_true(&c, cnt == 2 && idx[0] == 2 && idx[1] == 3, "kept set");
            /* key 0 is dropped and key 1 padded, both with a NaN g: no leak */
            gm_topk_row_backward(sb, 4, m, Z, (ga_norm)mode, idx, p, cnt, g, 0.25f, ds);
            tc_true(&c, ds[1] == 0.0f, "padded key ds %g", ds[1]);
            double a0 = exp(0.5 - 2.0) / Z;
            tc_true(&c, mode ? ds[0] == 0.0f : fabs(ds[0] + a0 * 0.25) < 1e-6,
                    "dropped key ds %g", ds[0]);
            double a3 = exp(1.0 - 2.0) / Z;
            tc_true(&c, fabs(ds[3] - a3 * (0.3 - 0.25)) < 1e-6, "kept key ds %g", ds[3]);
        }
        tc_case(&c, "backward special rows");
        gm_topk_row_backward(sb, 4, NAN, NAN, GA_NORM_SEED, idx, p, 0, g, 0.1f, ds);
        tc_true(&c, ds[0] != ds[0] && ds[3] != ds[3], "NaN row: ds must be NaN");
        gm_topk_row_backward(sb, 4, -INFINITY, 0.0f, GA_NORM_SEED, idx, p, 0, g, 0.1f, ds);
        tc_true(&c, ds[0] == 0.0f && ds[2] == 0.0f, "all-padded row: ds must be 0");
    }
    free(s);
    tc_finish(&c);
}

/* The top-k cross-attention layer (gm_xattn_forward / _backward with
 * topk set) against the double forward of d_xattn with the kept sets
 * chosen in double (they must equal the float ones), and its dq, dkv
 * against central differences with those sets frozen; the GPN gets
 * exactly zero gradient. */
static void topk_xattn_case(tcheck *tc, const ga_kernels *kt, ga_norm mode, int k, float frac,
                            uint64_t seed)
{
    trng r;
    rng_init(&r, seed);
    int T = 5, N = 9, d = 8, H = 2, g = 3, L = 3;
    gm_xattn_cfg xc;
    memset(&xc, 0, sizeof xc);
    xc.d = d;
    xc.H = H;
    xc.g = g;
    xc.L = L;
    xc.mode = mode;
    ga_config acfg;
    test_theta(L, xc.theta8, &acfg);
    xc.topk_k = k;
    xc.topk_frac = frac;
    float *q = frand(&r, (size_t)T * d, -2, 2), *kv = frand(&r, (size_t)N * 2 * d, -2, 2);
    float *x = frand(&r, (size_t)T * d, -1, 1), *mem = frand(&r, (size_t)N * d, -1, 1);
    float *U = frand(&r, (size_t)g * d, -1, 1), *b1 = frand(&r, g, -0.3, 0.3);
    float *W = frand(&r, (size_t)g * d, -1, 1), *W2 = frand(&r, (size_t)L * g, -2, 2);
    float *b2 = frand(&r, L, -0.5, 0.5), *G = frand(&r, (size_t)T * d, -1, 1);
    gm_gpn_params gp = {U, b1, W, W2, b2};
    float *sbuf = fzeros(gm_xattn_saved_words(&xc, T, N));
    float *scr = fzeros(gm_xattn_scratch_words(&xc, T, N));
    gm_xattn_saved sv;
    gm_xattn_saved_carve(&sv, &xc, T, N, sbuf);
    float *out = fzeros((size_t)T * d);
    gm_stats st;
    gm_stats_zero(&st);
    gm_xattn_forward(kt, &xc, T, N, out, q, kv, x, mem, &gp, &sv, &st);

    xa_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c.d = d;
    ctx.c.H = H;
    ctx.c.g = g;
    ctx.c.L = L;
    ctx.c.mode = mode;
    ctx.c.topk_k = k;
    ctx.c.topk_frac = frac;
    ctx.c.keep = calloc((size_t)T * H * N, 1);
    memcpy(ctx.c.theta8, xc.theta8, sizeof xc.theta8);
    ctx.T = T;
    ctx.N = N;
    ctx.q = dcopy(q, (size_t)T * d);
    ctx.kv = dcopy(kv, (size_t)N * 2 * d);
    ctx.x = dcopy(x, (size_t)T * d);
    ctx.mem = dcopy(mem, (size_t)N * d);
    ctx.U = dcopy(U, (size_t)g * d);
    ctx.b1 = dcopy(b1, g);
    ctx.W = dcopy(W, (size_t)g * d);
    ctx.W2 = dcopy(W2, (size_t)L * g);
    ctx.b2 = dcopy(b2, L);
    ctx.G = dcopy(G, (size_t)T * d);
    ctx.out = malloc(sizeof(double) * (size_t)T * d);
    ctx.pi0 = calloc((size_t)(T * L * N + 1), sizeof(double));
    ctx.lev = calloc((size_t)T * N, 1);
    ctx.reg = 0.0;
    /* the double forward chooses the kept sets; they must be the float ones */
    ctx.c.choose_keep = 1;
    double expd = 0.0;
    d_xattn(&ctx.c, T, N, ctx.out, ctx.q, ctx.kv, ctx.x, ctx.mem, ctx.U, ctx.b1, ctx.W, ctx.W2,
            ctx.b2, ctx.lev, 0, ctx.pi0, 0, &expd);
    ctx.c.choose_keep = 0;
    uint8_t *fk = calloc((size_t)T * H * N, 1);
    size_t np = (size_t)N + GA_KEEP_PAD;
    long kept = 0;
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            size_t ht = (size_t)h * T + t;
            for (int j = 0; j < sv.count[ht]; j++)
                fk[((size_t)t * H + h) * N + sv.idx[ht * np + j]] = 1;
            kept += sv.count[ht];
        }
    tc_eq_u8(tc, "kept sets (float vs double)", fk, ctx.c.keep, T * H * N);
    int kr = gm_topk_count(N, k, frac);
    tc_eq_long(tc, "kept keys", kept, (long)kr * H * T);
    tc_true(tc, kr < N, "vacuous case: k %d of %d keys", kr, N);
    tc_true(tc, fabs(st.density_sum / st.density_count - (double)kr / N) < 1e-12,
            "density %.6f, expected %d/%d", st.density_sum / st.density_count, kr, N);
    tc_close_d(tc, "forward", out, ctx.out, T * d, 1e-5, 1.0);

    float *dq = frand(&r, (size_t)T * d, 9, 9), *dkv = frand(&r, (size_t)N * 2 * d, 9, 9);
    float *dx = fzeros((size_t)T * d), *dmem = fzeros((size_t)N * d);
    float *dU = fzeros((size_t)g * d), *db1 = fzeros(g), *dW = fzeros((size_t)g * d);
    float *dW2 = fzeros((size_t)L * g), *db2 = fzeros(L);
    gm_gpn_grads gg = {dU, db1, dW, dW2, db2};
    gm_xattn_backward(kt, &xc, T, N, dq, dkv, dx, dmem, G, out, q, x, mem, &gp, &gg, &sv, 0.0f,
                      scr);
    fd_check(tc, "dq", ctx.q, (size_t)T * d, dq, xa_loss, &ctx, LAYER_RTOL, 1);
    fd_check(tc, "dkv", ctx.kv, (size_t)N * 2 * d, dkv, xa_loss, &ctx, LAYER_RTOL, 1);
    double gz = 0.0;
    for (int i = 0; i < T * d; i++)
        gz += fabs(dx[i]);
    for (int i = 0; i < N * d; i++)
        gz += fabs(dmem[i]);
    for (int i = 0; i < g * d; i++)
        gz += fabs(dU[i]) + fabs(dW[i]);
    for (int i = 0; i < L * g; i++)
        gz += fabs(dW2[i]);
    for (int i = 0; i < L; i++)
        gz += fabs(db2[i]);
    for (int i = 0; i < g; i++)
        gz += fabs(db1[i]);
    tc_true(tc, gz == 0.0, "top-k: the GPN and its inputs got gradient %.3g (must be 0)", gz);
    free(q); free(kv); free(x); free(mem); free(U); free(b1); free(W); free(W2); free(b2);
    free(G); free(sbuf); free(scr); free(out); free(dq); free(dkv); free(dx); free(dmem);
    free(dU); free(db1); free(dW); free(dW2); free(db2); free(fk);
    free(ctx.q); free(ctx.kv); free(ctx.x); free(ctx.mem); free(ctx.U); free(ctx.b1);
    free(ctx.W); free(ctx.W2); free(ctx.b2); free(ctx.G); free(ctx.out); free(ctx.pi0);
    free(ctx.lev); free(ctx.c.keep);
}

Test(model_grad, topk_cross_attention, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "model_grad.topk_cross_attention");
    tc_init(&c, "model_grad.topk_cross_attention");
    for (int vi = 0; vi < v.n; vi++) {
        c.isa = v.k[vi]->name;
        for (int mode = 0; mode < 2; mode++) {
            tc_case(&c, "%s k 3", mode ? "renorm" : "seed");
            topk_xattn_case(&c, v.k[vi], (ga_norm)mode, 3, 0.0f, 2201 + mode);
            tc_case(&c, "%s frac 0.5", mode ? "renorm" : "seed");
            topk_xattn_case(&c, v.k[vi], (ga_norm)mode, 0, 0.5f, 2211 + mode);
        }
    }
    tc_finish(&c);
}

typedef struct ce_ctx {
    int R, d, V;
    const int32_t *y;
    double *x, *E, eps, gs;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return c->gs * d_ce(c->x, c->y, c->R, c->d, c->E, c->V, c->eps);
}

Test(model_grad, output_cross_entropy, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "model_grad.output_cross_entropy");
    tc_init(&c, "model_grad.output_cross_entropy");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        trng r;
        rng_init(&r, 3001);
        int R = GM_CE_BLOCK + 3, d = 4, V = 9; /* two row blocks */
        int32_t *y = malloc(sizeof(int32_t) * R);
        for (int i = 0; i < R; i++)
            y[i] = i % 11 == 5 ? GM_PAD : rng_int(&r, V);
        float *x = frand(&r, (size_t)R * d, -2, 2), *E = frand(&r, (size_t)V * d, -1, 1);
        float *dx = fzeros((size_t)R * d), *dE = fzeros((size_t)V * d);
        float *logits = fzeros((size_t)(GM_CE_BLOCK + 1) * V);
        gm_stats st;
        gm_stats_zero(&st);
        float eps = 0.1f, gs = 0.37f;
        double loss = gm_output_ce(kt, x, y, R, d, E, V, eps, gs, dx, dE, logits, &st);
        ce_ctx ctx = {R, d, V, y, dcopy(x, (size_t)R * d), dcopy(E, (size_t)V * d), eps, gs};
        double ref = d_ce(ctx.x, y, R, d, ctx.E, V, eps);
        tc_true(&c, fabs(loss - ref) < 1e-5 * fabs(ref), "loss %.9g vs double %.9g", loss, ref);
        long tok = 0;
        for (int i = 0; i < R; i++)
            tok += y[i] != GM_PAD;
        tc_eq_long(&c, "tokens", st.tokens, tok);
        fd_check(&c, "dx", ctx.x, (size_t)R * d, dx, ce_loss, &ctx, LAYER_RTOL, 1);
        fd_check(&c, "dE", ctx.E, (size_t)V * d, dE, ce_loss, &ctx, LAYER_RTOL, 1);
        free(y); free(x); free(E); free(dx); free(dE); free(logits); free(ctx.x); free(ctx.E);
    }
    tc_finish(&c);
}

/* ============================================== the whole model (double) */

typedef struct dmodel {
    gm_config c;
    const gm_model *m;
    double *p;            /* parameters, same layout as gm_params */
    float theta8[GA_MAX_LEVELS];
    const gm_batch *b;
    uint8_t *lev;         /* [n_dec][pairs] */
    uint8_t *keep;        /* top-k: [n_dec][pairs][H] kept sets (each sentence [T][H][S]) */
    double *pi0;          /* [n_dec][sum T L S] */
    size_t pairs, piw;
    int base;             /* 1: choose levels and store pi0 */
    double *pe;           /* [max_len][d] */
} dmodel;

static const double *dpar(const dmodel *dm, const char *fmt, int l)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    int i = gm_find_tensor(dm->m, name);
    cr_assert(i >= 0, "tensor %s missing", name);
    return dm->p + gm_tensor(dm->m, i)->offset;
}

static void d_ffn_block(const dmodel *dm, double *x, int R, const char *pre, int l,
                        const char *lnname, double *t1, double *t2, double *t3)
{
    const gm_config *c = &dm->c;
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s%%d.%s.w", pre, lnname);
    snprintf(n2, sizeof n2, "%s%%d.%s.b", pre, lnname);
    d_layernorm(t1, x, dpar(dm, n1, l), dpar(dm, n2, l), R, c->d);
    snprintf(n1, sizeof n1, "%s%%d.ffn.w1", pre);
    snprintf(n2, sizeof n2, "%s%%d.ffn.b1", pre);
    d_linear(t2, t1, dpar(dm, n1, l), dpar(dm, n2, l), R, c->d, c->ff);
    for (size_t i = 0; i < (size_t)R * c->ff; i++)
        t2[i] = d_act(t2[i], c->act);
    snprintf(n1, sizeof n1, "%s%%d.ffn.w2", pre);
    snprintf(n2, sizeof n2, "%s%%d.ffn.b2", pre);
    d_linear(t3, t2, dpar(dm, n1, l), dpar(dm, n2, l), R, c->ff, c->d);
    for (size_t i = 0; i < (size_t)R * c->d; i++)
        x[i] += t3[i];
}

static void d_self_block(const dmodel *dm, double *x, int R, const char *pre, int l,
                         const char *att, int causal, double *t1, double *t2, double *t3,
                         double *t4)
{
    const gm_config *c = &dm->c;
    char n1[64], n2[64];
    int d = c->d;
    snprintf(n1, sizeof n1, "%s%%d.ln1.w", pre);
    snprintf(n2, sizeof n2, "%s%%d.ln1.b", pre);
    d_layernorm(t1, x, dpar(dm, n1, l), dpar(dm, n2, l), R, d);
    snprintf(n1, sizeof n1, "%s%%d.%s.wqkv", pre, att);
    snprintf(n2, sizeof n2, "%s%%d.%s.bqkv", pre, att);
    d_linear(t2, t1, dpar(dm, n1, l), dpar(dm, n2, l), R, d, 3 * d);
    d_mha(t3, t2, R, d, c->H, causal);
    snprintf(n1, sizeof n1, "%s%%d.%s.wo", pre, att);
    snprintf(n2, sizeof n2, "%s%%d.%s.bo", pre, att);
    d_linear(t4, t3, dpar(dm, n1, l), dpar(dm, n2, l), R, d, d);
    for (size_t i = 0; i < (size_t)R * d; i++)
        x[i] += t4[i];
}

static double dmodel_loss(void *ctx)
{
    dmodel *dm = ctx;
    const gm_config *c = &dm->c;
    const gm_batch *b = dm->b;
    int d = c->d, V = c->vocab;
    double ce = 0.0, expd = 0.0;
    long tokens = 0;
    size_t pair_off = 0, pi_off = 0;
    size_t big = (size_t)(b->S + b->T + 1) * (size_t)(3 * d + c->ff + 2 * d);
    double *mem = malloc(sizeof(double) * big), *x = malloc(sizeof(double) * big);
    double *t1 = malloc(sizeof(double) * big), *t2 = malloc(sizeof(double) * big);
    double *t3 = malloc(sizeof(double) * big), *t4 = malloc(sizeof(double) * big);
    double *kv = malloc(sizeof(double) * big);
    int rnd = c->level_source == GM_LEVELS_RANDOM;
    dxc xc = {d, c->H, c->g, c->L, c->mode, c->dense, {0}, rnd, 0, 0.0f, NULL, 0};
    memcpy(xc.theta8, dm->theta8, sizeof xc.theta8);
    if (c->level_source == GM_LEVELS_TOPK) {
        xc.topk_k = c->topk_k;
        xc.topk_frac = c->topk_frac;
        xc.choose_keep = dm->base;
    }
    const double *E = dpar(dm, "emb", 0);
    double sq = sqrt((double)(float)d);
    for (int bi = 0; bi < b->B; bi++) {
        const int32_t *src = b->src + (size_t)bi * b->S, *tin = b->tgt_in + (size_t)bi * b->T,
                      *tout = b->tgt_out + (size_t)bi * b->T;
        int S = 0, T = 0;
        while (S < b->S && src[S] != GM_PAD)
            S++;
        while (T < b->T && tout[T] != GM_PAD)
            T++;
        if (T == 0)
            continue;
        /* encoder */
        for (int i = 0; i < S; i++)
            for (int j = 0; j < d; j++)
                x[i * d + j] = (double)(float)sqrtf((float)d) * E[(size_t)src[i] * d + j] +
                               dm->pe[(size_t)i * d + j];
        (void)sq;
        for (int l = 0; l < c->n_enc; l++) {
            d_self_block(dm, x, S, "enc", l, "attn", 0, t1, t2, t3, t4);
            d_ffn_block(dm, x, S, "enc", l, "ln2", t1, t2, t3);
        }
        d_layernorm(mem, x, dpar(dm, "enc.lnf.w", 0), dpar(dm, "enc.lnf.b", 0), S, d);
        /* decoder */
        for (int i = 0; i < T; i++)
            for (int j = 0; j < d; j++)
                x[i * d + j] = (double)(float)sqrtf((float)d) * E[(size_t)tin[i] * d + j] +
                               dm->pe[(size_t)i * d + j];
        for (int l = 0; l < c->n_dec; l++) {
            d_self_block(dm, x, T, "dec", l, "self", 1, t1, t2, t3, t4);
            /* cross-attention: h = LN2(x) */
            d_layernorm(t1, x, dpar(dm, "dec%d.ln2.w", l), dpar(dm, "dec%d.ln2.b", l), T, d);
            d_linear(t2, t1, dpar(dm, "dec%d.cross.wq", l), dpar(dm, "dec%d.cross.bq", l), T, d, d);
            d_linear(kv, mem, dpar(dm, "dec%d.cross.wkv", l), dpar(dm, "dec%d.cross.bkv", l), S,
                     d, 2 * d);
            if (dm->keep)
                xc.keep = dm->keep + ((size_t)l * dm->pairs + pair_off) * c->H;
            d_xattn(&xc, T, S, t3, t2, kv, t1, mem, dpar(dm, "dec%d.gpn.U", l),
                    dpar(dm, "dec%d.gpn.b1", l), dpar(dm, "dec%d.gpn.W", l),
                    dpar(dm, "dec%d.gpn.W2", l), dpar(dm, "dec%d.gpn.b2", l),
                    dm->lev + (size_t)l * dm->pairs + pair_off, dm->base && !rnd,
                    dm->pi0 + (size_t)l * dm->piw + pi_off, dm->base, &expd);
            d_linear(t4, t3, dpar(dm, "dec%d.cross.wo", l), dpar(dm, "dec%d.cross.bo", l), T, d, d);
            for (size_t i = 0; i < (size_t)T * d; i++)
                x[i] += t4[i];
            d_ffn_block(dm, x, T, "dec", l, "ln3", t1, t2, t3);
        }
        d_layernorm(t1, x, dpar(dm, "dec.lnf.w", 0), dpar(dm, "dec.lnf.b", 0), T, d);
        ce += d_ce(t1, tout, T, d, E, V, c->label_smoothing);
        tokens += T;
        pair_off += (size_t)S * T;
        pi_off += (size_t)S * T * c->L;
    }
    free(mem); free(x); free(t1); free(t2); free(t3); free(t4); free(kv);
    double loss = ce / (double)tokens;
    if (!c->dense && !rnd && c->n_dec > 0) /* the random baseline ignores lambda */
        loss += (double)c->lambda / ((double)c->n_dec * c->H * (double)dm->pairs) * expd;
    return loss;
}

static gm_config tiny_config(void)
{
    gm_config c;
    gm_config_default(&c);
    c.vocab = 13;
    c.d = 8;
    c.H = 2;
    c.ff = 12;
    c.n_enc = 1;
    c.n_dec = 2;
    c.g = 3;
    c.L = 3;
    c.lambda = 0.3f;
    c.dropout = 0.0f;
    c.label_smoothing = 0.1f;
    c.max_len = 16;
    return c;
}

/* B = 4 rows, one of them empty (skipped), lengths 5/3/6 and 4/3/2. */
static const int32_t TINY_SRC[4 * 6] = {5, 9, 4, 12, 7, 0, 0, 0, 0, 0, 0, 0,
                                        8, 6, 11, 0, 0, 0, 4, 10, 7, 6, 9, 5};
static const int32_t TINY_TIN[4 * 5] = {2, 6, 9, 4, 0, 0, 0, 0, 0, 0,
                                        2, 11, 5, 0, 0, 2, 7, 0, 0, 0};
static const int32_t TINY_TOUT[4 * 5] = {6, 9, 4, 3, 0, 0, 0, 0, 0, 0,
                                         11, 5, 3, 0, 0, 7, 3, 0, 0, 0};

/* Scales the cross-attention and GPN parameters of a freshly initialised
 * model so that the tiny model exercises the mask (scores spread over
 * several units, levels mixed). */
static void sharpen(gm_model *m, trng *r)
{
    float *p = gm_params(m);
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        if (strstr(t->name, "cross.wq") || strstr(t->name, "cross.wkv"))
            for (size_t k = 0; k < t->size; k++)
                p[t->offset + k] *= 4.0f;
        if (strstr(t->name, "gpn."))
            for (size_t k = 0; k < t->size; k++)
                p[t->offset + k] = (float)rng_range(r, -1.5, 1.5);
        if (strstr(t->name, "ln") && strstr(t->name, ".b"))
            for (size_t k = 0; k < t->size; k++) /* nonzero LN biases */
                p[t->offset + k] = (float)rng_range(r, -0.2, 0.2);
    }
}

static void model_fd_case(tcheck *tc, const ga_kernels *kt, gm_config cfg, uint64_t seed)
{
    gm_model *m = gm_create(&cfg, kt, seed);
    cr_assert(m, "gm_create: %s", gm_last_error());
    trng r;
    rng_init(&r, seed);
    sharpen(m, &r);
    gm_batch b = {4, 6, 5, TINY_SRC, TINY_TIN, TINY_TOUT};

    dmodel dm;
    memset(&dm, 0, sizeof dm);
    dm.c = cfg;
    dm.m = m;
    dm.b = &b;
    dm.p = dcopy(gm_params(m), gm_num_params(m));
    ga_config acfg;
    gm_config_attn(&cfg, &acfg);
    ga_theta_from_tau(&acfg, dm.theta8);
    dm.pairs = 5 * 4 + 3 * 3 + 6 * 2;
    dm.piw = dm.pairs * cfg.L;
    dm.lev = calloc(dm.pairs * cfg.n_dec + 1, 1);
    dm.pi0 = calloc(dm.piw * cfg.n_dec + 1, sizeof(double));
    float *pe = malloc(sizeof(float) * (size_t)cfg.max_len * cfg.d);
    gm_posenc_table(pe, cfg.max_len, cfg.d);
    dm.pe = dcopy(pe, (size_t)cfg.max_len * cfg.d);
    int rnd = cfg.level_source == GM_LEVELS_RANDOM;
    int topk = cfg.level_source == GM_LEVELS_TOPK;
    if (topk)
        dm.keep = calloc(dm.pairs * cfg.n_dec * cfg.H + 1, 1);
    if (rnd) {
        /* the random baseline's levels, [n_dec][pairs] with the sentences
         * (T_b > 0) in batch order, each [T_b][S_b]; NOT forced into the
         * model, so its own draws are checked against these */
        for (int l = 0; l < cfg.n_dec; l++) {
            size_t off = 0;
            for (int bi = 0; bi < b.B; bi++) {
                int S = 0, T = 0;
                while (S < b.S && b.src[bi * b.S + S])
                    S++;
                while (T < b.T && b.tgt_out[bi * b.T + T])
                    T++;
                for (int t = 0; t < T; t++, off += (size_t)S)
                    gm_random_levels(cfg.level_probs, cfg.L, l, t, S,
                                     dm.lev + (size_t)l * dm.pairs + off);
            }
        }
    }
    dm.base = 1;
    double base_loss = dmodel_loss(&dm);
    dm.base = 0;

    gm_debug_force_levels(m, rnd || topk ? NULL : dm.lev);
    gm_zero_grads(m);
    gm_stats st;
    gm_stats_zero(&st);
    ga_status s = gm_forward_backward(m, &b, 1, 77, NULL, &st);
    cr_assert(s == GA_OK, "gm_forward_backward: %s", gm_last_error());
    double floss = gm_stats_objective(m, &st);
    tc_eq_long(tc, "tokens", st.tokens, 9);
    tc_true(tc, fabs(floss - base_loss) < 1e-5 * (1 + fabs(base_loss)),
            "loss: float %.9g vs double %.9g", floss, base_loss);
    if (rnd) {
        /* the model's level mix is that of the levels drawn here */
        double cnt[GA_MAX_LEVELS] = {0};
        for (size_t k = 0; k < dm.pairs * cfg.n_dec; k++)
            cnt[dm.lev[k]] += 1.0;
        tc_true(tc, memcmp(cnt, st.level_count, sizeof cnt) == 0,
                "random levels: model level counts differ from gm_random_levels");
    }
    int all_fine = 1;
    for (int l = 0; l < cfg.L; l++)
        all_fine &= cfg.tau[l] == 0.0f;
    if (topk) {
        /* the model's density is that of the kept sets chosen in double */
        double kept = 0.0;
        for (size_t k = 0; k < dm.pairs * cfg.n_dec * cfg.H; k++)
            kept += dm.keep[k];
        double dens = st.density_sum / (double)st.density_count;
        tc_true(tc, dens < 0.95, "vacuous case: density %.3f", dens);
        tc_true(tc, fabs(st.exp_density_sum - kept) < 1e-9,
                "top-k: model kept %.0f keys, the double reference %.0f", st.exp_density_sum,
                kept);
    } else if (!cfg.dense && !all_fine) {
        double dens = st.density_sum / (double)st.density_count;
        int used = 0;
        for (int l = 0; l < cfg.L; l++)
            used += st.level_count[l] > 0;
        tc_true(tc, dens < 0.95 && used >= 2, "vacuous case: density %.3f, %d levels used", dens,
                used);
    }

    const float *g = gm_grads(m);
    double gmax = 0.0;
    for (size_t k = 0; k < gm_num_params(m); k++)
        gmax = fmax(gmax, fabs(g[k]));
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        int gpn = strstr(t->name, "gpn.") != NULL;
        /* GPN tensors get no gradient in the dense, all-fine and random
         * modes (and b1 may legitimately be ~0 when the relu units are all
         * active) */
        int nz = !(gpn && (cfg.dense || all_fine || rnd || topk)) && !strstr(t->name, "gpn.b1") &&
                 !strstr(t->name, "self.bqkv") && !strstr(t->name, "attn.bqkv") &&
                 !strstr(t->name, "cross.bkv");
        fd_check2(tc, t->name, dm.p + t->offset, t->size, g + t->offset, dmodel_loss, &dm,
                  MODEL_RTOL, nz, 1e-2 * gmax);
        if (gpn && (cfg.dense || all_fine || rnd || topk)) {
            double mx = 0.0;
            for (size_t k = 0; k < t->size; k++)
                mx = fmax(mx, fabs(g[t->offset + k]));
            /* random and top-k baselines: the GPN is never evaluated, so exactly 0 */
            tc_true(tc, rnd || topk ? mx == 0.0 : mx < 1e-6, "%s: gradient %.3g in %s mode",
                    t->name, mx, rnd ? "random" : topk ? "top-k" : "dense/all-fine");
        }
    }
    gm_debug_force_levels(m, NULL);
    free(dm.p); free(dm.lev); free(dm.keep); free(dm.pi0); free(pe); free(dm.pe);
    gm_free(m);
}

Test(model_grad, whole_model_dense, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.whole_model_dense");
    c.isa = ga_kernels_default()->name;
    gm_config cfg = tiny_config();
    cfg.dense = 1;
    tc_case(&c, "dense");
    model_fd_case(&c, ga_kernels_default(), cfg, 11);
    cfg = tiny_config();
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        cfg.tau[l] = 0.0f;
    tc_case(&c, "all levels fine");
    model_fd_case(&c, ga_kernels_default(), cfg, 12);
    tc_finish(&c);
}

Test(model_grad, whole_model_frozen_levels, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.whole_model_frozen_levels");
    c.isa = ga_kernels_default()->name;
    gm_config cfg = tiny_config();
    tc_case(&c, "seed relu");
    model_fd_case(&c, ga_kernels_default(), cfg, 13);
    cfg.mode = GA_NORM_RENORM;
    cfg.act = GM_ACT_GELU;
    cfg.n_enc = 2;
    cfg.n_dec = 1;
    tc_case(&c, "renorm gelu");
    model_fd_case(&c, ga_kernels_default(), cfg, 14);
    c.isa = "scalar";
    cfg = tiny_config();
    tc_case(&c, "seed relu, scalar kernels");
    model_fd_case(&c, ga_kernels_ref(), cfg, 15);
    tc_finish(&c);
}

/* The top-k baseline (model/topk.c): the model's gradient against the
 * double forward with the kept sets chosen there from the double scores
 * (frozen for the finite differences, like the levels above); the GPN is
 * never evaluated, so its gradient is exactly 0. */
static gm_config topk_config(gm_config c, int k, float frac)
{
    c.level_source = GM_LEVELS_TOPK;
    c.topk_k = k;
    c.topk_frac = frac;
    c.lambda = 0.0f;
    return c;
}

Test(model_grad, whole_model_topk, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.whole_model_topk");
    c.isa = ga_kernels_default()->name;
    gm_config cfg = topk_config(tiny_config(), 0, 0.4f);
    tc_case(&c, "frac 0.4 seed");
    model_fd_case(&c, ga_kernels_default(), cfg, 16);
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "frac 0.4 renorm");
    model_fd_case(&c, ga_kernels_default(), cfg, 17);
    cfg = topk_config(tiny_config(), 2, 0.0f);
    tc_case(&c, "k 2 seed, scalar kernels");
    c.isa = "scalar";
    model_fd_case(&c, ga_kernels_ref(), cfg, 18);
    tc_finish(&c);
}

/* ================================================ properties of the driver */

/* A random batch: B rows, lengths in [1, maxS] / [1, maxT]. */
typedef struct rbatch {
    gm_batch b;
    int32_t *src, *tin, *tout;
} rbatch;

static void rbatch_make(rbatch *rb, trng *r, int B, int maxS, int maxT, int V)
{
    rb->src = calloc((size_t)B * maxS, sizeof(int32_t));
    rb->tin = calloc((size_t)B * maxT, sizeof(int32_t));
    rb->tout = calloc((size_t)B * maxT, sizeof(int32_t));
    for (int b = 0; b < B; b++) {
        int S = 1 + rng_int(r, maxS), T = 1 + rng_int(r, maxT);
        for (int i = 0; i < S; i++)
            rb->src[b * maxS + i] = 4 + rng_int(r, V - 4);
        rb->tin[b * maxT] = GM_BOS;
        for (int i = 0; i < T; i++) {
            int y = i == T - 1 ? GM_EOS : 4 + rng_int(r, V - 4);
            rb->tout[b * maxT + i] = y;
            if (i + 1 < T)
                rb->tin[b * maxT + i + 1] = y;
        }
    }
    gm_batch b = {B, maxS, maxT, rb->src, rb->tin, rb->tout};
    rb->b = b;
}

static void rbatch_free(rbatch *rb)
{
    free(rb->src);
    free(rb->tin);
    free(rb->tout);
}

static gm_config small_config(void)
{
    gm_config c;
    gm_config_default(&c);
    c.vocab = 40;
    c.d = 16;
    c.H = 2;
    c.ff = 24;
    c.n_enc = 2;
    c.n_dec = 2;
    c.g = 4;
    c.max_len = 32;
    return c;
}

Test(model_grad, threads_and_determinism, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.threads_and_determinism");
    gm_config cfg = small_config();
    cfg.gumbel = 1;
    cfg.dropout = 0.2f;
    gm_model *m = gm_create(&cfg, NULL, 5);
    cr_assert(m, "%s", gm_last_error());
    trng r;
    rng_init(&r, 4001);
    sharpen(m, &r);
    rbatch rb;
    rbatch_make(&rb, &r, 7, 9, 8, cfg.vocab);
    size_t n = gm_num_params(m);
    float *g1 = malloc(sizeof(float) * n), *g2 = malloc(sizeof(float) * n);
    float *mag = malloc(sizeof(float) * n);
    gm_stats s1, s2, s3;

    gm_zero_grads(m);
    gm_stats_zero(&s1);
    cr_assert(gm_forward_backward(m, &rb.b, 1, 9, NULL, &s1) == GA_OK, "%s", gm_last_error());
    memcpy(g1, gm_grads(m), sizeof(float) * n);

    ga_pool *pool = ga_pool_create(2, GA_PLACE_NONE, NULL, 0);
    cr_assert(pool, "%s", ga_last_error());
    gm_zero_grads(m);
    gm_stats_zero(&s2);
    cr_assert(gm_forward_backward(m, &rb.b, 1, 9, pool, &s2) == GA_OK, "%s", gm_last_error());
    memcpy(g2, gm_grads(m), sizeof(float) * n);
    gm_zero_grads(m);
    gm_stats_zero(&s3);
    cr_assert(gm_forward_backward(m, &rb.b, 1, 9, pool, &s3) == GA_OK, "%s", gm_last_error());
    tc_bits(&c, "2 threads, repeated: gradients", g2, gm_grads(m), sizeof(float) * n);
    tc_bits(&c, "2 threads, repeated: stats", &s2, &s3, sizeof s2);

    /* 1 vs 2 threads: the same masks/noise, so the same values up to the
     * summation order of the GEMMs and the gradient reduction */
    float gmax = 0.0f;
    for (size_t i = 0; i < n; i++)
        gmax = fmaxf(gmax, fabsf(g1[i]));
    for (size_t i = 0; i < n; i++)
        mag[i] = fabsf(g1[i]) + gmax;
    tc_close(&c, "1 vs 2 threads: gradients", g2, g1, mag, (int)n, 1e-4, 0.0);
    tc_true(&c, fabs(s1.loss_sum - s2.loss_sum) < 1e-5 * s1.loss_sum, "loss %.9g vs %.9g",
            s1.loss_sum, s2.loss_sum);
    tc_true(&c, memcmp(s1.level_count, s2.level_count, sizeof s1.level_count) == 0,
            "level counts differ between 1 and 2 threads");
    tc_eq_long(&c, "tokens", s2.tokens, s1.tokens);

    /* accumulation: a second call adds */
    cr_assert(gm_forward_backward(m, &rb.b, 1, 9, pool, NULL) == GA_OK, "%s", gm_last_error());
    float *twice = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        twice[i] = 2.0f * g2[i];
        mag[i] = fabsf(twice[i]) + gmax;
    }
    tc_close(&c, "two calls accumulate", gm_grads(m), twice, mag, (int)n, 1e-6, 0.0);
    free(twice);

    /* a different seed changes the dropout masks */
    gm_zero_grads(m);
    cr_assert(gm_forward_backward(m, &rb.b, 1, 10, pool, NULL) == GA_OK, "%s", gm_last_error());
    tc_true(&c, memcmp(gm_grads(m), g2, sizeof(float) * n) != 0, "seed has no effect");

    ga_pool_destroy(pool);
    rbatch_free(&rb);
    free(g1); free(g2); free(mag);
    gm_free(m);
    tc_finish(&c);
}

static void decode_case(tcheck *tc, gm_config cfg)
{
    cfg.label_smoothing = 0.0f;
    gm_model *m = gm_create(&cfg, NULL, 21);
    cr_assert(m, "%s", gm_last_error());
    trng r;
    rng_init(&r, 5001);
    sharpen(m, &r);
    rbatch rb;
    rbatch_make(&rb, &r, 3, 10, 9, cfg.vocab);
    gm_stats st;
    gm_stats_zero(&st);
    cr_assert(gm_forward_backward(m, &rb.b, 0, 1, NULL, &st) == GA_OK, "%s", gm_last_error());

    /* teacher-forced incremental decoding, all 3 sentences in one step call */
    const gm_batch *b = &rb.b;
    gm_memory *mem[3];
    gm_cache *cache[3], *copy = gm_cache_create(m, b->T);
    int Tl[3], maxT = 0;
    for (int k = 0; k < 3; k++) {
        int S = 0, T = 0;
        while (S < b->S && b->src[k * b->S + S])
            S++;
        while (T < b->T && b->tgt_out[k * b->T + T])
            T++;
        Tl[k] = T;
        maxT = T > maxT ? T : maxT;
        mem[k] = gm_memory_create(m, b->S);
        cache[k] = gm_cache_create(m, b->T);
        cr_assert(mem[k] && cache[k], "%s", gm_last_error());
        cr_assert(gm_encode(m, b->src + k * b->S, S, mem[k]) == GA_OK, "%s", gm_last_error());
    }
    float *logp = malloc(sizeof(float) * 3 * cfg.vocab);
    float *logp2 = malloc(sizeof(float) * cfg.vocab);
    gm_step_ws *ws = gm_step_ws_create(m, 3);
    cr_assert(ws, "%s", gm_last_error());
    double nll = 0.0;
    gm_step_stats ss;
    memset(&ss, 0, sizeof ss);
    for (int t = 0; t < maxT; t++) {
        /* only the sentences still running */
        const gm_memory *mm[3];
        gm_cache *cc[3];
        int32_t tok[3], who[3], n = 0;
        for (int k = 0; k < 3; k++)
            if (t < Tl[k]) {
                mm[n] = mem[k];
                cc[n] = cache[k];
                tok[n] = b->tgt_in[k * b->T + t];
                who[n] = k;
                n++;
            }
        if (t == 2)
            gm_cache_copy(copy, cc[0]); /* before the step at position 2 */
        cr_assert(gm_decode_step(m, ws, n, mm, cc, tok, logp, &ss) == GA_OK, "%s",
                  gm_last_error());
        for (int h = 0; h < n; h++)
            nll -= logp[(size_t)h * cfg.vocab + b->tgt_out[who[h] * b->T + t]];
        if (t == 2) {
            /* the copied cache reproduces hypothesis 0's step */
            const gm_memory *m0[1] = {mm[0]};
            gm_cache *c0[1] = {copy};
            cr_assert(gm_decode_step(m, ws, 1, m0, c0, tok, logp2, NULL) == GA_OK, "%s",
                      gm_last_error());
            /* bitwise: a hypothesis' row does not depend on the others of
             * the step (model.h) */
            tc_bits(tc, "step from a copied cache, alone vs with the others", logp2, logp,
                    sizeof(float) * cfg.vocab);
        }
    }
    tc_true(tc, fabs(nll - st.nll_sum) < 1e-4 * (1 + fabs(st.nll_sum)),
            "teacher-forced decoding nll %.9g vs training forward %.9g", nll, st.nll_sum);
    double d1 = st.density_sum / st.density_count, d2 = ss.density_sum / ss.density_count;
    tc_true(tc, fabs(d1 - d2) < 1e-6, "density: forward %.6f vs decode %.6f", d1, d2);
    if (cfg.level_source == GM_LEVELS_RANDOM)
        tc_true(tc, memcmp(st.level_count, ss.level_count, sizeof st.level_count) == 0,
                "random levels: level counts of the training forward and of decoding differ");
    for (int k = 0; k < 3; k++) {
        gm_memory_free(mem[k]);
        gm_cache_free(cache[k]);
    }
    gm_cache_free(copy);
    gm_step_ws_free(ws);
    free(logp);
    free(logp2);
    rbatch_free(&rb);
    gm_free(m);
}

Test(model_grad, incremental_decoding, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.incremental_decoding");
    gm_config cfg = small_config();
    tc_case(&c, "seed");
    decode_case(&c, cfg);
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "renorm");
    decode_case(&c, cfg);
    cfg.dense = 1;
    tc_case(&c, "dense");
    decode_case(&c, cfg);
    cfg = topk_config(small_config(), 0, 0.3f);
    tc_case(&c, "top-k frac 0.3, seed");
    decode_case(&c, cfg);
    cfg = topk_config(small_config(), 2, 0.0f);
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "top-k k 2, renorm");
    decode_case(&c, cfg);
    tc_finish(&c);
}

/* The decoder's cross-attention over prepared keys (gm_memory_set_prepared,
 * on by default): a beam of 3 hypotheses sharing one memory runs as one
 * block of queries; its log-probabilities equal those of a memory with
 * prepared keys off (K, V directly, one hypothesis per call): bitwise for
 * the sparse modes (GA_PREP_Z_EXACT), within rounding for the dense
 * baseline (packed-K scores).  Seed with GA_PREP_Z_BOUNDED: the same kept
 * sets (density), log-probabilities close. */
static void prepared_case(tcheck *tc, gm_config cfg, int bounded)
{
    gm_model *m = gm_create(&cfg, NULL, 11);
    cr_assert(m, "%s", gm_last_error());
    gm_memory *mp = gm_memory_create(m, 20), *mu = gm_memory_create(m, 20);
    cr_assert(mp && mu, "%s", gm_last_error());
    cr_assert(gm_memory_set_prepared(mu, 0, GA_PREP_Z_EXACT) == GA_OK, "%s", gm_last_error());
    if (bounded)
        cr_assert(gm_memory_set_prepared(mp, 1, GA_PREP_Z_BOUNDED) == GA_OK, "%s",
                  gm_last_error());
    int32_t src[14];
    for (int i = 0; i < 14; i++)
        src[i] = 4 + (i * 11 + 3) % (cfg.vocab - 4);
    cr_assert(gm_encode(m, src, 14, mp) == GA_OK, "%s", gm_last_error());
    cr_assert(gm_encode(m, src, 14, mu) == GA_OK, "%s", gm_last_error());
    enum { NH = 3 };
    gm_cache *cp[NH], *cu[NH];
    const gm_memory *mmp[NH], *mmu[NH];
    for (int k = 0; k < NH; k++) {
        cp[k] = gm_cache_create(m, 16);
        cu[k] = gm_cache_create(m, 16);
        cr_assert(cp[k] && cu[k], "%s", gm_last_error());
        mmp[k] = mp;
        mmu[k] = mu;
    }
    float *lp = malloc(sizeof(float) * NH * cfg.vocab), *lu = malloc(sizeof(float) * NH * cfg.vocab);
    gm_step_ws *ws = gm_step_ws_create(m, NH);
    cr_assert(lp && lu && ws);
    gm_step_stats sp, su;
    memset(&sp, 0, sizeof sp);
    memset(&su, 0, sizeof su);
    for (int t = 0; t < 6; t++) {
        int32_t tok[NH];
        for (int k = 0; k < NH; k++)
            tok[k] = t == 0 ? GM_BOS : 4 + (t * 7 + k * 3) % (cfg.vocab - 4);
        cr_assert(gm_decode_step(m, ws, NH, mmp, cp, tok, lp, &sp) == GA_OK, "%s",
                  gm_last_error());
        cr_assert(gm_decode_step(m, ws, NH, mmu, cu, tok, lu, &su) == GA_OK, "%s",
                  gm_last_error());
        size_t nv = (size_t)NH * cfg.vocab;
        if (bounded || cfg.dense)
            tc_close(tc, "logp prepared vs not", lp, lu, NULL, nv, bounded ? 1e-3 : 1e-5, 1e-5);
        else
            tc_true(tc, memcmp(lp, lu, sizeof(float) * nv) == 0,
                    "step %d: logp with prepared keys differs (bitwise) from without", t);
    }
    tc_true(tc, sp.density_sum == su.density_sum && sp.density_count == su.density_count,
            "density prepared %.9g/%ld vs not %.9g/%ld", sp.density_sum, sp.density_count,
            su.density_sum, su.density_count);
    tc_true(tc, memcmp(sp.level_count, su.level_count, sizeof sp.level_count) == 0,
            "level counts differ");
    tc_true(tc, sp.prep_rows == 6LL * NH * cfg.n_dec * cfg.H && su.prep_rows == 0,
            "prepared rows %lld (expected %d), unprepared %lld", sp.prep_rows,
            6 * NH * cfg.n_dec * cfg.H, su.prep_rows);
    tc_true(tc, bounded ? sp.prep_z_bound >= 0 && isfinite(sp.prep_z_bound) : sp.prep_z_bound == 0,
            "z bound %g", sp.prep_z_bound);
    for (int k = 0; k < NH; k++) {
        gm_cache_free(cp[k]);
        gm_cache_free(cu[k]);
    }
    tc_true(tc, gm_memory_set_prepared(mp, 1, (ga_prep_z)7) == GA_EINVAL,
            "an unknown zmode must be EINVAL");
    gm_memory_free(mp);
    gm_memory_free(mu);
    gm_step_ws_free(ws);
    free(lp);
    free(lu);
    gm_free(m);
}

/* Batched decoding relies on it (model.h, decode.h): a hypothesis'
 * log-probabilities are bitwise the same whatever other hypotheses share
 * the gm_decode_step.  210 hypotheses (7 per sentence, 30 sentences of 1..20
 * tokens, more rows than the sgemm's MC block; vocab 1100 > its NC block),
 * two steps taken together, then the third step for all of them and for
 * sub-ranges (one row, rows cutting a sentence's query block, 97 rows):
 * every row bitwise equal.  Also gm_encode_batch == gm_encode per sentence
 * (memories encoded together or alone give the same rows).  Learned sparse
 * with prepared keys, without, random levels, dense; every variant. */
static void rows_case(tcheck *tc, const ga_kernels *kt, gm_config cfg, int prepared)
{
    enum { NS = 30, PER = 7, NH = NS * PER, V = 1100 };
    cfg.vocab = V;
    cfg.d = 32;
    cfg.ff = 48;
    cfg.n_enc = 1;
    gm_model *m = gm_create(&cfg, kt, 17);
    cr_assert(m, "%s", gm_last_error());
    trng r;
    rng_init(&r, 6101);
    sharpen(m, &r);
    gm_memory *mb[NS], *ma[NS]; /* encoded as a batch / alone */
    int32_t src[NS][20];
    const int32_t *sp[NS];
    int S[NS];
    for (int k = 0; k < NS; k++) {
        S[k] = 1 + rng_int(&r, 20);
        for (int i = 0; i < S[k]; i++)
            src[k][i] = 4 + rng_int(&r, V - 4);
        sp[k] = src[k];
        mb[k] = gm_memory_create(m, 20);
        ma[k] = gm_memory_create(m, 20);
        cr_assert(mb[k] && ma[k], "%s", gm_last_error());
        cr_assert(gm_memory_set_prepared(mb[k], prepared, GA_PREP_Z_EXACT) == GA_OK &&
                      gm_memory_set_prepared(ma[k], prepared, GA_PREP_Z_EXACT) == GA_OK,
                  "%s", gm_last_error());
        cr_assert(gm_encode(m, src[k], S[k], ma[k]) == GA_OK, "%s", gm_last_error());
    }
    cr_assert(gm_encode_batch(m, NS, sp, S, mb) == GA_OK, "%s", gm_last_error());
    gm_cache *c[NH], *c0[NH], *cs[NH];
    const gm_memory *mm[NH], *mma[NH];
    int32_t tok[NH];
    for (int h = 0; h < NH; h++) {
        c[h] = gm_cache_create(m, 4);
        c0[h] = gm_cache_create(m, 4);
        cs[h] = gm_cache_create(m, 4);
        cr_assert(c[h] && c0[h] && cs[h], "%s", gm_last_error());
        mm[h] = mb[h / PER];
        mma[h] = ma[h / PER];
    }
    float *lp = malloc(sizeof(float) * NH * V), *ls = malloc(sizeof(float) * NH * V);
    gm_step_ws *ws = gm_step_ws_create(m, NH);
    cr_assert(lp && ls && ws, "%s", gm_last_error());
    for (int t = 0; t < 2; t++) {
        for (int h = 0; h < NH; h++)
            tok[h] = t == 0 ? GM_BOS : 4 + (h * 37 + t) % (V - 4);
        cr_assert(gm_decode_step(m, ws, NH, mm, c, tok, lp, NULL) == GA_OK, "%s",
                  gm_last_error());
    }
    for (int h = 0; h < NH; h++) {
        cr_assert(gm_cache_copy(c0[h], c[h]) == GA_OK, "%s", gm_last_error());
        tok[h] = 4 + (h * 11 + 5) % (V - 4);
    }
    cr_assert(gm_decode_step(m, ws, NH, mm, c, tok, lp, NULL) == GA_OK, "%s", gm_last_error());
    static const int SUB[][2] = {{0, 1}, {104, 105}, {3, 16}, {59, 156}, {0, NH}};
    for (int u = 0; u < 5; u++) {
        const int h0 = SUB[u][0], n = SUB[u][1] - h0;
        for (int i = 0; i < 2; i++) { /* memories encoded together, then alone */
            if (i == 1 && u != 4)
                continue;
            for (int h = h0; h < h0 + n; h++)
                cr_assert(gm_cache_copy(cs[h], c0[h]) == GA_OK, "%s", gm_last_error());
            cr_assert(gm_decode_step(m, ws, n, (i ? mma : mm) + h0, cs + h0, tok + h0, ls, NULL) ==
                          GA_OK,
                      "%s", gm_last_error());
            tc_true(tc, memcmp(ls, lp + (size_t)h0 * V, sizeof(float) * (size_t)n * V) == 0,
                    "[%s] rows %d..%d stepped %s differ from the same rows in a step of %d "
                    "(memories encoded %s)",
                    kt->name, h0, h0 + n - 1, n == 1 ? "alone" : "together", NH,
                    i ? "one by one" : "as a batch");
        }
    }
    for (int h = 0; h < NH; h++) {
        gm_cache_free(c[h]);
        gm_cache_free(c0[h]);
        gm_cache_free(cs[h]);
    }
    for (int k = 0; k < NS; k++) {
        gm_memory_free(mb[k]);
        gm_memory_free(ma[k]);
    }
    gm_step_ws_free(ws);
    free(lp);
    free(ls);
    gm_free(m);
}

Test(model_grad, decode_rows_independent, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tvariants v;
    variants_get(&v, "model_grad.decode_rows_independent");
    tc_init(&c, "model_grad.decode_rows_independent");
    for (int vi = 0; vi < v.n; vi++) {
        gm_config cfg = small_config();
        tc_case(&c, "[%s] learned, prepared keys", v.k[vi]->name);
        rows_case(&c, v.k[vi], cfg, 1);
        tc_case(&c, "[%s] learned, no prepared keys", v.k[vi]->name);
        rows_case(&c, v.k[vi], cfg, 0);
        cfg.level_source = GM_LEVELS_RANDOM;
        cfg.level_probs[0] = 0.3f;
        cfg.level_probs[1] = 0.3f;
        cfg.level_probs[2] = 0.4f;
        tc_case(&c, "[%s] random levels", v.k[vi]->name);
        rows_case(&c, v.k[vi], cfg, 1);
        cfg = small_config();
        cfg.dense = 1;
        tc_case(&c, "[%s] dense", v.k[vi]->name);
        rows_case(&c, v.k[vi], cfg, 1);
    }
    tc_finish(&c);
}

Test(model_grad, prepared_decoding, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.prepared_decoding");
    gm_config cfg = small_config();
    tc_case(&c, "seed");
    prepared_case(&c, cfg, 0);
    tc_case(&c, "seed, bounded Z");
    prepared_case(&c, cfg, 1);
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "renorm");
    prepared_case(&c, cfg, 0);
    cfg.mode = GA_NORM_SEED;
    cfg.level_source = GM_LEVELS_RANDOM;
    cfg.level_probs[0] = 0.3f;
    cfg.level_probs[1] = 0.3f;
    cfg.level_probs[2] = 0.4f;
    tc_case(&c, "random levels");
    prepared_case(&c, cfg, 0);
    cfg = small_config();
    cfg.dense = 1;
    tc_case(&c, "dense");
    prepared_case(&c, cfg, 0);
    tc_finish(&c);
}

Test(model_grad, all_fine_equals_dense, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.all_fine_equals_dense");
    gm_config cfg = small_config();
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        cfg.tau[l] = 0.0f;
    gm_model *a = gm_create(&cfg, NULL, 3);
    cfg.dense = 1;
    gm_model *b = gm_create(&cfg, NULL, 3);
    cr_assert(a && b, "%s", gm_last_error());
    trng r;
    rng_init(&r, 6001);
    rbatch rb;
    rbatch_make(&rb, &r, 4, 8, 7, cfg.vocab);
    gm_stats sa, sb;
    gm_stats_zero(&sa);
    gm_stats_zero(&sb);
    cr_assert(gm_forward_backward(a, &rb.b, 1, 3, NULL, &sa) == GA_OK, "%s", gm_last_error());
    cr_assert(gm_forward_backward(b, &rb.b, 1, 3, NULL, &sb) == GA_OK, "%s", gm_last_error());
    tc_true(&c, fabs(sa.loss_sum - sb.loss_sum) < 1e-5 * sb.loss_sum, "loss %.9g vs dense %.9g",
            sa.loss_sum, sb.loss_sum);
    tc_true(&c, sa.density_sum == (double)sa.density_count, "all-fine density %.6f != 1",
            sa.density_sum / sa.density_count);
    rbatch_free(&rb);
    gm_free(a);
    gm_free(b);
    tc_finish(&c);
}

Test(model_grad, api, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.api");
    gm_config cfg;
    gm_config_default(&cfg);
    tc_true(&c, gm_config_check(&cfg) == GA_OK, "default config invalid: %s", gm_last_error());
    tc_true(&c, cfg.d == 256 && cfg.H == 4 && cfg.g == 16 && cfg.L == 3 && cfg.mode == GA_NORM_SEED,
            "defaults");
    gm_config bad = cfg;
    bad.H = 3;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "d %% H accepted");
    bad = cfg;
    bad.tau[0] = 0.001f; /* increasing tau */
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "increasing tau accepted");
    bad = cfg;
    bad.dropout = 1.0f;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "dropout 1 accepted");

    gm_config sc = small_config();
    gm_model *m = gm_create(&sc, NULL, 1);
    cr_assert(m);
    /* the tensor table tiles the buffer exactly */
    size_t off = 0;
    int ok = 1;
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        ok &= t->offset == off && t->size == (size_t)t->rows * t->cols;
        off += t->size;
    }
    tc_true(&c, ok && off == gm_num_params(m), "tensor table does not tile the buffer");
    tc_true(&c, gm_find_tensor(m, "dec1.gpn.W2") >= 0 && gm_find_tensor(m, "nope") < 0,
            "gm_find_tensor");
    /* same seed, same parameters */
    gm_model *m2 = gm_create(&sc, NULL, 1);
    tc_bits(&c, "init is deterministic", gm_params(m), gm_params(m2),
            sizeof(float) * gm_num_params(m));
    /* invalid batch: id out of range */
    int32_t src[2] = {5, 99}, tin[2] = {2, 5}, tout[2] = {5, 3};
    gm_batch b = {1, 2, 2, src, tin, tout};
    tc_true(&c, gm_forward_backward(m, &b, 1, 0, NULL, NULL) == GA_EINVAL, "bad id accepted");
    src[1] = 7;
    tc_true(&c, gm_forward_backward(m, &b, 1, 0, NULL, NULL) == GA_OK, "%s", gm_last_error());
    /* training settings of a live model */
    tc_true(&c, gm_set_training(m, 0.5f, 0.0f, 0.0f, 1, 0.5f) == GA_OK, "%s", gm_last_error());
    tc_true(&c, gm_get_config(m)->lambda == 0.5f && gm_get_config(m)->gumbel == 1,
            "gm_set_training not applied");
    tc_true(&c, gm_set_training(m, -1.0f, 0.0f, 0.0f, 0, 1.0f) == GA_EINVAL, "lambda -1 accepted");
    tc_true(&c, gm_get_config(m)->lambda == 0.5f, "failed gm_set_training changed the model");
    gm_free(m);
    gm_free(m2);
    tc_finish(&c);
}

/* ============================== the random-level-per-pair baseline */

static gm_config random_config(gm_config c)
{
    c.level_source = GM_LEVELS_RANDOM;
    c.level_probs[0] = 0.3f;
    c.level_probs[1] = 0.3f;
    c.level_probs[2] = 0.4f;
    return c;
}

/* Levels of every (layer, t, i) pair of a batch in the layout of
 * gm_debug_force_levels: [n_dec][pairs], sentences (T_b > 0) in batch order,
 * each [T_b][S_b].  Returns the pair count per layer. */
static size_t random_batch_levels(const gm_config *c, const gm_batch *b, uint8_t **out)
{
    size_t pairs = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        for (int l = 0; l < (pass ? c->n_dec : 1); l++)
            for (int bi = 0; bi < b->B; bi++) {
                int S = 0, T = 0;
                while (S < b->S && b->src[bi * b->S + S])
                    S++;
                while (T < b->T && b->tgt_out[bi * b->T + T])
                    T++;
                for (int t = 0; t < T; t++, off += (size_t)S)
                    if (pass)
                        gm_random_levels(c->level_probs, c->L, l, t, S, *out + off);
            }
        if (!pass) {
            pairs = off;
            *out = malloc(pairs * (size_t)c->n_dec + 1);
        }
    }
    return pairs;
}

Test(model_grad, random_levels, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.random_levels");
    c.isa = ga_kernels_default()->name;

    /* (b) the level mix over 20000 distinct pairs (4 layers x 50 positions x
     * 100 keys) is level_probs within 0.01 (binomial sd <= 0.0036); a level
     * of probability 0 never appears; the draws are a pure function of
     * (layer, t, i), independent of the sentence length N */
    tc_case(&c, "level mix");
    static const float probs[3][GA_MAX_LEVELS] = {
        {0.3f, 0.3f, 0.4f}, {0.1f, 0.0f, 0.9f}, {0.5f, 0.25f, 0.125f, 0.125f}};
    static const int Ls[3] = {3, 3, 4};
    uint8_t lev[100], lev2[100];
    for (int k = 0; k < 3; k++) {
        double cnt[GA_MAX_LEVELS] = {0};
        long n = 0;
        for (int l = 0; l < 4; l++)
            for (int t = 0; t < 50; t++) {
                gm_random_levels(probs[k], Ls[k], l, t, 100, lev);
                for (int i = 0; i < 100; i++, n++)
                    cnt[lev[i]] += 1.0;
            }
        for (int l = 0; l < GA_MAX_LEVELS; l++) {
            double f = cnt[l] / (double)n, p = l < Ls[k] ? probs[k][l] : 0.0;
            tc_true(&c, fabs(f - p) < 0.01 && (p > 0.0 || cnt[l] == 0.0),
                    "probabilities %d, level %d: frequency %.4f vs %.4f", k, l, f, p);
        }
    }
    gm_random_levels(probs[0], 3, 1, 7, 100, lev);
    gm_random_levels(probs[0], 3, 1, 7, 100, lev2);
    tc_eq_u8(&c, "same (layer, t): same levels", lev, lev2, 100);
    gm_random_levels(probs[0], 3, 1, 7, 37, lev2);
    tc_eq_u8(&c, "shorter source: a prefix of the same levels", lev, lev2, 37);
    gm_random_levels(probs[0], 3, 2, 7, 100, lev2);
    tc_true(&c, memcmp(lev, lev2, 100) != 0, "another layer draws the same levels");
    gm_random_levels(probs[0], 3, 1, 8, 100, lev2);
    tc_true(&c, memcmp(lev, lev2, 100) != 0, "another position draws the same levels");

    tc_case(&c, "config check");
    gm_config def;
    gm_config_default(&def);
    int zero = 1;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        zero &= def.level_probs[l] == 0.0f;
    tc_true(&c, def.level_source == GM_LEVELS_GPN && zero, "default: GPN levels, probs 0");
    gm_config cfg = random_config(small_config());
    tc_true(&c, gm_config_check(&cfg) == GA_OK, "valid random config: %s", gm_last_error());
    gm_config bad = cfg;
    bad.level_probs[2] = 0.40005f; /* sum 1 + 5e-5: within 1e-4 */
    tc_true(&c, gm_config_check(&bad) == GA_OK, "sum 1.00005 rejected: %s", gm_last_error());
    bad.level_probs[2] = 0.3f;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "probabilities summing to 0.9 accepted");
    bad = cfg;
    bad.level_probs[0] = -0.1f;
    bad.level_probs[2] = 0.8f;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "negative probability accepted");
    bad = cfg;
    bad.level_probs[1] = NAN;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "NaN probability accepted");
    bad = cfg;
    bad.dense = 1;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "random + dense accepted");
    bad = cfg;
    bad.level_source = (gm_level_source)7;
    tc_true(&c, gm_config_check(&bad) == GA_EINVAL, "unknown level source accepted");

    /* (a) the training forward uses exactly gm_random_levels: a GPN model
     * with those levels forced gives bitwise the same loss and density;
     * Gumbel noise and dropout do not change the levels; the GPN gets
     * exactly zero gradient; 2 threads draw the same levels */
    tc_case(&c, "training forward == forced levels");
    gm_config cr = random_config(small_config()), cg = small_config();
    cr.gumbel = 1;
    gm_model *mr = gm_create(&cr, NULL, 8), *mg = gm_create(&cg, NULL, 8);
    cr_assert(mr && mg, "%s", gm_last_error());
    trng r;
    rng_init(&r, 7002);
    sharpen(mr, &r);
    rng_init(&r, 7002);
    sharpen(mg, &r);
    rng_init(&r, 7001);
    rbatch rb;
    rbatch_make(&rb, &r, 6, 12, 10, cr.vocab);
    uint8_t *forced = NULL;
    random_batch_levels(&cr, &rb.b, &forced);
    gm_debug_force_levels(mg, forced);
    gm_stats sr, sg, st, sp;
    gm_stats_zero(&sr);
    gm_stats_zero(&sg);
    gm_stats_zero(&st);
    gm_stats_zero(&sp);
    cr_assert(gm_forward_backward(mr, &rb.b, 0, 3, NULL, &sr) == GA_OK, "%s", gm_last_error());
    cr_assert(gm_forward_backward(mg, &rb.b, 0, 3, NULL, &sg) == GA_OK, "%s", gm_last_error());
    tc_bits(&c, "loss: random vs forced", &sr.loss_sum, &sg.loss_sum, sizeof sr.loss_sum);
    tc_bits(&c, "density: random vs forced", &sr.density_sum, &sg.density_sum,
            sizeof sr.density_sum);
    tc_bits(&c, "level counts: random vs forced", sr.level_count, sg.level_count,
            sizeof sr.level_count);
    tc_true(&c, sr.density_sum / sr.density_count < 0.95, "vacuous: density %.3f",
            sr.density_sum / sr.density_count);
    tc_true(&c, gm_stats_objective(mr, &sr) == sr.loss_sum / (double)sr.tokens,
            "lambda %g not ignored by the objective", cr.lambda);

    gm_zero_grads(mr);
    cr_assert(gm_forward_backward(mr, &rb.b, 1, 3, NULL, &st) == GA_OK, "%s", gm_last_error());
    tc_bits(&c, "level counts: training (Gumbel, dropout) vs train = 0", st.level_count,
            sr.level_count, sizeof st.level_count);
    ga_pool *pool = ga_pool_create(2, GA_PLACE_NONE, NULL, 0);
    cr_assert(pool, "%s", gm_last_error());
    cr_assert(gm_forward_backward(mr, &rb.b, 1, 3, pool, &sp) == GA_OK, "%s", gm_last_error());
    tc_bits(&c, "level counts: 2 threads vs 1", sp.level_count, st.level_count,
            sizeof sp.level_count);
    const float *gr = gm_grads(mr);
    double gpn_max = 0.0, other_max = 0.0;
    for (int i = 0; i < gm_num_tensors(mr); i++) {
        const gm_tensor_info *t = gm_tensor(mr, i);
        for (size_t k = 0; k < t->size; k++) {
            double v = fabs(gr[t->offset + k]);
            if (strstr(t->name, "gpn."))
                gpn_max = fmax(gpn_max, v);
            else
                other_max = fmax(other_max, v);
        }
    }
    tc_true(&c, gpn_max == 0.0 && other_max > 0.0, "GPN gradient %.3g (others %.3g)", gpn_max,
            other_max);
    ga_pool_destroy(pool);
    gm_debug_force_levels(mg, NULL);
    free(forced);
    rbatch_free(&rb);
    gm_free(mr);
    gm_free(mg);

    /* (a) teacher-forced decoding (gm_decode_step) == the training forward:
     * nll, density and the exact level counts */
    tc_case(&c, "decode == training forward, seed");
    decode_case(&c, random_config(small_config()));
    cfg = random_config(small_config());
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "decode == training forward, renorm");
    decode_case(&c, cfg);

    /* (c) + (d): the whole model's FD check with the random levels (not
     * forced: the model draws them itself), GPN gradient exactly 0, lambda
     * ignored */
    tc_case(&c, "whole model FD, random levels, seed");
    model_fd_case(&c, ga_kernels_default(), random_config(tiny_config()), 16);
    cfg = random_config(tiny_config());
    cfg.mode = GA_NORM_RENORM;
    tc_case(&c, "whole model FD, random levels, renorm");
    model_fd_case(&c, ga_kernels_default(), cfg, 17);
    tc_finish(&c);
}

/* Data parallelism (gm_forward_backward_part, `mpirun ... granattn train`):
 * the parts' gradients and statistics, summed, are the whole batch's, with
 * dropout and Gumbel noise on (they are indexed by global rows), for 2
 * parts, 3 parts (one sentence each) and 5 parts (two of them empty).  The
 * gradients agree up to float summation order: 1e-5 of the largest
 * component (the two sides add the same float32 terms in another order;
 * measured worst 6.6e-8).  Bad part numbers are refused. */
Test(model_grad, parts_sum_to_batch, .timeout = TEST_TIMEOUT)
{
    tcheck c;
    tc_init(&c, "model_grad.parts_sum_to_batch");
    gm_config cfg = tiny_config();
    cfg.dropout = 0.2f;
    cfg.gumbel = 1;
    gm_model *m = gm_create(&cfg, ga_kernels_default(), 5);
    cr_assert(m, "gm_create: %s", gm_last_error());
    trng r;
    rng_init(&r, 5);
    sharpen(m, &r);
    gm_batch b = {4, 6, 5, TINY_SRC, TINY_TIN, TINY_TOUT};
    size_t n = gm_num_params(m);
    gm_zero_grads(m);
    gm_stats whole;
    gm_stats_zero(&whole);
    cr_assert(gm_forward_backward(m, &b, 1, 99, NULL, &whole) == GA_OK, "%s", gm_last_error());
    float *gw = malloc(sizeof(float) * n);
    memcpy(gw, gm_grads(m), sizeof(float) * n);
    double gmax = 0.0;
    for (size_t k = 0; k < n; k++)
        gmax = fmax(gmax, fabs(gw[k]));
    const int parts[] = {2, 3, 5};
    for (int pi = 0; pi < 3; pi++) {
        int P = parts[pi];
        tc_case(&c, "%d parts", P);
        gm_zero_grads(m);
        gm_stats sum;
        gm_stats_zero(&sum);
        int nonempty = 0;
        for (int p = 0; p < P; p++) {
            gm_stats st;
            gm_stats_zero(&st);
            ga_status s = gm_forward_backward_part(m, &b, 1, 99, NULL, p, P, &st);
            tc_true(&c, s == GA_OK, "part %d: %s", p, gm_last_error());
            nonempty += st.tokens > 0;
            gm_stats_add(&sum, &st);
        }
        tc_eq_long(&c, "non-empty parts", nonempty, P < 3 ? P : 3);
        tc_eq_long(&c, "tokens", sum.tokens, whole.tokens);
        tc_true(&c, fabs(sum.loss_sum - whole.loss_sum) < 1e-5 * fabs(whole.loss_sum),
                "loss sum %.9g vs %.9g", sum.loss_sum, whole.loss_sum);
        tc_true(&c, memcmp(sum.level_count, whole.level_count, sizeof sum.level_count) == 0,
                "level counts differ (noise not indexed by global rows?)");
        double worst = 0.0;
        for (size_t k = 0; k < n; k++)
            worst = fmax(worst, fabs((double)gm_grads(m)[k] - gw[k]));
        tc_true(&c, worst <= 1e-5 * gmax, "gradient differs by %.3g (largest component %.3g)",
                worst, gmax);
    }
    tc_case(&c, "bad part numbers");
    tc_true(&c, gm_forward_backward_part(m, &b, 1, 99, NULL, 2, 2, NULL) == GA_EINVAL,
            "part 2 of 2 accepted");
    tc_true(&c, gm_forward_backward_part(m, &b, 1, 99, NULL, 0, 0, NULL) == GA_EINVAL,
            "0 parts accepted");
    tc_true(&c, gm_forward_backward_part(m, &b, 1, 99, NULL, -1, 2, NULL) == GA_EINVAL,
            "part -1 accepted");
    free(gw);
    gm_free(m);
    tc_finish(&c);
}
