/* test_determinism.c — bitwise reproducibility.
 *   - every table entry x every variant: two calls on identical inputs (and
 *     identical initial accumulators) give bitwise-identical outputs and
 *     return values;
 *   - ga_attend: identical C, kept and levels with pool == NULL and with
 *     pools of 1, 2 and 3 threads (and on a second call with the same pool).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One run of a kernel on inputs drawn from a fixed seed; every output (and
 * the return value) is serialised into out.  Returns the byte count. */
typedef size_t (*det_fn)(const ga_kernels *kt, int N, unsigned char *out);

#define DH 64
#define G 16
#define L 8
#define D 48

typedef struct dctx {
    tarena a;
    trng rng;
    unsigned char *out;
    size_t len;
} dctx;

static void d_begin(dctx *x, unsigned char *out)
{
    memset(&x->a, 0, sizeof x->a);
    rng_init(&x->rng, 4242);
    x->out = out;
    x->len = 0;
}

static float *d_in(dctx *x, size_t n)
{
    float *p = ar_f(&x->a, "in", n + 1, 1);
    fill_unif(&x->rng, p, n, -1, 1);
    return p;
}

static void d_put(dctx *x, const void *p, size_t bytes)
{
    memcpy(x->out + x->len, p, bytes);
    x->len += bytes;
}

static size_t d_end(dctx *x)
{
    ar_free(&x->a);
    return x->len;
}

static size_t det_gpn_project_keys(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *E = d_in(&x, (size_t)N * D), *U = d_in(&x, G * D), *b1 = d_in(&x, G);
    float *P = d_in(&x, (size_t)G * N);
    kt->gpn_project_keys(E, N, D, U, b1, G, P, N);
    d_put(&x, P, sizeof(float) * G * N);
    return d_end(&x);
}

static size_t det_gpn_project_query(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *xx = d_in(&x, N), *W = d_in(&x, (size_t)G * N), *r = d_in(&x, G);
    kt->gpn_project_query(xx, N, W, G, r);
    d_put(&x, r, sizeof(float) * G);
    return d_end(&x);
}

static size_t det_gpn_levels(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *P = d_in(&x, (size_t)G * N), *r = d_in(&x, G), *W2 = d_in(&x, L * G);
    float *b2 = d_in(&x, L);
    uint8_t *lev = ar_u8(&x.a, "lev", N, 0);
    int f = kt->gpn_levels(P, N, r, W2, b2, N, G, L, lev);
    d_put(&x, lev, N);
    d_put(&x, &f, sizeof f);
    return d_end(&x);
}

static size_t det_gpn_probs(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *P = d_in(&x, (size_t)G * N), *r = d_in(&x, G), *W2 = d_in(&x, L * G);
    float *b2 = d_in(&x, L), *pi = d_in(&x, (size_t)L * N);
    uint8_t *lev = ar_u8(&x.a, "lev", N, 0);
    int f = kt->gpn_probs(P, N, r, W2, b2, N, G, L, pi, N, lev);
    d_put(&x, lev, N);
    d_put(&x, pi, sizeof(float) * L * N);
    d_put(&x, &f, sizeof f);
    return d_end(&x);
}

static size_t det_scores(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *K = d_in(&x, (size_t)N * DH), *Q = d_in(&x, 3 * DH), *S = d_in(&x, (size_t)3 * N);
    float m[3];
    kt->scores(K, N, DH, Q, 3, DH, 0.125f, NULL, S, N, m);
    d_put(&x, S, sizeof(float) * 3 * N);
    d_put(&x, m, sizeof m);
    return d_end(&x);
}

