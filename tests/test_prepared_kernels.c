/* test_prepared_kernels.c — the float kernels of the prepared step
 * (docs/SPEC.md §7): preview_bounds, preview_select, scores_gather and
 * scores_packed, every supported variant against the scalar reference (and
 * scores_gather against the same table's `scores`).
 *
 * Sizes: N = 0 … 33 (the tails of 4, 8 and 16 lanes and two full 16-wide
 * blocks + 1), larger odd N (100, 1001, 4097, 65536 where cheap), and for
 * scores_packed N around every multiple of the panels-in-flight block
 * (16·PB keys: PB = 8, 4, 2 for AVX-512, AVX2, NEON) up to 3 blocks + a
 * remainder.  Buffers come from the arena of tests/util.h (64-byte aligned
 * plus a deliberate misalignment, poisoned with NaN bytes, framed by canaries
 * checked after every case: a write one element past an output fails).
 *
 * Tolerances (justified once here, used below):
 *   preview_bounds  — exact.  Every output is a fixed sequence of correctly
 *                     rounded float operations (fma, mul, add, sub, select),
 *                     elementwise, so any correct variant gives the same bits
 *                     as the reference; only NaN payloads/signs are free (any
 *                     NaN matches any NaN).  m_lb is a max: no rounding.
 *   preview_select  — exact: a float compare per key; count and list must be
 *                     the reference's.
 *   scores_gather   — bitwise the `scores` of the same table for the same keys
 *                     (T = 1 and T = 3 blocks) whenever no float intermediate
 *                     of either is non-finite: each key's arithmetic (chunks
 *                     in order, the FMA chain, the reduction tree, the scale
 *                     and the bias add) depends only on dh, not on which keys
 *                     share a vector.  Against the double reference:
 *                     rtol_sum(dh + 1) of sum|terms| (dh products + bias).
 *                     Overflowing q·k (exact score finite): recomputed
 *                     exactly, key by key, in both kernels: still bitwise
 *                     `scores`, and within one float rounding (2^-23
 *                     relative) of the reference.
 *   scores_packed   — rtol_sum(dh + 1) of sum|terms| (dh products summed in
 *                     any order, one scale, one bias add: util.h's model);
 *                     padded keys exactly -inf; overflow as for gather.
 */
#include <string.h>

#include "util.h"

/* bits equal, or both NaN (NaN payloads and signs are not specified) */
static int same_bits(float a, float b) { return (isnan(a) && isnan(b)) || f2u(a) == f2u(b); }

static int bits_eq(tcheck *c, const char *what, const float *got, const float *ref, int n)
{
    c->checks++;
    for (int i = 0; i < n; i++)
        if (!same_bits(got[i], ref[i])) {
            tc_fail(c, "%s: [%d] got %.9g (0x%08x), ref %.9g (0x%08x) (bitwise expected)", what,
                    i, (double)got[i], (unsigned)f2u(got[i]), (double)ref[i],
                    (unsigned)f2u(ref[i]));
            return 0;
        }
    return 1;
}

static void fill_sentinel(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = GAP_SENTINEL;
}

/* The max a kernel must return from its own scores: NaN if any is NaN,
 * else the largest (-inf if none).  Taking a max involves no rounding. */
static void check_max_of(tcheck *c, const float *s, int n, float m)
{
    float mx = -INFINITY;
    int nan = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(s[i]))
            nan = 1;
        else if (s[i] > mx)
            mx = s[i];
    }
    if (nan)
        tc_true(c, isnan(m), "max = %.9g but the scores hold a NaN", (double)m);
    else
        tc_true(c, f2u(m) == f2u(mx), "max = %.9g is not the max %.9g of the scores",
                (double)m, (double)mx);
}

/* ================================================================ preview_bounds */

typedef struct pb_case {
    int N, ldm, off;
    float *dot, *meta, qk[3];
} pb_case;

/* dot: integers as a preview dot product gives them (|dot| < 2^24); meta
 * rows kscale, knorm, kerr, bias with the gap [N, ldm) of each row left
 * poisoned (NaN: a wrong row stride shows).  `kind`:
 *   0 random: ~15% padded, some -0 / +0 / huge / NaN / +inf biases
 *   1 every key padded    2 no key padded, biases 0
 *   3 adversarial zeros: zero rows (kscale = knorm = kerr = 0), biases ±0,
 *     lower bounds of both zero signs */
