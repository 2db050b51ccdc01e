/* layers.c — forward / backward of every layer of the translation model
 * (see layers.h for the contracts and shapes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

/* ================================================================== RNG */

uint64_t gm_mix64(uint64_t x)
{
    /* splitmix64 finaliser */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

float gm_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t h = gm_mix64(seed ^ gm_mix64(stream * 0xD6E8FEB86659FD93ull ^ gm_mix64(index)));
    /* 24 bits, centred in their cell: never exactly 0 or 1 */
    return ((float)(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

/* Random-level baseline (model.h): one uniform per (layer, t, i) from a fixed
 * seed, mapped through the cumulative probabilities.  u * total < c_l picks
 * the first level whose cumulative sum exceeds u * total; since u < 1 and
 * the sum is accumulated in the same order, a level of probability 0 can
 * never satisfy c_{l-1} <= u * total < c_l. */
#define GM_LEVEL_SEED 0x52414E444C45564Cull /* "RANDLEVL" */
#define GM_LEVEL_STREAM 0x4C56000000ull

void gm_random_levels(const float *probs, int L, int layer, int t, int N, uint8_t *lev)
{
    double total = 0.0;
    for (int l = 0; l < L; l++)
        total += (double)probs[l];
    uint64_t stream = GM_LEVEL_STREAM + (uint64_t)layer;
    for (int i = 0; i < N; i++) {
        double x = (double)gm_uniform(GM_LEVEL_SEED, stream,
                                      (uint64_t)t * 65536u + (uint64_t)i) * total;
        double c = 0.0;
        int lv = L - 1;
        for (int l = 0; l < L; l++) {
            c += (double)probs[l];
            if (x < c) {
                lv = l;
                break;
            }
        }
        lev[i] = (uint8_t)lv;
    }
}

void gm_rng_seed(gm_rng *r, uint64_t seed) { r->s = seed; }

double gm_rng_unit(gm_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t x = gm_mix64(r->s);
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

double gm_rng_normal(gm_rng *r)
{
    double u1 = gm_rng_unit(r), u2 = gm_rng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* ============================================================ embedding */

void gm_posenc_table(float *pe, int max_len, int d)
{
    for (int p = 0; p < max_len; p++)
        for (int k = 0; k < d; k += 2) {
            double freq = pow(10000.0, -(double)k / d);
            pe[(size_t)p * d + k] = (float)sin(p * freq);
            if (k + 1 < d)
                pe[(size_t)p * d + k + 1] = (float)cos(p * freq);
        }
}

void gm_embed_forward(float *out, const int32_t *tok, const int32_t *pos, int R,
                      int d, const float *E, float scale, const float *pe)
{
    for (int r = 0; r < R; r++) {
        const float *e = E + (size_t)tok[r] * d;
        const float *q = pe + (size_t)pos[r] * d;
        float *o = out + (size_t)r * d;
        for (int c = 0; c < d; c++)
            o[c] = scale * e[c] + q[c];
    }
}

void gm_embed_backward(float *dE, const float *dout, const int32_t *tok, int R,
                       int d, float scale)
{
    for (int r = 0; r < R; r++) {
        float *g = dE + (size_t)tok[r] * d;
        const float *o = dout + (size_t)r * d;
        for (int c = 0; c < d; c++)
            g[c] += scale * o[c];
    }
}

/* ============================================================ layernorm */

void gm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int R, int C)
{
    const float eps = 1e-5f;
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float mu = 0.0f;
        for (int c = 0; c < C; c++)
            mu += x[c];
        mu /= (float)C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) {
            float xm = x[c] - mu;
            var += xm * xm;
        }
        var /= (float)C;
        float rs = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++)
            o[c] = (x[c] - mu) * rs * w[c] + b[c];
        mean[r] = mu;
        rstd[r] = rs;
    }
}

void gm_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int R, int C)
{
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * C;
        const float *go = dout + (size_t)r * C;
        float *gi = dinp + (size_t)r * C;
        float mu = mean[r], rs = rstd[r];
        /* two reductions: mean(dnorm) and mean(dnorm * norm) */
        float dmean = 0.0f, dnmean = 0.0f;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - mu) * rs;
            float dnorm = w[c] * go[c];
            dmean += dnorm;
            dnmean += dnorm * norm;
        }
        dmean /= (float)C;
        dnmean /= (float)C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - mu) * rs;
            float dnorm = w[c] * go[c];
            db[c] += go[c];
            dw[c] += norm * go[c];
            gi[c] += (dnorm - dmean - norm * dnmean) * rs;
        }
    }
}

