/* test_sgemm.c — the `sgemm` entry of every supported variant vs the scalar
 * reference ga_ref_sgemm (double accumulation).
 *
 * Cases: the four transpose combinations throughout; every M in 0..25 and
 * N in 0..65 (the tails of all register tiles: 12x32 AVX-512, 6x16 AVX2,
 * 8x12 NEON, up to two full tiles + 1) at small K; K in {0, 1, 7, 300}
 * (300 crosses the K block of the AVX2 and NEON variants); 257x263x511
 * (crosses every variant's MC and KC) and 30x1100x20 (crosses NC); leading
 * dimensions larger than needed whose gaps hold NaN (A, B: a read of a gap
 * shows as NaN) or a sentinel (C: must stay untouched); misaligned pointers;
 * beta == 0 over NaN and Inf garbage (must not propagate), beta == 1,
 * general beta; alpha == 0 and K == 0 with NaN in A and B (must not be
 * read); M == 0 / N == 0 (nothing written); guard pages right after / before
 * every matrix (no read or write outside the stored elements); concurrent
 * calls from several threads (bitwise equal to a single-threaded call);
 * rows independent of M (a row alone == the same row in a larger call);
 * sgemm_packed over sgemm_pack's B == sgemm bitwise.
 *
 * Tolerance.  C = alpha * sum_k a_ik b_kj + beta * c_ij is a float sum of
 * n = K + 1 terms (K products, folded into FMAs, and the beta * c term),
 * summed in an order that depends on the variant (lanes, K blocks of KC:
 * each block's partial sum is scaled by alpha and added to C).  Any order
 * obeys |err| <= gamma_{n+1} * mag (Higham §3.1), mag = |alpha| sum_k
 * |a_ik b_kj| + |beta c_ij|, plus one U * mag for the alpha scaling.  The
 * reference is within 2 U * mag of the exact value (double dot product
 * rounded once, then the float product beta * c and the float addition).
 * Total: (K + 5) U * mag, which rtol_sum(K + 3) = (K + 6) U * 1.01 bounds
 * with a little room.  mag is computed by the reference on |A|, |B|, |C|,
 * |alpha|, |beta|.  A tail bug (a missing, duplicated or misplaced term)
 * moves an element by about one term, ~mag / K, far outside the bound for
 * every K used here.  alpha == 0 and K == 0 must give beta * C exactly as the
 * reference does (the same single float operation), checked bitwise.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* What C holds before the call. */
enum cfill { C_RANDOM = 0, C_NAN = 1, C_INF = 2 };

typedef struct gcase {
    int tA, tB, M, N, K;
    float alpha, beta;
    int pa, pb, pc;   /* extra columns of lda, ldb, ldc beyond the minimum */
    int off;          /* misalignment of every matrix, in floats */
    int cfill;        /* enum cfill (C_NAN / C_INF only make sense with beta 0) */
    int ab_nan;       /* A and B hold NaN (alpha == 0 or K == 0 cases) */
} gcase;

static int imax(int a, int b) { return a > b ? a : b; }

/* Stored extent of a row-major [rows][ld] matrix whose rows have `cols`
 * valid elements: the last row ends right after its last valid element. */
static size_t extent(int rows, int cols, int ld)
{
    return rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + (size_t)cols : 0;
}

/* Random values in the valid part, the gaps keep the arena's NaN poison. */
static void fill_matrix(trng *rng, float *X, int rows, int cols, int ld)
{
    for (int r = 0; r < rows; r++)
        fill_unif(rng, X + (size_t)r * ld, (size_t)cols, -1, 1);
}

static const char *cfill_name(int f)
{
    return f == C_NAN ? " C=NaN" : f == C_INF ? " C=Inf" : "";
}