static size_t det_threshold(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *s = d_in(&x, N);
    for (int i = 0; i < N; i++)
        s[i] *= 6.0f;
    float m = -INFINITY;
    for (int i = 0; i < N; i++)
        m = fmaxf(m, s[i]);
    uint8_t *lev = ar_u8(&x.a, "lev", N, 0);
    fill_levels(&x.rng, lev, N, 3);
    float th[GA_MAX_LEVELS];
    test_theta(3, th, NULL);
    for (int mode = 0; mode < 2; mode++) {
        int32_t *idx = ar_i32(&x.a, "idx", (size_t)N + GA_KEEP_PAD, 0);
        float *p = ar_f(&x.a, "p", (size_t)N + GA_KEEP_PAD, 0);
        float Z;
        int n = kt->threshold(s, N, m, lev, th, (ga_norm)mode, idx, p, &Z);
        d_put(&x, &n, sizeof n);
        d_put(&x, &Z, sizeof Z);
        d_put(&x, idx, sizeof(int32_t) * n);
        d_put(&x, p, sizeof(float) * n);
    }
    return d_end(&x);
}

static size_t det_sparse_context(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *V = d_in(&x, (size_t)N * DH), *p = d_in(&x, N), *c = d_in(&x, DH);
    int32_t *idx = ar_i32(&x.a, "idx", N, 0);
    int count = 0;
    for (int i = 0; i < N; i++)
        if (i % 3 != 1)
            idx[count++] = i;
    kt->sparse_context(V, DH, idx, p, count, 0.3f, c);
    d_put(&x, c, sizeof(float) * DH);
    return d_end(&x);
}

static size_t det_softmax(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *s = d_in(&x, N), *a = d_in(&x, N);
    float m = -INFINITY;
    for (int i = 0; i < N; i++)
        m = fmaxf(m, s[i]);
    float Z = kt->softmax(s, N, m, a);
    d_put(&x, a, sizeof(float) * N);
    d_put(&x, &Z, sizeof Z);
    return d_end(&x);
}

static size_t det_dense_context(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *V = d_in(&x, (size_t)N * DH), *a = d_in(&x, N), *c = d_in(&x, DH);
    kt->dense_context(V, N, DH, a, c);
    d_put(&x, c, sizeof(float) * DH);
    return d_end(&x);
}

static size_t det_scores_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *K = d_in(&x, (size_t)N * DH), *q = d_in(&x, DH), *ds = d_in(&x, N);
    float *dq = d_in(&x, DH), *dK = d_in(&x, (size_t)N * DH);
    kt->scores_backward(K, N, DH, q, 0.125f, ds, dq, dK);
    d_put(&x, dq, sizeof(float) * DH);
    d_put(&x, dK, sizeof(float) * N * DH);
    return d_end(&x);
}

static size_t det_threshold_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *s = d_in(&x, N), *gv = d_in(&x, N), *ds = d_in(&x, N);
    float *dpi = d_in(&x, (size_t)L * N);
    for (int i = 0; i < N; i++)
        s[i] *= 6.0f;
    float m = -INFINITY;
    for (int i = 0; i < N; i++)
        m = fmaxf(m, s[i]);
    uint8_t *lev = ar_u8(&x.a, "lev", N, 0);
    fill_levels(&x.rng, lev, N, L);
    float th[GA_MAX_LEVELS];
    test_theta(L, th, NULL);
    for (int mode = 0; mode < 2; mode++) {
        kt->threshold_backward(s, N, m, 3.5f, lev, th, L, (ga_norm)mode, gv, 0.2f, ds, dpi, N,
                               0.01f);
        d_put(&x, ds, sizeof(float) * N);
        d_put(&x, dpi, sizeof(float) * L * N);
    }
    return d_end(&x);
}

static size_t det_softmax_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *a = d_in(&x, N), *da = d_in(&x, N), *ds = d_in(&x, N);
    kt->softmax_backward(a, da, N, ds);
    d_put(&x, ds, sizeof(float) * N);
    return d_end(&x);
}

static size_t det_sparse_context_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *V = d_in(&x, (size_t)N * DH), *p = d_in(&x, N), *dc = d_in(&x, DH);
    float *dV = d_in(&x, (size_t)N * DH), *gk = d_in(&x, N);
    int32_t *idx = ar_i32(&x.a, "idx", N, 0);
    int count = 0;
    for (int i = 0; i < N; i++)
        if (i % 3 != 1)
            idx[count++] = i;
    kt->sparse_context_backward(V, DH, idx, p, count, 0.3f, dc, dV, gk);
    d_put(&x, dV, sizeof(float) * N * DH);
    d_put(&x, gk, sizeof(float) * count);
    return d_end(&x);
}