/* =============================================================== linear */

void gm_linear_forward(const ga_kernels *kt, float *out, const float *inp,
                       const float *W, const float *b, int R, int IN, int OUT)
{
    /* out [R][OUT] = inp [R][IN] * W^T, W [OUT][IN] */
    kt->sgemm(0, 1, R, OUT, IN, 1.0f, inp, IN, W, IN, 0.0f, out, OUT);
    if (b)
        for (int r = 0; r < R; r++) {
            float *o = out + (size_t)r * OUT;
            for (int j = 0; j < OUT; j++)
                o[j] += b[j];
        }
}

void gm_linear_backward(const ga_kernels *kt, float *dinp, float *dW, float *db,
                        const float *dout, const float *inp, const float *W,
                        int R, int IN, int OUT)
{
    /* dinp [R][IN] += dout [R][OUT] * W [OUT][IN] */
    if (dinp)
        kt->sgemm(0, 0, R, IN, OUT, 1.0f, dout, OUT, W, IN, 1.0f, dinp, IN);
    /* dW [OUT][IN] += dout^T [OUT][R] * inp [R][IN] */
    if (dW)
        kt->sgemm(1, 0, OUT, IN, R, 1.0f, dout, OUT, inp, IN, 1.0f, dW, IN);
    if (db)
        for (int r = 0; r < R; r++) {
            const float *g = dout + (size_t)r * OUT;
            for (int j = 0; j < OUT; j++)
                db[j] += g[j];
        }
}

/* =========================================================== activation */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

void gm_act_forward(float *out, const float *inp, size_t n, gm_act act)
{
    if (act == GM_ACT_RELU) {
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
    } else {
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float th = tanhf(GELU_K * (x + GELU_C * x * x * x));
            out[i] = 0.5f * x * (1.0f + th);
        }
    }
}

void gm_act_backward(float *dinp, const float *dout, const float *inp, size_t n,
                     gm_act act)
{
    if (act == GM_ACT_RELU) {
        for (size_t i = 0; i < n; i++) {
            float g = dout[i]; /* unconditional load: the loop vectorises */
            dinp[i] = inp[i] > 0.0f ? g : 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float th = tanhf(GELU_K * (x + GELU_C * x * x * x));
            float dth = (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
            dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * dth);
        }
    }
}

/* ============================================================== dropout */

void gm_dropout(float *x, int R, int C, float p, uint64_t seed, uint64_t stream,
                long row0)
{
    if (p <= 0.0f)
        return;
    /* Rows are consecutive, so element i of x has the global index
     * e = row0 * C + i.  Its draw is 16 bits of mix64(key + e / 4) (one hash
     * per 4 elements); it is dropped iff draw < thr = round(p * 2^16), and
     * kept ones are scaled by 1 / (1 - thr / 2^16) (exactly unbiased). */
    const uint64_t key = gm_mix64(seed ^ gm_mix64(stream * 0xD6E8FEB86659FD93ull));
    long t = lround((double)p * 65536.0);
    const uint32_t thr = t < 1 ? 1u : t > 65535 ? 65535u : (uint32_t)t;
    const float keep_scale = (float)(65536.0 / (65536.0 - thr));
    const uint64_t e0 = (uint64_t)row0 * (uint64_t)C;
    const size_t n = (size_t)R * (size_t)C;
    size_t i = 0;
    while (i < n) {
        uint64_t e = e0 + i;
        uint64_t h = gm_mix64(key + (e >> 2));
        for (int k = (int)(e & 3); k < 4 && i < n; k++, i++) {
            uint32_t u = (uint32_t)(h >> (16 * k)) & 0xFFFFu;
            float v = x[i] * keep_scale;
            x[i] = u >= thr ? v : 0.0f;
        }
    }
}

