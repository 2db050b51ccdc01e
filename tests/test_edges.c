/* test_edges.c — the edges of the contract, with inputs designed apart from
 * the other tests (issue 9): every variant, every tail length.
 *
 *   padded keys   a key with bias -inf does not influence anything, whatever
 *                 its K row, V row or GPN column hold (NaN, +-inf, values
 *                 whose q.k overflows): scores, ga_attend (sparse and dense,
 *                 GPN NaN flag included) and the backward kernels;
 *   overflow      a finite exact result stays finite: contexts whose float
 *                 partial sums overflow (V near 1e38) and scores whose q.k
 *                 overflows before the scale brings it back into range;
 *   tau = 0       keeps every finite score even when s - m overflows to -inf
 *                 (scores of +-3e38), in threshold and threshold_backward;
 *   blocks        ga_attend: sparse results are bitwise independent of the
 *                 other queries of the 32-query block; dense results agree
 *                 within rounding (the stated rule);
 *   seed backward dropped keys get ds = -a*cdc (not 0) in seed mode.
 */
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------- helpers */

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Sizes 0..33 and 100: every tail of 4, 8 and 16 lanes plus a long row. */
static int small_sizes(int *out)
{
    int n = 0;
    for (int i = 0; i <= 33; i++)
        out[n++] = i;
    out[n++] = 100;
    return n;
}

/* The poison written into the K / V row (or GPN column) of a padded key,
 * by key index: NaN, +inf, -inf, and values near FLT_MAX (q.k overflows). */
static float poison(int i)
{
    switch (i % 4) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    default: return 3e38f;
    }
}

/* ======================================================= 1. padded keys */

/* scores: S = -inf exactly for every padded key whatever its K row, the row
 * max ignores them, every other score matches the reference computed on a
 * copy whose padded rows are clean. */
