/* test_attend_plan.c — the prepared fused step (ga_attend_plan_create,
 * ga_attend_run, ga_attend_run_levels, ga_attend_plan_destroy) and the
 * int-overflow checks of ga_attend (issue 9).
 *
 *   same_as_attend      plan runs == ga_attend bitwise (C, kept, levels), every
 *                       variant, sparse seed / renorm / dense, with and without
 *                       a pool and -inf padding; given levels == the GPN's
 *                       levels give the same C and kept bitwise
 *   given_levels        fixed and random levels through run_levels: kept and
 *                       C against a direct composition of the table's kernels
 *                       (scores, threshold, sparse_context) per (t, h)
 *   reuse_no_alloc      one plan, a sequence of (N, T) <= (max_N, max_T):
 *                       bitwise == ga_attend and no allocation during runs
 *                       (malloc family counted through ld --wrap; the
 *                       counter is shown to count with ga_attend itself).
 *                       Dense runs of >= 2 queries call the table's sgemm,
 *                       whose blocked SIMD variants allocate one packing
 *                       buffer per thread on its first call: one uncounted
 *                       run at (max_N, max_T) first.
 *   run_errors          EINVAL + fresh message, outputs untouched
 *   int_overflow        H*dh, N*dh, H*N*dh, T*H*dh, T*N, T*g, L*g, g*ldp that
 *                       do not fit in an int: EINVAL before any allocation or
 *                       access (every pointer is a guard page), and products
 *                       just at INT_MAX accepted
 *   traced              ga_attend_run_traced / ga_attend_traced_theta (the
 *                       training forward's composition): C, kept == run_levels
 *                       bitwise; the trace reproduces the run through the
 *                       kernels; no allocation; errors
 *   translate_loop_no_alloc the token loop of gs_translate_batch (decode.h):
 *                       no allocation, every variant, beam 1 / 4 / 16
 *   decode_step_no_alloc the model's gm_decode_step (learned, random, dense
 *                       cross-attention): no allocation after the first step,
 *                       every variant (the sgemm's packing buffer is per
 *                       thread, allocated by its first call)
 *
 * Data shapes as ga_attend: Q [T][H*dh]; K, V [H][N][dh]; bias [N];
 * P [g][ldp]; R [T][g]; W2 [L][g]; b2 [L]; C [T][H*dh]; kept [T][H];
 * levels [T][N].
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "model.h"
#include "util.h"

/* ------------------------------------------------ allocation counter
 * The test executable is linked with -Wl,--wrap=<fn> for the malloc family
 * (tests/meson.build), so every call from the library's static archive and
 * from the tests lands here.  Counting is global (pool workers included)
 * and only on between alloc_count_begin() and alloc_count_end(). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

static atomic_int alloc_counting;
static atomic_long alloc_calls;

static void alloc_note(void)
{
    if (atomic_load(&alloc_counting))
        atomic_fetch_add(&alloc_calls, 1);
}
void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
    alloc_note();
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_calloc(size_t n, size_t s)
{
    alloc_note();
    return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
    alloc_note();
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    alloc_note();
    return __real_aligned_alloc(a, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    alloc_note();
    return __real_posix_memalign(p, a, n);
}

static void alloc_count_begin(void)
{
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_counting, 1);
}
static long alloc_count_end(void)
{
    atomic_store(&alloc_counting, 0);
    return atomic_load(&alloc_calls);
}

/* -------------------------------------------------------------- cases */
typedef struct pc_case {
    ga_config cfg;
    int N, T, ldp;
    float *Q, *K, *V, *bias, *P, *R, *W2, *b2;
} pc_case;

/* mode 0 sparse seed, 1 sparse renorm, 2 dense */
static void pc_cfg(ga_config *cfg, int mode, int H, int dh, int L)
{
    float th[GA_MAX_LEVELS];
    test_theta(L, th, cfg);
    cfg->H = H;
    cfg->dh = dh;
    cfg->g = 6;
    cfg->mode = mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
    cfg->dense = mode == 2;
}

static const char *const MODE[] = {"sparse seed", "sparse renorm", "dense"};

/* Inputs for up to (maxN, maxT); scores of std ~3 as in test_attend.c. */
static void pc_make(tarena *a, trng *rng, pc_case *k, const ga_config *cfg, int maxN,
                    int maxT, int padded)
{
    int H = cfg->H, dh = cfg->dh, g = cfg->g, L = cfg->L;
    k->cfg = *cfg;
    k->N = maxN;
    k->T = maxT;
    k->ldp = maxN + 2;
    size_t nq = (size_t)maxT * H * dh, nk = (size_t)H * maxN * dh;
    k->Q = ar_f(a, "Q", nq + 1, 1);
    k->K = ar_f(a, "K", nk + 1, 1);
    k->V = ar_f(a, "V", nk + 1, 1);
    fill_unif(rng, k->Q, nq, -9, 9);
    fill_unif(rng, k->K, nk, -1, 1);
    fill_unif(rng, k->V, nk, -1, 1);
    k->bias = NULL;
    if (padded) {
        k->bias = ar_f(a, "bias", (size_t)maxN + 1, 1);
        for (int i = 0; i < maxN; i++)
            k->bias[i] = rng_unit(rng) < 0.15 ? -INFINITY : 0.0f;
    }
    k->P = ar_f(a, "P", (size_t)g * k->ldp, 1);
    k->R = ar_f(a, "R", (size_t)maxT * g + 1, 1);
    k->W2 = ar_f(a, "W2", (size_t)L * g, 1);
    k->b2 = ar_f(a, "b2", (size_t)L, 1);
    fill_unif(rng, k->P, (size_t)g * k->ldp, -1, 1);
    fill_unif(rng, k->R, (size_t)maxT * g, -1, 1);
    fill_unif(rng, k->W2, (size_t)L * g, -1, 1);
    fill_unif(rng, k->b2, (size_t)L, -0.3, 0.3);
}

typedef struct pc_out {
    float *C;
    int *kept;
    uint8_t *lev;
} pc_out;

static void pc_alloc_out(tarena *a, const pc_case *k, pc_out *o)
{
    int T = k->T, H = k->cfg.H, dh = k->cfg.dh;
    o->C = ar_f(a, "C", (size_t)T * H * dh + 1, 1);
    o->kept = (int *)ar_alloc(a, "kept", sizeof(int) * ((size_t)T * H + 1), 4);
    o->lev = ar_u8(a, "levels", (size_t)T * k->N + 1, 1);
}