/* Runs one case on every variant and compares with the reference. */
static void check_case(tcheck *c, const tvariants *v, trng *rng, const gcase *g)
{
    const int ra = g->tA ? g->K : g->M, ca = g->tA ? g->M : g->K;
    const int rb = g->tB ? g->N : g->K, cb = g->tB ? g->K : g->N;
    const int lda = imax(1, ca + g->pa), ldb = imax(1, cb + g->pb);
    const int ldc = imax(1, g->N + g->pc);
    const size_t na = extent(ra, ca, lda), nb = extent(rb, cb, ldb);
    const size_t nc = extent(g->M, g->N, ldc);

    tarena a = {0};
    float *A = ar_f(&a, "A", na, g->off);
    float *B = ar_f(&a, "B", nb, g->off);
    if (!g->ab_nan) {
        fill_matrix(rng, A, ra, ca, lda);
        fill_matrix(rng, B, rb, cb, ldb);
    }
    float *C0 = ar_f(&a, "C0", nc, g->off);
    for (size_t i = 0; i < nc; i++)
        C0[i] = GAP_SENTINEL;
    for (int r = 0; r < g->M; r++) {
        float *row = C0 + (size_t)r * ldc;
        if (g->cfill == C_RANDOM)
            fill_unif(rng, row, (size_t)g->N, -1, 1);
        else
            for (int j = 0; j < g->N; j++)
                row[j] = g->cfill == C_NAN ? NAN : ((r + j) % 2 ? INFINITY : -INFINITY);
    }

    float *Cr = ar_copy(&a, "C_ref", C0, nc, 0);
    ga_ref_sgemm(g->tA, g->tB, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cr, ldc);
    float *Cm = ar_abs(&a, "C_mag", C0, nc);
    ga_ref_sgemm(g->tA, g->tB, g->M, g->N, g->K, fabsf(g->alpha), ar_abs(&a, "|A|", A, na),
                 lda, ar_abs(&a, "|B|", B, nb), ldb, fabsf(g->beta), Cm, ldc);
    const int scale_only = g->K == 0 || g->alpha == 0.0f;

    for (int vi = 0; vi < v->n; vi++) {
        c->isa = v->k[vi]->name;
        tc_case(c, "tA=%d tB=%d M=%d N=%d K=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d off=%d%s%s",
                g->tA, g->tB, g->M, g->N, g->K, (double)g->alpha, (double)g->beta, lda, ldb,
                ldc, g->off, cfill_name(g->cfill), g->ab_nan ? " A,B=NaN" : "");
        float *Cg = ar_copy(&a, "C", C0, nc, g->off);
        v->k[vi]->sgemm(g->tA, g->tB, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cg,
                        ldc);
        if (scale_only)
            tc_bits(c, "C (alpha == 0 or K == 0: beta * C exactly)", Cg, Cr,
                    nc * sizeof(float));
        else
            tc_close2(c, "C", Cg, (size_t)ldc, Cr, (size_t)ldc, Cm, (size_t)ldc, g->M, g->N,
                      rtol_sum((long)g->K + 3), ATOL_TINY);
        /* Gaps between rows (the last row has none: its end is the buffer's
         * end, guarded by the arena's canaries). */
        if (g->M > 1 && g->N > 0)
            tc_gap_untouched(c, "C", Cg, g->M - 1, g->N, ldc, GAP_SENTINEL);
    }
    c->isa = "";
    ar_check(&a, c);
    ar_free(&a);
}

static const float ALPHAS[] = {1.0f, -0.75f, 2.5f};
static const float BETAS[] = {0.0f, 1.0f, -0.5f, 0.0f};

/* Every M in 0..25 and N in 0..65 at K = 1 and 7; alpha/beta, padding and
 * misalignment vary from case to case.  Quick mode (qemu): N 0..17 and
 * around the multiples of 8, 12, 16 and 32 up to 65. */
Test(sgemm, tails, .timeout = TEST_TIMEOUT)
{
    static const int NQ[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                             16, 17, 23, 24, 25, 31, 32, 33, 35, 36, 37, 47, 48, 49, 63, 64,
                             65};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm tails");
    tc_init(&c, "sgemm tails");
    trng rng;
    rng_init(&rng, 901);
    const int quick = t_quick();
    const int nn = quick ? (int)(sizeof NQ / sizeof NQ[0]) : 66;
    long n = 0;
    for (int t = 0; t < 4; t++)
        for (int K = 1; K <= 7; K += 6)
            for (int M = 0; M <= 25; M++)
                for (int in = 0; in < nn; in++, n++) {
                    gcase g = {0};
                    g.tA = t & 1;
                    g.tB = t >> 1;
                    g.M = M;
                    g.N = quick ? NQ[in] : in;
                    g.K = K;
                    g.alpha = ALPHAS[n % 3];
                    g.beta = BETAS[n % 4];
                    g.cfill = g.beta == 0.0f ? (int)(n % 8 == 0 ? C_INF : C_NAN) : C_RANDOM;
                    g.pa = rng_int(&rng, 3);
                    g.pb = rng_int(&rng, 3);
                    g.pc = rng_int(&rng, 3);
                    g.off = rng_int(&rng, 2);
                    check_case(&c, &v, &rng, &g);
                }
    tc_finish(&c);
}

