/* test_bounds.c — read/write bounds with guard pages.
 *
 * Every input and output buffer of a kernel gets its own mapping whose
 * neighbouring page is PROT_NONE: first right after the last valid element
 * (GUARD_AFTER), then right before the first (GUARD_BEFORE).  Any read past an
 * input, any write past an output (for threshold: at index N + GA_KEEP_PAD or
 * beyond) faults; Criterion runs each test in its own process and reports
 * the fault as a crash of that test, and the handler below prints the case
 * that was running.  Strided layouts use ld == N here, so the last row ends
 * at the guard.  (Writes into strided padding gaps and the exact-write
 * canaries around every output are checked by the correctness tests.)
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static char g_case[256];

static void on_fault(int sig)
{
    static const char pre[] = "\ngranattn-tests bounds: memory fault (guard page hit) in ";
    ssize_t r = write(2, pre, sizeof pre - 1);
    r = write(2, g_case, strlen(g_case));
    r = write(2, "\n", 1);
    (void)r;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_fault_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Guarded buffers of one case. */
typedef struct gctx {
    tguard g[24];
    int n, side;
    trng rng;
} gctx;

static void *gbuf(gctx *x, size_t bytes)
{
    cr_assert(x->n < 24, "too many guarded buffers");
    return guard_alloc(&x->g[x->n++], bytes, x->side);
}

/* input or accumulated output: random values in [-1, 1] */
static float *gin(gctx *x, size_t n)
{
    float *p = gbuf(x, n * sizeof(float));
    fill_unif(&x->rng, p, n, -1, 1);
    return p;
}

/* overwritten output: left as the 0xFF (NaN) fill */
static float *gout(gctx *x, size_t n) { return gbuf(x, n * sizeof(float)); }

static uint8_t *glev(gctx *x, size_t n, int L)
{
    uint8_t *p = gbuf(x, n);
    fill_levels(&x->rng, p, n, L);
    return p;
}

static void gfree(gctx *x)
{
    for (int i = 0; i < x->n; i++)
        guard_free(&x->g[i]);
    x->n = 0;
}

static const int NS[] = {0, 1, 3, 5, 8, 15, 16, 17, 31, 33, 100};
#define NN ((int)(sizeof NS / sizeof NS[0]))
static const int DH[] = {1, 3, 17, 64};
static const int GS[] = {1, 5, 16};
static const int LS[] = {1, 3, 8};

typedef void (*bounds_fn)(const ga_kernels *kt, gctx *x);

static void run_bounds(const char *name, bounds_fn fn)
{
    tvariants v;
    char test[64];
    snprintf(test, sizeof test, "bounds %s", name);
    variants_get(&v, test);
    install_fault_handler();
    for (int vi = 0; vi < v.n; vi++)
        for (int side = 0; side < 2; side++) {
            gctx x;
            memset(&x, 0, sizeof x);
            x.side = side;
            rng_init(&x.rng, 900 + (uint64_t)side);
            snprintf(g_case, sizeof g_case, "%s [%s], guard %s", name, v.k[vi]->name,
                     side == GUARD_AFTER ? "after the end" : "before the start");
            fn(v.k[vi], &x);
        }
}

/* Appends the sizes to g_case (printed if a guard page is hit). */
static void set_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_case(const char *fmt, ...)
{
    char *p = strstr(g_case, " | ");
    if (p)
        *p = '\0';
    size_t len = strlen(g_case);
    snprintf(g_case + len, sizeof g_case - len, " | ");
    len = strlen(g_case);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_case + len, sizeof g_case - len, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- kernels */
static void b_gpn_project_keys(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int ig = 0; ig < 3; ig++) {
                int N = NS[in], d = DH[id], g = GS[ig];
                set_case("N=%d d=%d g=%d", N, d, g);
                float *E = gin(x, (size_t)N * d), *U = gin(x, (size_t)g * d), *b1 = gin(x, g);
                kt->gpn_project_keys(E, N, d, U, b1, g, gout(x, (size_t)g * N), N);
                gfree(x);
            }
}

static void b_gpn_project_query(const ga_kernels *kt, gctx *x)
{
    for (int id = 0; id < NN; id++)
        for (int ig = 0; ig < 3; ig++) {
            int d = NS[id], g = GS[ig];
            set_case("d=%d g=%d", d, g);
            kt->gpn_project_query(gin(x, d), d, gin(x, (size_t)g * d), g, gout(x, g));
            gfree(x);
        }
}