static size_t det_dense_context_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *V = d_in(&x, (size_t)N * DH), *a = d_in(&x, N), *dc = d_in(&x, DH);
    float *dV = d_in(&x, (size_t)N * DH), *ga = d_in(&x, N);
    kt->dense_context_backward(V, N, DH, a, dc, dV, ga);
    d_put(&x, dV, sizeof(float) * N * DH);
    d_put(&x, ga, sizeof(float) * N);
    return d_end(&x);
}

static size_t det_gpn_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *P = d_in(&x, (size_t)G * N), *r = d_in(&x, G), *W2 = d_in(&x, L * G);
    float *pi = d_in(&x, (size_t)L * N), *dpi = d_in(&x, (size_t)L * N);
    float *dP = d_in(&x, (size_t)G * N), *dr = d_in(&x, G), *dW2 = d_in(&x, L * G);
    float *db2 = d_in(&x, L);
    kt->gpn_backward(P, N, r, W2, N, G, L, pi, dpi, N, dP, N, dr, dW2, db2);
    d_put(&x, dP, sizeof(float) * G * N);
    d_put(&x, dr, sizeof(float) * G);
    d_put(&x, dW2, sizeof(float) * L * G);
    d_put(&x, db2, sizeof(float) * L);
    return d_end(&x);
}

static size_t det_gpn_project_keys_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *E = d_in(&x, (size_t)N * D), *U = d_in(&x, G * D), *dP = d_in(&x, (size_t)G * N);
    float *dU = d_in(&x, G * D), *db1 = d_in(&x, G), *dE = d_in(&x, (size_t)N * D);
    kt->gpn_project_keys_backward(E, N, D, U, G, dP, N, dU, db1, dE);
    d_put(&x, dU, sizeof(float) * G * D);
    d_put(&x, db1, sizeof(float) * G);
    d_put(&x, dE, sizeof(float) * N * D);
    return d_end(&x);
}

static size_t det_gpn_project_query_backward(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *xx = d_in(&x, N), *W = d_in(&x, (size_t)G * N), *dr = d_in(&x, G);
    float *dW = d_in(&x, (size_t)G * N), *dx = d_in(&x, N);
    kt->gpn_project_query_backward(xx, N, W, G, dr, dW, dx);
    d_put(&x, dW, sizeof(float) * G * N);
    d_put(&x, dx, sizeof(float) * N);
    return d_end(&x);
}

static size_t det_preview_dots(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    const int P = (N + 15) / 16;
    float *r = d_in(&x, (size_t)P * 16 * DH + DH);
    int8_t *codes = (int8_t *)ar_u8(&x.a, "codes", (size_t)P * 16 * DH, 0);
    int8_t *qc = (int8_t *)ar_u8(&x.a, "qc", DH, 0);
    int32_t *ksum = ar_i32(&x.a, "ksum", (size_t)P * 16, 0);
    memset(ksum, 0, sizeof(int32_t) * (size_t)P * 16); /* the arena fills 0xFF (-1) */
    for (size_t j = 0; j < (size_t)P * 16 * DH; j++)
        codes[j] = (int8_t)lrintf(r[j] * 127.0f);
    for (int j = 0; j < DH; j++)
        qc[j] = (int8_t)lrintf(r[(size_t)P * 16 * DH + j] * 127.0f);
    for (int i = 0; i < P * 16; i++)
        for (int d = 0; d < DH; d++)
            ksum[i] += codes[(size_t)(i / 16) * 16 * DH + (size_t)(d / 4) * 64 + (i % 16) * 4 + d % 4];
    float *dot = d_in(&x, N);
    kt->preview_dots(codes, ksum, N, DH, qc, dot);
    d_put(&x, dot, sizeof(float) * N);
    return d_end(&x);
}