/* K in {0, 1, 7, 300} x M, N in {1, 5, 13, 37, 70} x beta in {0 (NaN in C),
 * 1, -0.5}, all transposes. */
Test(sgemm, k_sizes, .timeout = TEST_TIMEOUT)
{
    static const int KS[] = {0, 1, 7, 300};
    static const int MN[] = {1, 5, 13, 37, 70};
    static const float BS[] = {0.0f, 1.0f, -0.5f};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm K sizes");
    tc_init(&c, "sgemm K sizes");
    trng rng;
    rng_init(&rng, 902);
    long n = 0;
    for (int t = 0; t < 4; t++)
        for (int ik = 0; ik < 4; ik++)
            for (int im = 0; im < 5; im++)
                for (int in = 0; in < 5; in++)
                    for (int ib = 0; ib < 3; ib++, n++) {
                        if (t_quick() && KS[ik] == 300 && (im + in) % 2)
                            continue;
                        gcase g = {0};
                        g.tA = t & 1;
                        g.tB = t >> 1;
                        g.M = MN[im];
                        g.N = MN[in];
                        g.K = KS[ik];
                        g.alpha = n % 2 ? 0.75f : 1.0f;
                        g.beta = BS[ib];
                        g.cfill = g.beta == 0.0f ? C_NAN : C_RANDOM;
                        g.pa = rng_int(&rng, 5);
                        g.pb = rng_int(&rng, 5);
                        g.pc = rng_int(&rng, 5);
                        g.off = (int)(n % 3);
                        check_case(&c, &v, &rng, &g);
                    }
    tc_finish(&c);
}

/* Sizes that cross every cache block: 257 x 263 x 511 (MC <= 192 and
 * KC <= 384 in every variant, many tiles and tails) and 30 x 1100 x 20
 * (NC <= 1024), all transposes, beta 0 over NaN and beta 0.5, padded leading
 * dimensions and misaligned pointers.  Quick mode (qemu, where the double
 * reference is slow): 131 x 263 x 300 instead of 257 x 263 x 511, which still
 * crosses the NEON variant's MC = 128 and KC = 256. */
Test(sgemm, large, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm large");
    tc_init(&c, "sgemm large");
    trng rng;
    rng_init(&rng, 903);
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 2; s++)
            for (int b = 0; b < 2; b++) {
                if (t_quick() && s == 0 && b == 1)
                    continue;
                gcase g = {0};
                g.tA = t & 1;
                g.tB = t >> 1;
                g.M = s == 0 ? (t_quick() ? 131 : 257) : 30;
                g.N = s == 0 ? 263 : 1100;
                g.K = s == 0 ? (t_quick() ? 300 : 511) : 20;
                g.alpha = b ? 1.0f : -1.25f;
                g.beta = b ? 0.5f : 0.0f;
                g.cfill = b ? C_RANDOM : C_NAN;
                g.pa = 3 + t;
                g.pb = 5 - t;
                g.pc = 7;
                g.off = 1 + (t & 1);
                check_case(&c, &v, &rng, &g);
            }
    tc_finish(&c);
}

/* alpha == 0 and K == 0 only scale C (A and B hold NaN and must not be
 * read); beta == 0 writes +0 over NaN/Inf, beta == 1 leaves C as it was.
 * M == 0 or N == 0 writes nothing (C is then an empty buffer framed by
 * the arena's canaries, which show any write). */