/* ============================================== multi-head self-attention */

/* Row max of n scores. */
/* max_i s[i] (NaN ignored; -inf if none).  16 running maxima, so that the
 * compiler vectorises it; the result is the same whatever the order (up to
 * the sign of a zero maximum, which no caller can see: it is subtracted). */
static float row_max(const float *s, int n)
{
    float m16[16];
    for (int j = 0; j < 16; j++)
        m16[j] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            m16[j] = s[i + j] > m16[j] ? s[i + j] : m16[j];
    float m = -INFINITY;
    for (int j = 0; j < 16; j++)
        m = m16[j] > m ? m16[j] : m;
    for (; i < n; i++)
        m = s[i] > m ? s[i] : m;
    return m;
}

void gm_mha_forward(const ga_kernels *kt, float *out, float *att, float *scratch,
                    const float *qkv, int T, int d, int H, int causal)
{
    int dh = d / H, ld = 3 * d;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < H; h++) {
        const float *q = qkv + h * dh, *k = qkv + d + h * dh, *v = qkv + 2 * d + h * dh;
        float *a = att + (size_t)h * T * T;
        /* s [T][T] = scale * q [T][dh] k^T (scratch), a = softmax rows */
        kt->sgemm(0, 1, T, T, dh, scale, q, ld, k, ld, 0.0f, scratch, T);
        for (int t = 0; t < T; t++) {
            const float *srow = scratch + (size_t)t * T;
            float *row = a + (size_t)t * T;
            int n = causal ? t + 1 : T;
            kt->softmax(srow, n, row_max(srow, n), row);
            for (int i = n; i < T; i++)
                row[i] = 0.0f;
        }
        /* out_h [T][dh] = a [T][T] v_h [T][dh] */
        kt->sgemm(0, 0, T, dh, T, 1.0f, a, T, v, ld, 0.0f, out + h * dh, d);
    }
}

void gm_mha_backward(const ga_kernels *kt, float *dqkv, float *scratch,
                     const float *dout, const float *qkv, const float *att,
                     int T, int d, int H, int causal)
{
    int dh = d / H, ld = 3 * d;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < H; h++) {
        const float *q = qkv + h * dh, *k = qkv + d + h * dh, *v = qkv + 2 * d + h * dh;
        const float *a = att + (size_t)h * T * T;
        const float *go = dout + h * dh;
        float *dq = dqkv + h * dh, *dk = dqkv + d + h * dh, *dv = dqkv + 2 * d + h * dh;
        /* dv [T][dh] = a^T [T][T] dout_h [T][dh] */
        kt->sgemm(1, 0, T, dh, T, 1.0f, a, T, go, d, 0.0f, dv, ld);
        /* da [T][T] = dout_h v^T (scratch), ds = softmax backward rows */
        float *da = scratch, *dsm = scratch + (size_t)T * T;
        kt->sgemm(0, 1, T, T, dh, 1.0f, go, d, v, ld, 0.0f, da, T);
        for (int t = 0; t < T; t++) {
            float *row = dsm + (size_t)t * T;
            int n = causal ? t + 1 : T;
            kt->softmax_backward(a + (size_t)t * T, da + (size_t)t * T, n, row);
            for (int i = n; i < T; i++)
                row[i] = 0.0f;
        }
        /* dq = scale * ds k;  dk = scale * ds^T q */
        kt->sgemm(0, 0, T, dh, T, scale, dsm, T, k, ld, 0.0f, dq, ld);
        kt->sgemm(1, 0, T, dh, T, scale, dsm, T, q, ld, 0.0f, dk, ld);
    }
}