static void pb_make(tarena *a, trng *rng, pb_case *k, int N, int ldm, int off, int kind)
{
    k->N = N;
    k->ldm = ldm;
    k->off = off;
    k->dot = ar_f(a, "dot", (size_t)N, off);
    k->meta = ar_f(a, "meta", 4 * (size_t)ldm, off);
    float *ks = k->meta, *kn = ks + ldm, *ke = kn + ldm, *kb = ke + ldm;
    for (int i = 0; i < N; i++) {
        k->dot[i] = (float)(rng_int(rng, 2 * 2000001) - 2000000);
        ks[i] = (float)rng_range(rng, 1e-3, 2e-2);
        kn[i] = (float)rng_range(rng, 0.2, 3.0);
        ke[i] = ks[i] * (float)rng_range(rng, 0.05, 0.3);
        double u = rng_unit(rng);
        float b = 0.0f;
        if (kind == 1) {
            b = -INFINITY;
        } else if (kind == 0) {
            if (u < 0.15)
                b = -INFINITY;
            else if (u < 0.2)
                b = -0.0f;
            else if (u < 0.5)
                b = (float)rng_range(rng, -30, 30);
            else if (u < 0.52)
                b = (float)rng_range(rng, -3e30, 3e30);
            else if (u < 0.53)
                b = NAN; /* lb NaN: not part of m_lb */
            else if (u < 0.54)
                b = INFINITY; /* ub = +inf, lb = inf - inf = NaN */
        } else if (kind == 3) {
            ks[i] = kn[i] = ke[i] = 0.0f;
            k->dot[i] = (float)(rng_int(rng, 5) - 2);
            b = u < 0.4 ? -0.0f : u < 0.8 ? 0.0f : -INFINITY;
        }
        kb[i] = b;
    }
    if (kind == 3) {
        k->qk[0] = 0.0f;
        k->qk[1] = k->qk[2] = 0.0f;
    } else {
        k->qk[0] = (float)rng_range(rng, 1e-5, 1e-4); /* w = sigma * sq */
        k->qk[1] = (float)rng_range(rng, 1e-3, 1e-2); /* alpha */
        k->qk[2] = (float)rng_range(rng, 1e-2, 1e-1); /* beta */
    }
}

/* The contract's m_lb, from the reference's own definition of each lower
 * bound: max over unpadded keys with a non-NaN lower bound (an independent
 * check of the reference as well). */
static float pb_mlb_contract(const pb_case *k)
{
    const float *ks = k->meta, *kn = ks + k->ldm, *ke = kn + k->ldm, *kb = ke + k->ldm;
    float m = -INFINITY;
    for (int i = 0; i < k->N; i++) {
        if (kb[i] == -INFINITY)
            continue;
        float s = fmaf(k->qk[0] * ks[i], k->dot[i], kb[i]);
        float e = fmaf(k->qk[1], kn[i], fmaf(k->qk[2], ke[i], 0x1p-22f * fabsf(kb[i])));
        float lb = s - e;
        if (lb == 0.0f)
            lb = 0.0f; /* a zero lower bound counts as +0: the max of zeros is order-free */
        if (lb > m)
            m = lb;
    }
    return m;
}

static void pb_run(tcheck *c, tarena *a, const ga_kernels *kt, const pb_case *k,
                   const float *sr, const float *ur, float mr)
{
    const int N = k->N;
    float *shat = ar_f(a, "shat", (size_t)N, k->off), *ub = ar_f(a, "ub", (size_t)N, k->off);
    fill_sentinel(shat, (size_t)N);
    fill_sentinel(ub, (size_t)N);
    float m = kt->preview_bounds(k->dot, k->meta, k->ldm, N, k->qk, shat, ub);
    bits_eq(c, "shat", shat, sr, N);
    bits_eq(c, "ub", ub, ur, N);
    tc_true(c, f2u(m) == f2u(mr), "m_lb = %.9g (0x%08x), reference %.9g (0x%08x)", (double)m,
            (unsigned)f2u(m), (double)mr, (unsigned)f2u(mr));
    const float *kb = k->meta + 3 * (size_t)k->ldm;
    for (int i = 0; i < N; i++)
        if (kb[i] == -INFINITY &&
            !tc_true(c, shat[i] == -INFINITY && ub[i] == -INFINITY,
                     "padded key %d: shat %.9g ub %.9g, expected -inf", i, (double)shat[i],
                     (double)ub[i]))
            break;
}

Test(prepared, preview_bounds, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "preview_bounds vs_ref");
    tc_init(&c, "preview_bounds");
    trng rng;
    rng_init(&rng, 1001);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++)
        for (int kind = 0; kind < 4; kind++)
            for (int off = 0; off < 2; off++) {
                int N = ns[in];
                if (N > 33 && (off == 0) != (kind == 0))
                    continue;
                if (N > 4097 && kind != 0)
                    continue;
                int ldm = N + (off ? 5 : 0);
                tarena a = {0};
                pb_case k;
                pb_make(&a, &rng, &k, N, ldm, off, kind);
                float *sr = ar_f(&a, "shat_ref", (size_t)N, 0), *ur = ar_f(&a, "ub_ref", (size_t)N, 0);
                float mr = ga_ref_preview_bounds(k.dot, k.meta, ldm, N, k.qk, sr, ur);
                tc_case(&c, "N=%d ldm=%d off=%d kind=%d (reference)", N, ldm, off, kind);
                float mc = pb_mlb_contract(&k);
                tc_true(&c, f2u(mr) == f2u(mc), "reference m_lb %.9g, contract %.9g", (double)mr,
                        (double)mc);
                if (kind == 1 || N == 0)
                    tc_true(&c, mr == -INFINITY, "all padded: m_lb %.9g", (double)mr);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d ldm=%d off=%d kind=%d", N, ldm, off, kind);
                    pb_run(&c, &a, v.k[vi], &k, sr, ur, mr);
                }
                c.isa = "";
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* m_lb of keys whose lower bounds are +0 and -0 in any order (or all -0):
 * a zero m_lb is +0, whichever lane the zeros sit in (an order-dependent
 * max of signed zeros would give different bits per variant). */