static void b_gpn_levels_probs(const ga_kernels *kt, gctx *x, int probs)
{
    for (int in = 0; in < NN; in++)
        for (int ig = 0; ig < 3; ig++)
            for (int il = 0; il < 3; il++) {
                int N = NS[in], g = GS[ig], L = LS[il];
                set_case("N=%d g=%d L=%d", N, g, L);
                float *P = gin(x, (size_t)g * N), *r = gin(x, g), *W2 = gin(x, (size_t)L * g);
                float *b2 = gin(x, L);
                uint8_t *lev = gbuf(x, N);
                if (probs)
                    kt->gpn_probs(P, N, r, W2, b2, N, g, L, gout(x, (size_t)L * N), N, lev);
                else
                    kt->gpn_levels(P, N, r, W2, b2, N, g, L, lev);
                gfree(x);
            }
}
static void b_gpn_levels(const ga_kernels *kt, gctx *x) { b_gpn_levels_probs(kt, x, 0); }
static void b_gpn_probs(const ga_kernels *kt, gctx *x) { b_gpn_levels_probs(kt, x, 1); }

static void b_scores(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int T = 1; T <= 3; T += 2)
                for (int wb = 0; wb < 2; wb++) {
                    int N = NS[in], dh = DH[id];
                    set_case("N=%d dh=%d T=%d bias=%d", N, dh, T, wb);
                    float *K = gin(x, (size_t)N * dh), *Q = gin(x, (size_t)T * dh);
                    float *bias = NULL;
                    if (wb) {
                        bias = gbuf(x, sizeof(float) * N);
                        for (int i = 0; i < N; i++)
                            bias[i] = i % 4 == 1 ? -INFINITY : 0.0f;
                    }
                    kt->scores(K, N, dh, Q, T, dh, 0.125f, bias, gout(x, (size_t)T * N), N,
                               gout(x, T));
                    gfree(x);
                }
}

static void b_threshold(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int il = 0; il < 3; il++)
            for (int mode = 0; mode < 2; mode++)
                for (int dense = 0; dense < 2; dense++) {
                    int N = NS[in], L = LS[il];
                    set_case("N=%d L=%d mode=%d %s", N, L, mode,
                             dense ? "every key kept" : "random");
                    float *s = gbuf(x, sizeof(float) * N);
                    fill_unif(&x->rng, s, (size_t)N, -6, 0);
                    if (dense)
                        for (int i = 0; i < N; i++)
                            s[i] = -0.01f; /* all kept: idx/p filled up to N */
                    float m = N ? s[0] : 0.0f;
                    for (int i = 0; i < N; i++)
                        m = fmaxf(m, s[i]);
                    uint8_t *lev = glev(x, N, L);
                    float th[GA_MAX_LEVELS];
                    test_theta(L, th, NULL);
                    float *theta8 = gbuf(x, sizeof th);
                    memcpy(theta8, th, sizeof th);
                    /* exactly N + GA_KEEP_PAD elements before the guard */
                    int32_t *idx = gbuf(x, sizeof(int32_t) * ((size_t)N + GA_KEEP_PAD));
                    float *p = gout(x, (size_t)N + GA_KEEP_PAD);
                    float Z;
                    kt->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p, &Z);
                    gfree(x);
                }
}

static void b_sparse_context(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int count = NS[in], dh = DH[id], nrows = count + 2;
            set_case("count=%d dh=%d", count, dh);
            float *V = gin(x, (size_t)nrows * dh);
            int32_t *idx = gbuf(x, sizeof(int32_t) * count);
            /* the first and the last row of V are gathered (guards on both sides) */
            for (int k = 0; k < count; k++)
                idx[k] = k == 0 ? 0 : k == count - 1 ? nrows - 1 : k;
            float *p = gin(x, count);
            kt->sparse_context(V, dh, idx, p, count, 0.5f, gout(x, dh));
            gfree(x);
        }
}

static void b_softmax(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++) {
        int N = NS[in];
        set_case("N=%d", N);
        float *s = gin(x, N);
        float m = -INFINITY;
        for (int i = 0; i < N; i++)
            m = fmaxf(m, s[i]);
        kt->softmax(s, N, m, gout(x, N));
        gfree(x);
    }
}