Test(edges, scores_padded_keys, .timeout = TEST_TIMEOUT)
{
    static const int DH[] = {1, 3, 8, 17, 64};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges scores_padded_keys");
    tc_init(&c, "edges scores_padded_keys");
    trng rng;
    rng_init(&rng, 901);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 5; id++)
            for (int T = 1; T <= 3; T += 2) {
                int N = ns[in], dh = DH[id];
                tarena a = {0};
                float scale = 1.0f / sqrtf((float)dh);
                float *K = ar_f(&a, "K", (size_t)N * dh, 1);
                float *Kc = ar_f(&a, "K clean", (size_t)N * dh, 0);
                float *Q = ar_f(&a, "Q", (size_t)T * dh, 1);
                float *bias = ar_f(&a, "bias", (size_t)N, 1);
                fill_unif(&rng, Kc, (size_t)N * dh, -1, 1);
                fill_unif(&rng, Q, (size_t)T * dh, -9, 9);
                memcpy(K, Kc, sizeof(float) * (size_t)N * dh);
                for (int i = 0; i < N; i++) {
                    /* about a third padded, and always the last key */
                    int pad = rng_unit(&rng) < 0.3 || i == N - 1;
                    bias[i] = pad ? -INFINITY : 0.0f;
                    if (pad)
                        for (int j = 0; j < dh; j++)
                            K[(size_t)i * dh + j] = poison(i + j * (i & 1));
                }
                float *Sr = ar_f(&a, "S_ref", (size_t)T * N + 1, 0);
                float *mr = ar_f(&a, "m_ref", (size_t)T, 0);
                float *Smag = ar_f(&a, "S_mag", (size_t)T * N + 1, 0);
                float *mm = ar_f(&a, "m_mag", (size_t)T, 0);
                ga_ref_scores(Kc, N, dh, Q, T, dh, scale, bias, Sr, N, mr);
                float *Qa = ar_abs(&a, "|Q|", Q, (size_t)T * dh);
                ga_ref_scores(ar_abs(&a, "|K|", Kc, (size_t)N * dh), N, dh, Qa, T, dh, scale,
                              NULL, Smag, N, mm);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d dh=%d T=%d", N, dh, T);
                    float *S = ar_f(&a, "S", (size_t)T * N + 1, 1);
                    float *m = ar_f(&a, "m", (size_t)T, 1);
                    v.k[vi]->scores(K, N, dh, Q, T, dh, scale, bias, S, N, m);
                    /* the clean reference is a double dot product rounded
                     * once; dh products, scale, bias: rtol_sum(dh + 1) of
                     * sum |terms| (the model in util.h).  Padded entries are
                     * -inf in both and compared as special values. */
                    tc_close2(&c, "S", S, N, Sr, N, Smag, N, T, N, rtol_sum(dh + 1),
                              ATOL_TINY);
                    for (int t = 0; t < T; t++) {
                        float mx = -INFINITY;
                        for (int i = 0; i < N; i++)
                            if (S[(size_t)t * N + i] > mx)
                                mx = S[(size_t)t * N + i];
                        /* a max involves no rounding: exact w.r.t. S */
                        tc_true(&c, f2u(m[t]) == f2u(mx), "m[%d] = %g, max of S = %g", t,
                                (double)m[t], (double)mx);
                    }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* One ga_attend case: H heads of width dh, T queries, N keys, ~30% padded
 * (and the last key).  `dirty` writes poison into the padded keys' K rows,
 * V rows and GPN columns (P). */
typedef struct ed_attend {
    ga_config cfg;
    int N, T, ldp;
    float *Q, *K, *V, *bias, *P, *R, *W2, *b2;
} ed_attend;

static void ed_make(tarena *a, trng *rng, ed_attend *k, int dense, ga_norm mode, int N, int T)
{
    ga_config_default(&k->cfg);
    k->cfg.H = 2;
    k->cfg.dh = 17; /* a full vector plus a tail on every ISA */
    k->cfg.g = 5;
    k->cfg.dense = dense;
    k->cfg.mode = mode;
    int H = k->cfg.H, dh = k->cfg.dh, g = k->cfg.g, L = k->cfg.L;
    k->N = N;
    k->T = T;
    k->ldp = N + 2;
    size_t nq = (size_t)T * H * dh, nk = (size_t)H * N * dh;
    k->Q = ar_f(a, "Q", nq, 0);
    k->K = ar_f(a, "K", nk + 1, 0);
    k->V = ar_f(a, "V", nk + 1, 0);
    fill_unif(rng, k->Q, nq, -9, 9);
    fill_unif(rng, k->K, nk, -1, 1);
    fill_unif(rng, k->V, nk, -1, 1);
    k->bias = ar_f(a, "bias", (size_t)N + 1, 0);
    for (int i = 0; i < N; i++)
        k->bias[i] = (rng_unit(rng) < 0.3 || i == N - 1) ? -INFINITY : 0.0f;
    k->P = ar_f(a, "P", (size_t)g * k->ldp, 0);
    k->R = ar_f(a, "R", (size_t)T * g, 0);
    k->W2 = ar_f(a, "W2", (size_t)L * g, 0);
    k->b2 = ar_f(a, "b2", (size_t)L, 0);
    fill_unif(rng, k->P, (size_t)g * k->ldp, -1, 1);
    fill_unif(rng, k->R, (size_t)T * g, -1, 1);
    fill_unif(rng, k->W2, (size_t)L * g, -1, 1);
    fill_unif(rng, k->b2, (size_t)L, -0.3, 0.3);
}

static void ed_dirty(ed_attend *k)
{
    int H = k->cfg.H, dh = k->cfg.dh, g = k->cfg.g, N = k->N;
    for (int i = 0; i < N; i++) {
        if (k->bias[i] != -INFINITY)
            continue;
        for (int h = 0; h < H; h++)
            for (int j = 0; j < dh; j++) {
                size_t e = ((size_t)h * N + i) * dh + j;
                k->K[e] = poison(i + h);
                k->V[e] = poison(i + h + 1);
            }
        for (int j = 0; j < g; j++)
            k->P[(size_t)j * k->ldp + i] = (i + j) % 2 ? NAN : INFINITY;
    }
}

static ga_status ed_run(const ga_kernels *kt, const ed_attend *k, float *C, int *kept)
{
    return ga_attend(kt, NULL, &k->cfg, k->N, k->T, k->Q, k->K, k->V, k->bias, k->P, k->ldp,
                     k->R, k->W2, k->b2, C, kept, NULL);
}

/* ga_attend with poisoned padded keys gives the same result as with clean
 * ones: bitwise in the sparse modes (the padded keys are never kept and add
 * exactly 0 to Z); in the dense mode within rounding, because a non-finite
 * V row may send the row to the exact (double) fallback.  Controls: a NaN in
 * the GPN column or K row of a key that is NOT padded still gives NaN. */
Test(edges, attend_padded_keys, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges attend_padded_keys");
    tc_init(&c, "edges attend_padded_keys");
    trng rng;
    rng_init(&rng, 902);
    for (int in = 0; in < (int)(sizeof NS / sizeof NS[0]); in++)
        for (int variant = 0; variant < 3; variant++)
            for (int T = 1; T <= 17; T += 16) {
                int N = NS[in], dense = variant == 2;
                ga_norm mode = variant == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
                tarena a = {0};
                ed_attend k;
                ed_make(&a, &rng, &k, dense, mode, N, T);
                int H = k.cfg.H, dh = k.cfg.dh;
                size_t nc = (size_t)T * H * dh;
                for (int vi = 0; vi < v.n; vi++) {
                    const ga_kernels *kt = v.k[vi];
                    c.isa = kt->name;
                    tc_case(&c, "N=%d T=%d %s", N, T,
                            dense ? "dense" : mode ? "renorm" : "seed");
                    ed_attend kd = k;
                    float *Kd = ar_copy(&a, "K dirty", k.K, (size_t)H * N * dh + 1, 0);
                    float *Vd = ar_copy(&a, "V dirty", k.V, (size_t)H * N * dh + 1, 0);
                    float *Pd = ar_copy(&a, "P dirty", k.P, (size_t)k.cfg.g * k.ldp, 0);
                    kd.K = Kd;
                    kd.V = Vd;
                    kd.P = Pd;
                    ed_dirty(&kd);
                    float *C0 = ar_f(&a, "C clean", nc, 0), *C1 = ar_f(&a, "C dirty", nc, 0);
                    int *k0 = ar_alloc(&a, "kept clean", sizeof(int) * (size_t)T * H, 0);
                    int *k1 = ar_alloc(&a, "kept dirty", sizeof(int) * (size_t)T * H, 0);
                    tc_eq_long(&c, "status clean", ed_run(kt, &k, C0, k0), GA_OK);
                    tc_eq_long(&c, "status dirty", ed_run(kt, &kd, C1, k1), GA_OK);
                    tc_true(&c, all_finite(C0, (int)nc), "clean output not finite");
                    tc_eq_i32(&c, "kept", k1, k0, T * H);
                    if (!dense) {
                        tc_bits(&c, "C sparse (dirty vs clean)", C1, C0, sizeof(float) * nc);
                    } else {
                        /* Both are float evaluations of sum_i a_i V_ij with
                         * the same weights a (same scores and softmax): each
                         * within rtol_sum(N + 1) * sum_i |a_i V_ij| of it,
                         * and sum_i |a_i V_ij| <= sum_i a_i <= 1.01 for
                         * |V| <= 1, so they differ by at most twice that. */
                        tc_close(&c, "C dense (dirty vs clean)", C1, C0, NULL, (int)nc, 0.0,
                                 2.0 * 1.01 * rtol_sum(N + 1));
                    }
                    /* controls: an unpadded key's NaN still reaches C */
                    int i0 = -1;
                    for (int i = 0; i < N; i++)
                        if (k.bias[i] == 0.0f) {
                            i0 = i;
                            break;
                        }
                    if (i0 >= 0) {
                        Kd[(size_t)i0 * dh] = NAN; /* head 0 only */
                        ed_run(kt, &kd, C1, k1);
                        for (int t = 0; t < T; t++)
                            tc_true(&c, isnan(C1[(size_t)t * H * dh]) &&
                                            !isnan(C1[(size_t)t * H * dh + dh]),
                                    "control: NaN in key %d's K row of head 0, query %d: "
                                    "C[h0] = %g, C[h1] = %g", i0, t,
                                    (double)C1[(size_t)t * H * dh],
                                    (double)C1[(size_t)t * H * dh + dh]);
                        Kd[(size_t)i0 * dh] = k.K[(size_t)i0 * dh];
                        if (!dense) {
                            Pd[i0] = NAN;
                            ed_run(kt, &kd, C1, k1);
                            for (int t = 0; t < T; t++)
                                tc_true(&c, isnan(C1[(size_t)t * H * dh + dh]),
                                        "control: NaN GPN column of unpadded key %d: C[%d] "
                                        "head 1 = %g", i0, t,
                                        (double)C1[(size_t)t * H * dh + dh]);
                        }
                    }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Backward kernels with padded keys (weight exactly 0, s = -inf): a NaN/inf
 * in their V row (so gv / da NaN), K row or GPN column does not reach any
 * gradient, and the padded keys' own gradients are exactly 0. */
Test(edges, backward_padded_keys, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "edges backward_padded_keys");
    tc_init(&c, "edges backward_padded_keys");
    trng rng;
    rng_init(&rng, 903);
    int ns[40], nn = small_sizes(ns);
    const int dh = 17, g = 5, L = 3;
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        tarena a = {0};
        uint8_t *pad = ar_u8(&a, "pad", (size_t)N + 1, 0);
        for (int i = 0; i < N; i++)
            pad[i] = rng_unit(&rng) < 0.3 || i == N - 1;
        /* softmax_backward: a from a softmax with padded entries 0 */
        float *s = ar_f(&a, "s", (size_t)N + 1, 0);
        fill_unif(&rng, s, (size_t)N, -4, 0);
        float m = -INFINITY;
        for (int i = 0; i < N; i++) {
            if (pad[i])
                s[i] = -INFINITY;
            if (s[i] > m)
                m = s[i];
        }
        float *w = ar_f(&a, "a", (size_t)N + 1, 0);
        ga_ref_softmax(s, N, m, w);
        float *da = ar_f(&a, "da clean", (size_t)N + 1, 0);
        fill_unif(&rng, da, (size_t)N, -1, 1);
        float *dad = ar_copy(&a, "da dirty", da, (size_t)N + 1, 0);
        for (int i = 0; i < N; i++)
            if (pad[i])
                dad[i] = poison(i);
        float *dsr = ar_f(&a, "ds ref", (size_t)N + 1, 0);
        ga_ref_softmax_backward(w, da, N, dsr);
        /* magnitude of ds_i: |a_i| (|da_i| + sum_j |a_j da_j|) <= a_i * 2 */
        float *dsm = ar_f(&a, "ds mag", (size_t)N + 1, 0);
        for (int i = 0; i < N; i++)
            dsm[i] = 2.0f * w[i];

        /* scores_backward: K rows of padded keys poisoned, ds = 0 there */
        float *K = ar_f(&a, "K clean", (size_t)N * dh + 1, 0);
        fill_unif(&rng, K, (size_t)N * dh, -1, 1);
        float *Kd = ar_copy(&a, "K dirty", K, (size_t)N * dh + 1, 0);
        for (int i = 0; i < N; i++)
            if (pad[i])
                for (int j = 0; j < dh; j++)
                    Kd[(size_t)i * dh + j] = poison(i + j);
        float *q = ar_f(&a, "q", dh, 0), *ds = ar_f(&a, "ds", (size_t)N + 1, 0);
        fill_unif(&rng, q, dh, -1, 1);
        fill_unif(&rng, ds, (size_t)N, -1, 1);
        for (int i = 0; i < N; i++)
            if (pad[i])
                ds[i] = 0.0f;
        float *dqr = ar_f(&a, "dq ref", dh, 0);
        memset(dqr, 0, sizeof(float) * dh);
        ga_ref_scores_backward(K, N, dh, q, 0.25f, ds, dqr, NULL);

        /* dense_context: padded rows of V poisoned, weight 0 */
        float *V = ar_f(&a, "V clean", (size_t)N * dh + 1, 0);
        fill_unif(&rng, V, (size_t)N * dh, -1, 1);
        float *Vd = ar_copy(&a, "V dirty", V, (size_t)N * dh + 1, 0);
        for (int i = 0; i < N; i++)
            if (pad[i])
                for (int j = 0; j < dh; j++)
                    Vd[(size_t)i * dh + j] = poison(i + 2 * j);
        float *cr = ar_f(&a, "c ref", dh, 0);
        ga_ref_dense_context(V, N, dh, w, cr);

        /* gpn_backward: padded keys have dpi = 0 at every level (the
         * threshold backward never adds to them) and poisoned P columns,
         * hence NaN pi from the forward. */
        int ldp = N + 1;
        float *P = ar_f(&a, "P clean", (size_t)g * ldp, 0);
        fill_unif(&rng, P, (size_t)g * ldp, -1, 1);
        float *r = ar_f(&a, "r", g, 0), *W2 = ar_f(&a, "W2", (size_t)L * g, 0);
        float *b2 = ar_f(&a, "b2", L, 0);
        fill_unif(&rng, r, g, -1, 1);
        fill_unif(&rng, W2, (size_t)L * g, -1, 1);
        fill_unif(&rng, b2, L, -0.3, 0.3);
        float *pi = ar_f(&a, "pi clean", (size_t)L * ldp, 0);
        uint8_t *lev = ar_u8(&a, "lev", (size_t)N + 1, 0);
        ga_ref_gpn_probs(P, ldp, r, W2, b2, N, g, L, pi, ldp, lev);
        float *Pd = ar_copy(&a, "P dirty", P, (size_t)g * ldp, 0);
        float *pid = ar_copy(&a, "pi dirty", pi, (size_t)L * ldp, 0);
        float *dpi = ar_f(&a, "dpi", (size_t)L * ldp, 0);
        fill_unif(&rng, dpi, (size_t)L * ldp, -1, 1);
        for (int i = 0; i < N; i++)
            if (pad[i]) {
                for (int j = 0; j < g; j++)
                    Pd[(size_t)j * ldp + i] = j % 2 ? NAN : INFINITY;
                for (int l = 0; l < L; l++) {
                    pid[(size_t)l * ldp + i] = NAN;
                    dpi[(size_t)l * ldp + i] = 0.0f;
                }
            }
        float *dPr = ar_f(&a, "dP ref", (size_t)g * ldp, 0);
        float *gr = ar_f(&a, "gpn grads ref", (size_t)g + L * g + L, 0);
        memset(gr, 0, sizeof(float) * ((size_t)g + L * g + L));
        ga_ref_gpn_backward(P, ldp, r, W2, N, g, L, pi, dpi, ldp, dPr, ldp, gr, gr + g,
                            gr + g + L * g);

        for (int vi = 0; vi < v.n; vi++) {
            const ga_kernels *kt = v.k[vi];
            c.isa = kt->name;
            tc_case(&c, "N=%d", N);
            float *o = ar_f(&a, "ds", (size_t)N + 1, 0);
            kt->softmax_backward(w, dad, N, o);
            /* N + 1 products summed (rtol_sum), one subtraction and one
             * product more: rtol_sum(N + 3) of the magnitude 2 a_i */
            tc_close(&c, "softmax_backward ds", o, dsr, dsm, N, rtol_sum(N + 3), ATOL_TINY);
            for (int i = 0; i < N; i++)
                if (pad[i])
                    tc_true(&c, o[i] == 0.0f, "softmax_backward ds[%d] = %g for a padded key",
                            i, (double)o[i]);

            float *dq = ar_f(&a, "dq", dh, 0);
            memset(dq, 0, sizeof(float) * dh);
            kt->scores_backward(Kd, N, dh, q, 0.25f, ds, dq, NULL);
            /* N products |ds K| <= 1 each, the scale, the accumulation into
             * dq: rtol_sum(N + 2) * 0.25 N */
            tc_close(&c, "scores_backward dq", dq, dqr, NULL, dh, 0.0,
                     rtol_sum(N + 2) * 0.25 * (N + 1));

            float *cc = ar_f(&a, "c", dh, 0);
            kt->dense_context(Vd, N, dh, w, cc);
            /* N products, sum_i |a_i V_ij| <= sum a_i <= 1.01 */
            tc_close(&c, "dense_context c", cc, cr, NULL, dh, 0.0, 1.01 * rtol_sum(N + 1));

            float *dP = ar_f(&a, "dP", (size_t)g * ldp, 0);
            float *gg = ar_f(&a, "gpn grads", (size_t)g + L * g + L, 0);
            memset(gg, 0, sizeof(float) * ((size_t)g + L * g + L));
            kt->gpn_backward(Pd, ldp, r, W2, N, g, L, pid, dpi, ldp, dP, ldp, gg, gg + g,
                             gg + g + L * g);
            /* per key |dz_l| <= 2 (pi <= 1, |dpi| <= 1), |u| <= 2.4,
             * |W2| <= 1: every sum over keys has terms <= 2 L * 2.4 and
             * L + g + 2 roundings per term; bound rtol_sum(N + L + g + 2)
             * times N * 2 L * 2.4 * g (absolute). */
            double tol = rtol_sum(N + L + g + 2) * (N + 1) * 2.0 * L * 2.4 * g;
            tc_close(&c, "gpn_backward dr, dW2, db2", gg, gr, NULL, g + L * g + L, 0.0, tol);
            for (int i = 0; i < N; i++) {
                for (int j = 0; j < g; j++) {
                    float x = dP[(size_t)j * ldp + i];
                    if (pad[i])
                        tc_true(&c, x == 0.0f, "gpn_backward dP[%d][%d] = %g, padded key",
                                j, i, (double)x);
                    else
                        tc_true(&c, fabs(x - dPr[(size_t)j * ldp + i]) <= tol,
                                "gpn_backward dP[%d][%d] = %g, ref %g", j, i, (double)x,
                                (double)dPr[(size_t)j * ldp + i]);
                }
            }
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ============================================================ 2. overflow */

/* sparse_context with V rows near 1e38: the weights p in [0.5, 1] with
 * scale = 1 / sum p make c a convex combination (finite, |c| <= max |V|),
 * while sum_k p_k V_k overflows float.  Every variant must stay finite and
 * match the double reference. */
Test(edges, sparse_context_overflow, .timeout = TEST_TIMEOUT)
{
    static const int DH[] = {1, 3, 8, 17, 64, 65};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges sparse_context_overflow");
    tc_init(&c, "edges sparse_context_overflow");
    trng rng;
    rng_init(&rng, 904);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 6; id++)
            for (int sign = 0; sign < 2; sign++) {
                int count = ns[in], dh = DH[id], rows = count + 3;
                tarena a = {0};
                float *V = ar_f(&a, "V", (size_t)rows * dh, 0);
                for (size_t e = 0; e < (size_t)rows * dh; e++) {
                    double x = rng_range(&rng, 1e36, 2e38);
                    V[e] = (float)(sign && rng_unit(&rng) < 0.5 ? -x : x);
                }
                int32_t *idx = ar_i32(&a, "idx", (size_t)count + 1, 0);
                float *p = ar_f(&a, "p", (size_t)count + 1, 0);
                double sum = 0;
                for (int k = 0; k < count; k++) {
                    idx[k] = (k * 7 + 1) % rows; /* distinct: 7 coprime to most rows */
                    if (rows % 7 == 0)
                        idx[k] = k;
                    p[k] = (float)rng_range(&rng, 0.5, 1.0);
                    sum += p[k];
                }
                float scale = count ? (float)(1.0 / sum) : 1.0f;
                float *cr = ar_f(&a, "c ref", dh, 0), *cm = ar_f(&a, "c mag", dh, 0);
                ga_ref_sparse_context(V, dh, idx, p, count, scale, cr);
                ga_ref_sparse_context(ar_abs(&a, "|V|", V, (size_t)rows * dh), dh, idx, p, count,
                                      scale, cm);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "count=%d dh=%d signs=%s", count, dh, sign ? "mixed" : "+");
                    float *cc = ar_f(&a, "c", dh, 1);
                    v.k[vi]->sparse_context(V, dh, idx, p, count, scale, cc);
                    tc_true(&c, all_finite(cc, dh), "c not finite (c[0] = %g)",
                            dh ? (double)cc[0] : 0.0);
                    /* count products, the scale: rtol_sum(count + 1) of
                     * scale * sum |p V| (finite: <= 2e38 * (1 + count U)) */
                    tc_close(&c, "c", cc, cr, cm, dh, rtol_sum(count + 1), ATOL_TINY);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* dense_context with unit weights over rows of +-X (X up to 2e38) arranged
 * in runs of 8 equal signs, then a cancelling run: float partial sums of
 * equal-sign rows overflow, the exact result (sum of small residues) is
 * finite.  The error bound relative to sum |a V| is loose here (the
 * cancellation is the point); the test is that the result is finite and
 * within that bound. */
Test(edges, dense_context_overflow, .timeout = TEST_TIMEOUT)
{
    static const int DH[] = {1, 3, 8, 17, 64, 65};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges dense_context_overflow");
    tc_init(&c, "edges dense_context_overflow");
    trng rng;
    rng_init(&rng, 905);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 6; id++) {
            int N = ns[in], dh = DH[id];
            tarena a = {0};
            float *V = ar_f(&a, "V", (size_t)N * dh + 1, 0);
            float *w = ar_f(&a, "a", (size_t)N + 1, 0);
            /* rows in pairs of runs: 8 rows +X_r, then the same 8 rows -X_r
             * (exact sum 0 per pair of runs); leftover rows small. */
            for (int i = 0; i < N; i++) {
                w[i] = 1.0f;
                int run = i / 8, pos = i % 8, full = (run / 2 + 1) * 16 <= N;
                for (int j = 0; j < dh; j++) {
                    float x;
                    if (full) {
                        x = (float)(1e38 + 1e37 * ((pos * 31 + j * 7) % 10));
                        if (run % 2)
                            x = -x;
                    } else {
                        x = (float)rng_range(&rng, -1, 1);
                    }
                    V[(size_t)i * dh + j] = x;
                }
            }
            float *cr = ar_f(&a, "c ref", dh, 0);
            ga_ref_dense_context(V, N, dh, w, cr);
            double mag = 0; /* sum_i |a_i V_ij|, the same for every j up to 2x */
            for (int i = 0; i < N; i++)
                mag += fabs((double)V[(size_t)i * dh]);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d dh=%d", N, dh);
                float *cc = ar_f(&a, "c", dh, 1);
                v.k[vi]->dense_context(V, N, dh, w, cc);
                tc_true(&c, all_finite(cc, dh), "c not finite (c[0] = %g)",
                        dh ? (double)cc[0] : 0.0);
                /* N products: rtol_sum(N) * sum |a V| (<= 2 mag over j) */
                tc_close(&c, "c", cc, cr, NULL, dh, 0.0, rtol_sum(N) * 2.0 * mag + 4.0);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* scores whose q.k overflows float (|q_j k_j| ~ 1e38, summed over dh) but
 * whose scaled value (scale 1e-3) is finite, including mixed signs (an
 * overflowing partial sum plus a cancelling one gives NaN in float). */
Test(edges, scores_overflow, .timeout = TEST_TIMEOUT)
{
    static const int DH[] = {1, 3, 8, 17, 64};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges scores_overflow");
    tc_init(&c, "edges scores_overflow");
    trng rng;
    rng_init(&rng, 906);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 5; id++)
            for (int T = 1; T <= 3; T += 2) {
                int N = ns[in], dh = DH[id];
                tarena a = {0};
                const float scale = 1e-3f;
                float *K = ar_f(&a, "K", (size_t)N * dh + 1, 0);
                float *Q = ar_f(&a, "Q", (size_t)T * dh, 0);
                /* |q k| in [1.8e38, 3.3e38] per product: the dot overflows
                 * as soon as two products of one sign meet; scale * sum
                 * stays below 3.3e38 * 64 * 1e-3 */
                for (size_t e = 0; e < (size_t)T * dh; e++)
                    Q[e] = (float)rng_range(&rng, 1.35e19, 1.8e19);
                for (size_t e = 0; e < (size_t)N * dh; e++) {
                    double x = rng_range(&rng, 1.35e19, 1.8e19);
                    K[e] = (float)(e % 3 == 1 ? -x : x);
                }
                float *bias = ar_f(&a, "bias", (size_t)N + 1, 0);
                for (int i = 0; i < N; i++)
                    bias[i] = i % 5 == 4 ? -INFINITY : 0.0f;
                float *Sr = ar_f(&a, "S_ref", (size_t)T * N + 1, 0);
                float *mr = ar_f(&a, "m_ref", (size_t)T, 0);
                float *Sm = ar_f(&a, "S_mag", (size_t)T * N + 1, 0);
                float *mm = ar_f(&a, "m_mag", (size_t)T, 0);
                ga_ref_scores(K, N, dh, Q, T, dh, scale, bias, Sr, N, mr);
                ga_ref_scores(ar_abs(&a, "|K|", K, (size_t)N * dh), N, dh, Q, T, dh, scale,
                              NULL, Sm, N, mm);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d dh=%d T=%d", N, dh, T);
                    float *S = ar_f(&a, "S", (size_t)T * N + 1, 1);
                    float *m = ar_f(&a, "m", (size_t)T, 1);
                    v.k[vi]->scores(K, N, dh, Q, T, dh, scale, bias, S, N, m);
                    for (int e = 0; e < T * N; e++)
                        if (bias[e % (N ? N : 1)] == 0.0f && !isfinite(S[e])) {
                            tc_fail(&c, "S[%d][%d] = %g, exact %g", e / N, e % N,
                                    (double)S[e], (double)Sr[e]);
                            break;
                        }
                    /* dh products, the scale: rtol_sum(dh + 1) of sum |terms| */
                    tc_close2(&c, "S", S, N, Sr, N, Sm, N, T, N, rtol_sum(dh + 1), ATOL_TINY);
                    tc_close(&c, "m", m, mr, mm, T, rtol_sum(dh + 1), ATOL_TINY);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* ========================================================== 3. tau = 0 */

/* Scores of +-3e38 (and +-1e38, small ones, -inf padding): with m = 3e38 the
 * float s - m of a finite s <= -4e37 overflows to -inf; a tau = 0 level
 * (theta -FLT_MAX) must still keep it (its weight exp(-inf) = 0 is exact),
 * a tau > 0 level drops it, padding (-inf) is never kept. */
static int tau0_keep(float s, float m, float theta)
{
    volatile float d = s - m;
    if (theta == -FLT_MAX)
        return s > -INFINITY; /* keep every finite score */
    return d >= theta;
}

Test(edges, tau0_extreme_scores, .timeout = TEST_TIMEOUT)
{
    static const float VALS[] = {3e38f, -3e38f, 1e38f, -1e38f, -FLT_MAX, 0.0f, -5.0f, -INFINITY};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges tau0_extreme_scores");
    tc_init(&c, "edges tau0_extreme_scores");
    trng rng;
    rng_init(&rng, 907);
    const int L = 3;
    float theta8[GA_MAX_LEVELS];
    test_theta(L, theta8, NULL); /* level 2 is tau = 0 */
    cr_assert(theta8[2] == -FLT_MAX);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int mode = 0; mode < 2; mode++) {
            int N = ns[in];
            if (N == 0)
                continue;
            tarena a = {0};
            float *s = ar_f(&a, "s", (size_t)N, 0);
            uint8_t *lev = ar_u8(&a, "lev", (size_t)N, 0);
            for (int i = 0; i < N; i++) {
                s[i] = VALS[rng_int(&rng, 8)];
                lev[i] = (uint8_t)(rng_unit(&rng) < 0.7 ? 2 : rng_int(&rng, 2));
            }
            s[rng_int(&rng, N)] = 3e38f; /* m = 3e38 */
            float m = -INFINITY;
            for (int i = 0; i < N; i++)
                if (s[i] > m)
                    m = s[i];
            int ne = 0;
            for (int i = 0; i < N; i++)
                ne += tau0_keep(s[i], m, theta8[lev[i]]);
            /* backward inputs */
            float *gv = ar_f(&a, "gv", (size_t)N, 0);
            fill_unif(&rng, gv, (size_t)N, -1, 1);
            for (int vi = 0; vi < v.n; vi++) {
                const ga_kernels *kt = v.k[vi];
                c.isa = kt->name;
                tc_case(&c, "N=%d mode=%s", N, mode ? "renorm" : "seed");
                size_t cap = (size_t)N + GA_KEEP_PAD;
                int32_t *idx = ar_i32(&a, "idx", cap, 1);
                float *p = ar_f(&a, "p", cap, 1);
                float Z = -1;
                int n = kt->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p, &Z);
                if (tc_eq_long(&c, "kept count vs the tau = 0 rule", n, ne)) {
                    int k = 0;
                    for (int i = 0; i < N && k < n; i++)
                        if (tau0_keep(s[i], m, theta8[lev[i]])) {
                            tc_true(&c, idx[k] == i, "idx[%d] = %d, expected %d", k, idx[k], i);
                            /* p is exp(d): 1 for s == m, exactly 0 below */
                            float pe = s[i] == m ? 1.0f : 0.0f;
                            tc_true(&c, p[k] == pe, "p[%d] = %g, expected %g", k, (double)p[k],
                                    (double)pe);
                            k++;
                        }
                }
                /* backward: dpi[2][i] += G_i + reg for every finite key
                 * (G_i = 0 for a key with weight 0), never for -inf */
                float *ds = ar_f(&a, "ds", (size_t)N, 1);
                float *dpi = ar_f(&a, "dpi", (size_t)L * N, 1);
                for (int e = 0; e < L * N; e++)
                    dpi[e] = 0.0f;
                kt->threshold_backward(s, N, m, Z, lev, theta8, L, (ga_norm)mode, gv, 0.25f, ds,
                                       dpi, N, 0.5f);
                for (int i = 0; i < N; i++) {
                    if (s[i] == m)
                        continue; /* weight > 0: covered by test_backward */
                    int on = s[i] > -INFINITY;
                    tc_true(&c, dpi[2 * N + i] == (on ? 0.5f : 0.0f),
                            "dpi[tau=0][%d] = %g for s = %g (expected %g)", i,
                            (double)dpi[2 * N + i], (double)s[i], on ? 0.5 : 0.0);
                    tc_true(&c, ds[i] == 0.0f, "ds[%d] = %g for a zero weight", i,
                            (double)ds[i]);
                }
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* ===================================================== 4. block equality */

/* ga_attend with T = 33 (a block of 32 and one of 1) vs each query alone:
 * sparse bitwise equal; dense within rounding (the header's rule: the
 * dense block step evaluates S = scale Q K^T and C = A V as two products,
 * whose summation orders may differ from the one-query path). */
Test(edges, attend_block_rule, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 7, 16, 17, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "edges attend_block_rule");
    tc_init(&c, "edges attend_block_rule");
    trng rng;
    rng_init(&rng, 908);
    for (int in = 0; in < 6; in++)
        for (int variant = 0; variant < 3; variant++) {
            int N = NS[in], T = 33, dense = variant == 2;
            tarena a = {0};
            ed_attend k;
            ed_make(&a, &rng, &k, dense, variant == 1 ? GA_NORM_RENORM : GA_NORM_SEED, N, T);
            int H = k.cfg.H, dh = k.cfg.dh, g = k.cfg.g;
            size_t row = (size_t)H * dh;
            for (int vi = 0; vi < v.n; vi++) {
                const ga_kernels *kt = v.k[vi];
                c.isa = kt->name;
                tc_case(&c, "N=%d %s", N, dense ? "dense" : variant ? "renorm" : "seed");
                float *C = ar_f(&a, "C block", (size_t)T * row, 0);
                float *C1 = ar_f(&a, "C one", row, 0);
                ed_run(kt, &k, C, NULL);
                for (int t = 0; t < T; t++) {
                    ed_attend k1 = k;
                    k1.T = 1;
                    k1.Q = k.Q + (size_t)t * row;
                    k1.R = k.R + (size_t)t * g;
                    ed_run(kt, &k1, C1, NULL);
                    if (!dense)
                        tc_bits(&c, "sparse C, block vs alone", C + (size_t)t * row, C1,
                                sizeof(float) * row);
                    else
                        for (int h = 0; h < H; h++) {
                            /* Each path's scores are within E = rtol_sum(dh + 1) *
                             * scale * max_i sum_j |q_j K_ij| of the exact ones (any
                             * order), so they differ by <= 2E and each weight a_i
                             * by a relative e^(4E) - 1 (numerator and Z); with
                             * |V| <= 1, sum a |V| <= 1.01: that, plus two float
                             * evaluations of sum a_i V_ij. */
                            const float *q = k.Q + (size_t)t * row + (size_t)h * dh;
                            double mag = 0.0;
                            for (int i = 0; i < N; i++) {
                                double s = 0.0;
                                for (int j = 0; j < dh; j++)
                                    s += fabs((double)q[j] * k.K[((size_t)h * N + i) * dh + j]);
                                if (k.bias[i] == 0.0f)
                                    mag = fmax(mag, s);
                            }
                            const double E = rtol_sum(dh + 1) * mag / sqrt((double)dh);
                            tc_close(&c, "dense C, block vs alone",
                                     C + (size_t)t * row + (size_t)h * dh, C1 + (size_t)h * dh,
                                     NULL, dh, 0.0,
                                     1.01 * (expm1(4.0 * E) + 2.0 * rtol_sum(N + 1)));
                        }
                }
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* ================================================ 5. seed-mode dropped keys */

/* threshold_backward, seed mode: a dropped key gets ds = -a_i * cdc (the
 * normaliser's gradient), not 0; renorm gives exactly 0. */
Test(edges, threshold_backward_dropped_keys, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "edges threshold_backward_dropped_keys");
    tc_init(&c, "edges threshold_backward_dropped_keys");
    trng rng;
    rng_init(&rng, 909);
    const int L = 3;
    float theta8[GA_MAX_LEVELS];
    test_theta(L, theta8, NULL);
    int ns[40], nn = small_sizes(ns);
    for (int in = 0; in < nn; in++)
        for (int mode = 0; mode < 2; mode++) {
            int N = ns[in];
            if (N == 0)
                continue;
            tarena a = {0};
            float *s = ar_f(&a, "s", (size_t)N, 0), *gv = ar_f(&a, "gv", (size_t)N, 0);
            uint8_t *lev = ar_u8(&a, "lev", (size_t)N, 0);
            fill_unif(&rng, s, (size_t)N, -8, 0);
            fill_unif(&rng, gv, (size_t)N, -1, 1);
            for (int i = 0; i < N; i++)
                lev[i] = (uint8_t)rng_int(&rng, 2); /* tau 0.1 / 0.01: many dropped */
            float m = -INFINITY;
            for (int i = 0; i < N; i++)
                if (s[i] > m)
                    m = s[i];
            const float cdc = 0.75f, Z = 1.5f;
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d mode=%s", N, mode ? "renorm" : "seed");
                float *ds = ar_f(&a, "ds", (size_t)N, 1);
                v.k[vi]->threshold_backward(s, N, m, Z, lev, theta8, L, (ga_norm)mode, gv, cdc,
                                            ds, NULL, 0, 0.0f);
                for (int i = 0; i < N; i++) {
                    volatile float d = s[i] - m;
                    if (d >= theta8[lev[i]])
                        continue;
                    double ai = exp((double)d) / Z;
                    if (mode == GA_NORM_RENORM) {
                        tc_true(&c, ds[i] == 0.0f, "renorm ds[%d] = %g", i, (double)ds[i]);
                    } else {
                        double e = -ai * cdc;
                        /* exp (EXP_RTOL), a division, a subtraction and a
                         * product: EXP_RTOL + 4 U relative */
                        tc_true(&c, fabs(ds[i] - e) <= (EXP_RTOL + 4 * U_F32) * fabs(e) +
                                                           ATOL_TINY,
                                "seed ds[%d] = %.9g, expected -a cdc = %.9g", i, (double)ds[i],
                                e);
                    }
                }
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}