Test(sgemm, scale_only_and_empty, .timeout = TEST_TIMEOUT)
{
    static const int MN[][2] = {{1, 1}, {3, 17}, {13, 33}, {26, 7}};
    static const float BS[] = {0.0f, 1.0f, 2.5f, -1.0f};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm alpha 0 / K 0 / empty");
    tc_init(&c, "sgemm alpha 0 / K 0 / empty");
    trng rng;
    rng_init(&rng, 904);
    for (int t = 0; t < 4; t++) {
        for (int s = 0; s < 4; s++)
            for (int ib = 0; ib < 4; ib++)
                for (int kind = 0; kind < 2; kind++) {
                    gcase g = {0};
                    g.tA = t & 1;
                    g.tB = t >> 1;
                    g.M = MN[s][0];
                    g.N = MN[s][1];
                    g.K = kind == 0 ? 9 : 0;        /* alpha == 0, or K == 0 */
                    g.alpha = kind == 0 ? 0.0f : 1.5f;
                    g.beta = BS[ib];
                    g.cfill = g.beta == 0.0f ? (s % 2 ? C_INF : C_NAN) : C_RANDOM;
                    g.ab_nan = 1;
                    g.pa = s;
                    g.pc = 2;
                    g.off = s % 2;
                    check_case(&c, &v, &rng, &g);
                }
        /* empty C: M == 0 or N == 0, any K, beta 0 */
        for (int e = 0; e < 4; e++) {
            gcase g = {0};
            g.tA = t & 1;
            g.tB = t >> 1;
            g.M = e % 2 ? 0 : 5;
            g.N = e % 2 ? 6 : 0;
            g.K = e < 2 ? 4 : 0;
            g.alpha = 1.0f;
            g.beta = 0.0f;
            g.cfill = C_NAN;
            g.pa = 1;
            g.pb = 1;
            g.pc = 3;
            check_case(&c, &v, &rng, &g);
        }
    }
    tc_finish(&c);
}

/* ---------------------------------------------------------- guard pages */
static char g_case[256];

static void on_fault(int sig)
{
    static const char pre[] = "\ngranattn-tests sgemm: memory fault (guard page hit) in ";
    ssize_t r = write(2, pre, sizeof pre - 1);
    r = write(2, g_case, strlen(g_case));
    r = write(2, "\n", 1);
    (void)r;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A, B and C each in their own mapping, ending exactly where a PROT_NONE
 * page begins (GUARD_AFTER) or starting right after one (GUARD_BEFORE);
 * leading dimensions equal to the row length, so the last row ends at the
 * guard.  Any access outside the matrices faults and Criterion reports the
 * test as crashed; the handler prints the case. */
Test(sgemm, guard_pages, .timeout = TEST_TIMEOUT)
{
    static const int S[][3] = {{1, 1, 1},  {5, 17, 1},  {13, 33, 7},   {25, 65, 3},
                               {7, 11, 13}, {12, 32, 16}, {37, 47, 300}, {70, 100, 33}};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm guard pages");
    tc_init(&c, "sgemm guard pages");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    trng rng;
    rng_init(&rng, 905);
    for (int side = 0; side < 2; side++)
        for (int t = 0; t < 4; t++)
            for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
                const int tA = t & 1, tB = t >> 1, M = S[s][0], N = S[s][1], K = S[s][2];
                const int lda = tA ? M : K, ldb = tB ? K : N;
                const size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
                tguard ga = {0}, gb = {0}, gc = {0}, gr = {0};
                float *A = guard_alloc(&ga, na * sizeof(float), side);
                float *B = guard_alloc(&gb, nb * sizeof(float), side);
                fill_unif(&rng, A, na, -1, 1);
                fill_unif(&rng, B, nb, -1, 1);
                float *Cr = guard_alloc(&gr, nc * sizeof(float), side);
                fill_unif(&rng, Cr, nc, -1, 1);
                float *C = guard_alloc(&gc, nc * sizeof(float), side);
                for (int vi = 0; vi < v.n; vi++) {
                    for (int b = 0; b < 2; b++) {
                        const float beta = b ? 0.5f : 0.0f;
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "%s guard, tA=%d tB=%d M=%d N=%d K=%d beta=%g",
                                side == GUARD_AFTER ? "after" : "before", tA, tB, M, N, K,
                                (double)beta);
                        snprintf(g_case, sizeof g_case, "%s: %s", c.isa, c.ctx);
                        memcpy(C, Cr, nc * sizeof(float));
                        v.k[vi]->sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
                    }
                }
                guard_free(&ga);
                guard_free(&gb);
                guard_free(&gc);
                guard_free(&gr);
            }
    c.isa = "";
    tc_finish(&c);
}

/* ------------------------------------------------------------- threads */
/* The kernels are called from several threads at once by the model: four
 * threads run the same products concurrently (different outputs) and must
 * reproduce a single-threaded call bit for bit (no shared packing buffer,
 * deterministic). */
typedef struct tjob {
    const ga_kernels *k;
    int tA, tB, M, N, K;
    const float *A, *B;
    int lda, ldb;
    float *C;
    int reps;
} tjob;

static void *run_job(void *arg)
{
    tjob *j = arg;
    for (int r = 0; r < j->reps; r++)
        j->k->sgemm(j->tA, j->tB, j->M, j->N, j->K, 1.0f, j->A, j->lda, j->B, j->ldb, 0.0f,
                    j->C + (size_t)r * j->M * j->N, j->N);
    return NULL;
}