Test(prepared, preview_bounds_signed_zero, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "preview_bounds signed_zero");
    tc_init(&c, "preview_bounds zeros");
    for (int N = 1; N <= 40; N++)
        for (int pos = 0; pos <= N; pos += (N > 20 ? 3 : 1)) {
            tarena a = {0};
            pb_case k;
            trng rng;
            rng_init(&rng, 1002);
            pb_make(&a, &rng, &k, N, N, 1, 3);
            float *kb = k.meta + 3 * (size_t)N;
            /* w = alpha = beta = 0 and zero rows: every key's lb is
             * fma(+0, -1, -0) - 0 = -0, except the one at pos: fma(+0, 1, +0)
             * - 0 = +0 (pos = N: none) */
            for (int i = 0; i < N; i++) {
                k.dot[i] = i == pos ? 1.0f : -1.0f;
                kb[i] = i == pos ? 0.0f : -0.0f;
            }
            float *sr = ar_f(&a, "shat_ref", (size_t)N, 0), *ur = ar_f(&a, "ub_ref", (size_t)N, 0);
            float mr = ga_ref_preview_bounds(k.dot, k.meta, N, N, k.qk, sr, ur);
            tc_case(&c, "N=%d +0 at %d (reference)", N, pos);
            tc_true(&c, ur[0] == 0.0f && (pos == 0) == !signbit(sr[0]),
                    "reference shat[0] %.9g sign %d", (double)sr[0], signbit(sr[0]) != 0);
            tc_true(&c, mr == 0.0f && !signbit(mr), "reference m_lb %.9g sign %d, expected +0",
                    (double)mr, signbit(mr) != 0);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d +0 at %d", N, pos);
                pb_run(&c, &a, v.k[vi], &k, sr, ur, mr);
            }
            c.isa = "";
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* ================================================================ preview_select */

/* ub around the thresholds: exactly at T8[level] (>= keeps), one ulp below
 * (nextafterf: dropped), one above, -inf, +inf, NaN (never), random. */
static void ps_fill(trng *rng, float *ub, const uint8_t *lev, const float *T8, int N, int kind)
{
    for (int i = 0; i < N; i++) {
        const float t = T8[lev[i]];
        double u = rng_unit(rng);
        float x;
        if (kind == 1)
            x = (float)rng_range(rng, -1, 1); /* around thresholds ~[-2, 0.5] */
        else if (u < 0.2)
            x = t;
        else if (u < 0.35)
            x = nextafterf(t, -INFINITY);
        else if (u < 0.45)
            x = nextafterf(t, INFINITY);
        else if (u < 0.5)
            x = -INFINITY;
        else if (u < 0.53)
            x = INFINITY;
        else if (u < 0.58)
            x = NAN;
        else if (u < 0.6)
            x = -FLT_MAX;
        else
            x = (float)rng_range(rng, -3, 1);
        ub[i] = x;
    }
}

static void ps_check(tcheck *c, tarena *a, const ga_kernels *kt, const float *ub, int N,
                     const uint8_t *lev, const float *T8, int off)
{
    int32_t *cr = ar_i32(a, "cand_ref", (size_t)N + GA_KEEP_PAD, 0);
    int nr = ga_ref_preview_select(ub, N, lev, T8, cr);
    /* the contract, independently: every key with ub >= T8[level] in order */
    int ne = 0, ok = 1;
    for (int i = 0; i < N; i++)
        if (ub[i] >= T8[lev[i]])
            ok &= ne < nr && cr[ne++] == i;
    tc_true(c, ok && ne == nr, "reference: %d candidates, contract %d", nr, ne);
    /* exactly N + GA_KEEP_PAD elements: the canary catches a write at N + PAD */
    int32_t *cand = ar_i32(a, "cand", (size_t)N + GA_KEEP_PAD, off);
    int n = kt->preview_select(ub, N, lev, T8, cand);
    if (tc_eq_long(c, "count", n, nr))
        tc_eq_i32(c, "cand", cand, cr, n);
}

Test(prepared, preview_select, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "preview_select vs_ref");
    tc_init(&c, "preview_select");
    trng rng;
    rng_init(&rng, 1003);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++)
        for (int tk = 0; tk < 5; tk++)
            for (int kind = 0; kind < 2; kind++) {
                const int N = ns[in], off = (in + tk) & 1;
                if (N > 4097 && (tk != 0 || kind != 0))
                    continue;
                /* thresholds: tk 0: L = 3 levels with tau = 0 (-FLT_MAX) on the
                 * finest; 1: L = 8 all distinct finite; 2: every level
                 * -FLT_MAX; 3: every level +inf (only +inf ub); 4: -inf
                 * thresholds (m_lb = -inf: every non-NaN ub, -inf included) */
                float T8[GA_MAX_LEVELS];
                int L = tk == 1 ? 8 : 3;
                for (int l = 0; l < GA_MAX_LEVELS; l++) {
                    int le = l < L ? l : L - 1;
                    T8[l] = tk == 0 ? (le == 2 ? -FLT_MAX : -0.5f - 1.25f * le)
                            : tk == 1 ? 0.25f - 0.3f * le
                            : tk == 2 ? -FLT_MAX
                            : tk == 3 ? INFINITY
                                      : -INFINITY;
                }
                tarena a = {0};
                float *ub = ar_f(&a, "ub", (size_t)N, off);
                uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                fill_levels(&rng, lev, (size_t)N, L);
                ps_fill(&rng, ub, lev, T8, N, kind);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d T8 kind %d ub kind %d off=%d", N, tk, kind, off);
                    ps_check(&c, &a, v.k[vi], ub, N, lev, T8, off);
                }
                c.isa = "";
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Density sweep and runs: every key, none, alternating, long runs of kept
 * and dropped keys (the compress at every offset of the running count). */
