/* test_attend.c — the fused step ga_attend vs the naive reference
 * ga_ref_attend, for every variant: sparse (seed, renorm) and dense, T = 1,
 * 2, 5, 17 and 33 (crossing the 32-query block), H = 1 and 4, with and
 * without -inf bias padding; the dense block step (GEMM-shaped) for every
 * T = 1 ... 33 and its rows that take the T = 1 path; empty / all-padded
 * inputs, NaN behaviour and invalid arguments; the T = 1 key split
 * (src/attend_split.c) at forced range sizes down to one key, against the
 * reference, bitwise across thread counts and, for sparse, bitwise the
 * unsplit step.
 *
 * Decisions.  ga_attend computes the scores with float kernels, the reference
 * in double (rounded once), so a score within the float error of a threshold
 * (or a GPN logit within the float error of a tie) may legitimately be
 * decided differently.  The test therefore models every (t, h) row in double
 * (scores, logits, their error bounds) and calls a row "robust" when every
 * key's decision is further from its threshold than twice the error bound
 * (and every near-tie level would decide the same).  Robust rows must match
 * kept counts exactly and C within the bound derived in at_analyse(); levels
 * must match exactly for every key whose logit margin is outside the band.
 * The data spread the scores (std ~3), so nearly all rows are robust; the
 * number of non-robust rows is counted, logged and bounded (<= 25%).
 */
#include <stdio.h>
#include <string.h>

#include "attend_split.h"
#include "util.h"

typedef struct at_case {
    ga_config cfg;
    int N, T, ldp;
    float *Q, *K, *V, *bias, *P, *R, *W2, *b2;
} at_case;

static void at_make(tarena *a, trng *rng, at_case *k, const ga_config *cfg, int N, int T,
                    int padded)
{
    int H = cfg->H, dh = cfg->dh, g = cfg->g, L = cfg->L;
    k->cfg = *cfg;
    k->N = N;
    k->T = T;
    k->ldp = N + 3;
    size_t nq = (size_t)T * H * dh, nk = (size_t)H * N * dh;
    k->Q = ar_f(a, "Q", nq, 1);
    k->K = ar_f(a, "K", nk, 1);
    k->V = ar_f(a, "V", nk, 1);
    /* U(-9, 9) x U(-1, 1) products over dh, scaled by 1/sqrt(dh): std 3 */
    fill_unif(rng, k->Q, nq, -9, 9);
    fill_unif(rng, k->K, nk, -1, 1);
    fill_unif(rng, k->V, nk, -1, 1);
    k->bias = NULL;
    if (padded) {
        k->bias = ar_f(a, "bias", (size_t)N, 1);
        for (int i = 0; i < N; i++)
            k->bias[i] = (rng_unit(rng) < 0.1 || (i == N - 1 && N > 1)) ? -INFINITY : 0.0f;
    }
    k->P = ar_f(a, "P", (size_t)g * k->ldp, 1);
    k->R = ar_f(a, "R", (size_t)T * g, 1);
    k->W2 = ar_f(a, "W2", (size_t)L * g, 1);
    k->b2 = ar_f(a, "b2", (size_t)L, 1);
    for (int j = 0; j < g; j++)
        for (int i = 0; i < k->ldp; i++)
            k->P[(size_t)j * k->ldp + i] = i < N ? (float)rng_range(rng, -1, 1) : NAN;
    fill_unif(rng, k->R, (size_t)T * g, -1, 1);
    fill_unif(rng, k->W2, (size_t)L * g, -1, 1);
    fill_unif(rng, k->b2, (size_t)L, -0.3, 0.3);
}

typedef struct at_model {
    uint8_t *row_robust; /* [T][H]: decisions (kept, C) comparable exactly */
    uint8_t *row_nan;    /* [T][H]: the model predicts a NaN row */
    uint8_t *key_robust; /* [T][N]: level decision outside the band */
    int *kept;           /* [T][H]: the model's kept count (robust rows) */
    float *Cbound;       /* [T][H*dh]: absolute bound for robust rows */
} at_model;

