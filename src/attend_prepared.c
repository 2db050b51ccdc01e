/* attend_prepared.c — the fused step over prepared keys (docs/SPEC.md §7):
 * one (query, head) row through the preview, the candidate gather, the
 * threshold and the sparse context (or, for dense plans, the packed-K
 * dense row), as the tasks of src/attend.c's plan run.
 *
 * Shapes: Q [T][H][dh]; prepared K, V [H][N][dh] (+ int8 codes [H][N][dh4],
 * packed K panels); levels [T][N]; C [T][H][dh]. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attend_job.h"
#include "attend_split.h"

/* ---------------------------------------------- prepared step (§7) ----
 * Per (query t, head h) row over prepared keys (docs/SPEC.md §7):
 *   pass 1: qc = quantised q; dot = preview_dots; (shat, ub, m_lb) =
 *           preview_bounds; cand = preview_select(ub, levels, T8);
 *   pass 2: s_cand = scores_gather (the same bits as `scores`), m = their
 *           max; (idx, p, Z) = threshold over the candidates (idx mapped
 *           back to keys); C = sparse_context over the kept V rows.
 * Seed mode with GA_PREP_Z_EXACT, unsafe heads, queries outside the
 * bound's range and rows with at least half of their keys at a tau = 0 level
 * (all candidates) take the unprepared row (scores over all of K).  Dense plans
 * use the packed K: scores_packed + softmax + dense_context. */

static void acc_add(long long *x, long long v) { __atomic_fetch_add(x, v, __ATOMIC_RELAXED); }