Test(prepared, preview_select_patterns, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "preview_select patterns");
    tc_init(&c, "preview_select patterns");
    trng rng;
    rng_init(&rng, 1004);
    static const int NS[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 257, 1000};
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int pat = 0; pat < 6; pat++) {
            const int N = NS[in];
            float T8[GA_MAX_LEVELS];
            for (int l = 0; l < GA_MAX_LEVELS; l++)
                T8[l] = 1.0f - (float)l;
            tarena a = {0};
            float *ub = ar_f(&a, "ub", (size_t)N, 1);
            uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 3);
            fill_levels(&rng, lev, (size_t)N, 8);
            for (int i = 0; i < N; i++) {
                int keep = pat == 0   ? 1
                           : pat == 1 ? 0
                           : pat == 2 ? i % 2
                           : pat == 3 ? (i / 5) % 2
                           : pat == 4 ? (i / 13) % 3 == 0
                                      : rng_unit(&rng) < 0.05;
                ub[i] = keep ? T8[lev[i]] : nextafterf(T8[lev[i]], -INFINITY);
            }
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d pattern %d", N, pat);
                ps_check(&c, &a, v.k[vi], ub, N, lev, T8, 1);
            }
            c.isa = "";
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* ================================================================ scores_gather */

static const int G_DH[] = {1, 3, 5, 16, 64, 128};

typedef struct sg_case {
    int N, dh, off;
    float scale;
    float *K, *Q, *bias; /* Q [3][dh]: the query is row 1 */
} sg_case;

/* K [N][dh] uniform(-amp, amp), Q [3][dh]; bias (when with_bias): 0, random
 * finite and about 15% -inf (the last key always), whose K rows are
 * poisoned with NaN / +inf / overflowing values (excluded by the select). */
static void sg_make(tarena *a, trng *rng, sg_case *k, int N, int dh, int off, int with_bias,
                    double amp)
{
    k->N = N;
    k->dh = dh;
    k->off = off;
    k->scale = 1.0f / sqrtf((float)dh);
    k->K = ar_f(a, "K", (size_t)N * dh, off);
    k->Q = ar_f(a, "Q", 3 * (size_t)dh, off);
    fill_unif(rng, k->K, (size_t)N * dh, -amp, amp);
    fill_unif(rng, k->Q, 3 * (size_t)dh, -amp, amp);
    k->bias = NULL;
    if (with_bias) {
        k->bias = ar_f(a, "bias", (size_t)N, off);
        for (int i = 0; i < N; i++) {
            double u = rng_unit(rng);
            k->bias[i] = (u < 0.15 || i == N - 1) ? -INFINITY
                         : u < 0.5                 ? 0.0f
                                                   : (float)rng_range(rng, -4, 4);
            if (k->bias[i] == -INFINITY)
                k->K[(size_t)i * dh + (size_t)rng_int(rng, dh)] =
                    i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : 3e38f;
        }
    }
}

/* index lists: 0 increasing subset (~30%), 1 every row, 2 arbitrary order
 * with repeats, 3 first and last row alternating, 4 a prefix of `count` */
static int sg_idx(trng *rng, int32_t *idx, int N, int kind, int count)
{
    int n = 0;
    if (N == 0)
        return 0;
    switch (kind) {
    case 0:
        for (int i = 0; i < N; i++)
            if (rng_unit(rng) < 0.3 || i == 0 || i == N - 1)
                idx[n++] = i;
        break;
    case 1:
        for (int i = 0; i < N; i++)
            idx[n++] = i;
        break;
    case 2:
        for (int k = 0; k < count; k++) {
            const int32_t i = k % 4 == 3 ? idx[rng_int(rng, n)] : rng_int(rng, N); /* repeats */
            idx[n++] = i;
        }
        break;
    case 3:
        for (int k = 0; k < count; k++)
            idx[n++] = k % 2 ? N - 1 : 0;
        break;
    default:
        for (int k = 0; k < count && k < N; k++)
            idx[n++] = k;
        break;
    }
    return n;
}

/* One variant: its `scores` (T = 1 and T = 3), then gather; bitwise equal
 * for every gathered key when `bitwise`, and within the tolerance of the
 * reference always. */