/* ========================================== GPN cross-attention (SPEC) */

static size_t words_aligned(size_t n) { return (n + 15) & ~(size_t)15; }

size_t gm_xattn_saved_words(const gm_xattn_cfg *c, int T, int N)
{
    size_t H = (size_t)c->H, d = (size_t)c->d, g = (size_t)c->g, L = (size_t)c->L;
    size_t t = (size_t)T, n = (size_t)N, np = n + GA_KEEP_PAD;
    size_t w = 0;
    w += 2 * words_aligned(n * d);       /* kh, vh */
    w += words_aligned(H * t * n);       /* S */
    w += 3 * words_aligned(H * t);       /* m, Z, count */
    w += 2 * words_aligned(H * t * np);  /* idx, p */
    w += words_aligned(g * n);           /* P */
    w += words_aligned(t * g);           /* R */
    w += words_aligned(t * L * n);       /* pi */
    w += words_aligned((t * n + 3) / 4); /* lev (bytes) */
    return w;
}

void gm_xattn_saved_carve(gm_xattn_saved *sv, const gm_xattn_cfg *c, int T, int N,
                          float *buf)
{
    size_t H = (size_t)c->H, d = (size_t)c->d, g = (size_t)c->g, L = (size_t)c->L;
    size_t t = (size_t)T, n = (size_t)N, np = n + GA_KEEP_PAD;
    float *w = buf;
    sv->kh = w; w += words_aligned(n * d);
    sv->vh = w; w += words_aligned(n * d);
    sv->S = w; w += words_aligned(H * t * n);
    sv->m = w; w += words_aligned(H * t);
    sv->Z = w; w += words_aligned(H * t);
    sv->count = (int32_t *)w; w += words_aligned(H * t);
    sv->idx = (int32_t *)w; w += words_aligned(H * t * np);
    sv->p = w; w += words_aligned(H * t * np);
    sv->P = w; w += words_aligned(g * n);
    sv->R = w; w += words_aligned(t * g);
    sv->pi = w; w += words_aligned(t * L * n);
    sv->lev = (uint8_t *)w;
}

size_t gm_xattn_scratch_words(const gm_xattn_cfg *c, int T, int N)
{
    (void)T;
    size_t d = (size_t)c->d, g = (size_t)c->g, L = (size_t)c->L, n = (size_t)N;
    /* dkh, dvh [H][N][dh]; gv, ds [N]; dpi [L][N]; dP, dPsum [g][N]; dr [g] */
    return 2 * words_aligned(n * d) + 2 * words_aligned(n) + words_aligned(L * n) +
           2 * words_aligned(g * n) + words_aligned(g);
}