/* max of non-negative floats held as their bits (same order as the ints) */
static void acc_max(int32_t *x, float v)
{
    int32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int32_t cur = __atomic_load_n(x, __ATOMIC_RELAXED);
    while (bits > cur && !__atomic_compare_exchange_n(x, &cur, bits, 1, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
        ;
}

/* Quantises q (one head) into qc [dh4] with the table's quantize_rows and
 * writes the bound's constants qk = {w, alpha, beta} (docs/SPEC.md §7, with
 * Nq and |q^| both bounded by quantize_rows' norm).  Returns 0 when the row
 * must take the unprepared path (a q without a bound, or magnitudes beyond
 * GA_PREP_BIG). */
static int prep_query(const job *jb, const float *q, int h, int8_t *qc, float qk[3])
{
    const ga_keys *ks = jb->keys;
    const int dh = jb->dh;
    float sq, qn, qe;
    int32_t qsum;
    jb->kt->quantize_rows(q, 1, dh, dh, ks->dh4, 1, qc, &sq, &qsum, &qn, &qe);
    const double sigma = jb->scale, mu = (dh + 16) * 0x1p-24;
    /* qn >= max(|q|, |q^|) (Nq and the bound on |q^|), qe >= |q - q^| */
    if (!(sigma * qn * ks->maxknorm[h] <= GA_PREP_BIG)) /* also qn = inf: no bound */
        return 0;
    qk[0] = jb->scale * sq;
    qk[1] = ga_round_up_f(sigma * (qe + qn * mu) * (1.0 + 0x1p-20));
    qk[2] = ga_round_up_f(sigma * qn * (1.0 + 0x1p-20));
    return 1;
}

/* Preview scores of head h for the quantised query qc: dot [N] (scratch),
 * shat [N], ub [N]; returns m_lb (docs/SPEC.md §7). */
static float preview(const ga_kernels *kt, const ga_keys *ks, int h, const int8_t *qc,
                     const float qk[3], float *dot, float *shat, float *ub)
{
    kt->preview_dots(ga_keys_codes(ks, h), ga_keys_ksum(ks, h), ks->N, ks->dh4, qc, dot);
    return kt->preview_bounds(dot, ga_keys_meta(ks, h), ks->ldm, ks->N, qk, shat, ub);
}

/* C and kept of one sparse row from the threshold's (count, Z) and kept
 * (idx, p), as query_head: NaN Z -> NaN, Z == 0 or nothing kept -> 0.
 * Shared with the key split (attend_split.h). */
int ga_sparse_finish(const ga_kernels *kt, const float *Vh, int dh, const int32_t *idx,
                     const float *p, int count, float Z, float *c)
{
    if (isnan(Z)) {
        fill(c, dh, NAN);
        return 0;
    }
    if (Z == 0.0f || count == 0) {
        fill(c, dh, 0.0f);
        return 0;
    }
    kt->sparse_context(Vh, dh, idx, p, count, 1.0f / Z, c);
    return count;
}

static void prep_row(job *jb, int t, int h, float *S, int32_t *idx, float *p, char *pw)
{
    const ga_keys *ks = jb->keys;
    const ga_kernels *kt = jb->kt;
    const int N = jb->N, dh = jb->dh;
    const size_t pad = (size_t)N + GA_KEEP_PAD;
    const float *q = jb->Q + ((size_t)t * jb->H + h) * dh;
    float *c = jb->C + ((size_t)t * jb->H + h) * dh;
    const float *Kh = ks->K + (size_t)h * N * dh, *Vh = ks->V + (size_t)h * N * dh;
    float *dot = (float *)pw, *shat = dot + N, *ub = shat + N;
    int32_t *cand = (int32_t *)(ub + N);
    uint8_t *levc = (uint8_t *)(cand + pad);
    int8_t *qc = (int8_t *)(levc + pad);
    const double f4 = sizeof(float), row_bytes = f4 * dh;
    double bytes = 0.0;
    long long ncand = 0;
    int fallback = 0, count = 0;
    float Z, zb = 0.0f;

    if (jb->cfg->dense) { /* packed K: no horizontal reduction per key */
        float m = kt->scores_packed(ga_keys_kp(ks, h), N, dh, q, jb->scale, ks->bias, S);
        Z = kt->softmax(S, N, m, p);
        if (isnan(Z)) {
            fill(c, dh, NAN);
        } else if (Z == 0.0f) {
            fill(c, dh, 0.0f);
        } else {
            kt->dense_context(Vh, N, dh, p, c);
            count = ks->unpadded;
        }
        ncand = N;
        bytes = (double)ks->P * 16 * row_bytes + N * row_bytes;
        goto done;
    }
    const uint8_t *lev = jb->lev + (size_t)t * N;
    const ga_norm mode = jb->cfg->mode;
    if (jb->gpn_nan && jb->gpn_nan[t]) { /* NaN GPN logits: the whole query is NaN */
        fill(c, dh, NAN);
        goto done;
    }
    float qk[3];
    const int exact_z = mode == GA_NORM_SEED && jb->zmode == GA_PREP_Z_EXACT;
    /* Keys at a tau = 0 level are always candidates: when they are at least
     * half of the row, the preview cannot save enough and the unprepared row
     * is cheaper (measured: all-fine rows were 1.3-2.3x slower prepared). */
    int nfine = 0;
    if (!exact_z) {
        uint8_t fine[GA_MAX_LEVELS];
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            fine[l] = jb->theta8[l] == -FLT_MAX;
        for (int i = 0; i < N; i++)
            nfine += fine[lev[i]];
    }
    if (exact_z || 2 * nfine >= N || ks->unsafe[h] || !prep_query(jb, q, h, qc, qk)) {
        /* the unprepared row: every K row is read */
        float m;
        kt->scores(Kh, N, dh, q, 1, dh, jb->scale, ks->bias, S, N, &m);
        int n = kt->threshold(S, N, m, lev, jb->theta8, mode, idx, p, &Z);
        count = ga_sparse_finish(kt, Vh, dh, idx, p, n, Z, c);
        fallback = !exact_z;
        ncand = N;
        bytes = N * row_bytes + N + (double)count * row_bytes;
        goto done;
    }
    const float mlb = preview(kt, ks, h, qc, qk, dot, shat, ub);
    bytes = (double)N * (ks->dh4 + 4 + 4 * f4) + N;
    if (mlb == -INFINITY) { /* every key padded: m = -inf, nothing kept */
        fill(c, dh, 0.0f);
        goto done;
    }
    float T8[GA_MAX_LEVELS];
    for (int l = 0; l < GA_MAX_LEVELS; l++) {
        const float th = jb->theta8[l];
        if (th == -FLT_MAX) {
            T8[l] = -FLT_MAX; /* tau = 0: every unpadded key */
            continue;
        }
        const double tt = (double)mlb + th - 0x1p-19 * (fabs((double)mlb) + fabs((double)th));
        float f = (float)tt;
        if ((double)f > tt)
            f = nextafterf(f, -INFINITY);
        T8[l] = f;
    }
    const int nc = kt->preview_select(ub, N, lev, T8, cand);
    const float m = kt->scores_gather(Kh, dh, cand, nc, q, jb->scale, ks->bias, S);
    for (int k = 0; k < nc; k++)
        levc[k] = lev[cand[k]];
    int n = kt->threshold(S, nc, m, levc, jb->theta8, mode, idx, p, &Z);
    for (int k = 0; k < n; k++)
        idx[k] = cand[idx[k]];
    ncand = nc;
    bytes += (double)nc * row_bytes;
    if (mode == GA_NORM_SEED && nc < N && !isnan(Z)) {
        /* GA_PREP_Z_BOUNDED: Z over the candidates (threshold's seed Z) plus
         * exp(shat - m) over the other unpadded keys; relative bound
         * (e^E* - 1) Z_nc / Z_b with E* their largest E_i = ub - shat. */
        float emax = 0.0f;
        for (int i = 0; i < N; i++)
            dot[i] = shat[i];
        for (int k = 0; k < nc; k++)
            dot[cand[k]] = -INFINITY;
        for (int i = 0; i < N; i++)
            if (dot[i] != -INFINITY && ub[i] - shat[i] > emax)
                emax = ub[i] - shat[i];
        const double znc = kt->softmax(dot, N, m, ub); /* sum exp(shat - m), others 0 */
        const double zsum = (double)Z + znc;
        zb = (float)(expm1((double)emax * (1.0 + 0x1p-20)) * znc / zsum);
        Z = (float)zsum;
    }
    count = ga_sparse_finish(kt, Vh, dh, idx, p, n, Z, c);
    bytes += (double)count * row_bytes;
done:
    if (jb->kept)
        jb->kept[(size_t)t * jb->H + h] = count;
    struct prep_acc *a = jb->acc;
    acc_add(&a->rows, 1);
    acc_add(&a->keys, N);
    acc_add(&a->candidates, ncand);
    acc_add(&a->kept, count);
    acc_add(&a->fallback, fallback);
    acc_add(&a->bytes, (long long)bytes);
    if (zb > 0.0f)
        acc_max(&a->zbound, zb);
}

/* Test hook (keys.h): pass 1 of the prepared step for one query and head,
 * exactly as prep_row runs it. */
int ga_prep_preview(const ga_kernels *kt, const ga_keys *keys, int h, const float *q,
                    float scale, float *shat, float *ub, float *mlb)
{
    job jb = {.kt = kt, .keys = keys, .dh = keys->dh, .H = keys->H, .scale = scale};
    int8_t qc[1024];
    float qk[3];
    float *dot = malloc(sizeof(float) * (keys->N > 0 ? keys->N : 1));
    if (!dot || keys->unsafe[h] || !prep_query(&jb, q, h, qc, qk)) {
        free(dot);
        return 0;
    }
    *mlb = preview(kt, keys, h, qc, qk, dot, shat, ub);
    free(dot);
    return 1;
}

/* Task = (query block b, head h) of a prepared run: the rows one by one
 * (the preview of head h stays in cache across the block).  Dense blocks
 * too (the packed-K step per row), not the GEMM block step: each row's bits
 * must not depend on the other rows of its block, which batched decoding
 * relies on (model_grad.decode_rows_independent: a beam is a block, a lone
 * hypothesis a block of 1). */
void ga_prep_block_task(void *arg, int task, int worker)
{
    job *jb = arg;
    int b = task / jb->H, h = task % jb->H;
    int N = jb->N;
    int t0 = b * QB, rows = jb->T - t0 < QB ? jb->T - t0 : QB;
    const wsv w = ws_carve(jb->pool ? ga_pool_scratch(jb->pool, worker, jb->ws_bytes)
                                    : jb->serial_ws, N, rows, jb->dh);
    for (int r = 0; r < rows; r++)
        prep_row(jb, t0 + r, h, w.S, w.idx, w.p, w.pw);
}