static void at_analyse(tarena *a, const at_case *k, at_model *md)
{
    const ga_config *cfg = &k->cfg;
    int N = k->N, T = k->T, H = cfg->H, dh = cfg->dh, g = cfg->g, L = cfg->L;
    float theta8[GA_MAX_LEVELS];
    ga_theta_from_tau(cfg, theta8);
    float scale = 1.0f / sqrtf((float)dh);
    md->row_robust = ar_u8(a, "row_robust", (size_t)T * H, 0);
    md->row_nan = ar_u8(a, "row_nan", (size_t)T * H, 0);
    md->key_robust = ar_u8(a, "key_robust", (size_t)T * N + 1, 0);
    md->kept = (int *)ar_alloc(a, "kept_model", sizeof(int) * (size_t)T * H, 0);
    md->Cbound = ar_f(a, "Cbound", (size_t)T * H * dh, 0);
    double *z = ar_d(a, "z", (size_t)N * L + 1), *zerr = ar_d(a, "zerr", (size_t)N * L + 1);
    unsigned *cand = ar_alloc(a, "cand", sizeof(unsigned) * ((size_t)N + 1), 0);
    double *s = ar_d(a, "s_model", (size_t)N + 1), *serr = ar_d(a, "serr", (size_t)N + 1);
    double *magC = ar_d(a, "magC", (size_t)dh);
    for (int t = 0; t < T; t++) {
        int gpn_nan = 0;
        if (!cfg->dense) {
            gpn_nan = gpn_logits_d(k->P, k->ldp, k->R + (size_t)t * g, k->W2, k->b2, N, g, L, z,
                                   zerr);
            for (int i = 0; i < N; i++) {
                int rob;
                gpn_level_d(z + (size_t)i * L, zerr + (size_t)i * L, L, &rob, &cand[i]);
                md->key_robust[(size_t)t * N + i] = (uint8_t)rob;
            }
        }
        for (int h = 0; h < H; h++) {
            size_t row = (size_t)t * H + h;
            const float *q = k->Q + row * dh;
            const float *Kh = k->K + (size_t)h * N * dh, *Vh = k->V + (size_t)h * N * dh;
            float *bound = md->Cbound + row * dh;
            double m = -INFINITY, emax = 0;
            int nan = gpn_nan;
            for (int i = 0; i < N; i++) {
                double dot = 0, mag = 0;
                for (int j = 0; j < dh; j++) {
                    dot += (double)q[j] * Kh[(size_t)i * dh + j];
                    mag += fabs((double)q[j] * Kh[(size_t)i * dh + j]);
                }
                s[i] = scale * dot + (k->bias ? k->bias[i] : 0.0);
                /* float kernel score vs exact: dh products, scale, bias */
                serr[i] = rtol_sum(dh + 1) * scale * mag;
                if (isnan(s[i]))
                    nan = 1;
                else if (s[i] > m)
                    m = s[i];
                if (isfinite(s[i]))
                    emax = fmax(emax, serr[i]);
            }
            md->row_nan[row] = (uint8_t)nan;
            md->row_robust[row] = 1;
            md->kept[row] = 0;
            for (int j = 0; j < dh; j++)
                bound[j] = 0.0f;
            if (nan || N == 0 || m == -INFINITY)
                continue; /* NaN row or zero row: compared exactly */
            int robust = 1, count = 0;
            double Z = 0, E = 0;
            for (int j = 0; j < dh; j++)
                magC[j] = 0;
            for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < N; i++) {
                    if (!isfinite(s[i]))
                        continue;
                    double d = s[i] - m, p = exp(d);
                    /* |float d - d| <= serr_i + emax (m) + U|d| (subtraction) */
                    double ed = serr[i] + emax + U_F32 * fabs(d);
                    int keep = 1;
                    if (!cfg->dense) {
                        unsigned cm = cand[i];
                        int first = -1;
                        for (int l = 0; l < L; l++) {
                            if (!((cm >> l) & 1u))
                                continue;
                            double th = theta8[l];
                            int kl = d >= th;
                            if (fabs(d - th) <= 2 * ed + 2 * U_F32 * fabs(th))
                                robust = 0;
                            if (first < 0)
                                first = kl;
                            else if (first != kl)
                                robust = 0;
                        }
                        keep = first;
                    }
                    if (pass == 0) {
                        E = fmax(E, ed);
                        count += keep;
                        if (keep || cfg->dense || cfg->mode == GA_NORM_SEED)
                            Z += p;
                    } else if (keep) {
                        for (int j = 0; j < dh; j++)
                            magC[j] += p / Z * fabs((double)Vh[(size_t)i * dh + j]);
                    }
                }
            }
            md->row_robust[row] = (uint8_t)robust;
            md->kept[row] = count;
            /* C_j = sum_kept p_i V_ij / Z: each p_i and Z carry the score error E
             * (relative, as d log p = dd) and EXP_RTOL; the two float sums over
             * <= N keys rtol_sum(N) each; 1/Z and the products 4U. */
            double rtol = 2 * E + 2 * EXP_RTOL + 2 * rtol_sum(N) + 4 * U_F32;
            for (int j = 0; j < dh; j++)
                bound[j] = (float)(magC[j] * rtol + ATOL_TINY);
        }
    }
}

/* Compares ga_attend's outputs with the reference's under the model.
 * Returns the number of non-robust rows. */
static long at_compare(tcheck *c, const at_case *k, const at_model *md, const float *C,
                       const int *kept, const uint8_t *lev, const float *Cr, const int *keptr,
                       const uint8_t *levr)
{
    const ga_config *cfg = &k->cfg;
    int N = k->N, T = k->T, H = cfg->H, dh = cfg->dh;
    long nonrobust = 0;
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            size_t row = (size_t)t * H + h;
            const float *cr = Cr + row * dh, *cc = C + row * dh;
            char what[96];
            snprintf(what, sizeof what, "C[t=%d][h=%d]", t, h);
            if (md->row_nan[row]) {
                int bad = 0;
                for (int j = 0; j < dh; j++)
                    bad += !isnan(cc[j]) || !isnan(cr[j]);
                tc_true(c, bad == 0, "%s: expected a NaN row (%d of %d elements are not NaN)",
                        what, bad, dh);
                tc_true(c, kept[row] == keptr[row], "kept[%d][%d] = %d, ref %d (NaN row)", t, h,
                        kept[row], keptr[row]);
                continue;
            }
            if (!md->row_robust[row]) {
                nonrobust++;
                continue;
            }
            tc_true(c, keptr[row] == md->kept[row],
                    "reference kept[%d][%d] = %d, the double model says %d", t, h, keptr[row],
                    md->kept[row]);
            tc_true(c, kept[row] == keptr[row], "kept[%d][%d] = %d, ref %d", t, h, kept[row],
                    keptr[row]);
            tc_close(c, what, cc, cr, md->Cbound + row * dh, dh, 1.0, 0.0);
        }
    }
    if (!cfg->dense && lev) {
        int bad = 0, first = -1;
        for (size_t i = 0; i < (size_t)T * N; i++)
            if (md->key_robust[i] && lev[i] != levr[i]) {
                bad++;
                if (first < 0)
                    first = (int)i;
            }
        tc_true(c, bad == 0, "levels: %d robust keys differ; first [t=%d][i=%d]: got %d, ref %d",
                bad, first < 0 ? 0 : first / N, first < 0 ? 0 : first % N,
                first < 0 ? 0 : lev[first], first < 0 ? 0 : levr[first]);
    }
    return nonrobust;
}

typedef struct at_out {
    float *C;
    int *kept;
    uint8_t *lev;
} at_out;

static void at_alloc_out(tarena *a, const at_case *k, at_out *o)
{
    int T = k->T, H = k->cfg.H, dh = k->cfg.dh;
    o->C = ar_f(a, "C", (size_t)T * H * dh, 1);
    o->kept = (int *)ar_alloc(a, "kept", sizeof(int) * (size_t)T * H, 4);
    o->lev = ar_u8(a, "levels", (size_t)T * k->N, 1);
}

static ga_status at_run(const ga_kernels *kt, ga_pool *pool, const at_case *k, at_out *o)
{
    return ga_attend(kt, pool, &k->cfg, k->N, k->T, k->Q, k->K, k->V, k->bias, k->P, k->ldp,
                     k->R, k->W2, k->b2, o->C, o->kept, o->lev);
}

static ga_status at_run_ref(const at_case *k, at_out *o)
{
    return ga_ref_attend(&k->cfg, k->N, k->T, k->Q, k->K, k->V, k->bias, k->P, k->ldp, k->R,
                         k->W2, k->b2, o->C, o->kept, o->lev);
}