static void b_dense_context(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int N = NS[in], dh = DH[id];
            set_case("N=%d dh=%d", N, dh);
            kt->dense_context(gin(x, (size_t)N * dh), N, dh, gin(x, N), gout(x, dh));
            gfree(x);
        }
}

static void b_scores_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int N = NS[in], dh = DH[id];
            set_case("N=%d dh=%d", N, dh);
            float *K = gin(x, (size_t)N * dh), *q = gin(x, dh), *ds = gin(x, N);
            kt->scores_backward(K, N, dh, q, 0.125f, ds, gin(x, dh), gin(x, (size_t)N * dh));
            gfree(x);
        }
}

static void b_threshold_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int il = 0; il < 3; il++)
            for (int mode = 0; mode < 2; mode++) {
                int N = NS[in], L = LS[il];
                set_case("N=%d L=%d mode=%d", N, L, mode);
                float *s = gbuf(x, sizeof(float) * N);
                fill_unif(&x->rng, s, (size_t)N, -6, 0);
                float m = -INFINITY;
                for (int i = 0; i < N; i++)
                    m = fmaxf(m, s[i]);
                uint8_t *lev = glev(x, N, L);
                float th[GA_MAX_LEVELS];
                test_theta(L, th, NULL);
                float *theta8 = gbuf(x, sizeof th);
                memcpy(theta8, th, sizeof th);
                float *gv = gin(x, N);
                kt->threshold_backward(s, N, m, 1.5f, lev, theta8, L, (ga_norm)mode, gv, 0.25f,
                                       gout(x, N), gin(x, (size_t)L * N), N, 0.01f);
                gfree(x);
            }
}

static void b_softmax_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++) {
        int N = NS[in];
        set_case("N=%d", N);
        kt->softmax_backward(gin(x, N), gin(x, N), N, gout(x, N));
        gfree(x);
    }
}

static void b_sparse_context_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int count = NS[in], dh = DH[id], nrows = count + 2;
            set_case("count=%d dh=%d", count, dh);
            float *V = gin(x, (size_t)nrows * dh);
            int32_t *idx = gbuf(x, sizeof(int32_t) * count);
            for (int k = 0; k < count; k++)
                idx[k] = k == 0 ? 0 : k == count - 1 ? nrows - 1 : k;
            float *p = gin(x, count), *dc = gin(x, dh);
            kt->sparse_context_backward(V, dh, idx, p, count, 0.5f, dc,
                                        gin(x, (size_t)nrows * dh), gout(x, count));
            gfree(x);
        }
}

static void b_dense_context_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int N = NS[in], dh = DH[id];
            set_case("N=%d dh=%d", N, dh);
            float *V = gin(x, (size_t)N * dh), *a = gin(x, N), *dc = gin(x, dh);
            kt->dense_context_backward(V, N, dh, a, dc, gin(x, (size_t)N * dh), gout(x, N));
            gfree(x);
        }
}

static void b_gpn_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int ig = 0; ig < 3; ig++)
            for (int il = 0; il < 3; il++) {
                int N = NS[in], g = GS[ig], L = LS[il];
                set_case("N=%d g=%d L=%d", N, g, L);
                float *P = gin(x, (size_t)g * N), *r = gin(x, g), *W2 = gin(x, (size_t)L * g);
                float *pi = gbuf(x, sizeof(float) * L * N);
                for (int i = 0; i < L * N; i++)
                    pi[i] = 1.0f / L;
                float *dpi = gin(x, (size_t)L * N);
                kt->gpn_backward(P, N, r, W2, N, g, L, pi, dpi, N, gout(x, (size_t)g * N), N,
                                 gin(x, g), gin(x, (size_t)L * g), gin(x, L));
                gfree(x);
            }
}

static void b_gpn_project_keys_backward(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int ig = 0; ig < 3; ig++) {
                int N = NS[in], d = DH[id], g = GS[ig];
                set_case("N=%d d=%d g=%d", N, d, g);
                float *E = gin(x, (size_t)N * d), *U = gin(x, (size_t)g * d);
                float *dP = gin(x, (size_t)g * N);
                kt->gpn_project_keys_backward(E, N, d, U, g, dP, N, gin(x, (size_t)g * d),
                                              gin(x, g), gin(x, (size_t)N * d));
                gfree(x);
            }
}