/* ga_attend on the first N keys / T queries of the case (K, V use N rows
 * per head: a head-major [H][N][dh] view of the first H*N*dh floats). */
static ga_status pc_attend(const ga_kernels *kt, ga_pool *pool, const pc_case *k, int N, int T,
                           pc_out *o)
{
    return ga_attend(kt, pool, &k->cfg, N, T, k->Q, k->K, k->V, k->bias, k->P, k->ldp, k->R,
                     k->W2, k->b2, o->C, o->kept, o->lev);
}

static ga_status pc_run(ga_attend_plan *pl, const pc_case *k, int N, int T, pc_out *o)
{
    return ga_attend_run(pl, N, T, k->Q, k->K, k->V, k->bias, k->P, k->ldp, k->R, k->W2,
                         k->b2, o->C, o->kept, o->lev);
}

/* bitwise equality of the outputs of (N, T) */
static void pc_same(tcheck *c, const pc_case *k, int N, int T, const pc_out *a,
                    const pc_out *b, int levels)
{
    int H = k->cfg.H, dh = k->cfg.dh;
    tc_bits(c, "C", a->C, b->C, sizeof(float) * (size_t)T * H * dh);
    tc_bits(c, "kept", a->kept, b->kept, sizeof(int) * (size_t)T * H);
    if (levels)
        tc_bits(c, "levels", a->lev, b->lev, (size_t)T * N);
}