Test(sgemm, concurrent_calls, .timeout = TEST_TIMEOUT)
{
    enum { T = 4, REPS = 3 };
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm concurrent calls");
    tc_init(&c, "sgemm concurrent calls");
    trng rng;
    rng_init(&rng, 906);
    const int M = 67, N = 75, K = t_quick() ? 130 : 300;
    for (int vi = 0; vi < v.n; vi++) {
        for (int t = 0; t < 4; t++) {
            const int tA = t & 1, tB = t >> 1;
            c.isa = v.k[vi]->name;
            tc_case(&c, "tA=%d tB=%d M=%d N=%d K=%d, %d threads x %d calls", tA, tB, M, N, K,
                    T, REPS);
            tarena a = {0};
            float *A = ar_f(&a, "A", (size_t)M * K, 0);
            float *B = ar_f(&a, "B", (size_t)K * N, 1);
            fill_unif(&rng, A, (size_t)M * K, -1, 1);
            fill_unif(&rng, B, (size_t)K * N, -1, 1);
            float *C1 = ar_f(&a, "C single", (size_t)M * N, 0);
            v.k[vi]->sgemm(tA, tB, M, N, K, 1.0f, A, tA ? M : K, B, tB ? K : N, 0.0f, C1, N);
            tjob jobs[T];
            pthread_t th[T];
            for (int i = 0; i < T; i++) {
                jobs[i] = (tjob){v.k[vi], tA, tB, M, N, K, A, B, tA ? M : K, tB ? K : N,
                                 ar_f(&a, "C thread", (size_t)REPS * M * N, 0), REPS};
                cr_assert(pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0,
                          "pthread_create failed");
            }
            for (int i = 0; i < T; i++)
                pthread_join(th[i], NULL);
            for (int i = 0; i < T; i++)
                for (int r = 0; r < REPS; r++)
                    tc_bits(&c, "C (thread vs single call)", jobs[i].C + (size_t)r * M * N, C1,
                            (size_t)M * N * sizeof(float));
            ar_check(&a, &c);
            ar_free(&a);
        }
    }
    c.isa = "";
    tc_finish(&c);
}

/* Rows are independent (sgemm_blocked.h): row i of C computed in a call of
 * M rows is bitwise row i computed alone (M = 1, A pointing at that row) and
 * within any other M.  Batched decoding relies on it (a hypothesis' scores
 * must not depend on which others share the batch).  Shapes of the model's
 * products (opB = W^T, K = 256 and 1024 > every KC, N up to 1100 > every NC)
 * and the other transposes; M from 1 up to 2 x MC + 7 of every variant, the
 * rows at the panel and block edges. */
Test(sgemm, rows_independent, .timeout = TEST_TIMEOUT)
{
    static const int MS[] = {1, 2, 5, 6, 7, 11, 12, 13, 24, 25, 64, 97, 200, 391};
    static const int NK[][2] = {{96, 256}, {1100, 256}, {40, 1024}, {33, 7}};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm rows independent");
    tc_init(&c, "sgemm rows independent");
    trng rng;
    rng_init(&rng, 907);
    const int quick = t_quick();
    const int Mmax = 391;
    for (int s = 0; s < 4; s++) {
        const int N = NK[s][0], K = quick && NK[s][1] > 300 ? 300 : NK[s][1];
        for (int t = 0; t < 4; t++) {
            const int tA = t & 1, tB = t >> 1;
            const int lda = tA ? Mmax : K, ldb = tB ? K : N;
            tarena a = {0};
            float *A = ar_f(&a, "A", (size_t)Mmax * K, 0);
            float *B = ar_f(&a, "B", (size_t)K * N, 0);
            float *Cb = ar_f(&a, "C batch", (size_t)Mmax * N, 0);
            float *C1 = ar_f(&a, "C row", (size_t)N, 0);
            fill_unif(&rng, A, (size_t)Mmax * K, -1, 1);
            fill_unif(&rng, B, (size_t)K * N, -1, 1);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                for (size_t mi = 0; mi < sizeof MS / sizeof MS[0]; mi++) {
                    const int M = MS[mi];
                    tc_case(&c, "tA=%d tB=%d M=%d N=%d K=%d", tA, tB, M, N, K);
                    v.k[vi]->sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, Cb, N);
                    /* the first, last and a middle row, each alone */
                    const int rows[3] = {0, M / 2, M - 1};
                    for (int r = 0; r < 3; r++) {
                        const int i = rows[r];
                        const float *Ai = tA ? A + i : A + (size_t)i * K;
                        v.k[vi]->sgemm(tA, tB, 1, N, K, 1.0f, Ai, lda, B, ldb, 0.0f, C1, N);
                        tc_bits(&c, "row of a batched call vs the row alone",
                                Cb + (size_t)i * N, C1, (size_t)N * sizeof(float));
                    }
                }
            }
            c.isa = "";
            ar_check(&a, &c);
            ar_free(&a);
        }
    }
    tc_finish(&c);
}