static size_t det_preview_bounds(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *dot = d_in(&x, N), *meta = d_in(&x, 4 * (size_t)N), *qk = d_in(&x, 3);
    for (int i = 0; i < N; i++) {
        dot[i] = rintf(dot[i] * 1000.0f);
        if (i % 5 == 2)
            meta[3 * (size_t)N + i] = -INFINITY;
    }
    float *shat = d_in(&x, N), *ub = d_in(&x, N);
    float mlb = kt->preview_bounds(dot, meta, N, N, qk, shat, ub);
    d_put(&x, shat, sizeof(float) * N);
    d_put(&x, ub, sizeof(float) * N);
    d_put(&x, &mlb, sizeof mlb);
    return d_end(&x);
}

static size_t det_preview_select(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *ub = d_in(&x, N), *T8 = d_in(&x, 8);
    uint8_t *lev = ar_u8(&x.a, "lev", N, 0);
    fill_levels(&x.rng, lev, N, 3);
    int32_t *cand = ar_i32(&x.a, "cand", (size_t)N + GA_KEEP_PAD, 0);
    int n = kt->preview_select(ub, N, lev, T8, cand);
    d_put(&x, &n, sizeof n);
    d_put(&x, cand, sizeof(int32_t) * n);
    return d_end(&x);
}

static size_t det_scores_gather(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    float *K = d_in(&x, (size_t)N * DH), *q = d_in(&x, DH), *s = d_in(&x, N);
    int32_t *idx = ar_i32(&x.a, "idx", N, 0);
    int count = 0;
    for (int i = 0; i < N; i += 1 + i % 3)
        idx[count++] = i;
    float m = kt->scores_gather(K, DH, idx, count, q, 0.125f, NULL, s);
    d_put(&x, s, sizeof(float) * count);
    d_put(&x, &m, sizeof m);
    return d_end(&x);
}

static size_t det_scores_packed(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    const int P = (N + 15) / 16;
    float *Kp = d_in(&x, (size_t)P * 16 * DH), *q = d_in(&x, DH), *s = d_in(&x, N);
    float m = kt->scores_packed(Kp, N, DH, q, 0.125f, NULL, s);
    d_put(&x, s, sizeof(float) * N);
    d_put(&x, &m, sizeof m);
    return d_end(&x);
}

static size_t det_quantize_rows(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    const int n = N < 300 ? N : 300, slots = (n + 15) / 16 * 16;
    float *X = d_in(&x, (size_t)n * DH);
    int8_t *codes = (int8_t *)ar_u8(&x.a, "codes", (size_t)slots * DH, 0);
    float *sc = d_in(&x, n), *nr = d_in(&x, n), *er = d_in(&x, n);
    int32_t *cs = ar_i32(&x.a, "cs", n, 0);
    kt->quantize_rows(X, n, DH, DH, DH, 16, codes, sc, cs, nr, er);
    d_put(&x, codes, (size_t)slots * DH);
    d_put(&x, sc, sizeof(float) * n);
    d_put(&x, cs, sizeof(int32_t) * n);
    d_put(&x, nr, sizeof(float) * n);
    d_put(&x, er, sizeof(float) * n);
    return d_end(&x);
}

static size_t det_flash_block(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    const int T = 29;
    float *Q = d_in(&x, (size_t)T * DH), *K = d_in(&x, (size_t)N * DH);
    float *V = d_in(&x, (size_t)N * DH), *C = d_in(&x, (size_t)T * DH);
    float *ws = d_in(&x, GA_FLASH_WS(DH));
    uint32_t ok = kt->flash_block(Q, DH, T, K, V, N, DH, 0.125f, NULL, C, DH, ws);
    d_put(&x, C, sizeof(float) * T * DH);
    d_put(&x, &ok, sizeof ok);
    return d_end(&x);
}