static void b_gpn_project_query_backward(const ga_kernels *kt, gctx *x)
{
    for (int id = 0; id < NN; id++)
        for (int ig = 0; ig < 3; ig++) {
            int d = NS[id], g = GS[ig];
            set_case("d=%d g=%d", d, g);
            float *xx = gin(x, d), *W = gin(x, (size_t)g * d), *dr = gin(x, g);
            kt->gpn_project_query_backward(xx, d, W, g, dr, gin(x, (size_t)g * d), gin(x, d));
            gfree(x);
        }
}

/* ga_attend with every input and output guarded (pool NULL) */
static void b_attend(const ga_kernels *kt, gctx *x)
{
    static const int AN[] = {0, 1, 7, 16, 17, 33, 100};
    for (size_t in = 0; in < sizeof AN / sizeof AN[0]; in++)
        for (int mode = 0; mode < 3; mode++)
            for (int wb = 0; wb < 2; wb++) {
                int N = AN[in], T = 2, H = 3, dh = 5, g = 5, L = 3;
                ga_config cfg;
                float th[GA_MAX_LEVELS];
                test_theta(L, th, &cfg);
                cfg.H = H;
                cfg.dh = dh;
                cfg.g = g;
                cfg.mode = mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
                cfg.dense = mode == 2;
                set_case("N=%d mode=%d bias=%d", N, mode, wb);
                float *Q = gin(x, (size_t)T * H * dh), *K = gin(x, (size_t)H * N * dh);
                float *V = gin(x, (size_t)H * N * dh);
                float *bias = NULL;
                if (wb) {
                    bias = gbuf(x, sizeof(float) * N);
                    for (int i = 0; i < N; i++)
                        bias[i] = i % 3 == 2 ? -INFINITY : 0.0f;
                }
                float *P = gin(x, (size_t)g * N), *R = gin(x, (size_t)T * g);
                float *W2 = gin(x, (size_t)L * g), *b2 = gin(x, L);
                float *C = gout(x, (size_t)T * H * dh);
                int *kept = gbuf(x, sizeof(int) * T * H);
                uint8_t *lev = gbuf(x, (size_t)T * N);
                ga_status st = ga_attend(kt, NULL, &cfg, N, T, Q, K, V, bias, P, N, R, W2, b2, C,
                                         kept, lev);
                cr_expect_eq(st, GA_OK, "[%s] ga_attend (%s): %s", kt->name, g_case,
                             ga_last_error());
                gfree(x);
            }
}

/* ---- prepared keys (docs/SPEC.md §7) ---- */
static const int DH4[] = {4, 8, 64, 68};

static void b_preview_dots(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++) {
            int N = NS[in], dh4 = DH4[id], P = (N + 15) / 16;
            set_case("N=%d dh4=%d", N, dh4);
            int8_t *codes = gbuf(x, (size_t)P * dh4 * 16);
            int32_t *ksum = gbuf(x, sizeof(int32_t) * 16 * (size_t)P);
            int8_t *qc = gbuf(x, (size_t)dh4);
            for (size_t j = 0; j < (size_t)P * dh4 * 16; j++)
                codes[j] = (int8_t)((int)(j * 37 % 255) - 127);
            for (int j = 0; j < 16 * P; j++)
                ksum[j] = 0; /* only read; the values do not matter for bounds */
            for (int j = 0; j < dh4; j++)
                qc[j] = (int8_t)(j % 200 - 100);
            kt->preview_dots(codes, ksum, N, dh4, qc, gout(x, N));
            gfree(x);
        }
}

static void b_preview_bounds(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++) {
        int N = NS[in];
        set_case("N=%d", N);
        float *dot = gin(x, N), *meta = gin(x, 4 * (size_t)N), *qk = gin(x, 3);
        for (int i = 0; i < N; i++)
            if (i % 3 == 1)
                meta[3 * (size_t)N + i] = -INFINITY;
        kt->preview_bounds(dot, meta, N, N, qk, gout(x, N), gout(x, N));
        gfree(x);
    }
}

static void b_preview_select(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int all = 0; all < 2; all++) {
            int N = NS[in];
            set_case("N=%d %s", N, all ? "every key a candidate" : "random");
            float *ub = gin(x, N);
            uint8_t *lev = glev(x, N, 3);
            float *T8 = gin(x, 8);
            if (all)
                for (int l = 0; l < 8; l++)
                    T8[l] = -2.0f;
            /* exactly N + GA_KEEP_PAD elements before the guard */
            int32_t *cand = gbuf(x, sizeof(int32_t) * ((size_t)N + GA_KEEP_PAD));
            kt->preview_select(ub, N, lev, T8, cand);
            gfree(x);
        }
}