static void sg_check(tcheck *c, tarena *a, const ga_kernels *kt, const sg_case *k,
                     const int32_t *idx, int count, int bitwise)
{
    const int N = k->N, dh = k->dh;
    const float *q = k->Q + dh;
    float *S1 = ar_f(a, "S1", (size_t)N + 1, 0), *S3 = ar_f(a, "S3", 3 * (size_t)N + 1, 0);
    float m1, m3[3];
    kt->scores(k->K, N, dh, q, 1, dh, k->scale, k->bias, S1, N, &m1);
    kt->scores(k->K, N, dh, k->Q, 3, dh, k->scale, k->bias, S3, N, m3);
    float *s = ar_f(a, "s", (size_t)count, k->off);
    fill_sentinel(s, (size_t)count);
    float m = kt->scores_gather(k->K, dh, idx, count, q, k->scale, k->bias, s);
    if (bitwise) {
        c->checks++;
        for (int j = 0; j < count; j++) {
            const float a1 = S1[idx[j]], a3 = S3[(size_t)N + idx[j]];
            if (!same_bits(s[j], a1) || !same_bits(s[j], a3)) {
                tc_fail(c, "s[%d] (key %d) = %.9g (0x%08x); scores T=1 %.9g (0x%08x), T=3 "
                           "%.9g (0x%08x): not bitwise",
                        j, (int)idx[j], (double)s[j], (unsigned)f2u(s[j]), (double)a1,
                        (unsigned)f2u(a1), (double)a3, (unsigned)f2u(a3));
                break;
            }
        }
    }
    /* vs the reference: the dh products, the scale and the bias add */
    float *sr = ar_f(a, "s_ref", (size_t)count, 0), *mag = ar_f(a, "s_mag", (size_t)count, 0);
    float *Ka = ar_abs(a, "|K|", k->K, (size_t)N * dh), *qa = ar_abs(a, "|q|", q, (size_t)dh);
    float *ba = k->bias ? ar_f(a, "|bias|", (size_t)N, 0) : NULL;
    for (int i = 0; ba && i < N; i++)
        ba[i] = k->bias[i] == -INFINITY ? 0.0f : fabsf(k->bias[i]);
    ga_ref_scores_gather(k->K, dh, idx, count, q, k->scale, k->bias, sr);
    ga_ref_scores_gather(Ka, dh, idx, count, qa, k->scale, ba, mag);
    tc_close(c, "s vs reference", s, sr, mag, count, rtol_sum(dh + 1), ATOL_TINY);
    check_max_of(c, s, count, m);
    for (int j = 0; j < count; j++)
        if (k->bias && k->bias[idx[j]] == -INFINITY &&
            !tc_true(c, s[j] == -INFINITY, "padded key %d: s = %.9g", (int)idx[j], (double)s[j]))
            break;
}