static size_t det_sgemm(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    int M = 37, K = N < 300 ? N : 300; /* C [M][N] = A [M][K] B^T, B [N][K] */
    float *A = d_in(&x, (size_t)M * K), *B = d_in(&x, (size_t)N * K);
    float *C = d_in(&x, (size_t)M * N);
    kt->sgemm(0, 1, M, N, K, 0.75f, A, K > 0 ? K : 1, B, K > 0 ? K : 1, 0.5f, C, N);
    d_put(&x, C, sizeof(float) * M * N);
    return d_end(&x);
}

static size_t det_sgemm_pack(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    int K = N < 64 ? N : 64; /* op(B) = B^T, B [N][K] (the packed form fits the output) */
    float *B = d_in(&x, (size_t)N * K);
    size_t n = kt->sgemm_pack(1, K, N, B, K > 0 ? K : 1, NULL);
    float *Bp = aligned_alloc(64, sizeof(float) * ((n + 15) / 16 * 16 + 16));
    cr_assert(Bp);
    kt->sgemm_pack(1, K, N, B, K > 0 ? K : 1, Bp);
    d_put(&x, Bp, sizeof(float) * n);
    free(Bp);
    return d_end(&x);
}

static size_t det_sgemm_packed(const ga_kernels *kt, int N, unsigned char *out)
{
    dctx x;
    d_begin(&x, out);
    int M = 37, K = N < 300 ? N : 300; /* C [M][N] = A [M][K] B^T, B [N][K] packed */
    float *A = d_in(&x, (size_t)M * K), *B = d_in(&x, (size_t)N * K);
    float *C = d_in(&x, (size_t)M * N);
    size_t n = kt->sgemm_pack(1, K, N, B, K > 0 ? K : 1, NULL);
    float *Bp = aligned_alloc(64, sizeof(float) * ((n + 15) / 16 * 16 + 16));
    cr_assert(Bp);
    kt->sgemm_pack(1, K, N, B, K > 0 ? K : 1, Bp);
    kt->sgemm_packed(0, M, N, K, 0.75f, A, K > 0 ? K : 1, Bp, 0.5f, C, N);
    d_put(&x, C, sizeof(float) * M * N);
    free(Bp);
    return d_end(&x);
}

Test(determinism, every_kernel_repeatable, .timeout = TEST_TIMEOUT)
{
    static const struct {
        const char *name;
        det_fn fn;
    } K[] = {
#define ENTRY(ret, f, params) {#f, det_##f},
        GA_TABLE_LIST(ENTRY)
#undef ENTRY
    };
    static const int NS[] = {1, 17, 1001};
    const int nk = (int)(sizeof K / sizeof K[0]);
    cr_assert_eq(nk, GA_TABLE_COUNT);
    tvariants v;
    tcheck c;
    variants_get(&v, "determinism kernels");
    for (int kk = 0; kk < nk; kk++)
        variants_cover(&v, K[kk].name);
    tc_init(&c, "determinism");
    /* largest output: gpn_project_keys_backward at N = 1001 (N*D + ...) or
     * threshold_backward (2 * (L + 1) * N floats) */
    size_t cap = sizeof(float) * (size_t)(2 * 1001 * DH + 4 * 1001 * (L + 1) + 1001 * D +
                                          4 * G * D + 37 * 1001 + 4096);
    unsigned char *o1 = malloc(cap), *o2 = malloc(cap);
    cr_assert(o1 && o2);
    for (int vi = 0; vi < v.n; vi++) {
        c.isa = v.k[vi]->name;
        for (int kk = 0; kk < nk; kk++)
            for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++) {
                tc_case(&c, "%s N=%d", K[kk].name, NS[in]);
                memset(o1, 0, cap);
                memset(o2, 0, cap);
                size_t n1 = K[kk].fn(v.k[vi], NS[in], o1);
                size_t n2 = K[kk].fn(v.k[vi], NS[in], o2);
                cr_assert(n1 <= cap, "determinism buffer too small for %s", K[kk].name);
                tc_eq_long(&c, "output size", (long)n1, (long)n2);
                tc_bits(&c, K[kk].name, o1, o2, n1 < n2 ? n1 : n2);
            }
    }
    free(o1);
    free(o2);
    tc_finish(&c);
}