Test(attend_plan, same_as_attend, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 17, 100, 1001};
    static const int TS[] = {1, 5, 32, 37}; /* 37 crosses the 32-query block */
    tvariants v;
    tcheck c;
    variants_get(&v, "attend_plan same_as_attend");
    tc_init(&c, "ga_attend_run");
    trng rng;
    rng_init(&rng, 801);
    ga_pool *pool = ga_pool_create(3, GA_PLACE_NONE, NULL, 0);
    cr_assert(pool, "ga_pool_create: %s", ga_last_error());
    long given_compared = 0;
    for (int mode = 0; mode < 3; mode++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (size_t it = 0; it < sizeof TS / sizeof TS[0]; it++)
                for (int padded = 0; padded < 2; padded++) {
                    int N = NS[in], T = TS[it], H = (in + it) % 2 ? 4 : 1;
                    int dh = (in + it + padded) % 3 ? 16 : 5, L = 1 + (int)(in + it) % 3 * 3;
                    ga_config cfg;
                    pc_cfg(&cfg, mode, H, dh, L);
                    tarena a = {0};
                    pc_case k;
                    pc_make(&a, &rng, &k, &cfg, N, T, padded);
                    for (int vi = 0; vi < v.n; vi++)
                        for (int usepool = 0; usepool < 2; usepool++) {
                            ga_pool *pp = usepool ? pool : NULL;
                            c.isa = v.k[vi]->name;
                            tc_case(&c, "%s N=%d T=%d H=%d dh=%d L=%d bias=%s pool=%s",
                                    MODE[mode], N, T, H, dh, L, padded ? "padded" : "NULL",
                                    usepool ? "3" : "NULL");
                            pc_out ref, o, og;
                            pc_alloc_out(&a, &k, &ref);
                            pc_alloc_out(&a, &k, &o);
                            pc_alloc_out(&a, &k, &og);
                            ga_status st = pc_attend(v.k[vi], pp, &k, N, T, &ref);
                            if (!tc_true(&c, st == GA_OK, "ga_attend: %s", ga_last_error()))
                                continue;
                            /* a plan larger than the call */
                            ga_attend_plan *pl =
                                ga_attend_plan_create(v.k[vi], pp, &cfg, N + 7, T + 3, &st);
                            if (!tc_true(&c, pl && st == GA_OK, "plan_create: %s",
                                         ga_last_error()))
                                continue;
                            st = pc_run(pl, &k, N, T, &o);
                            tc_true(&c, st == GA_OK, "run: %s", ga_last_error());
                            pc_same(&c, &k, N, T, &o, &ref, mode != 2);
                            /* caller-given levels = the GPN's own choice */
                            st = ga_attend_run_levels(pl, N, T, k.Q, k.K, k.V, k.bias,
                                                      mode == 2 ? NULL : ref.lev, og.C,
                                                      og.kept);
                            tc_true(&c, st == GA_OK, "run_levels: %s", ga_last_error());
                            pc_same(&c, &k, N, T, &og, &ref, 0);
                            given_compared++;
                            ga_attend_plan_destroy(pl);
                        }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    ga_pool_destroy(pool);
    cr_log_info("attend_plan same_as_attend: %ld plan / given-level comparisons",
                given_compared);
    tc_finish(&c);
}

/* Fixed and random given levels against a direct composition of the kernels
 * of the same table: per (t, h) scores (one query), threshold with the given
 * levels, then C = sparse_context(1/Z), NaN/zero conventions of ga_attend.
 * Bitwise, since for one query the plan runs the same kernels (and the
 * single-row scores of a 1-query block equal the direct call's). */
Test(attend_plan, given_levels, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "attend_plan given_levels");
    tc_init(&c, "ga_attend_run_levels");
    trng rng;
    rng_init(&rng, 802);
    long kept_differs = 0;
    for (int mode = 0; mode < 2; mode++)
        for (int kind = 0; kind < 4; kind++) { /* fixed 0, fixed L-1, fixed 1, random */
            int N = 1 + 37 * (kind + 1), H = 3, dh = 24, L = 3;
            ga_config cfg;
            pc_cfg(&cfg, mode, H, dh, L);
            float theta8[GA_MAX_LEVELS];
            ga_theta_from_tau(&cfg, theta8);
            tarena a = {0};
            pc_case k;
            pc_make(&a, &rng, &k, &cfg, N, 1, kind & 1);
            uint8_t *lev = ar_u8(&a, "given", (size_t)N, 0);
            for (int i = 0; i < N; i++)
                lev[i] = (uint8_t)(kind == 0 ? 0 : kind == 1 ? L - 1 : kind == 2 ? 1
                                                                     : rng_int(&rng, L));
            float *s = ar_f(&a, "s", (size_t)N, 0), *p = ar_f(&a, "p", (size_t)N + GA_KEEP_PAD, 0);
            int32_t *idx = ar_i32(&a, "idx", (size_t)N + GA_KEEP_PAD, 0);
            float *Cd = ar_f(&a, "Cdirect", (size_t)H * dh, 0);
            int *keptd = (int *)ar_alloc(&a, "keptd", sizeof(int) * (size_t)H, 0);
            for (int vi = 0; vi < v.n; vi++) {
                const ga_kernels *kt = v.k[vi];
                c.isa = kt->name;
                tc_case(&c, "%s %s N=%d", MODE[mode],
                        kind == 3 ? "random levels" : kind == 0 ? "fixed 0" : kind == 1 ? "fixed L-1"
                                                                                  : "fixed 1",
                        N);
                float scale = 1.0f / sqrtf((float)dh);
                for (int h = 0; h < H; h++) {
                    float m, Z;
                    kt->scores(k.K + (size_t)h * N * dh, N, dh, k.Q + (size_t)h * dh, 1, dh,
                               scale, k.bias, s, N, &m);
                    int cnt = kt->threshold(s, N, m, lev, theta8, cfg.mode, idx, p, &Z);
                    float *o = Cd + (size_t)h * dh;
                    if (isnan(Z) || Z == 0.0f || cnt == 0) {
                        for (int j = 0; j < dh; j++)
                            o[j] = isnan(Z) ? NAN : 0.0f;
                        cnt = 0;
                    } else {
                        kt->sparse_context(k.V + (size_t)h * N * dh, dh, idx, p, cnt, 1.0f / Z,
                                           o);
                    }
                    keptd[h] = cnt;
                }
                ga_status st;
                ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, 1, &st);
                cr_assert(pl, "plan_create: %s", ga_last_error());
                pc_out o;
                pc_alloc_out(&a, &k, &o);
                st = ga_attend_run_levels(pl, N, 1, k.Q, k.K, k.V, k.bias, lev, o.C, o.kept);
                tc_true(&c, st == GA_OK, "run_levels: %s", ga_last_error());
                tc_bits(&c, "C vs direct composition", o.C, Cd, sizeof(float) * (size_t)H * dh);
                tc_bits(&c, "kept vs direct composition", o.kept, keptd, sizeof(int) * (size_t)H);
                /* coarser fixed levels keep fewer keys: the levels are used */
                if (kind == 0) {
                    pc_out f;
                    pc_alloc_out(&a, &k, &f);
                    uint8_t *fine = ar_u8(&a, "fine", (size_t)N, 0);
                    memset(fine, L - 1, (size_t)N);
                    st = ga_attend_run_levels(pl, N, 1, k.Q, k.K, k.V, k.bias, fine, f.C,
                                              f.kept);
                    tc_true(&c, st == GA_OK, "run_levels (fine): %s", ga_last_error());
                    for (int h = 0; h < H; h++) {
                        tc_true(&c, o.kept[h] <= f.kept[h], "head %d: level 0 keeps %d > %d",
                                h, o.kept[h], f.kept[h]);
                        kept_differs += o.kept[h] < f.kept[h];
                    }
                }
                ga_attend_plan_destroy(pl);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    cr_expect(kept_differs > 0, "fixed level 0 never kept fewer keys than level L-1");
    tc_finish(&c);
}

Test(attend_plan, reuse_no_alloc, .timeout = TEST_TIMEOUT)
{
    static const int SEQ[][2] = {{100, 40}, {1, 1}, {37, 33}, {0, 4}, {64, 3},
                                 {100, 32}, {99, 0}, {5, 20}, {100, 40}};
    enum { NSEQ = sizeof SEQ / sizeof SEQ[0], MAXN = 100, MAXT = 40 };
    tvariants v;
    tcheck c;
    variants_get(&v, "attend_plan reuse_no_alloc");
    tc_init(&c, "ga_attend_run reuse");
    trng rng;
    rng_init(&rng, 803);
    for (int mode = 0; mode < 3; mode++)
        for (int vi = 0; vi < v.n; vi++)
            for (int usepool = 0; usepool < 2; usepool++) {
                /* a fresh pool: its scratch is grown by the plan or not at all */
                ga_pool *pp = usepool ? ga_pool_create(2, GA_PLACE_NONE, NULL, 0) : NULL;
                cr_assert(!usepool || pp, "ga_pool_create: %s", ga_last_error());
                ga_config cfg;
                pc_cfg(&cfg, mode, 2, 8, 3);
                tarena a = {0};
                pc_case k;
                pc_make(&a, &rng, &k, &cfg, MAXN, MAXT, 1);
                c.isa = v.k[vi]->name;
                tc_case(&c, "%s pool=%s create", MODE[mode], usepool ? "2" : "NULL");
                ga_status st;
                ga_attend_plan *pl = ga_attend_plan_create(v.k[vi], pp, &cfg, MAXN, MAXT, &st);
                cr_assert(pl, "plan_create: %s", ga_last_error());
                uint8_t *given = ar_u8(&a, "given", (size_t)MAXN * MAXT, 0);
                fill_levels(&rng, given, (size_t)MAXN * MAXT, cfg.L);
                {
                    /* warm-up, not counted: the sgemm's per-thread packing
                     * buffers (dense mode) */
                    pc_out w;
                    pc_alloc_out(&a, &k, &w);
                    tc_true(&c, pc_run(pl, &k, MAXN, MAXT, &w) == GA_OK, "warm-up run: %s",
                            ga_last_error());
                }
                for (int s = 0; s < NSEQ; s++) {
                    int N = SEQ[s][0], T = SEQ[s][1];
                    tc_case(&c, "%s pool=%s step %d: N=%d T=%d", MODE[mode],
                            usepool ? "2" : "NULL", s, N, T);
                    pc_out ref, o, og, on;
                    pc_alloc_out(&a, &k, &ref);
                    pc_alloc_out(&a, &k, &o);
                    pc_alloc_out(&a, &k, &og);
                    pc_alloc_out(&a, &k, &on);
                    alloc_count_begin();
                    ga_status s1 = pc_run(pl, &k, N, T, &o);
                    /* levels = NULL: the plan's own level buffer */
                    ga_status s2 = ga_attend_run(pl, N, T, k.Q, k.K, k.V, k.bias, k.P, k.ldp,
                                                 k.R, k.W2, k.b2, on.C, on.kept, NULL);
                    ga_status s3 = ga_attend_run_levels(pl, N, T, k.Q, k.K, k.V, k.bias,
                                                        given, og.C, og.kept);
                    long n_run = alloc_count_end();
                    tc_true(&c, s1 == GA_OK && s2 == GA_OK && s3 == GA_OK, "runs: %s",
                            ga_last_error());
                    tc_true(&c, n_run == 0, "%ld allocations during three runs", n_run);
                    /* the reference after the runs (it may grow the pool's scratch) */
                    st = pc_attend(v.k[vi], pp, &k, N, T, &ref);
                    tc_true(&c, st == GA_OK, "ga_attend: %s", ga_last_error());
                    pc_same(&c, &k, N, T, &o, &ref, mode != 2);
                    pc_same(&c, &k, N, T, &on, &ref, 0);
                    /* given levels: same as a fresh plan of exactly (N, T) */
                    ga_attend_plan *fresh =
                        ga_attend_plan_create(v.k[vi], pp, &cfg, N, T, &st);
                    tc_true(&c, fresh != NULL, "plan_create(N, T): %s", ga_last_error());
                    if (fresh) {
                        pc_out of;
                        pc_alloc_out(&a, &k, &of);
                        st = ga_attend_run_levels(fresh, N, T, k.Q, k.K, k.V, k.bias, given,
                                                  of.C, of.kept);
                        tc_true(&c, st == GA_OK, "fresh run_levels: %s", ga_last_error());
                        pc_same(&c, &k, N, T, &og, &of, 0);
                        ga_attend_plan_destroy(fresh);
                    }
                }
                ga_attend_plan_destroy(pl);
                /* the counter counts: a one-shot ga_attend allocates */
                pc_out r0;
                pc_alloc_out(&a, &k, &r0);
                alloc_count_begin();
                st = pc_attend(v.k[vi], pp, &k, MAXN, MAXT, &r0);
                long n_attend = alloc_count_end();
                tc_true(&c, st == GA_OK && n_attend > 0,
                        "ga_attend: %s, %ld allocations counted (expected > 0)",
                        ga_last_error(), n_attend);
                ga_pool_destroy(pp);
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

Test(attend_plan, run_errors, .timeout = TEST_TIMEOUT)
{
    enum {
        NULL_PLAN, N_BIG, T_BIG, N_NEG, T_NEG, Q_NULL, C_NULL, K_NULL, V_NULL, P_NULL, R_NULL,
        W2_NULL, B2_NULL, LDP_SMALL, GIVEN_NULL, GIVEN_BIG, COUNT
    };
    static const char *const NAME[] = {
        "plan NULL", "N > max_N", "T > max_T", "N = -1", "T = -1", "Q NULL", "C NULL",
        "K NULL", "V NULL", "P NULL", "R NULL", "W2 NULL", "b2 NULL", "ldp < N",
        "given levels NULL", "given level = L"};
    tvariants v;
    variants_get(&v, "attend_plan run_errors");
    trng rng;
    rng_init(&rng, 804);
    ga_config cfg;
    pc_cfg(&cfg, 0, 2, 4, 3);
    tarena a = {0};
    pc_case k;
    pc_make(&a, &rng, &k, &cfg, 12, 3, 0);
    pc_out o;
    pc_alloc_out(&a, &k, &o);
    uint8_t *given = ar_u8(&a, "given", 12 * 3, 0);
    fill_levels(&rng, given, 12 * 3, cfg.L);
    size_t cbytes = sizeof(float) * 3 * 2 * 4;
    float *poison = ar_copy(&a, "poison", o.C, 3 * 2 * 4, 0);
    for (int vi = 0; vi < v.n; vi++) {
        ga_status st;
        ga_attend_plan *pl = ga_attend_plan_create(v.k[vi], NULL, &cfg, 10, 2, &st);
        cr_assert(pl, "plan_create: %s", ga_last_error());
        for (int b = 0; b < COUNT; b++)
            for (int src = 0; src < 2; src++) { /* 0: learned, 1: given levels */
                if ((b >= P_NULL && b <= LDP_SMALL && src == 1) ||
                    (b >= GIVEN_NULL && src == 0))
                    continue;
                ga_attend_plan *pp = b == NULL_PLAN ? NULL : pl;
                int N = b == N_BIG ? 11 : b == N_NEG ? -1 : 10;
                int T = b == T_BIG ? 3 : b == T_NEG ? -1 : 2;
                const float *Q = b == Q_NULL ? NULL : k.Q, *K = b == K_NULL ? NULL : k.K;
                const float *V = b == V_NULL ? NULL : k.V, *P = b == P_NULL ? NULL : k.P;
                const float *R = b == R_NULL ? NULL : k.R, *W2 = b == W2_NULL ? NULL : k.W2;
                const float *b2 = b == B2_NULL ? NULL : k.b2;
                float *C = b == C_NULL ? NULL : o.C;
                int ldp = b == LDP_SMALL ? N - 1 : k.ldp;
                uint8_t save = given[5];
                if (b == GIVEN_BIG)
                    given[5] = (uint8_t)cfg.L;
                const uint8_t *lev = b == GIVEN_NULL ? NULL : given;
                ga_isa dummy;
                ga_isa_from_name("sentinel-xyzzy", &dummy);
                st = src ? ga_attend_run_levels(pp, N, T, Q, K, V, NULL, lev, C, o.kept)
                         : ga_attend_run(pp, N, T, Q, K, V, NULL, P, ldp, R, W2, b2, C, o.kept,
                                         o.lev);
                given[5] = save;
                const char *msg = ga_last_error();
                cr_expect_eq(st, GA_EINVAL, "[%s] %s with %s returned %s, expected EINVAL",
                             v.k[vi]->name, src ? "run_levels" : "run", NAME[b],
                             ga_status_name(st));
                cr_expect(msg[0] && !strstr(msg, "sentinel-xyzzy"),
                          "[%s] %s with %s: no fresh error message", v.k[vi]->name,
                          src ? "run_levels" : "run", NAME[b]);
                cr_expect(memcmp(o.C, poison, cbytes) == 0, "[%s] %s with %s wrote C",
                          v.k[vi]->name, src ? "run_levels" : "run", NAME[b]);
            }
        /* the plan is still usable after the errors */
        st = ga_attend_run(pl, 10, 2, k.Q, k.K, k.V, NULL, k.P, k.ldp, k.R, k.W2, k.b2, o.C,
                           o.kept, o.lev);
        cr_expect_eq(st, GA_OK, "[%s] run after errors: %s", v.k[vi]->name, ga_last_error());
        memcpy(o.C, poison, cbytes);
        ga_attend_plan_destroy(pl);
    }
    /* create errors */
    ga_status st = GA_OK;
    cr_expect(!ga_attend_plan_create(NULL, NULL, &cfg, 4, 4, &st) && st == GA_EINVAL,
              "create with kt NULL");
    ga_config bad = cfg;
    bad.L = 9;
    st = GA_OK;
    cr_expect(!ga_attend_plan_create(v.k[0], NULL, &bad, 4, 4, &st) && st == GA_EINVAL,
              "create with L = 9");
    st = GA_OK;
    cr_expect(!ga_attend_plan_create(v.k[0], NULL, NULL, 4, 4, &st) && st == GA_EINVAL,
              "create with cfg NULL");
    st = GA_OK;
    cr_expect(!ga_attend_plan_create(v.k[0], NULL, &cfg, -1, 4, &st) && st == GA_EINVAL,
              "create with max_N = -1");
    st = GA_OK;
    cr_expect(!ga_attend_plan_create(v.k[0], NULL, &cfg, 4, -1, &st) && st == GA_EINVAL,
              "create with max_T = -1");
    cr_expect(!ga_attend_plan_create(v.k[0], NULL, &cfg, 4, -1, NULL), "st = NULL allowed");
    ga_attend_plan_destroy(NULL); /* no-op */
    /* empty plan: N = T = 0 runs */
    ga_attend_plan *pl = ga_attend_plan_create(v.k[0], NULL, &cfg, 0, 0, &st);
    cr_expect(pl && st == GA_OK, "create (0, 0): %s", ga_last_error());
    cr_expect_eq(ga_attend_run(pl, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL,
                               NULL, NULL, NULL),
                 GA_OK, "run (0, 0): %s", ga_last_error());
    ga_attend_plan_destroy(pl);
    ar_free(&a);
}

/* Issue 9: size products that do not fit in an int are EINVAL, checked
 * before anything is allocated or read.  Every data pointer is a 0-byte
 * guard buffer (the first byte read faults), and allocations are counted. */
Test(attend_plan, int_overflow, .timeout = TEST_TIMEOUT)
{
    typedef struct ov {
        const char *what; /* expected in the message */
        int H, dh, g, L, dense, N, T, ldp;
    } ov;
    static const ov CASES[] = {
        {"H * dh", 1 << 16, 1 << 15, 4, 3, 0, 1, 1, 1},
        {"H * dh", 1 << 16, 1 << 15, 4, 3, 1, 1, 1, 1},
        {"N * dh", 1, 1 << 12, 4, 3, 0, 1 << 19, 1, 1 << 19},
        {"H * N * dh", 4, 1 << 10, 4, 3, 1, 1 << 20, 1, 0},
        {"T * H * dh", 4, 1 << 10, 4, 3, 0, 1, 1 << 20, 1},
        {"T * N", 1, 1, 4, 3, 0, 1 << 16, 1 << 16, 1 << 16},
        {"T * g", 1, 1, 1 << 16, 3, 0, 1, 1 << 16, 1},
        {"L * g", 1, 1, 1 << 29, 8, 0, 1, 1, 1},
        {"g * ldp", 1, 1, 1 << 16, 3, 0, 1, 1, 1 << 16},
        {"(N + GA_KEEP_PAD)", 1, 1, 4, 3, 1, INT_MAX - 8, 1, 0},
    };
    tvariants v;
    variants_get(&v, "attend_plan int_overflow");
    tguard gd = {0};
    float *nowhere = guard_alloc(&gd, 0, GUARD_AFTER);
    uint8_t *lnowhere = (uint8_t *)nowhere;
    int *inowhere = (int *)nowhere;
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const ov *o = &CASES[ci];
        ga_config cfg;
        pc_cfg(&cfg, o->dense ? 2 : 0, o->H, o->dh, o->L);
        cfg.g = o->g;
        for (int vi = 0; vi < v.n; vi++) {
            ga_isa dummy;
            ga_isa_from_name("sentinel-xyzzy", &dummy);
            alloc_count_begin();
            ga_status st = ga_attend(v.k[vi], NULL, &cfg, o->N, o->T, nowhere, nowhere, nowhere,
                                     nowhere, nowhere, o->ldp, nowhere, nowhere, nowhere,
                                     nowhere, inowhere, lnowhere);
            long n = alloc_count_end();
            const char *msg = ga_last_error();
            cr_expect_eq(st, GA_EINVAL, "[%s] ga_attend %s: %s, expected EINVAL",
                         v.k[vi]->name, o->what, ga_status_name(st));
            cr_expect(strstr(msg, o->what) && strstr(msg, "does not fit in an int"),
                      "[%s] ga_attend %s: message \"%s\"", v.k[vi]->name, o->what, msg);
            cr_expect_eq(n, 0, "[%s] ga_attend %s: %ld allocations before the error",
                         v.k[vi]->name, o->what, n);
            /* the plan rejects the same sizes at create (g * ldp: at run) */
            if (strcmp(o->what, "g * ldp") != 0) {
                alloc_count_begin();
                ga_attend_plan *pl =
                    ga_attend_plan_create(v.k[vi], NULL, &cfg, o->N, o->T, &st);
                n = alloc_count_end();
                cr_expect(!pl && st == GA_EINVAL, "[%s] plan_create %s: %s", v.k[vi]->name,
                          o->what, ga_status_name(st));
                cr_expect(strstr(ga_last_error(), o->what), "[%s] plan_create %s: \"%s\"",
                          v.k[vi]->name, o->what, ga_last_error());
                cr_expect_eq(n, 0, "[%s] plan_create %s: %ld allocations", v.k[vi]->name,
                             o->what, n);
                ga_attend_plan_destroy(pl);
            } else {
                ga_attend_plan *pl = ga_attend_plan_create(v.k[vi], NULL, &cfg, o->N, o->T,
                                                           &st);
                cr_assert(pl, "plan_create g = 2^16, N = T = 1: %s", ga_last_error());
                alloc_count_begin();
                st = ga_attend_run(pl, o->N, o->T, nowhere, nowhere, nowhere, NULL, nowhere,
                                   o->ldp, nowhere, nowhere, nowhere, nowhere, inowhere,
                                   lnowhere);
                n = alloc_count_end();
                cr_expect(st == GA_EINVAL && strstr(ga_last_error(), "g * ldp"),
                          "[%s] run g * ldp: %s \"%s\"", v.k[vi]->name, ga_status_name(st),
                          ga_last_error());
                cr_expect_eq(n, 0, "[%s] run g * ldp: %ld allocations", v.k[vi]->name, n);
                ga_attend_plan_destroy(pl);
            }
        }
    }
    /* products exactly at INT_MAX are accepted (no over-eager check):
     * H * dh = INT_MAX with no keys and no queries */
    ga_config cfg;
    pc_cfg(&cfg, 0, 1, INT_MAX, 3);
    ga_status st;
    ga_attend_plan *pl = ga_attend_plan_create(v.k[0], NULL, &cfg, 0, 0, &st);
    cr_expect(pl && st == GA_OK, "H * dh = INT_MAX, N = T = 0 rejected: %s", ga_last_error());
    ga_attend_plan_destroy(pl);
    /* N * dh = INT_MAX with one key and no queries */
    pl = ga_attend_plan_create(v.k[0], NULL, &cfg, 1, 0, &st);
    cr_expect(pl && st == GA_OK, "N * dh = INT_MAX, T = 0 rejected: %s", ga_last_error());
    ga_attend_plan_destroy(pl);
    guard_free(&gd);
}

/* Traced runs (the training forward's composition): C and kept bitwise ==
 * ga_attend_run_levels; the trace is what the backward needs, i.e. it
 * reproduces the run: per (h, t) m = max S row, threshold(S row, m, levels)
 * gives count, idx, p, Z bitwise, sparse_context(V, idx, p, 1/Z) gives C
 * bitwise; S within the float bound of the double scores; the plan-less
 * ga_attend_traced_theta gives the same bits; no allocation. */
Test(attend_plan, traced, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 33, 100};
    static const int TS[] = {1, 5, 21};
    tvariants v;
    tcheck c;
    variants_get(&v, "attend_plan traced");
    tc_init(&c, "ga_attend_run_traced");
    trng rng;
    rng_init(&rng, 805);
    for (int mode = 0; mode < 2; mode++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (size_t it = 0; it < sizeof TS / sizeof TS[0]; it++)
                for (int padded = 0; padded < 2; padded++) {
                    int N = NS[in], T = TS[it], H = 3, dh = it == 1 ? 7 : 32, L = 3;
                    size_t np = (size_t)N + GA_KEEP_PAD, HT = (size_t)H * T;
                    ga_config cfg;
                    pc_cfg(&cfg, mode, H, dh, L);
                    float theta8[GA_MAX_LEVELS];
                    ga_theta_from_tau(&cfg, theta8);
                    tarena a = {0};
                    pc_case k;
                    pc_make(&a, &rng, &k, &cfg, N, T, padded);
                    uint8_t *lev = ar_u8(&a, "given", (size_t)T * N + 1, 0);
                    fill_levels(&rng, lev, (size_t)T * N, L);
                    float *p = ar_f(&a, "p", np, 0);
                    int32_t *idx = ar_i32(&a, "idx", np, 0);
                    float *cc = ar_f(&a, "c", (size_t)dh, 0);
                    for (int vi = 0; vi < v.n; vi++) {
                        const ga_kernels *kt = v.k[vi];
                        c.isa = kt->name;
                        tc_case(&c, "%s N=%d T=%d dh=%d bias=%s", MODE[mode], N, T, dh,
                                padded ? "padded" : "NULL");
                        ga_status st;
                        ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, T, &st);
                        cr_assert(pl, "plan_create: %s", ga_last_error());
                        pc_out ref, o, o2;
                        pc_alloc_out(&a, &k, &ref);
                        pc_alloc_out(&a, &k, &o);
                        pc_alloc_out(&a, &k, &o2);
                        st = ga_attend_run_levels(pl, N, T, k.Q, k.K, k.V, k.bias, lev, ref.C,
                                                  ref.kept);
                        tc_true(&c, st == GA_OK, "run_levels: %s", ga_last_error());
                        ga_attend_trace tr = {
                            ar_f(&a, "S", HT * N + 1, 0),
                            ar_f(&a, "m", HT, 0),
                            ar_f(&a, "Z", HT, 0),
                            ar_i32(&a, "count", HT, 0),
                            ar_i32(&a, "tidx", HT * np, 0),
                            ar_f(&a, "tp", HT * np, 0),
                        };
                        alloc_count_begin();
                        st = ga_attend_run_traced(pl, N, T, k.Q, k.K, k.V, k.bias, lev, o.C,
                                                  o.kept, &tr);
                        long nal = alloc_count_end();
                        tc_true(&c, st == GA_OK, "run_traced: %s", ga_last_error());
                        tc_true(&c, nal == 0, "%ld allocations during a traced run", nal);
                        pc_same(&c, &k, N, T, &o, &ref, 0);
                        /* the trace reproduces the run */
                        float scale = 1.0f / sqrtf((float)dh);
                        for (int h = 0; h < H; h++)
                            for (int t = 0; t < T; t++) {
                                size_t ht = (size_t)h * T + t;
                                const float *S = tr.S + ht * N;
                                const float *q = k.Q + ((size_t)t * H + h) * dh;
                                const float *Kh = k.K + (size_t)h * N * dh;
                                float mx = -INFINITY;
                                for (int i = 0; i < N; i++) {
                                    double dot = 0, mag = 0;
                                    for (int j = 0; j < dh; j++) {
                                        dot += (double)q[j] * Kh[(size_t)i * dh + j];
                                        mag += fabs((double)q[j] * Kh[(size_t)i * dh + j]);
                                    }
                                    double sd = scale * dot + (k.bias ? k.bias[i] : 0.0);
                                    if (!(S[i] == sd) &&
                                        !(fabs(S[i] - sd) <= rtol_sum(dh + 1) * scale * mag +
                                                                 ATOL_TINY))
                                        tc_true(&c, 0, "S[h=%d][t=%d][%d] = %.9g, double %.9g",
                                                h, t, i, S[i], sd);
                                    mx = S[i] > mx ? S[i] : mx;
                                }
                                tc_bits(&c, "m = max of the S row", &tr.m[ht], &mx,
                                        sizeof mx);
                                float Z;
                                int cnt = kt->threshold(S, N, tr.m[ht], lev + (size_t)t * N,
                                                        theta8, cfg.mode, idx, p, &Z);
                                tc_bits(&c, "Z", &tr.Z[ht], &Z, sizeof Z);
                                tc_true(&c, tr.count[ht] == cnt && o.kept[t * H + h] == cnt,
                                        "count[h=%d][t=%d] = %d, kept %d, threshold %d", h, t,
                                        tr.count[ht], o.kept[t * H + h], cnt);
                                tc_bits(&c, "idx", tr.idx + ht * np, idx,
                                        sizeof(int32_t) * (size_t)cnt);
                                tc_bits(&c, "p", tr.p + ht * np, p, sizeof(float) * (size_t)cnt);
                                if (cnt > 0) {
                                    kt->sparse_context(k.V + (size_t)h * N * dh, dh, idx, p,
                                                       cnt, 1.0f / Z, cc);
                                    tc_bits(&c, "C from the trace", cc,
                                            o.C + ((size_t)t * H + h) * dh,
                                            sizeof(float) * (size_t)dh);
                                }
                            }
                        /* plan-less form: same bits */
                        ga_attend_trace tr2 = {
                            ar_f(&a, "S2", HT * N + 1, 0),
                            ar_f(&a, "m2", HT, 0),
                            ar_f(&a, "Z2", HT, 0),
                            ar_i32(&a, "count2", HT, 0),
                            ar_i32(&a, "tidx2", HT * np, 0),
                            ar_f(&a, "tp2", HT * np, 0),
                        };
                        st = ga_attend_traced_theta(kt, H, dh, cfg.mode, theta8, N, T, k.Q, k.K,
                                                    k.V, k.bias, lev, o2.C, o2.kept, &tr2);
                        tc_true(&c, st == GA_OK, "traced_theta: %s", ga_last_error());
                        pc_same(&c, &k, N, T, &o2, &ref, 0);
                        tc_bits(&c, "theta S", tr2.S, tr.S, sizeof(float) * HT * N);
                        tc_bits(&c, "theta m", tr2.m, tr.m, sizeof(float) * HT);
                        tc_bits(&c, "theta Z", tr2.Z, tr.Z, sizeof(float) * HT);
                        tc_bits(&c, "theta count", tr2.count, tr.count, sizeof(int32_t) * HT);
                        if (N == 0) {
                            int bad = 0;
                            for (size_t i = 0; i < HT; i++)
                                bad += tr.m[i] != -INFINITY || tr.Z[i] != 0.0f ||
                                       tr.count[i] != 0;
                            tc_true(&c, bad == 0, "N = 0: %d trace rows not (-inf, 0, 0)", bad);
                        }
                        ga_attend_plan_destroy(pl);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    /* errors: dense plan, trace NULL, a trace array NULL, levels NULL */
    ga_config cfg;
    pc_cfg(&cfg, 2, 2, 4, 3);
    tarena a = {0};
    pc_case k;
    pc_make(&a, &rng, &k, &cfg, 6, 2, 0);
    pc_out o;
    pc_alloc_out(&a, &k, &o);
    uint8_t lev[12] = {0};
    float S[2 * 2 * 6], m[4], Z[4], p[4 * (6 + GA_KEEP_PAD)];
    int32_t cnt[4], idx[4 * (6 + GA_KEEP_PAD)];
    ga_attend_trace tr = {S, m, Z, cnt, idx, p}, trn = tr;
    trn.idx = NULL;
    ga_status st;
    ga_attend_plan *dense = ga_attend_plan_create(v.k[0], NULL, &cfg, 6, 2, &st);
    pc_cfg(&cfg, 0, 2, 4, 3);
    ga_attend_plan *sparse = ga_attend_plan_create(v.k[0], NULL, &cfg, 6, 2, &st);
    cr_assert(dense && sparse, "%s", ga_last_error());
    cr_expect_eq(ga_attend_run_traced(dense, 6, 2, k.Q, k.K, k.V, NULL, lev, o.C, NULL, &tr),
                 GA_EINVAL, "traced run of a dense plan");
    cr_expect_eq(ga_attend_run_traced(sparse, 6, 2, k.Q, k.K, k.V, NULL, lev, o.C, NULL, NULL),
                 GA_EINVAL, "trace NULL");
    cr_expect_eq(ga_attend_run_traced(sparse, 6, 2, k.Q, k.K, k.V, NULL, lev, o.C, NULL, &trn),
                 GA_EINVAL, "trace idx NULL");
    cr_expect_eq(ga_attend_run_traced(sparse, 6, 2, k.Q, k.K, k.V, NULL, NULL, o.C, NULL, &tr),
                 GA_EINVAL, "levels NULL");
    cr_expect_eq(ga_attend_run_traced(sparse, 6, 2, k.Q, k.K, k.V, NULL, lev, o.C, NULL, &tr),
                 GA_OK, "valid traced run: %s", ga_last_error());
    float th[GA_MAX_LEVELS];
    ga_theta_from_tau(&cfg, th);
    cr_expect_eq(ga_attend_traced_theta(v.k[0], 2, 4, (ga_norm)5, th, 6, 2, k.Q, k.K, k.V, NULL,
                                        lev, o.C, NULL, &tr),
                 GA_EINVAL, "traced_theta with mode 5");
    lev[3] = 8;
    cr_expect_eq(ga_attend_traced_theta(v.k[0], 2, 4, cfg.mode, th, 6, 2, k.Q, k.K, k.V, NULL,
                                        lev, o.C, NULL, &tr),
                 GA_EINVAL, "traced_theta with a level 8");
    ga_attend_plan_destroy(dense);
    ga_attend_plan_destroy(sparse);
    ar_free(&a);
    tc_finish(&c);
}

/* The decoder (gm_decode_step) prepares its cross-attention once per
 * memory and takes its scratch from a gm_step_ws made once: after the first
 * step (in which the SIMD sgemm allocates this thread's packing buffer)
 * further steps allocate nothing, in every variant. */
Test(attend_plan, decode_step_no_alloc, .timeout = TEST_TIMEOUT)
{
    static const char *const SRC[] = {"learned", "random", "dense"};
    tvariants v;
    variants_get(&v, "attend_plan decode_step_no_alloc");
    for (int ls = 0; ls < 3; ls++)
        for (int vi = 0; vi < v.n; vi++) {
            gm_config cfg;
            gm_config_default(&cfg);
            cfg.vocab = 64;
            cfg.d = 16;
            cfg.H = 2;
            cfg.ff = 32;
            cfg.n_enc = 1;
            cfg.n_dec = 2;
            cfg.g = 4;
            cfg.max_len = 32;
            cfg.dense = ls == 2;
            if (ls == 1) {
                cfg.level_source = GM_LEVELS_RANDOM;
                cfg.level_probs[0] = 0.25f;
                cfg.level_probs[1] = 0.25f;
                cfg.level_probs[2] = 0.5f;
            }
            gm_model *m = gm_create(&cfg, v.k[vi], 7);
            cr_assert(m, "gm_create: %s", ga_last_error());
            gm_memory *mem = gm_memory_create(m, 20);
            gm_cache *c1 = gm_cache_create(m, 20), *c2 = gm_cache_create(m, 20);
            cr_assert(mem && c1 && c2, "%s", ga_last_error());
            int32_t src[12];
            for (int i = 0; i < 12; i++)
                src[i] = 4 + (i * 7) % 50;
            cr_assert(gm_encode(m, src, 12, mem) == GA_OK, "gm_encode: %s", ga_last_error());
            const gm_memory *mm[2] = {mem, mem};
            gm_cache *cc[2] = {c1, c2};
            float *logp = malloc(sizeof(float) * 2 * (size_t)cfg.vocab);
            gm_step_ws *ws = gm_step_ws_create(m, 2);
            cr_assert(logp && ws);
            gm_step_stats ss;
            memset(&ss, 0, sizeof ss);
            int32_t tok[2] = {1, 5};
            cr_assert(gm_decode_step(m, ws, 2, mm, cc, tok, logp, &ss) == GA_OK, "%s",
                      ga_last_error());
            alloc_count_begin();
            ga_status st = GA_OK;
            for (int step = 1; step < 10 && st == GA_OK; step++) {
                tok[0] = 4 + step;
                tok[1] = 9 + 2 * step;
                st = gm_decode_step(m, ws, 2, mm, cc, tok, logp, &ss);
            }
            long n = alloc_count_end();
            cr_expect_eq(st, GA_OK, "[%s] %s: gm_decode_step: %s", v.k[vi]->name, SRC[ls],
                         ga_last_error());
            cr_expect_eq(n, 0, "[%s] %s: %ld allocations in 9 decode steps", v.k[vi]->name,
                         SRC[ls], n);
            cr_expect(ss.density_count > 0 && isfinite(logp[0]), "[%s] %s: no output",
                      v.k[vi]->name, SRC[ls]);
            free(logp);
            gm_step_ws_free(ws);
            gm_cache_free(c1);
            gm_cache_free(c2);
            gm_memory_free(mem);
            gm_free(m);
        }
}

/* The whole search (gs_translate_batch, decode.h): its token loop — every
 * decode step, the per-sentence search, cache copies, rows leaving the
 * batch — allocates nothing, counted between the loop hook's two calls
 * (set-up, encoding and prepared keys come before it).  Every variant,
 * greedy, beam 4 and beam 16, prepared keys on and off, a batch of 5
 * sentences of different lengths translated twice (the second reuses
 * everything).  The counter counts: a malloc inside the counted region is
 * seen.  It sees the library's and the model's calls (linked statically,
 * through --wrap), not libc's own: glibc's qsort allocates its merge buffer
 * above 1 KiB unseen, which is why decode.c sorts candidates itself. */
static long loop_allocs = -1;
static int loop_hook_calls;

static void loop_hook(int end)
{
    loop_hook_calls++;
    if (!end)
        alloc_count_begin();
    else
        loop_allocs = alloc_count_end();
}

static void loop_hook_malloc(int end)
{
    loop_hook(end);
    if (!end) { /* what the counter must see (volatile: not elided) */
        void *volatile p = malloc(16);
        free(p);
    }
}

Test(attend_plan, translate_loop_no_alloc, .timeout = TEST_TIMEOUT)
{
    static const int BEAMS[] = {1, 4, 16};
    tvariants v;
    variants_get(&v, "attend_plan translate_loop_no_alloc");
    gm_config cfg;
    gm_config_default(&cfg);
    cfg.vocab = 300;
    cfg.d = 32;
    cfg.H = 2;
    cfg.ff = 48;
    cfg.n_enc = 1;
    cfg.n_dec = 2;
    cfg.g = 4;
    cfg.max_len = 40;
    int32_t src[5][20];
    const int32_t *sp[5];
    int S[5] = {3, 17, 1, 9, 12}, out_len[5];
    int32_t out[5][41], *op[5];
    for (int b = 0; b < 5; b++) {
        for (int i = 0; i < S[b]; i++)
            src[b][i] = 4 + (b * 31 + i * 7) % 290;
        sp[b] = src[b];
        op[b] = out[b];
    }
    for (int vi = 0; vi < v.n; vi++) {
        gm_model *m = gm_create(&cfg, v.k[vi], 3);
        cr_assert(m, "gm_create: %s", gm_last_error());
        for (size_t bi = 0; bi < sizeof BEAMS / sizeof BEAMS[0]; bi++)
            for (int prep = 0; prep < 2; prep++) {
                gs_options o;
                gs_options_default(&o);
                o.beam = BEAMS[bi];
                o.prepared = prep;
                gs_decoder *dec = gs_create(m, &o, 5, 20);
                cr_assert(dec, "gs_create: %s", gm_last_error());
                gs_debug_loop_hook(loop_hook);
                for (int rep = 0; rep < 2; rep++) {
                    loop_allocs = -1;
                    loop_hook_calls = 0;
                    long steps = 0;
                    ga_status st = gs_translate_batch(dec, 5, sp, S, op, 41, out_len, NULL, &steps);
                    cr_expect(st == GA_OK && loop_hook_calls == 2 && steps > 5,
                              "[%s] beam %d prepared %d: %s (hook calls %d, steps %ld)",
                              v.k[vi]->name, o.beam, prep, gm_last_error(), loop_hook_calls,
                              steps);
                    cr_expect_eq(loop_allocs, 0,
                                 "[%s] beam %d prepared %d, run %d: %ld allocations in the token "
                                 "loop (%ld steps)",
                                 v.k[vi]->name, o.beam, prep, rep, loop_allocs, steps);
                }
                gs_debug_loop_hook(loop_hook_malloc);
                gs_translate_batch(dec, 5, sp, S, op, 41, out_len, NULL, NULL);
                cr_expect_eq(loop_allocs, 1, "[%s] the counter missed a malloc in the loop (%ld)",
                             v.k[vi]->name, loop_allocs);
                gs_debug_loop_hook(NULL);
                gs_free(dec);
            }
        gm_free(m);
    }
}