Test(prepared, scores_gather_vs_scores, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_gather vs_scores");
    tc_init(&c, "scores_gather");
    trng rng;
    rng_init(&rng, 1005);
    static const int NS[] = {1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 100, 1001};
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (size_t id = 0; id < sizeof G_DH / sizeof G_DH[0]; id++)
            for (int wb = 0; wb < 2; wb++) {
                const int N = NS[in], dh = G_DH[id], off = (int)(in + id) & 1;
                tarena a = {0};
                sg_case k;
                sg_make(&a, &rng, &k, N, dh, off, wb, 1.0);
                for (int kind = 0; kind < 5; kind++) {
                    int counts[] = {0, 1, 7, 17, 33, 40};
                    for (int ic = 0; ic < 6; ic++) {
                        if ((kind < 2 && ic > 0) || (kind >= 2 && ic == 0 && kind != 4))
                            continue;
                        const int want = counts[ic];
                        int32_t *idx = ar_i32(&a, "idx", (size_t)(N > want ? N : want) + 1, off);
                        int count = sg_idx(&rng, idx, N, kind, want);
                        for (int vi = 0; vi < v.n; vi++) {
                            c.isa = v.k[vi]->name;
                            tc_case(&c, "N=%d dh=%d bias=%s idx kind %d count=%d off=%d", N, dh,
                                    wb ? "padded" : "NULL", kind, count, off);
                            sg_check(&c, &a, v.k[vi], &k, idx, count, 1);
                        }
                        c.isa = "";
                    }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Every count 0 … 2·16+1 of a random gather (the masked last block of every
 * width) and a large odd one. */
Test(prepared, scores_gather_counts, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_gather counts");
    tc_init(&c, "scores_gather counts");
    trng rng;
    rng_init(&rng, 1006);
    const int N = 70;
    for (int count = 0; count <= 34; count++) {
        const int cnt = count == 34 ? 4097 : count;
        for (int id = 0; id < 3; id++) {
            const int dh = (int[]){3, 64, 128}[id];
            tarena a = {0};
            sg_case k;
            sg_make(&a, &rng, &k, N, dh, count & 1, 1, 1.0);
            int32_t *idx = ar_i32(&a, "idx", (size_t)cnt, count & 1);
            for (int j = 0; j < cnt; j++)
                idx[j] = rng_int(&rng, N);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "count=%d dh=%d", cnt, dh);
                sg_check(&c, &a, v.k[vi], &k, idx, cnt, 1);
            }
            c.isa = "";
            ar_check(&a, &c);
            ar_free(&a);
        }
    }
    tc_finish(&c);
}

/* Non-finite float intermediates: q·k overflowing float before the scale
 * (exact score finite: recomputed exactly, within one rounding of the
 * reference, and bitwise `scores` for every key, overflowing or not), a NaN
 * in a gathered K row (NaN score, NaN max), a NaN row that is not gathered
 * (no effect), count == 0 (-inf, nothing written). */
Test(prepared, scores_gather_special, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_gather special");
    tc_init(&c, "scores_gather special");
    trng rng;
    rng_init(&rng, 1007);
    static const int NS[] = {5, 16, 17, 40};
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int id = 0; id < 3; id++)
            for (int wb = 0; wb < 2; wb++) {
                const int N = NS[in], dh = (int[]){3, 64, 128}[id];
                tarena a = {0};
                sg_case k;
                sg_make(&a, &rng, &k, N, dh, 1, wb, 1.0);
                const float *q = k.Q + dh;
                /* overflow: keys 1 and N-2 aligned with q, 2e19 by about 1e19
                 * per channel: q·k >= 2e38 per product overflows float from the
                 * second channel (dh = 1: not at all, a plain finite case);
                 * times the scale 2^-80 it is finite */
                k.scale = 0x1p-80f;
                const int ov[2] = {1, N - 2};
                for (int r = 0; r < 2; r++) {
                    if (k.bias)
                        k.bias[ov[r]] = 0.5f;
                    for (int d = 0; d < dh; d++)
                        k.K[(size_t)ov[r] * dh + d] = copysignf(1e19f, q[d]) * (1.0f + 0.01f * d);
                }
                float *Qs = (float *)k.Q;
                for (int d = 0; d < dh; d++)
                    Qs[dh + d] = copysignf(2e19f, q[d]);
                /* a NaN row that is not gathered at first */
                const int nanrow = N - 3;
                for (int d = 0; d < dh; d++)
                    k.K[(size_t)nanrow * dh + d] = NAN;
                if (k.bias)
                    k.bias[nanrow] = 0.0f;
                int32_t *idx = ar_i32(&a, "idx", (size_t)N, 1);
                int count = 0;
                for (int i = 0; i < N; i++)
                    if (i != nanrow)
                        idx[count++] = i;
                float *sr = ar_f(&a, "s_ref", (size_t)count, 0);
                ga_ref_scores_gather(k.K, dh, idx, count, q, k.scale, k.bias, sr);
                for (int vi = 0; vi < v.n; vi++) {
                    const ga_kernels *kt = v.k[vi];
                    c.isa = kt->name;
                    tc_case(&c, "N=%d dh=%d bias=%d overflow", N, dh, wb);
                    float *s = ar_f(&a, "s", (size_t)count, 1);
                    float m = kt->scores_gather(k.K, dh, idx, count, q, k.scale, k.bias, s);
                    float *S = ar_f(&a, "S", (size_t)N, 0), ms;
                    kt->scores(k.K, N, dh, q, 1, dh, k.scale, k.bias, S, N, &ms);
                    /* every key, the overflowing ones and their neighbours (in
                     * other vectors here than in `scores`: key nanrow is left
                     * out) included: bitwise `scores` (each recomputes a
                     * non-finite key alone) */
                    c.checks++;
                    for (int j = 0; j < count; j++)
                        if (!same_bits(s[j], S[idx[j]])) {
                            tc_fail(&c, "key %d: gather %.9g (0x%08x), scores %.9g (0x%08x): "
                                        "not bitwise", (int)idx[j], (double)s[j],
                                    (unsigned)f2u(s[j]), (double)S[idx[j]],
                                    (unsigned)f2u(S[idx[j]]));
                            break;
                        }
                    for (int j = 0; j < count; j++) {
                        const int i = idx[j];
                        if (i != ov[0] && i != ov[1])
                            continue;
                        /* one rounding: 2^-23 |ref| (the reference rounds
                         * its double once; the kernels recompute exactly) */
                        tc_true(&c,
                                isfinite(s[j]) && fabs((double)s[j] - sr[j]) <=
                                                      0x1p-23 * fabs((double)sr[j]),
                                "overflow key %d: s = %.9g, reference %.9g", i, (double)s[j],
                                (double)sr[j]);
                        tc_true(&c,
                                isfinite(S[i]) &&
                                    fabs((double)s[j] - S[i]) <= 0x1p-23 * fabs((double)S[i]),
                                "overflow key %d: gather %.9g, scores %.9g", i, (double)s[j],
                                (double)S[i]);
                    }
                    check_max_of(&c, s, count, m);
                    tc_true(&c, isfinite(m), "max %.9g not finite (no NaN gathered)", (double)m);

                    /* the NaN row gathered (twice, and first): NaN score, NaN max */
                    tc_case(&c, "N=%d dh=%d bias=%d NaN row", N, dh, wb);
                    int32_t *i2 = ar_i32(&a, "idx2", 4, 0);
                    i2[0] = nanrow;
                    i2[1] = 0;
                    i2[2] = nanrow;
                    i2[3] = ov[0];
                    float *s2 = ar_f(&a, "s2", 4, 0);
                    float m2 = kt->scores_gather(k.K, dh, i2, 4, q, k.scale, k.bias, s2);
                    tc_true(&c, isnan(s2[0]) && isnan(s2[2]) && isnan(m2),
                            "NaN row: s %.9g %.9g, max %.9g", (double)s2[0], (double)s2[2],
                            (double)m2);
                    tc_true(&c, !isnan(s2[1]) && isfinite(s2[3]),
                            "rows next to a NaN row: %.9g %.9g", (double)s2[1], (double)s2[3]);

                    /* count == 0: -inf, nothing written */
                    tc_case(&c, "count=0");
                    float *s0 = ar_f(&a, "s0", 4, 0);
                    fill_sentinel(s0, 4);
                    float m0 = kt->scores_gather(k.K, dh, i2, 0, q, k.scale, k.bias, s0);
                    tc_true(&c, m0 == -INFINITY, "count 0: max %.9g", (double)m0);
                    tc_gap_untouched(&c, "s (count 0)", s0, 1, 0, 4, GAP_SENTINEL);
                }
                c.isa = "";
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* ================================================================ scores_packed */

/* Kp [ceil(N/16)][dh][16] from K [N][dh]; lanes past N hold `pad` (0 as the
 * layout has it, or NaN: readable but must not reach any output). */
static float *pack_keys(tarena *a, const float *K, int N, int dh, float pad, int off)
{
    const int P = (N + 15) / 16;
    float *Kp = ar_f(a, "Kp", (size_t)P * dh * 16, off);
    for (int p = 0; p < P; p++)
        for (int d = 0; d < dh; d++)
            for (int l = 0; l < 16; l++) {
                const int i = 16 * p + l;
                Kp[((size_t)p * dh + d) * 16 + l] = i < N ? K[(size_t)i * dh + d] : pad;
            }
    return Kp;
}

static void sp_check(tcheck *c, tarena *a, const ga_kernels *kt, const float *Kp, const float *Kpa,
                     int N, int dh, const float *q, float scale, const float *bias, int off)
{
    float *s = ar_f(a, "s", (size_t)N, off);
    fill_sentinel(s, (size_t)N);
    float m = kt->scores_packed(Kp, N, dh, q, scale, bias, s);
    float *sr = ar_f(a, "s_ref", (size_t)N, 0), *mag = ar_f(a, "s_mag", (size_t)N, 0);
    float mr = ga_ref_scores_packed(Kp, N, dh, q, scale, bias, sr);
    float *qa = ar_abs(a, "|q|", q, (size_t)dh);
    float *ba = bias ? ar_f(a, "|bias|", (size_t)N, 0) : NULL;
    for (int i = 0; ba && i < N; i++)
        ba[i] = bias[i] == -INFINITY ? 0.0f : fabsf(bias[i]);
    ga_ref_scores_packed(Kpa, N, dh, qa, scale, ba, mag);
    tc_close(c, "s", s, sr, mag, N, rtol_sum(dh + 1), ATOL_TINY);
    check_max_of(c, s, N, m);
    if (isnan(mr))
        tc_true(c, isnan(m), "max %.9g, reference NaN", (double)m);
    for (int i = 0; bias && i < N; i++)
        if (bias[i] == -INFINITY &&
            !tc_true(c, s[i] == -INFINITY, "padded key %d: s = %.9g", i, (double)s[i]))
            break;
}

Test(prepared, scores_packed, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_packed vs_ref");
    tc_init(&c, "scores_packed");
    trng rng;
    rng_init(&rng, 1008);
    /* n_sizes, then around 1, 2 and 3 blocks of PB panels for PB = 2, 4, 8
     * (32, 64, 128 keys) with remainders */
    int ns[64], nn = n_sizes(ns, 1);
    static const int EXTRA[] = {47, 48, 49, 63, 64, 65, 95, 96, 97, 127, 128, 129, 143,
                                255, 256, 257, 383, 384, 385, 399, 1000};
    for (size_t e = 0; e < sizeof EXTRA / sizeof EXTRA[0]; e++)
        ns[nn++] = EXTRA[e];
    static const int DH[] = {1, 3, 5, 64, 128};
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 5; id++)
            for (int wb = 0; wb < 2; wb++) {
                const int N = ns[in], dh = DH[id], off = (in + id + wb) & 1;
                if (N > 4097 && (dh != 64 || !wb))
                    continue;
                if (N > 1001 && dh < 64)
                    continue;
                const float pad = (in + wb) % 2 ? NAN : 0.0f;
                tarena a = {0};
                sg_case k;
                sg_make(&a, &rng, &k, N, dh, off, wb, 1.0);
                const float *q = k.Q + dh;
                float *Kp = pack_keys(&a, k.K, N, dh, pad, off);
                float *Ka = ar_abs(&a, "|K|", k.K, (size_t)N * dh);
                float *Kpa = pack_keys(&a, Ka, N, dh, 0.0f, 0);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d dh=%d bias=%s pad=%s off=%d", N, dh, wb ? "padded" : "NULL",
                            isnan(pad) ? "NaN" : "0", off);
                    sp_check(&c, &a, v.k[vi], Kp, Kpa, N, dh, q, k.scale, k.bias, off);
                }
                c.isa = "";
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Overflow (q·k beyond FLT_MAX before a small scale: recomputed exactly,
 * within one rounding of the reference), NaN in an unpadded key's column
 * (NaN score, NaN max) or in a padded one's (-inf, no NaN), N == 0. */
Test(prepared, scores_packed_special, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_packed special");
    tc_init(&c, "scores_packed special");
    trng rng;
    rng_init(&rng, 1009);
    static const int NS[] = {1, 5, 16, 17, 40, 130, 300};
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int id = 0; id < 3; id++)
            for (int nan_case = 0; nan_case < 3; nan_case++) {
                const int N = NS[in], dh = (int[]){3, 64, 128}[id];
                tarena a = {0};
                sg_case k;
                sg_make(&a, &rng, &k, N, dh, 1, 1, 1.0);
                float *q = k.Q + dh;
                /* q at 2e19 per channel, the other keys below 1e17: their
                 * |q·k| <= 128 · 2e36 < FLT_MAX in any order */
                for (int d = 0; d < dh; d++)
                    q[d] = copysignf(2e19f, q[d]);
                for (size_t j = 0; j < (size_t)N * dh; j++)
                    if (isfinite(k.K[j]))
                        k.K[j] *= 1e17f;
                const float scale = 0x1p-80f;
                const int ov = N / 2; /* overflowing key, unpadded */
                k.bias[ov] = 0.5f;
                for (int d = 0; d < dh; d++)
                    k.K[(size_t)ov * dh + d] = copysignf(2e19f, q[d]); /* 4e38 each */
                int nanrow = -1;
                if (nan_case == 1 && N > 2) { /* NaN in an unpadded key */
                    nanrow = N - 2;
                    k.bias[nanrow] = 0.0f;
                    k.K[(size_t)nanrow * dh + dh / 2] = NAN;
                }
                if (nan_case == 2 && N > 2) { /* NaN in a padded key */
                    k.bias[N - 2] = -INFINITY;
                    k.K[(size_t)(N - 2) * dh + dh / 2] = NAN;
                }
                float *Kp = pack_keys(&a, k.K, N, dh, 0.0f, 1);
                float *sr = ar_f(&a, "s_ref", (size_t)N, 0);
                float mr = ga_ref_scores_packed(Kp, N, dh, q, scale, k.bias, sr);
                for (int vi = 0; vi < v.n; vi++) {
                    const ga_kernels *kt = v.k[vi];
                    c.isa = kt->name;
                    tc_case(&c, "N=%d dh=%d nan case %d", N, dh, nan_case);
                    float *s = ar_f(&a, "s", (size_t)N, 1);
                    float m = kt->scores_packed(Kp, N, dh, q, scale, k.bias, s);
                    tc_true(&c,
                            isfinite(s[ov]) &&
                                fabs((double)s[ov] - sr[ov]) <= 0x1p-23 * fabs((double)sr[ov]),
                            "overflow key %d: s = %.9g, reference %.9g", ov, (double)s[ov],
                            (double)sr[ov]);
                    check_max_of(&c, s, N, m);
                    if (nanrow >= 0)
                        tc_true(&c, isnan(s[nanrow]) && isnan(m) && isnan(mr),
                                "NaN key: s %.9g, max %.9g (reference %.9g)",
                                (double)s[nanrow], (double)m, (double)mr);
                    else
                        tc_true(&c, !isnan(m), "no NaN expected, max %.9g", (double)m);
                    for (int i = 0; i < N; i++)
                        if (k.bias[i] == -INFINITY &&
                            !tc_true(&c, s[i] == -INFINITY, "padded key %d: %.9g", i, (double)s[i]))
                            break;
                    /* every other unpadded key: finite, within the sum tolerance
                     * of the reference (magnitude: scale·Σ|q k| + |b|) */
                    for (int i = 0; i < N; i++) {
                        if (i == ov || i == nanrow || k.bias[i] == -INFINITY)
                            continue;
                        double mag = fabs((double)k.bias[i]);
                        for (int d = 0; d < dh; d++)
                            mag += (double)scale * fabs((double)q[d] * k.K[(size_t)i * dh + d]);
                        if (!tc_true(&c, fabs((double)s[i] - sr[i]) <= rtol_sum(dh + 1) * mag +
                                                                        ATOL_TINY,
                                     "key %d: %.9g, reference %.9g", i, (double)s[i],
                                     (double)sr[i]))
                            break;
                    }
                }
                c.isa = "";
                ar_check(&a, &c);
                ar_free(&a);
            }
    /* N == 0: -inf, nothing written, Kp not read (NULL-sized) */
    for (int vi = 0; vi < v.n; vi++) {
        c.isa = v.k[vi]->name;
        tc_case(&c, "N=0");
        tarena a = {0};
        float *Kp = ar_f(&a, "Kp", 0, 0), *q = ar_f(&a, "q", 64, 0), *s = ar_f(&a, "s", 4, 0);
        fill_unif(&rng, q, 64, -1, 1);
        fill_sentinel(s, 4);
        float m = v.k[vi]->scores_packed(Kp, 0, 64, q, 0.125f, NULL, s);
        tc_true(&c, m == -INFINITY, "N=0: max %.9g", (double)m);
        tc_gap_untouched(&c, "s (N=0)", s, 1, 0, 4, GAP_SENTINEL);
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}