void gm_xattn_forward(const ga_kernels *kt, const gm_xattn_cfg *c, int T, int N,
                      float *out, const float *q, const float *kv, const float *x,
                      const float *mem, const gm_gpn_params *gp,
                      gm_xattn_saved *sv, gm_stats *stats)
{
    const int d = c->d, H = c->H, dh = d / H, g = c->g, L = c->L;
    const size_t np = (size_t)N + GA_KEEP_PAD;
    const float scale = 1.0f / sqrtf((float)dh);

    /* head-major copies: kh[h][i] = kv[i][h*dh..], vh[h][i] = kv[i][d + h*dh..] */
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) {
            memcpy(sv->kh + ((size_t)h * N + i) * dh, kv + (size_t)i * 2 * d + h * dh,
                   sizeof(float) * (size_t)dh);
            memcpy(sv->vh + ((size_t)h * N + i) * dh, kv + (size_t)i * 2 * d + d + h * dh,
                   sizeof(float) * (size_t)dh);
        }

    if (c->dense) {
        /* scores of all T queries, one head at a time: S[h] [T][N], m[h] [T] */
        for (int h = 0; h < H; h++)
            kt->scores(sv->kh + (size_t)h * N * dh, N, dh, q + h * dh, T, d, scale, NULL,
                       sv->S + (size_t)h * T * N, N, sv->m + (size_t)h * T);
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                size_t ht = (size_t)h * T + t;
                float *a = sv->p + ht * np;
                sv->Z[ht] = kt->softmax(sv->S + ht * N, N, sv->m[ht], a);
                sv->count[ht] = N;
                kt->dense_context(sv->vh + (size_t)h * N * dh, N, dh, a,
                                  out + (size_t)t * d + h * dh);
            }
        if (stats) {
            stats->density_sum += (double)H * T;
            stats->density_count += (long)H * T;
        }
        return;
    }

    if (c->topk_k > 0 || c->topk_frac > 0.0f) {
        /* top-k baseline (topk.c): per head the scores of all T queries
         * (S[h] [T][N], m[h] [T]), then per row the k largest and the
         * sparse context of the kept V rows.  sv->P ([g][N], g >= 1; the
         * GPN is unused here) is the selection's scratch [N]. */
        memset(sv->lev, 0, (size_t)T * N);
        for (int h = 0; h < H; h++) {
            const float *vh = sv->vh + (size_t)h * N * dh;
            kt->scores(sv->kh + (size_t)h * N * dh, N, dh, q + h * dh, T, d, scale, NULL,
                       sv->S + (size_t)h * T * N, N, sv->m + (size_t)h * T);
            for (int t = 0; t < T; t++) {
                size_t ht = (size_t)h * T + t;
                float *o = out + (size_t)t * d + h * dh;
                int cnt = gm_topk_row(sv->S + ht * N, N, c->topk_k, c->topk_frac, c->mode,
                                      &sv->m[ht], &sv->Z[ht], sv->idx + ht * np,
                                      sv->p + ht * np, sv->P);
                sv->count[ht] = cnt;
                float Z = sv->Z[ht];
                if (Z != Z)
                    for (int j = 0; j < dh; j++)
                        o[j] = NAN;
                else
                    kt->sparse_context(vh, dh, sv->idx + ht * np, sv->p + ht * np, cnt,
                                       Z > 0.0f ? 1.0f / Z : 0.0f, o);
            }
        }
        if (stats) {
            /* no levels; the "expected" density is the density itself */
            for (size_t ht = 0; ht < (size_t)H * T; ht++) {
                stats->density_sum += N > 0 ? (double)sv->count[ht] / N : 0.0;
                stats->exp_density_sum += sv->count[ht];
            }
            stats->density_count += (long)H * T;
            stats->exp_density_count += (double)H * T * N;
        }
        return;
    }

    const int rnd = c->level_probs != NULL;
    if (rnd) {
        /* random baseline: levels from (layer, t, i) only, GPN bypassed */
        for (int t = 0; t < T; t++) {
            uint8_t *lev = sv->lev + (size_t)t * N;
            if (c->forced_levels)
                memcpy(lev, c->forced_levels + (size_t)t * N, (size_t)N);
            else
                gm_random_levels(c->level_probs, L, c->layer, t, N, lev);
        }
    } else {
        /* GPN (docs/SPEC.md §3): P [g][N] once, r_t [g] and pi_t [L][N] per query */
        kt->gpn_project_keys(mem, N, d, gp->U, gp->b1, g, sv->P, N);
        for (int t = 0; t < T; t++) {
            float *r = sv->R + (size_t)t * g;
            float *pi = sv->pi + (size_t)t * L * N;
            uint8_t *lev = sv->lev + (size_t)t * N;
            kt->gpn_project_query(x + (size_t)t * d, d, gp->W, g, r);
            kt->gpn_probs(sv->P, N, r, gp->W2, gp->b2, N, g, L, pi, N, lev);
            if (c->forced_levels) {
                memcpy(lev, c->forced_levels + (size_t)t * N, (size_t)N);
            } else if (c->gumbel) {
                /* argmax(z + temp G) == argmax(log pi + temp G): log pi = z - lse */
                for (int i = 0; i < N; i++) {
                    uint64_t base = ((uint64_t)(c->row0 + t) * 65536u + (uint64_t)i) * 8u;
                    int best = 0;
                    float bestv = -INFINITY;
                    for (int l = 0; l < L; l++) {
                        float u = gm_uniform(c->seed, c->stream, base + (uint64_t)l);
                        float G = -logf(-logf(u));
                        float v = logf(pi[(size_t)l * N + i]) + c->gumbel_temp * G;
                        if (v > bestv) {
                            bestv = v;
                            best = l;
                        }
                    }
                    lev[i] = (uint8_t)best;
                }
            }
        }
    }

    /* scores, threshold and sparse context per (head, query): the library's
     * fused step with these levels, recording S, m, Z, count, idx, p for the
     * backward (the same composition as ga_attend and the decoder; a NaN
     * row of scores gives a NaN context, as there) */
    const ga_attend_trace tr = {sv->S, sv->m, sv->Z, sv->count, sv->idx, sv->p};
    if (ga_attend_traced_theta(kt, H, dh, c->mode, c->theta8, N, T, q, sv->kh, sv->vh, NULL,
                               sv->lev, out, NULL, &tr) != GA_OK)
        for (size_t i = 0; i < (size_t)T * d; i++) /* not reached with valid shapes */
            out[i] = NAN;

    if (stats) {
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                size_t ht = (size_t)h * T + t;
                stats->density_sum += N > 0 ? (double)sv->count[ht] / N : 0.0;
                /* expected density: sum_i sum_l pi_l [s_i - m >= theta_l]
                 * (random baseline: pi_l = level_probs[l]) */
                const float *s = sv->S + ht * N;
                const float *pi = sv->pi + (size_t)t * L * N;
                double e = 0.0;
                for (int i = 0; i < N; i++) {
                    float dlt = s[i] - sv->m[ht];
                    for (int l = 0; l < L; l++)
                        if (dlt >= c->theta8[l])
                            e += rnd ? c->level_probs[l] : pi[(size_t)l * N + i];
                }
                stats->exp_density_sum += e;
            }
        stats->density_count += (long)H * T;
        stats->exp_density_count += (double)H * T * N;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < N; i++)
                stats->level_count[sv->lev[(size_t)t * N + i]] += 1.0;
        stats->pairs += (double)T * N;
    }
}