/* config: mode 0 sparse seed, 1 sparse renorm, 2 dense */
static void make_cfg(ga_config *cfg, int mode, int H, int dh, int L)
{
    ga_config tmp;
    float th[GA_MAX_LEVELS];
    test_theta(L, th, &tmp);
    *cfg = tmp;
    cfg->H = H;
    cfg->dh = dh;
    cfg->mode = mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
    cfg->dense = mode == 2;
}

static const char *const MODE_NAME[] = {"sparse seed", "sparse renorm", "dense"};

Test(attend, vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 7, 16, 17, 33, 100, 1001};
    static const int LS[] = {3, 1, 8};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend");
    tc_init(&c, "ga_attend");
    trng rng;
    rng_init(&rng, 701);
    long rows = 0, nonrobust = 0, cases = 0;
    for (int mode = 0; mode < 3; mode++)
        for (int it = 0; it < 5; it++) /* 33 crosses ga_attend's 32-query block */
            for (int H = 1; H <= 4; H += 3)
                for (int idh = 0; idh < 2; idh++)
                    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
                        for (int padded = 0; padded < 2; padded++) {
                            static const int TS[] = {1, 2, 5, 17, 33};
                            int T = TS[it], N = NS[in], dh = idh ? 64 : 3, L = LS[cases % 3];
                            if (N == 1001 && T == 5 && H == 4 && dh == 64 && padded)
                                dh = 128; /* one large head width */
                            cases++;
                            ga_config cfg;
                            make_cfg(&cfg, mode, H, dh, L);
                            tarena a = {0};
                            at_case k;
                            at_make(&a, &rng, &k, &cfg, N, T, padded);
                            at_model md;
                            at_analyse(&a, &k, &md);
                            at_out ref;
                            at_alloc_out(&a, &k, &ref);
                            cr_assert(at_run_ref(&k, &ref) == GA_OK, "ga_ref_attend: %s",
                                      ga_last_error());
                            for (int vi = 0; vi < v.n; vi++) {
                                c.isa = v.k[vi]->name;
                                tc_case(&c, "%s N=%d T=%d H=%d dh=%d L=%d bias=%s",
                                        MODE_NAME[mode], N, T, H, dh, L,
                                        padded ? "padded" : "NULL");
                                at_out o;
                                at_alloc_out(&a, &k, &o);
                                ga_status st = at_run(v.k[vi], NULL, &k, &o);
                                if (!tc_true(&c, st == GA_OK, "ga_attend returned %s: %s",
                                             ga_status_name(st), ga_last_error()))
                                    continue;
                                long nr = at_compare(&c, &k, &md, o.C, o.kept,
                                                     mode == 2 ? NULL : o.lev, ref.C, ref.kept,
                                                     ref.lev);
                                if (vi == 0) {
                                    nonrobust += nr;
                                    rows += (long)T * H;
                                }
                                /* kept / levels NULL: same C, bitwise */
                                float *C2 = ar_f(&a, "C2", (size_t)T * H * dh, 0);
                                st = ga_attend(v.k[vi], NULL, &k.cfg, N, T, k.Q, k.K, k.V,
                                               k.bias, k.P, k.ldp, k.R, k.W2, k.b2, C2, NULL,
                                               NULL);
                                tc_true(&c, st == GA_OK, "ga_attend(kept = levels = NULL): %s",
                                        ga_last_error());
                                tc_bits(&c, "C with kept = levels = NULL", C2, o.C,
                                        sizeof(float) * T * H * dh);
                            }
                            ar_check(&a, &c);
                            ar_free(&a);
                        }
    cr_expect(nonrobust * 4 <= rows, "attend: %ld of %ld rows within the decision band", nonrobust,
              rows);
    cr_log_info("attend vs_ref: %ld of %ld (t, h) rows had a score or logit within the float "
                "band of a decision: kept/C not compared there",
                nonrobust, rows);
    tc_finish(&c);
}

/* The dense block step (flash style: the table's flash_block, online softmax
 * over key chunks, docs/SPEC.md §2): every T = 1 ... 33 (blocks of 2 ... 32
 * queries, then 32 + a lone query), odd N (SIMD and chunk tails), dh 3 / 17 / 64, with
 * and without -inf padding, unaligned pointers (at_make), a 2-thread pool
 * for every third case, against the reference under the model of
 * at_analyse.  Then the rows the block must hand to the T = 1 path, inside a
 * block of 5: (kind 0) one query whose q.k overflows float in a sequential
 * sum (q0 k0 + q1 k1 > FLT_MAX) while its scaled exact value, 1.3e38, is
 * finite and the row max: its C must be exactly V of that key, bitwise (the
 * weight is exactly 1 and every other weight exactly 0, in every exact or
 * exactly recomputed path); (kind 1) NaN V rows of padded keys (weight 0):
 * every row must match the reference within the model and, in the SIMD
 * variants (0 * NaN in the block), equal its T = 1 result bitwise. */