/* ga_attend: pool NULL and pools of 1, 2, 3 threads (each used twice) */
Test(determinism, attend_thread_counts, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "determinism attend pools");
    tc_init(&c, "ga_attend determinism");
    ga_pool *pools[4] = {NULL, NULL, NULL, NULL};
    for (int p = 1; p <= 3; p++) {
        pools[p] = ga_pool_create(p, GA_PLACE_NONE, NULL, 0);
        cr_assert_not_null(pools[p], "ga_pool_create(%d): %s", p, ga_last_error());
    }
    int bigN = t_quick() ? 1001 : 4097;
    const int NS[] = {33, 1001, bigN};
    trng rng;
    rng_init(&rng, 801);
    for (int mode = 0; mode < 3; mode++)
        for (int it = 0; it < 5; it++) /* 33 crosses ga_attend's 32-query block */
            for (int in = 0; in < 3; in++) {
                static const int TS[] = {1, 2, 5, 17, 33};
                int T = TS[it], N = NS[in], H = 4, dh = 64, g = 16;
                ga_config cfg;
                float th[GA_MAX_LEVELS];
                test_theta(3, th, &cfg);
                cfg.H = H;
                cfg.dh = dh;
                cfg.g = g;
                cfg.mode = mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
                cfg.dense = mode == 2;
                tarena a = {0};
                size_t nq = (size_t)T * H * dh, nk = (size_t)H * N * dh;
                float *Q = ar_f(&a, "Q", nq, 1), *K = ar_f(&a, "K", nk, 1);
                float *V = ar_f(&a, "V", nk, 1), *bias = ar_f(&a, "bias", N, 1);
                float *P = ar_f(&a, "P", (size_t)g * N, 1), *R = ar_f(&a, "R", (size_t)T * g, 1);
                float *W2 = ar_f(&a, "W2", (size_t)3 * g, 1), *b2 = ar_f(&a, "b2", 3, 1);
                fill_unif(&rng, Q, nq, -9, 9);
                fill_unif(&rng, K, nk, -1, 1);
                fill_unif(&rng, V, nk, -1, 1);
                for (int i = 0; i < N; i++)
                    bias[i] = i % 11 == 5 ? -INFINITY : 0.0f;
                fill_unif(&rng, P, (size_t)g * N, -1, 1);
                fill_unif(&rng, R, (size_t)T * g, -1, 1);
                fill_unif(&rng, W2, (size_t)3 * g, -1, 1);
                fill_unif(&rng, b2, 3, -0.3, 0.3);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    float *C0 = NULL;
                    int *k0 = NULL;
                    uint8_t *l0 = NULL;
                    for (int p = 0; p <= 3; p++)
                        for (int rep = 0; rep < (p ? 2 : 1); rep++) {
                            tc_case(&c, "mode=%d N=%d T=%d pool=%d threads, call %d", mode, N, T,
                                    p, rep + 1);
                            float *C = ar_f(&a, "C", nq, 0);
                            int *kept = ar_alloc(&a, "kept", sizeof(int) * T * H, 0);
                            uint8_t *lev = ar_u8(&a, "levels", (size_t)T * N, 0);
                            if (cfg.dense)
                                memset(lev, 0, (size_t)T * N);
                            ga_status st = ga_attend(v.k[vi], pools[p], &cfg, N, T, Q, K, V,
                                                     bias, P, N, R, W2, b2, C, kept, lev);
                            if (!tc_true(&c, st == GA_OK, "ga_attend: %s", ga_last_error()))
                                continue;
                            if (!C0) {
                                C0 = C;
                                k0 = kept;
                                l0 = lev;
                                continue;
                            }
                            tc_bits(&c, "C vs pool == NULL", C, C0, sizeof(float) * nq);
                            tc_bits(&c, "kept vs pool == NULL", kept, k0, sizeof(int) * T * H);
                            tc_bits(&c, "levels vs pool == NULL", lev, l0, (size_t)T * N);
                        }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    for (int p = 1; p <= 3; p++)
        ga_pool_destroy(pools[p]);
    tc_finish(&c);
}