void gm_xattn_backward(const ga_kernels *kt, const gm_xattn_cfg *c, int T, int N,
                       float *dq, float *dkv, float *dx, float *dmem,
                       const float *dout, const float *out, const float *q,
                       const float *x, const float *mem, const gm_gpn_params *gp,
                       gm_gpn_grads *gg, const gm_xattn_saved *sv, float reg,
                       float *scratch)
{
    const int d = c->d, H = c->H, dh = d / H, g = c->g, L = c->L;
    const size_t np = (size_t)N + GA_KEEP_PAD, n = (size_t)N;
    const float scale = 1.0f / sqrtf((float)dh);
    /* the GPN gets a gradient only when it chose the levels */
    const int topk = !c->dense && (c->topk_k > 0 || c->topk_frac > 0.0f);
    const int gpn = !c->dense && !c->level_probs && !topk;

    float *w = scratch;
    float *dkh = w; w += words_aligned(n * d);
    float *dvh = w; w += words_aligned(n * d);
    float *gv = w; w += words_aligned(n);
    float *ds = w; w += words_aligned(n);
    float *dpi = w; w += words_aligned((size_t)L * n);
    float *dP = w; w += words_aligned((size_t)g * n);
    float *dPsum = w; w += words_aligned((size_t)g * n);
    float *dr = w;

    memset(dkh, 0, sizeof(float) * n * d);
    memset(dvh, 0, sizeof(float) * n * d);
    memset(dPsum, 0, sizeof(float) * (size_t)g * n);
    memset(dq, 0, sizeof(float) * (size_t)T * d);

    for (int t = 0; t < T; t++) {
        if (gpn)
            memset(dpi, 0, sizeof(float) * (size_t)L * n);
        for (int h = 0; h < H; h++) {
            size_t ht = (size_t)h * T + t;
            const float *dc = dout + (size_t)t * d + h * dh;
            const float *kh = sv->kh + (size_t)h * N * dh, *vh = sv->vh + (size_t)h * N * dh;
            float *dkh_h = dkh + (size_t)h * N * dh, *dvh_h = dvh + (size_t)h * N * dh;
            if (c->dense) {
                const float *a = sv->p + ht * np;
                /* dV += a dc;  gv = V dc;  ds = softmax backward */
                kt->dense_context_backward(vh, N, dh, a, dc, dvh_h, gv);
                kt->softmax_backward(a, gv, N, ds);
            } else if (topk) {
                /* top-k baseline: the kept set is fixed, the weights are
                 * differentiated as in the threshold modes (gm_topk_row_backward) */
                float Z = sv->Z[ht];
                const float *cc = out + (size_t)t * d + h * dh;
                const int32_t *idx = sv->idx + ht * np;
                const float *p = sv->p + ht * np;
                int cnt = sv->count[ht];
                kt->sparse_context_backward(vh, dh, idx, p, cnt, Z > 0.0f ? 1.0f / Z : 0.0f, dc,
                                            dvh_h, NULL);
                kt->dense_context_backward(vh, N, dh, p, dc, NULL, gv);
                double cdc = 0.0;
                for (int j = 0; j < dh; j++)
                    cdc += (double)cc[j] * dc[j];
                gm_topk_row_backward(sv->S + ht * N, N, sv->m[ht], Z, c->mode, idx, p, cnt, gv,
                                     (float)cdc, ds);
            } else {
                float Z = sv->Z[ht];
                const float *cc = out + (size_t)t * d + h * dh;
                int cnt = sv->count[ht];
                /* dV of the kept rows (weights p/Z) */
                kt->sparse_context_backward(vh, dh, sv->idx + ht * np, sv->p + ht * np,
                                            cnt, Z > 0.0f ? 1.0f / Z : 0.0f, dc, dvh_h,
                                            NULL);
                /* gv = V_i . dc for every key (the GPN's STE gradient needs the
                 * dropped keys too); the weights argument is unused (dV NULL) */
                kt->dense_context_backward(vh, N, dh, sv->p + ht * np, dc, NULL, gv);
                double cdc = 0.0;
                for (int j = 0; j < dh; j++)
                    cdc += (double)cc[j] * dc[j];
                kt->threshold_backward(sv->S + ht * N, N, sv->m[ht], Z,
                                       sv->lev + (size_t)t * N, c->theta8, L, c->mode,
                                       gv, (float)cdc, ds, gpn ? dpi : NULL, N, reg);
            }
            /* dq_th += scale * ds K;  dK += scale * ds q_th */
            kt->scores_backward(kh, N, dh, q + (size_t)t * d + h * dh, scale, ds,
                                dq + (size_t)t * d + h * dh, dkh_h);
        }
        if (gpn) {
            /* GPN backward of query t: softmax, W2, relu -> dP_t, dr_t */
            const float *r = sv->R + (size_t)t * g;
            memset(dr, 0, sizeof(float) * (size_t)g);
            kt->gpn_backward(sv->P, N, r, gp->W2, N, g, L, sv->pi + (size_t)t * L * N, dpi,
                             N, dP, N, dr, gg->W2, gg->b2);
            for (size_t k = 0; k < (size_t)g * n; k++)
                dPsum[k] += dP[k];
            kt->gpn_project_query_backward(x + (size_t)t * d, d, gp->W, g, dr, gg->W,
                                           dx + (size_t)t * d);
        }
    }
    if (gpn)
        kt->gpn_project_keys_backward(mem, N, d, gp->U, g, dPsum, N, gg->U, gg->b1, dmem);

    /* back to the [N][2d] layout of kv */
    for (int h = 0; h < H; h++)
        for (int i = 0; i < N; i++) {
            memcpy(dkv + (size_t)i * 2 * d + h * dh, dkh + ((size_t)h * N + i) * dh,
                   sizeof(float) * (size_t)dh);
            memcpy(dkv + (size_t)i * 2 * d + d + h * dh, dvh + ((size_t)h * N + i) * dh,
                   sizeof(float) * (size_t)dh);
        }
}

