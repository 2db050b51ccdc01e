/* topk.c — the per-query top-k baseline of the model (gpn = topk,
 * GM_LEVELS_TOPK): each (query, head) row of the cross-attention keeps the
 * k keys of largest score (= largest attention weight), k counted over the
 * row's unpadded keys (topk_k, or round(topk_frac * n), at least 1).
 * A scalar baseline, not a kernel of the library: training (forward and
 * backward, gm_xattn_forward / gm_xattn_backward) and decoding
 * (gm_decode_step) call these two row functions.
 *
 * One row, N keys, scores s [N] (bias included; -inf = padded key):
 *   m      = max_i s_i;  keep = the k largest s_i, ties at the k-th value
 *            broken by the LOWER index (deterministic, like the GPN argmax)
 *   p_i    = exp(s_i - m)           (d_i = s_i - m in float, exp in double)
 *   Z      = seed: sum over every unpadded key of p_i;  renorm: sum over kept
 *   c      = (1/Z) sum_kept p_i v_i            (the caller: sparse_context)
 * exactly the two normalisation modes of docs/SPEC.md §2 with this keep set.
 * Special rows (as the library's threshold, docs/SPEC.md §2): N = 0 or
 * every key padded (m = -inf) -> count 0, Z = 0 (context 0); a NaN score or
 * m = +inf -> count 0, Z = NaN (context NaN).
 * Backward (docs/SPEC.md §4 with keep fixed: the selection is piecewise
 * constant in s, no gradient flows through it):
 *   seed:   a_i = p_i / Z over all keys,  ds_i = a_i (keep_i g_i - c.dc)
 *   renorm: b_i = keep_i p_i / Z,         ds_i = b_i (g_i - c.dc)
 * with g_i = v_i . dc; padded keys (p_i = 0) and, in renorm, dropped keys
 * get ds_i = 0 exactly (a select: a NaN g_i of such a key does not leak).
 * Cost per row: O(N) expected (quickselect of the k-th value) + the exps. */
#include <math.h>
#include <string.h>

#include "layers.h"

int gm_topk_count(int n, int topk_k, float topk_frac)
{
    if (n <= 0)
        return 0;
    long k;
    if (topk_k > 0)
        k = topk_k;
    else
        k = lround((double)topk_frac * (double)n); /* half away from zero */
    if (k < 1)
        k = 1;
    return k > n ? n : (int)k;
}

static void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* The value of rank r (0 = largest) of x [n] (finite floats; x is
 * reordered).  Quickselect with a median-of-3 pivot and a three-way
 * partition (many equal values stay linear). */
static float kth_largest(float *x, int n, int r)
{
    int lo = 0, hi = n - 1;
    for (;;) {
        if (lo >= hi)
            return x[lo];
        int mid = lo + (hi - lo) / 2;
        /* median of x[lo], x[mid], x[hi] as the pivot */
        float a = x[lo], b = x[mid], c = x[hi];
        float piv = (a > b) ? ((b > c) ? b : (a > c ? c : a)) : ((a > c) ? a : (b > c ? c : b));
        /* [lo, gt) > piv, [gt, i) == piv, (lt, hi] < piv  (descending order) */
        int gt = lo, i = lo, lt = hi;
        while (i <= lt) {
            if (x[i] > piv)
                swapf(&x[i++], &x[gt++]);
            else if (x[i] < piv)
                swapf(&x[i], &x[lt--]);
            else
                i++;
        }
        if (r < gt)
            hi = gt - 1;
        else if (r <= lt)
            return piv;
        else
            lo = lt + 1;
    }
}

int gm_topk_row(const float *s, int N, int topk_k, float topk_frac, ga_norm mode,
                float *m_out, float *Z_out, int32_t *idx, float *p, float *scratch)
{
    float m = -INFINITY;
    int nan = 0, nvalid = 0;
    for (int i = 0; i < N; i++) {
        if (s[i] != s[i])
            nan = 1;
        else if (s[i] > m)
            m = s[i];
        if (s[i] > -INFINITY)
            nvalid++;
    }
    if (nan || m == INFINITY) {
        *m_out = nan ? NAN : m;
        *Z_out = NAN;
        return 0;
    }
    *m_out = m;
    if (nvalid == 0) { /* N = 0 or every key padded */
        *Z_out = 0.0f;
        return 0;
    }
    int k = gm_topk_count(nvalid, topk_k, topk_frac);
    /* v = the k-th largest unpadded score */
    int n = 0;
    for (int i = 0; i < N; i++)
        if (s[i] > -INFINITY)
            scratch[n++] = s[i];
    float v = kth_largest(scratch, n, k - 1);
    int above = 0;
    for (int i = 0; i < N; i++)
        above += s[i] > v;
    int ties = k - above; /* keys equal to v that are kept: the lowest indices */
    int count = 0;
    double zall = 0.0, zkept = 0.0;
    for (int i = 0; i < N; i++) {
        if (!(s[i] > -INFINITY))
            continue;
        float d = s[i] - m;
        float pi = (float)exp((double)d);
        zall += pi;
        if (s[i] > v || (s[i] == v && ties > 0)) {
            if (s[i] == v)
                ties--;
            idx[count] = i;
            p[count] = pi;
            zkept += pi;
            count++;
        }
    }
    *Z_out = (float)(mode == GA_NORM_RENORM ? zkept : zall);
    return count;
}

void gm_topk_row_backward(const float *s, int N, float m, float Z, ga_norm mode,
                          const int32_t *idx, const float *p, int count, const float *g,
                          float cdc, float *ds)
{
    if (m != m || m == INFINITY || Z != Z) {
        for (int i = 0; i < N; i++)
            ds[i] = NAN;
        return;
    }
    for (int i = 0; i < N; i++)
        ds[i] = 0.0f;
    if (m == -INFINITY || !(Z > 0.0f))
        return;
    if (mode == GA_NORM_SEED)
        /* every unpadded key is in Z: ds_i = -a_i c.dc, then the kept ones below */
        for (int i = 0; i < N; i++) {
            if (!(s[i] > -INFINITY))
                continue;
            float a = (float)exp((double)(s[i] - m)) / Z;
            ds[i] = -a * cdc;
        }
    for (int k = 0; k < count; k++) {
        float a = p[k] / Z;
        ds[idx[k]] = a * (g[idx[k]] - cdc);
    }
}
