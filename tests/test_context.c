/* test_context.c — sparse_context, softmax and dense_context vs the scalar
 * reference: tails, large sizes, padding, magnitude ~80, empty and special
 * cases; rows that are not gathered hold NaN, so reading them shows. */
#include <string.h>

#include "util.h"

static const int DH_LIST[] = {1, 3, 64, 128};

/* idx: `count` distinct rows of [0, nrows), increasing (as threshold emits
 * them) or shuffled. */
static void pick_rows(trng *rng, int32_t *idx, int count, int nrows, int shuffle)
{
    int k = 0;
    for (int i = 0; i < nrows && k < count; i++) {
        /* selection sampling: choose i with probability (needed / left) */
        if (rng_unit(rng) * (nrows - i) < (count - k))
            idx[k++] = i;
    }
    if (shuffle)
        for (int i = count - 1; i > 0; i--) {
            int j = rng_int(rng, i + 1);
            int32_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
}

Test(context, sparse_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "sparse_context");
    tc_init(&c, "sparse_context");
    trng rng;
    rng_init(&rng, 401);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++) {
        int count = ns[in];
        for (int id = 0; id < 4; id++)
            for (int off = 0; off < 2; off++)
                for (int shuffle = 0; shuffle < 2; shuffle++) {
                    int dh = DH_LIST[id];
                    if (count > 33 && (off == 0 || dh < 64 || shuffle))
                        continue;
                    if (count > 4097 && dh != 64)
                        continue;
                    int nrows = count + count / 2 + 3;
                    tarena a = {0};
                    float *V = ar_f(&a, "V", (size_t)nrows * dh, off);
                    int32_t *idx = ar_i32(&a, "idx", (size_t)count, off);
                    float *p = ar_f(&a, "p", (size_t)count, off);
                    pick_rows(&rng, idx, count, nrows, shuffle);
                    for (size_t i = 0; i < (size_t)nrows * dh; i++)
                        V[i] = NAN; /* rows not in idx must never be read */
                    double psum = 0;
                    for (int k = 0; k < count; k++) {
                        fill_unif(&rng, V + (size_t)idx[k] * dh, (size_t)dh, -1, 1);
                        p[k] = (float)rng_range(&rng, 1e-3, 1.0);
                        psum += p[k];
                    }
                    float scale = count ? (float)(1.0 / psum) : 0.37f;
                    float *cr = ar_f(&a, "c_ref", (size_t)dh, 0);
                    float *cm = ar_f(&a, "c_mag", (size_t)dh, 0);
                    ga_ref_sparse_context(V, dh, idx, p, count, scale, cr);
                    ga_ref_sparse_context(ar_abs(&a, "|V|", V, (size_t)nrows * dh), dh, idx, p,
                                          count, scale, cm);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "count=%d dh=%d off=%d %s", count, dh, off,
                                shuffle ? "shuffled idx" : "increasing idx");
                        float *cc = ar_f(&a, "c", (size_t)dh, off);
                        v.k[vi]->sparse_context(V, dh, idx, p, count, scale, cc);
                        /* count products, then the scale: rtol_sum(count + 1) */
                        tc_close(&c, "c", cc, cr, cm, dh, rtol_sum(count + 1), ATOL_TINY);
                        if (count == 0) {
                            int nz = 0;
                            for (int j = 0; j < dh; j++)
                                nz += cc[j] != 0.0f;
                            tc_true(&c, nz == 0, "count == 0: %d of %d outputs are not 0", nz,
                                    dh);
                        }
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    }
    tc_finish(&c);
}

static float row_max(const float *s, int N)
{
    float m = -INFINITY;
    for (int i = 0; i < N; i++) {
        if (isnan(s[i]))
            return NAN;
        if (s[i] > m)
            m = s[i];
    }
    return m;
}

/* a_i = p_i / Z: EXP_RTOL for p_i, rtol_sum(N) + EXP_RTOL for Z (positive
 * terms), U for the division: relative to a_i itself. */
static void softmax_check(tcheck *c, tarena *a, const ga_kernels *kt, const float *s, int N,
                          float m, int off)
{
    float *ar = ar_f(a, "a_ref", (size_t)N, 0);
    float Zr = ga_ref_softmax(s, N, m, ar);
    float *aa = ar_f(a, "a", (size_t)N, off);
    float Z = kt->softmax(s, N, m, aa);
    tc_close(c, "a", aa, ar, NULL, N, 2 * EXP_RTOL + rtol_sum(N) + U_F32, ATOL_TINY);
    tc_close(c, "Z", &Z, &Zr, NULL, 1, rtol_sum(N) + EXP_RTOL, ATOL_TINY);
}