Test(attend, dense_block, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 7, 17, 33, 100};
    static const int DH[] = {3, 17, 64};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend dense_block");
    tc_init(&c, "ga_attend dense block");
    trng rng;
    rng_init(&rng, 704);
    ga_pool *pool = ga_pool_create(2, GA_PLACE_NONE, NULL, 0);
    cr_assert(pool, "ga_pool_create: %s", ga_last_error());
    long rows = 0, nonrobust = 0, cases = 0;
    for (int T = 1; T <= 33; T++)
        for (int in = 0; in < 5; in++, cases++) {
            const int N = NS[in], dh = DH[(T + in) % 3], padded = (T + in) % 2, H = 2;
            ga_config cfg;
            make_cfg(&cfg, 2, H, dh, 3);
            tarena a = {0};
            at_case k;
            at_make(&a, &rng, &k, &cfg, N, T, padded);
            at_model md;
            at_analyse(&a, &k, &md);
            at_out ref;
            at_alloc_out(&a, &k, &ref);
            cr_assert(at_run_ref(&k, &ref) == GA_OK, "ga_ref_attend: %s", ga_last_error());
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "dense N=%d T=%d dh=%d bias=%s pool=%d", N, T, dh,
                        padded ? "padded" : "NULL", cases % 3 == 0);
                at_out o;
                at_alloc_out(&a, &k, &o);
                ga_status st = at_run(v.k[vi], cases % 3 == 0 ? pool : NULL, &k, &o);
                if (!tc_true(&c, st == GA_OK, "ga_attend: %s", ga_last_error()))
                    continue;
                long nr = at_compare(&c, &k, &md, o.C, o.kept, NULL, ref.C, ref.kept, ref.lev);
                if (vi == 0) {
                    nonrobust += nr;
                    rows += (long)T * H;
                }
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    cr_expect(nonrobust * 4 <= rows, "dense_block: %ld of %ld rows within the decision band",
              nonrobust, rows);

    for (int kind = 0; kind < 2; kind++)
        for (int in = 1; in < 5; in++) {
            const int N = NS[in], T = 5, H = 2, dh = 3, hd = H * dh;
            ga_config cfg;
            make_cfg(&cfg, 2, H, dh, 3);
            tarena a = {0};
            at_case k;
            at_make(&a, &rng, &k, &cfg, N, T, 1);
            const int i0 = N / 2; /* kind 0: the overflowing key (unpadded) */
            k.bias[i0] = 0.0f;
            if (kind == 0) {
                float *q = k.Q + (size_t)2 * hd + dh, *kr = k.K + ((size_t)N + i0) * dh;
                for (int j = 0; j < dh; j++) {
                    q[j] = 1.5e19f;
                    kr[j] = j == dh - 1 ? -1.5e19f : 1.5e19f;
                }
            } else {
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < N; i++)
                        if (k.bias[i] == -INFINITY)
                            for (int j = 0; j < dh; j++)
                                k.V[((size_t)h * N + i) * dh + j] = NAN;
            }
            at_model md;
            at_analyse(&a, &k, &md);
            at_out ref;
            at_alloc_out(&a, &k, &ref);
            cr_assert(at_run_ref(&k, &ref) == GA_OK, "ga_ref_attend: %s", ga_last_error());
            int unpadded = 0;
            for (int i = 0; i < N; i++)
                unpadded += k.bias[i] != -INFINITY;
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "dense block, %s, N=%d",
                        kind ? "NaN V rows of padded keys" : "overflowing q.k", N);
                at_out o;
                at_alloc_out(&a, &k, &o);
                ga_status st = at_run(v.k[vi], NULL, &k, &o);
                if (!tc_true(&c, st == GA_OK, "ga_attend: %s", ga_last_error()))
                    continue;
                if (kind == 0) {
                    tc_bits(&c, "C[2][head 1] == V[head 1][i0]", o.C + (size_t)2 * hd + dh,
                            k.V + ((size_t)N + i0) * dh, sizeof(float) * (size_t)dh);
                    tc_eq_long(&c, "kept[2][1]", o.kept[2 * H + 1], unpadded);
                    continue;
                }
                at_compare(&c, &k, &md, o.C, o.kept, NULL, ref.C, ref.kept, ref.lev);
                /* The scalar flash_block (ref/) excludes zero-weight V rows by
                 * a test, so its rows stay block rows (finite, checked above);
                 * the SIMD ones form 0 * NaN and must hand the row to T = 1. */
                if (strcmp(v.k[vi]->name, "scalar") == 0)
                    continue;
                for (int t = 0; t < T; t++) {
                    at_case k1 = k;
                    k1.T = 1;
                    k1.Q = k.Q + (size_t)t * hd;
                    at_out o1;
                    at_alloc_out(&a, &k1, &o1);
                    st = at_run(v.k[vi], NULL, &k1, &o1);
                    tc_true(&c, st == GA_OK, "ga_attend T = 1: %s", ga_last_error());
                    tc_bits(&c, "C, block vs alone", o.C + (size_t)t * hd, o1.C,
                            sizeof(float) * (size_t)hd);
                    tc_bits(&c, "kept, block vs alone", o.kept + (size_t)t * H, o1.kept,
                            sizeof(int) * (size_t)H);
                }
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    ga_pool_destroy(pool);
    tc_finish(&c);
}

/* N == 0 and all keys padded: C = 0, kept = 0, every mode; T == 0 is OK. */
Test(attend, empty_and_all_padded, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "attend empty_and_all_padded");
    tc_init(&c, "ga_attend empty");
    trng rng;
    rng_init(&rng, 702);
    for (int mode = 0; mode < 3; mode++)
        for (int kind = 0; kind < 3; kind++) {
            static const int NK[] = {0, 9, 100};
            int N = NK[kind], T = 3, H = 4, dh = 5;
            ga_config cfg;
            make_cfg(&cfg, mode, H, dh, 3);
            tarena a = {0};
            at_case k;
            at_make(&a, &rng, &k, &cfg, N, T, 1);
            for (int i = 0; i < N; i++)
                k.bias[i] = -INFINITY;
            at_out ref;
            at_alloc_out(&a, &k, &ref);
            cr_assert(at_run_ref(&k, &ref) == GA_OK, "%s", ga_last_error());
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "%s %s", MODE_NAME[mode],
                        N == 0 ? "N = 0" : N == 9 ? "N = 9 all padded" : "N = 100 all padded");
                at_out o;
                at_alloc_out(&a, &k, &o);
                ga_status st = at_run(v.k[vi], NULL, &k, &o);
                tc_true(&c, st == GA_OK, "status %s: %s", ga_status_name(st), ga_last_error());
                int nz = 0, nk = 0;
                for (int i = 0; i < T * H * dh; i++)
                    nz += o.C[i] != 0.0f || ref.C[i] != 0.0f;
                for (int i = 0; i < T * H; i++)
                    nk += o.kept[i] != 0 || ref.kept[i] != 0;
                tc_true(&c, nz == 0, "%d context elements are not 0", nz);
                tc_true(&c, nk == 0, "%d kept counts are not 0", nk);
                /* T == 0: nothing to do, GA_OK */
                st = ga_attend(v.k[vi], NULL, &k.cfg, N, 0, k.Q, k.K, k.V, k.bias, k.P, k.ldp,
                               k.R, k.W2, k.b2, o.C, o.kept, o.lev);
                tc_true(&c, st == GA_OK, "T = 0: status %s: %s", ga_status_name(st),
                        ga_last_error());
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* double score of key i for (t, h), bias included */
static double score_d(const at_case *k, int t, int h, int i)
{
    int H = k->cfg.H, dh = k->cfg.dh, N = k->N;
    const float *q = k->Q + ((size_t)t * H + h) * dh;
    const float *kr = k->K + ((size_t)h * N + i) * dh;
    double dot = 0;
    for (int j = 0; j < dh; j++)
        dot += (double)q[j] * kr[j];
    return dot * (1.0f / sqrtf((float)dh)) + (k->bias ? k->bias[i] : 0.0);
}