/* ================================ tied output projection + smoothed CE */

double gm_output_ce(const ga_kernels *kt, const float *x, const int32_t *y, int R,
                    int d, const float *E, int V, float eps, float grad_scale,
                    float *dx, float *dE, float *logits, gm_stats *stats)
{
    double total = 0.0;
    for (int r0 = 0; r0 < R; r0 += GM_CE_BLOCK) {
        int rb = R - r0 < GM_CE_BLOCK ? R - r0 : GM_CE_BLOCK;
        const float *xb = x + (size_t)r0 * d;
        /* logits [rb][V] = x_b E^T */
        kt->sgemm(0, 1, rb, V, d, 1.0f, xb, d, E, d, 0.0f, logits, V);
        for (int r = 0; r < rb; r++) {
            float *l = logits + (size_t)r * V;
            int target = y[r0 + r];
            if (target == GM_PAD) {
                memset(l, 0, sizeof(float) * (size_t)V);
                continue;
            }
            float m = -INFINITY;
            int arg = 0;
            double lsum = 0.0;
            for (int v = 0; v < V; v++) {
                if (l[v] > m) {
                    m = l[v];
                    arg = v;
                }
                lsum += l[v];
            }
            float ly = l[target];
            /* probabilities into the spare row, then back (the kernel's s and
             * a are distinct arrays by contract) */
            float *prob = logits + (size_t)GM_CE_BLOCK * V;
            float Z = kt->softmax(l, V, m, prob);
            memcpy(l, prob, sizeof(float) * (size_t)V);
            double lse = (double)m + log((double)Z);
            double nll = lse - ly;
            double loss = (1.0 - eps) * nll + eps * (lse - lsum / V);
            total += loss;
            if (stats) {
                stats->loss_sum += loss;
                stats->nll_sum += nll;
                stats->tokens += 1;
                stats->correct += arg == target;
            }
            if (dx) {
                float off = eps / (float)V;
                for (int v = 0; v < V; v++)
                    l[v] = grad_scale * (l[v] - off);
                l[target] -= grad_scale * (1.0f - eps);
            }
        }
        if (dx) {
            /* dx_b [rb][d] += dlogits [rb][V] E [V][d];  dE += dlogits^T x_b */
            kt->sgemm(0, 0, rb, d, V, 1.0f, logits, V, E, d, 1.0f, dx + (size_t)r0 * d, d);
            if (dE)
                kt->sgemm(1, 0, V, d, rb, 1.0f, logits, V, xb, d, 1.0f, dE, d);
        }
    }
    return total;
}

void gm_output_logp(const ga_kernels *kt, const float *x, int R, int d, const float *E,
                    const float *Ep, int V, float *logp, float *tmp)
{
    if (Ep)
        kt->sgemm_packed(0, R, V, d, 1.0f, x, d, Ep, 0.0f, logp, V);
    else
        kt->sgemm(0, 1, R, V, d, 1.0f, x, d, E, d, 0.0f, logp, V);
    for (int r = 0; r < R; r++) {
        float *l = logp + (size_t)r * V;
        float m = row_max(l, V);
        /* Z as the training loss forms it (gm_output_ce): the table's softmax */
        float Z = kt->softmax(l, V, m, tmp);
        float lse = (float)((double)m + log((double)Z));
        for (int v = 0; v < V; v++)
            l[v] -= lse;
    }
}