/* sgemm_packed with op(B) packed by sgemm_pack == sgemm with B, bitwise,
 * every variant: both transposes of A and B, M across the register tile and
 * the MC block, N and K across NR, NC and KC (the packed blocks' edges),
 * alpha / beta (beta == 0 over NaN), the leading dimensions of A and C
 * larger than needed; Bp on a 64-byte boundary as the contract asks. */
Test(sgemm, sgemm_packed_equals_sgemm, .timeout = TEST_TIMEOUT)
{
    static const int MS[] = {1, 5, 12, 13, 64, 200};
    static const int NK[][2] = {{1, 1}, {33, 7}, {96, 256}, {530, 400}, {8000 / 16, 1024}};
    tvariants v;
    tcheck c;
    variants_get(&v, "sgemm_packed vs sgemm");
    variants_cover(&v, "sgemm_pack");
    tc_init(&c, "sgemm_packed vs sgemm");
    trng rng;
    rng_init(&rng, 908);
    for (int s = 0; s < 5; s++)
        for (int t = 0; t < 4; t++) {
            const int tA = t & 1, tB = t >> 1, N = NK[s][0], K = NK[s][1], Mmax = 200;
            const int lda = (tA ? Mmax : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
            tarena a = {0};
            float *A = ar_f(&a, "A", (size_t)(tA ? K : Mmax) * lda, 0);
            float *B = ar_f(&a, "B", (size_t)(tB ? N : K) * ldb, 0);
            float *C0 = ar_f(&a, "C0", (size_t)Mmax * ldc, 0);
            float *C1 = ar_f(&a, "C1", (size_t)Mmax * ldc, 0);
            float *C2 = ar_f(&a, "C2", (size_t)Mmax * ldc, 0);
            fill_unif(&rng, A, (size_t)(tA ? K : Mmax) * lda, -1, 1);
            fill_unif(&rng, B, (size_t)(tB ? N : K) * ldb, -1, 1);
            fill_unif(&rng, C0, (size_t)Mmax * ldc, -1, 1);
            for (int vi = 0; vi < v.n; vi++) {
                const ga_kernels *k = v.k[vi];
                c.isa = k->name;
                size_t n = k->sgemm_pack(tB, K, N, B, ldb, NULL);
                float *Bp = aligned_alloc(64, sizeof(float) * ((n + 15) / 16 * 16 + 16));
                cr_assert(Bp);
                tc_true(&c, k->sgemm_pack(tB, K, N, B, ldb, Bp) == n,
                        "sgemm_pack returns another size when writing");
                for (size_t mi = 0; mi < sizeof MS / sizeof MS[0]; mi++) {
                    const int M = MS[mi];
                    const float alpha = mi % 2 ? -0.75f : 1.0f, beta = mi % 3 == 1 ? 0.5f : 0.0f;
                    tc_case(&c, "tA=%d tB=%d M=%d N=%d K=%d alpha=%g beta=%g", tA, tB, M, N, K,
                            (double)alpha, (double)beta);
                    memcpy(C1, C0, sizeof(float) * (size_t)Mmax * ldc);
                    memcpy(C2, C0, sizeof(float) * (size_t)Mmax * ldc);
                    if (beta == 0.0f) /* not read: must not propagate */
                        for (int i = 0; i < M; i++)
                            C1[(size_t)i * ldc] = C2[(size_t)i * ldc] = NAN;
                    k->sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
                    k->sgemm_packed(tA, M, N, K, alpha, A, lda, Bp, beta, C2, ldc);
                    tc_true(&c, !isnan(C2[0]), "NaN in C propagated with beta 0");
                    tc_bits(&c, "C (packed B vs B)", C2, C1, sizeof(float) * (size_t)Mmax * ldc);
                }
                free(Bp);
            }
            c.isa = "";
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}