static double max_score_d(const at_case *k, int t, int h)
{
    double m = -INFINITY;
    for (int i = 0; i < k->N; i++)
        m = fmax(m, score_d(k, t, h, i));
    return m;
}

/* NaN (granattn.h): NaN in a query's scores (q, K, bias) -> that head's C is
 * NaN; NaN in its GPN logits (P, R[t], W2, b2) -> every head of that query;
 * NaN in a V row reaches C only when that row is kept. */
enum { NAN_Q, NAN_K, NAN_BIAS, NAN_R, NAN_P, NAN_B2, NAN_V_DROPPED, NAN_V_KEPT, NAN_KINDS };
static const char *const NAN_NAME[] = {"Q[1][head 2]", "K[head 1][i]", "bias[i]",
                                       "R[2][j]", "P[j][i]", "b2[1]", "V rows of dropped keys",
                                       "V row of the max key (kept)"};

Test(attend, nan_behaviour, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {7, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend nan_behaviour");
    tc_init(&c, "ga_attend NaN");
    trng rng;
    rng_init(&rng, 703);
    for (int kind = 0; kind < NAN_KINDS; kind++)
        for (int mode = 0; mode < 3; mode++)
            for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++) {
                int N = NS[in], T = 3, H = 4, dh = 8;
                int gpn_kind = kind == NAN_R || kind == NAN_P || kind == NAN_B2;
                if (mode == 2 && gpn_kind)
                    continue; /* dense: no GPN */
                ga_config cfg;
                make_cfg(&cfg, mode, H, dh, 3);
                tarena a = {0};
                at_case k;
                at_make(&a, &rng, &k, &cfg, N, T, 1);
                int i0 = N / 2;
                k.bias[i0] = 0.0f;
                /* expected NaN rows: mask[t][h] */
                uint8_t nanrow[3][4] = {{0}};
                switch (kind) {
                case NAN_Q:
                    k.Q[((size_t)1 * H + 2) * dh + 3] = NAN;
                    nanrow[1][2] = 1;
                    break;
                case NAN_K:
                    k.K[((size_t)1 * N + i0) * dh + 5] = NAN;
                    for (int t = 0; t < T; t++)
                        nanrow[t][1] = 1;
                    break;
                case NAN_BIAS:
                    k.bias[i0] = NAN;
                    memset(nanrow, 1, sizeof nanrow);
                    break;
                case NAN_R:
                    k.R[(size_t)2 * cfg.g + 1] = NAN;
                    memset(nanrow[2], 1, sizeof nanrow[2]);
                    break;
                case NAN_P:
                    k.P[(size_t)3 * k.ldp + i0] = NAN;
                    memset(nanrow, 1, sizeof nanrow);
                    break;
                case NAN_B2:
                    k.b2[1] = NAN;
                    memset(nanrow, 1, sizeof nanrow);
                    break;
                default: break;
                }
                if (kind == NAN_V_DROPPED) {
                    if (mode == 2) { /* dense reads every row */
                        ar_free(&a);
                        continue;
                    }
                    /* level 2 (tau = 0) keeps every finite key: make it never win,
                     * so the loosest threshold is ln 0.01; a key whose score is
                     * below m + ln 0.01 - 0.5 for every query (0.5 is far beyond
                     * the float error of a score) is dropped everywhere */
                    k.b2[2] = -1e4f;
                    int poisoned = 0;
                    for (int h = 0; h < H; h++)
                        for (int i = 0; i < N; i++) {
                            int used = 0;
                            for (int t = 0; t < T; t++)
                                used |= score_d(&k, t, h, i) - max_score_d(&k, t, h) >=
                                        log(0.01) - 0.5;
                            if (!used && k.bias[i] == 0.0f) {
                                for (int j = 0; j < dh; j++)
                                    k.V[((size_t)h * N + i) * dh + j] = NAN;
                                poisoned++;
                            }
                        }
                    cr_assert(poisoned > 0 || N < 10, "test setup: no dropped key to poison");
                }
                if (kind == NAN_V_KEPT) {
                    /* the max key of (t = 0, h = 0) is always kept: C[0][0] is NaN;
                     * other heads never read head 0's V; other queries of head 0
                     * may or may not keep that key (not checked), in dense mode
                     * they all read it */
                    int arg = 0;
                    for (int i = 1; i < N; i++)
                        if (score_d(&k, 0, 0, i) > score_d(&k, 0, 0, arg))
                            arg = i;
                    for (int j = 0; j < dh; j++)
                        k.V[(size_t)arg * dh + j] = NAN;
                    for (int t = 0; t < T; t++)
                        nanrow[t][0] = t == 0 || mode == 2 ? 1 : 2;
                }
                at_model md;
                at_analyse(&a, &k, &md);
                at_out ref;
                at_alloc_out(&a, &k, &ref);
                cr_assert(at_run_ref(&k, &ref) == GA_OK, "%s", ga_last_error());
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "NaN in %s, %s N=%d", NAN_NAME[kind], MODE_NAME[mode], N);
                    at_out o;
                    at_alloc_out(&a, &k, &o);
                    ga_status st = at_run(v.k[vi], NULL, &k, &o);
                    if (!tc_true(&c, st == GA_OK, "status %s: %s", ga_status_name(st),
                                 ga_last_error()))
                        continue;
                    for (int t = 0; t < T; t++)
                        for (int h = 0; h < H; h++) {
                            const float *row = o.C + ((size_t)t * H + h) * dh;
                            const float *rrow = ref.C + ((size_t)t * H + h) * dh;
                            int nn = 0, rn = 0;
                            for (int j = 0; j < dh; j++) {
                                nn += isnan(row[j]) != 0;
                                rn += isnan(rrow[j]) != 0;
                            }
                            if (nanrow[t][h] == 2)
                                continue; /* not determined by the contract */
                            if (nanrow[t][h]) {
                                tc_true(&c, nn == dh, "C[t=%d][h=%d]: %d of %d NaN, expected all",
                                        t, h, nn, dh);
                                tc_true(&c, rn == dh, "reference C[t=%d][h=%d]: %d of %d NaN, "
                                        "expected all", t, h, rn, dh);
                            } else {
                                tc_true(&c, nn == 0, "C[t=%d][h=%d]: %d NaN, expected none", t,
                                        h, nn);
                                tc_true(&c, rn == 0, "reference C[t=%d][h=%d]: %d NaN, expected "
                                        "none", t, h, rn);
                            }
                        }
                    /* everything else as the reference (NaN rows match as NaN) */
                    at_compare(&c, &k, &md, o.C, o.kept, mode == 2 ? NULL : o.lev, ref.C,
                               ref.kept, ref.lev);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Invalid arguments: GA_EINVAL with a fresh, non-empty message; never a
 * crash (a crash would show as CRASH in this test). */
Test(attend, invalid_arguments, .timeout = TEST_TIMEOUT)
{
    enum {
        BAD_KT, BAD_CFG, BAD_Q, BAD_K, BAD_V, BAD_C, BAD_P, BAD_R, BAD_W2, BAD_B2, BAD_N,
        BAD_T, BAD_LDP, BAD_L9, BAD_L0, BAD_TAU_INC, BAD_TAU_1, BAD_TAU_NEG, BAD_TAU_NAN,
        BAD_H, BAD_DH, BAD_G, BAD_MODE, BAD_COUNT
    };
    static const char *const NAME[] = {
        "kt NULL",  "cfg NULL",    "Q NULL",          "K NULL",      "V NULL",
        "C NULL",   "P NULL",      "R NULL",          "W2 NULL",     "b2 NULL",
        "N = -1",   "T = -1",      "ldp < N",         "L = 9",       "L = 0",
        "tau increasing", "tau = 1", "tau = -0.1",    "tau NaN",     "H = 0",
        "dh = 0",   "g = 0",       "mode = 7"};
    tvariants v;
    variants_get(&v, "attend invalid_arguments");
    trng rng;
    rng_init(&rng, 704);
    ga_config cfg;
    make_cfg(&cfg, 0, 2, 4, 3);
    tarena a = {0};
    at_case k;
    at_make(&a, &rng, &k, &cfg, 10, 2, 0);
    at_out o;
    at_alloc_out(&a, &k, &o);
    for (int vi = 0; vi < v.n; vi++)
        for (int b = 0; b < BAD_COUNT; b++) {
            ga_config cf = cfg;
            const ga_kernels *kt = v.k[vi];
            const ga_config *cp = &cf;
            const float *Q = k.Q, *K = k.K, *V = k.V, *P = k.P, *R = k.R, *W2 = k.W2,
                        *b2 = k.b2;
            float *C = o.C;
            int N = k.N, T = k.T, ldp = k.ldp;
            switch (b) {
            case BAD_KT: kt = NULL; break;
            case BAD_CFG: cp = NULL; break;
            case BAD_Q: Q = NULL; break;
            case BAD_K: K = NULL; break;
            case BAD_V: V = NULL; break;
            case BAD_C: C = NULL; break;
            case BAD_P: P = NULL; break;
            case BAD_R: R = NULL; break;
            case BAD_W2: W2 = NULL; break;
            case BAD_B2: b2 = NULL; break;
            case BAD_N: N = -1; break;
            case BAD_T: T = -1; break;
            case BAD_LDP: ldp = N - 1; break;
            case BAD_L9: cf.L = 9; break;
            case BAD_L0: cf.L = 0; break;
            case BAD_TAU_INC: cf.tau[1] = 0.5f; break; /* 0.1, 0.5, 0 */
            case BAD_TAU_1: cf.tau[0] = 1.0f; break;
            case BAD_TAU_NEG: cf.tau[2] = -0.1f; break;
            case BAD_TAU_NAN: cf.tau[1] = NAN; break;
            case BAD_H: cf.H = 0; break;
            case BAD_DH: cf.dh = 0; break;
            case BAD_G: cf.g = 0; break;
            case BAD_MODE: cf.mode = (ga_norm)7; break;
            }
            ga_isa dummy;
            ga_isa_from_name("sentinel-xyzzy", &dummy); /* a message to be replaced */
            ga_status st = ga_attend(kt, NULL, cp, N, T, Q, K, V, k.bias, P, ldp, R, W2, b2, C,
                                     o.kept, o.lev);
            const char *msg = ga_last_error();
            cr_expect_eq(st, GA_EINVAL, "[%s] ga_attend with %s returned %s, expected EINVAL",
                         v.k[vi]->name, NAME[b], ga_status_name(st));
            cr_expect(msg && msg[0] && !strstr(msg, "sentinel-xyzzy"),
                      "[%s] ga_attend with %s: no fresh error message", v.k[vi]->name, NAME[b]);
            /* the reference applies the same argument rules (kt aside) */
            if (b != BAD_KT) {
                st = ga_ref_attend(cp, N, T, Q, K, V, k.bias, P, ldp, R, W2, b2, C, o.kept,
                                   o.lev);
                cr_expect_eq(st, GA_EINVAL, "ga_ref_attend with %s returned %s", NAME[b],
                             ga_status_name(st));
            }
        }
    /* config checks on their own */
    ga_config d;
    ga_config_default(&d);
    cr_expect_eq(ga_config_check(&d), GA_OK, "default config rejected: %s", ga_last_error());
    /* the dense baseline ignores the GPN fields, and its P..b2 may be NULL */
    d.dense = 1;
    d.L = 9;
    cr_expect_eq(ga_config_check(&d), GA_OK, "dense config with L = 9 rejected: %s",
                 ga_last_error());
    make_cfg(&cfg, 2, 2, 4, 3);
    ga_status st = ga_attend(v.k[0], NULL, &cfg, k.N, k.T, k.Q, k.K, k.V, NULL, NULL, 0, NULL,
                             NULL, NULL, o.C, o.kept, NULL);
    cr_expect_eq(st, GA_OK, "dense with P, R, W2, b2 = NULL: %s", ga_last_error());
    ar_free(&a);
}

/* ---- T = 1 key split (src/attend_split.c) ----
 * The knobs of attend_split.h force ranges of k keys (Criterion runs each
 * test in its own process, so they do not leak into other tests).  For every
 * variant, mode, padding pattern (NULL, random, a padded block that covers
 * whole ranges) and range size k (1 = ranges of one key):
 *   - the split step against the reference under the model of at_analyse
 *     (dense: the merge adds a few roundings per weight, far inside the
 *     model's 2 rtol_sum(N) + 4 U; sparse: the same bits as unsplit);
 *   - bitwise the same C, kept and levels with no pool and pools of 1 to 4
 *     threads (the ranges never follow the thread count);
 *   - sparse: bitwise the unsplit step (knob off). */
static ga_pool *split_pool(int p)
{
    static ga_pool *pools[5];
    if (p && !pools[p]) {
        pools[p] = ga_pool_create(p, GA_PLACE_NONE, NULL, 0);
        cr_assert(pools[p], "ga_pool_create(%d): %s", p, ga_last_error());
    }
    return pools[p];
}

static void split_force(int mode, int k)
{
    ga_split_force_dense(mode == 2 ? k : 0);
    ga_split_force_sparse(mode == 2 ? 0 : k);
}

static void split_padding(at_case *k, int kind)
{
    if (kind == 2) /* a block of padded keys: whole ranges with every key padded */
        for (int i = k->N / 3; i < 2 * k->N / 3; i++)
            k->bias[i] = -INFINITY;
}

Test(attend, split_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 2, 17, 33, 100, 1001};
    static const int KS[] = {1, 3, 16, 400};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend split");
    tc_init(&c, "ga_attend key split");
    ga_step_set_min_work(0); /* pools run every step (no small-work rule) */
    trng rng;
    rng_init(&rng, 705);
    long rows = 0, nonrobust = 0;
    for (int mode = 0; mode < 3; mode++)
        for (int H = 1; H <= 3; H += 2)
            for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
                for (int pad = 0; pad < 3; pad++)
                    for (size_t ik = 0; ik < sizeof KS / sizeof KS[0]; ik++) {
                        const int N = NS[in], kk = KS[ik], T = 1, dh = (in + ik) % 2 ? 64 : 3;
                        if (kk >= N && kk != 1)
                            continue; /* one range: the unsplit step */
                        ga_config cfg;
                        make_cfg(&cfg, mode, H, dh, 3);
                        tarena a = {0};
                        at_case k;
                        at_make(&a, &rng, &k, &cfg, N, T, pad > 0);
                        split_padding(&k, pad);
                        at_model md;
                        at_analyse(&a, &k, &md);
                        at_out ref, un;
                        at_alloc_out(&a, &k, &ref);
                        cr_assert(at_run_ref(&k, &ref) == GA_OK, "%s", ga_last_error());
                        for (int vi = 0; vi < v.n; vi++) {
                            c.isa = v.k[vi]->name;
                            at_alloc_out(&a, &k, &un);
                            split_force(mode, 0);
                            ga_status st = at_run(v.k[vi], NULL, &k, &un);
                            tc_true(&c, st == GA_OK, "unsplit: %s", ga_last_error());
                            split_force(mode, kk);
                            at_out o0 = {0};
                            for (int p = 0; p <= 4; p++) {
                                tc_case(&c, "%s N=%d H=%d dh=%d pad=%d ranges of %d keys, "
                                        "pool %d", MODE_NAME[mode], N, H, dh, pad, kk, p);
                                at_out o;
                                at_alloc_out(&a, &k, &o);
                                st = at_run(v.k[vi], split_pool(p), &k, &o);
                                if (!tc_true(&c, st == GA_OK, "status %s: %s",
                                             ga_status_name(st), ga_last_error()))
                                    continue;
                                size_t nc = sizeof(float) * H * dh;
                                if (p == 0) {
                                    o0 = o;
                                    long nr = at_compare(&c, &k, &md, o.C, o.kept,
                                                         mode == 2 ? NULL : o.lev, ref.C,
                                                         ref.kept, ref.lev);
                                    if (vi == 0) {
                                        nonrobust += nr;
                                        rows += H;
                                    }
                                    if (mode != 2) {
                                        tc_bits(&c, "C vs unsplit", o.C, un.C, nc);
                                        tc_bits(&c, "kept vs unsplit", o.kept, un.kept,
                                                sizeof(int) * H);
                                        tc_bits(&c, "levels vs unsplit", o.lev, un.lev, N);
                                    }
                                    continue;
                                }
                                tc_bits(&c, "C vs no pool", o.C, o0.C, nc);
                                tc_bits(&c, "kept vs no pool", o.kept, o0.kept, sizeof(int) * H);
                                if (mode != 2)
                                    tc_bits(&c, "levels vs no pool", o.lev, o0.lev, N);
                            }
                        }
                        split_force(mode, 0);
                        ar_check(&a, &c);
                        ar_free(&a);
                    }
    cr_expect(nonrobust * 4 <= rows, "split: %ld of %ld rows within the decision band",
              nonrobust, rows);
    tc_finish(&c);
}