static void b_scores_gather(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int wb = 0; wb < 2; wb++) {
                int count = NS[in], dh = DH[id], nrows = count + 2;
                set_case("count=%d dh=%d bias=%d", count, dh, wb);
                float *K = gin(x, (size_t)nrows * dh);
                int32_t *idx = gbuf(x, sizeof(int32_t) * count);
                /* the first and the last row of K are gathered (guards on both sides) */
                for (int k = 0; k < count; k++)
                    idx[k] = k == 0 ? 0 : k == count - 1 ? nrows - 1 : 1 + k % (nrows - 2);
                float *bias = NULL;
                if (wb) {
                    bias = gbuf(x, sizeof(float) * nrows);
                    for (int i = 0; i < nrows; i++)
                        bias[i] = i % 4 == 1 ? -INFINITY : 0.0f;
                }
                kt->scores_gather(K, dh, idx, count, gin(x, dh), 0.125f, bias, gout(x, count));
                gfree(x);
            }
}

static void b_scores_packed(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int wb = 0; wb < 2; wb++) {
                int N = NS[in], dh = DH[id], P = (N + 15) / 16;
                set_case("N=%d dh=%d bias=%d", N, dh, wb);
                float *Kp = gin(x, (size_t)P * dh * 16);
                float *bias = NULL;
                if (wb) {
                    bias = gbuf(x, sizeof(float) * N);
                    for (int i = 0; i < N; i++)
                        bias[i] = i % 4 == 1 ? -INFINITY : 0.0f;
                }
                kt->scores_packed(Kp, N, dh, gin(x, dh), 0.125f, bias, gout(x, N));
                gfree(x);
            }
}

static void b_quantize_rows(const ga_kernels *kt, gctx *x)
{
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int lanes = 1; lanes <= 16; lanes += 15) {
                int n = NS[in], dh4 = DH4[id], dh = dh4 - 3;
                int slots = (n + lanes - 1) / lanes * lanes;
                set_case("n=%d dh=%d dh4=%d lanes=%d", n, dh, dh4, lanes);
                float *X = gin(x, (size_t)n * dh);
                kt->quantize_rows(X, n, dh, dh, dh4, lanes, gbuf(x, (size_t)slots * dh4),
                                  gout(x, n), gbuf(x, sizeof(int32_t) * n), gout(x, n),
                                  gout(x, n));
                gfree(x);
            }
}

static void b_flash_block(const ga_kernels *kt, gctx *x)
{
    static const int TS[] = {1, 2, 17, 32};
    for (int in = 0; in < NN; in++)
        for (int id = 0; id < 4; id++)
            for (int it = 0; it < 4; it++)
                for (int wb = 0; wb < 2; wb++) {
                    int N = NS[in], dh = DH[id], T = TS[it];
                    set_case("N=%d dh=%d T=%d bias=%d", N, dh, T, wb);
                    float *bias = NULL;
                    if (wb) {
                        bias = gbuf(x, sizeof(float) * (N > 0 ? N : 1));
                        for (int i = 0; i < N; i++)
                            bias[i] = i % 4 == 1 ? -INFINITY : 0.0f;
                    }
                    float *Q = gin(x, (size_t)T * dh);
                    float *K = N > 0 ? gin(x, (size_t)N * dh) : NULL;
                    float *V = N > 0 ? gin(x, (size_t)N * dh) : NULL;
                    kt->flash_block(Q, dh, T, K, V, N, dh, 0.125f, bias, gout(x, (size_t)T * dh),
                                    dh, gout(x, GA_FLASH_WS(dh)));
                    gfree(x);
                }
}

#define BOUNDS_TEST(k)                                                         \
    Test(bounds, k, .timeout = TEST_TIMEOUT) { run_bounds(#k, b_##k); }
#define BOUNDS_TEST_ENTRY(ret, k, params) BOUNDS_TEST(k)
GA_KERNEL_LIST(BOUNDS_TEST_ENTRY)
#undef BOUNDS_TEST_ENTRY
BOUNDS_TEST(attend)