Test(context, softmax_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const char *const KIND[] = {"scores in [s0-12, s0]", "with -inf padding",
                                       "scores in [60, 80]", "scores in [-80, -60]",
                                       "all equal"};
    tvariants v;
    tcheck c;
    variants_get(&v, "softmax");
    tc_init(&c, "softmax");
    trng rng;
    rng_init(&rng, 402);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++)
        for (int kind = 0; kind < 5; kind++)
            for (int off = 0; off < 2; off++) {
                int N = ns[in];
                if (N > 33 && (off == 0 || kind > 1))
                    continue;
                tarena a = {0};
                float *s = ar_f(&a, "s", (size_t)N, off);
                double s0 = rng_range(&rng, -5, 5);
                switch (kind) {
                case 0: fill_unif(&rng, s, (size_t)N, s0 - 12, s0); break;
                case 1:
                    fill_unif(&rng, s, (size_t)N, s0 - 12, s0);
                    for (int i = 0; i < N; i++)
                        if (rng_unit(&rng) < 0.2 || i == N - 1)
                            s[i] = -INFINITY;
                    if (N > 1)
                        s[0] = (float)s0;
                    break;
                case 2: fill_unif(&rng, s, (size_t)N, 60, 80); break;
                case 3: fill_unif(&rng, s, (size_t)N, -80, -60); break;
                case 4:
                    for (int i = 0; i < N; i++)
                        s[i] = -2.5f;
                    break;
                }
                float m = row_max(s, N);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d %s off=%d", N, KIND[kind], off);
                    softmax_check(&c, &a, v.k[vi], s, N, m, off);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* N == 0 / m == -inf -> a = 0, returns 0; m NaN or +inf -> a = NaN, NaN. */
Test(context, softmax_special, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 7, 8, 16, 17, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "softmax special");
    tc_init(&c, "softmax special");
    trng rng;
    rng_init(&rng, 403);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int kind = 0; kind < 3; kind++) {
            static const char *const KIND[] = {"all padded", "a NaN score", "a +inf score"};
            int N = NS[in];
            if (N == 0 && kind)
                continue;
            tarena a = {0};
            float *s = ar_f(&a, "s", (size_t)N, 1);
            fill_unif(&rng, s, (size_t)N, -3, 3);
            float m;
            if (kind == 0) {
                for (int i = 0; i < N; i++)
                    s[i] = -INFINITY;
                m = -INFINITY;
            } else if (kind == 1) {
                s[N - 1] = NAN;
                m = NAN;
            } else {
                s[N / 2] = INFINITY;
                m = INFINITY;
            }
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d %s", N, KIND[kind]);
                float *aa = ar_f(&a, "a", (size_t)N, 1);
                float Z = v.k[vi]->softmax(s, N, m, aa);
                int bad = 0;
                for (int i = 0; i < N; i++)
                    bad += kind == 0 ? aa[i] != 0.0f : !isnan(aa[i]);
                if (kind == 0) {
                    tc_true(&c, Z == 0.0f, "returned %.9g, expected 0", (double)Z);
                    tc_true(&c, bad == 0, "%d weights are not 0", bad);
                } else {
                    tc_true(&c, isnan(Z), "returned %.9g, expected NaN", (double)Z);
                    tc_true(&c, bad == 0, "%d weights are not NaN", bad);
                }
                softmax_check(&c, &a, v.k[vi], s, N, m, 0);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

Test(context, dense_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "dense_context");
    tc_init(&c, "dense_context");
    trng rng;
    rng_init(&rng, 404);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int id = 0; id < 4; id++)
            for (int off = 0; off < 2; off++)
                for (int sign = 0; sign < 2; sign++) {
                    int dh = DH_LIST[id];
                    if (N > 33 && (off == 0 || dh == 1 || sign))
                        continue;
                    if (N > 1001 && dh == 3)
                        continue;
                    if (N > 4097 && dh != 64)
                        continue;
                    tarena a = {0};
                    float *V = ar_f(&a, "V", (size_t)N * dh, off);
                    float *w = ar_f(&a, "a", (size_t)N, off);
                    fill_unif(&rng, V, (size_t)N * dh, -1, 1);
                    /* attention weights (>= 0, sum 1) or general signed weights */
                    fill_unif(&rng, w, (size_t)N, sign ? -1 : 0, 1);
                    if (!sign) {
                        double sum = 0;
                        for (int i = 0; i < N; i++)
                            sum += w[i];
                        for (int i = 0; i < N; i++)
                            w[i] = (float)(w[i] / sum);
                    }
                    float *cr = ar_f(&a, "c_ref", (size_t)dh, 0);
                    float *cm = ar_f(&a, "c_mag", (size_t)dh, 0);
                    ga_ref_dense_context(V, N, dh, w, cr);
                    ga_ref_dense_context(ar_abs(&a, "|V|", V, (size_t)N * dh), N, dh,
                                         ar_abs(&a, "|a|", w, (size_t)N), cm);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d dh=%d off=%d weights=%s", N, dh, off,
                                sign ? "signed" : "softmax-like");
                        float *cc = ar_f(&a, "c", (size_t)dh, off);
                        v.k[vi]->dense_context(V, N, dh, w, cc);
                        /* N products per column: rtol_sum(N) of sum_i |a_i V_ij| */
                        tc_close(&c, "c", cc, cr, cm, dh, rtol_sum(N), ATOL_TINY);
                        if (N == 0) {
                            int nz = 0;
                            for (int j = 0; j < dh; j++)
                                nz += cc[j] != 0.0f;
                            tc_true(&c, nz == 0, "N == 0: %d outputs are not 0", nz);
                        }
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    }
    tc_finish(&c);
}