/* Split ranges under the rule (no knob): shapes where heads do not balance
 * the threads (H = 1, 3, 5) and where they do (H = 4), an odd N: bitwise the
 * same for no pool and pools of 1 to 4 threads, with and without the
 * small-work rule (it only moves the step onto the calling thread). */
Test(attend, split_rule_thread_counts, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "attend split rule");
    tc_init(&c, "ga_attend split rule");
    trng rng;
    rng_init(&rng, 706);
    const int N = t_quick() ? 2053 : 8195;
    for (int mode = 0; mode < 3; mode++)
        for (int H = 1; H <= 5; H += 2 - (H == 3)) { /* 1, 3, 4, 5 */
            const int dh = 64;
            ga_config cfg;
            make_cfg(&cfg, mode, H, dh, 3);
            tarena a = {0};
            at_case k;
            at_make(&a, &rng, &k, &cfg, N, 1, 1);
            tc_true(&c, mode != 2 || H > 4 || ga_split_dense_ranges(N, H) > 1,
                    "dense H = %d N = %d: expected a split", H, N);
            at_model md;
            at_analyse(&a, &k, &md);
            at_out ref;
            at_alloc_out(&a, &k, &ref);
            cr_assert(at_run_ref(&k, &ref) == GA_OK, "%s", ga_last_error());
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                at_out o0 = {0};
                for (int small = 0; small < 2; small++)
                    for (int p = 0; p <= 4; p++) {
                        ga_step_set_min_work(small ? (long long)1 << 40 : 0);
                        tc_case(&c, "%s N=%d H=%d pool %d small-work rule %s", MODE_NAME[mode],
                                N, H, p, small ? "on (every step inline)" : "off");
                        at_out o;
                        at_alloc_out(&a, &k, &o);
                        ga_status st = at_run(v.k[vi], split_pool(p), &k, &o);
                        if (!tc_true(&c, st == GA_OK, "%s", ga_last_error()))
                            continue;
                        if (!small && p == 0) {
                            o0 = o;
                            at_compare(&c, &k, &md, o.C, o.kept, mode == 2 ? NULL : o.lev,
                                       ref.C, ref.kept, ref.lev);
                            continue;
                        }
                        tc_bits(&c, "C", o.C, o0.C, sizeof(float) * H * dh);
                        tc_bits(&c, "kept", o.kept, o0.kept, sizeof(int) * H);
                        if (mode != 2)
                            tc_bits(&c, "levels", o.lev, o0.lev, N);
                    }
            }
            ga_step_set_min_work(-1);
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* NaN in one range only, ranges of 16 keys (N = 100: 7 ranges), T = 1,
 * H = 3: the NaN rules of the unsplit step (granattn.h), checked against the
 * reference's NaN pattern and kept counts:
 *   K row of one key (head 1) -> head 1 NaN;  bias NaN -> every head;
 *   P column of an unpadded key -> every head (sparse);
 *   P column of a padded key -> no NaN (sparse);
 *   V row of head 0's max key -> head 0 NaN;
 *   V row of a padded key (weight 0) -> no NaN (dense and sparse);
 *   V row in a range whose scores are all ~200 below the row max (weights
 *   exp(-200) = 0 in float: no NaN unsplit) -> no NaN (the merge skips a
 *   range whose float weight is 0; the double reference differs there, so
 *   this case is compared with the unsplit step only). */
Test(attend, split_nan_one_range, .timeout = TEST_TIMEOUT)
{
    enum { K_ROW, BIAS, P_UNPADDED, P_PADDED, V_MAX, V_PADDED, V_FAR, KINDS };
    static const char *const NAME[] = {"K row", "bias", "P of an unpadded key",
                                       "P of a padded key", "V row of the max key",
                                       "V row of a padded key", "V row of a far range"};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend split nan");
    tc_init(&c, "ga_attend split NaN");
    ga_step_set_min_work(0);
    trng rng;
    rng_init(&rng, 707);
    const int N = 100, T = 1, H = 3, dh = 8;
    for (int kind = 0; kind < KINDS; kind++)
        for (int mode = 0; mode < 3; mode++) {
            if (mode == 2 && (kind == P_UNPADDED || kind == P_PADDED))
                continue; /* dense: no GPN */
            ga_config cfg;
            make_cfg(&cfg, mode, H, dh, 3);
            tarena a = {0};
            at_case k;
            at_make(&a, &rng, &k, &cfg, N, T, 1);
            const int ip = 37, iu = 53; /* a padded and an unpadded key, ranges 2 and 3 */
            k.bias[ip] = -INFINITY;
            k.bias[iu] = 0.0f;
            int expect[3] = {0, 0, 0};
            switch (kind) {
            case K_ROW:
                k.K[((size_t)1 * N + iu) * dh + 2] = NAN;
                expect[1] = 1;
                break;
            case BIAS:
                k.bias[iu] = NAN;
                expect[0] = expect[1] = expect[2] = 1;
                break;
            case P_UNPADDED:
                k.P[(size_t)2 * k.ldp + iu] = NAN;
                expect[0] = expect[1] = expect[2] = 1;
                break;
            case P_PADDED:
                k.P[(size_t)2 * k.ldp + ip] = NAN;
                break;
            case V_MAX: {
                int arg = -1;
                for (int i = 0; i < N; i++)
                    if (k.bias[i] == 0.0f && (arg < 0 || score_d(&k, 0, 0, i) > score_d(&k, 0, 0, arg)))
                        arg = i;
                for (int j = 0; j < dh; j++)
                    k.V[(size_t)arg * dh + j] = NAN;
                expect[0] = 1;
                break;
            }
            case V_PADDED:
                for (int h = 0; h < H; h++)
                    for (int j = 0; j < dh; j++)
                        k.V[((size_t)h * N + ip) * dh + j] = NAN;
                break;
            case V_FAR:
                for (int i = 0; i < 16; i++) /* range 0 */
                    k.bias[i] = -200.0f;
                for (int h = 0; h < H; h++)
                    for (int j = 0; j < dh; j++)
                        k.V[((size_t)h * N + 3) * dh + j] = NAN;
                break;
            }
            at_out ref;
            at_alloc_out(&a, &k, &ref);
            cr_assert(at_run_ref(&k, &ref) == GA_OK, "%s", ga_last_error());
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                if (kind == V_FAR) { /* the unsplit step is the reference here */
                    split_force(mode, 0);
                    cr_assert(at_run(v.k[vi], NULL, &k, &ref) == GA_OK, "%s", ga_last_error());
                }
                split_force(mode, 16);
                for (int p = 0; p <= 2; p += 2) {
                    tc_case(&c, "NaN in %s (%s), pool %d", NAME[kind], MODE_NAME[mode], p);
                    at_out o;
                    at_alloc_out(&a, &k, &o);
                    ga_status st = at_run(v.k[vi], split_pool(p), &k, &o);
                    if (!tc_true(&c, st == GA_OK, "%s", ga_last_error()))
                        continue;
                    for (int h = 0; h < H; h++) {
                        int nn = 0, rn = 0;
                        for (int j = 0; j < dh; j++) {
                            nn += isnan(o.C[h * dh + j]) != 0;
                            rn += isnan(ref.C[h * dh + j]) != 0;
                        }
                        tc_true(&c, nn == (expect[h] ? dh : 0),
                                "head %d: %d of %d NaN, expected %s", h, nn, dh,
                                expect[h] ? "all" : "none");
                        tc_true(&c, rn == (expect[h] ? dh : 0),
                                "reference head %d: %d of %d NaN, expected %s", h, rn, dh,
                                expect[h] ? "all" : "none");
                        tc_true(&c, o.kept[h] == ref.kept[h] || (!expect[h] && mode != 2),
                                "head %d: kept %d, reference %d", h, o.kept[h], ref.kept[h]);
                        if (expect[h] && kind != V_MAX) /* a NaN score or logit: kept 0 */
                            tc_true(&c, o.kept[h] == 0, "head %d: NaN row with kept %d", h,
                                    o.kept[h]);
                    }
                }
            }
            split_force(mode, 0);
            ar_check(&a, &c);
            ar_free(&a);
        }
    ga_step_set_min_work(-1);
    tc_finish(&c);
}
