/* granattn_ops.h — THE list of kernel-table entries (X-macro, installed).
 *
 * One entry per kernel of docs/SPEC.md §5 (forward and backward), in table order:
 *     X(return type, name, (parameter list))
 * with the entry's contract (shapes, special cases, accum/overwrite) written
 * above it.  Everything that is per kernel is generated from this list:
 *   - the members of struct ga_kernels (include/granattn.h), same order;
 *   - the declarations ga_ref_<name> (src/internal.h) and ga_<isa>_<name>
 *     (kernels/simd/simd.h);
 *   - each ISA's table fill ga_fill_<isa> (kernels/simd/table.c);
 *   - the tests' per-kernel loops and coverage table (tests/util.h) and the
 *     benchmark's per-kernel family list (bench/bench.h).
 * Adding a kernel = one entry here + its files (README, "Adding a kernel").
 * Every kernel is an UNCHECKED fast path: the caller guarantees the
 * preconditions written with its entry; the conventions shared by all
 * entries are at the top of granattn.h.
 * Standalone: the lists are plain text until expanded, so this header needs
 * nothing; expanding them needs granattn.h's types (ga_norm, stdint).
 */
#ifndef GRANATTN_OPS_H
#define GRANATTN_OPS_H

/* The 24 attention kernels (docs/SPEC.md §2, §5, §7).  Every ISA variant implements all of
 * them (hand-written in kernels/<isa>/ or generic in kernels/simd/). */
#define GA_KERNEL_LIST(X)                                                      \
    /* ---- GPN (docs/SPEC.md §3) ---- */                                      \
    /* P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]                               \
     * E [N][d], U [g][d], b1 [g] -> P [g][ldp], ldp >= N. */                  \
    X(void, gpn_project_keys, (const float *E, int N, int d, const float *U,   \
      const float *b1, int g, float *P, int ldp))                              \
    /* r[j] = sum_k W[j][k] * x[k];   x [d], W [g][d] -> r [g]. */             \
    X(void, gpn_project_query, (const float *x, int d, const float *W, int g,  \
      float *r))                                                               \
    /* Per key i: u = relu(P[:,i] + r) (g values), z = W2 u + b2 (L logits),   \
     * levels[i] = argmax z, ties to the lower level.  The argmax is a running \
     * strict ">" from level 0 upward, so a NaN logit never wins and a NaN z_0 \
     * keeps level 0.  Returns nonzero iff any logit of any key is NaN.        \
     * P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N]; 1 <= L <= 8. */     \
    X(int, gpn_levels, (const float *P, int ldp, const float *r,               \
      const float *W2, const float *b2, int N, int g, int L,                   \
      uint8_t *levels))                                                        \
    /* As gpn_levels, plus pi[l][i] = softmax_l(z) (training).                 \
     * A key with a NaN logit gets pi = NaN at every level.                    \
     * -> pi [L][ldpi] (ldpi >= N), levels [N].  Returns the NaN flag. */      \
    X(int, gpn_probs, (const float *P, int ldp, const float *r,                \
      const float *W2, const float *b2, int N, int g, int L, float *pi,        \
      int ldpi, uint8_t *levels))                                              \
    /* ---- scores ---- */                                                     \
    /* For t < T, i < N: S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0) \
     * with S[t][i] = -inf exactly when bias[i] == -inf (K[i] is then not      \
     * used); S is finite whenever the exact value is (q.k may overflow float  \
     * before the scale: such a score is recomputed exactly, key by key).      \
     * m[t] = max_i S[t][i] (NaN if any S[t][i] is NaN; -inf if N == 0).       \
     * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL (0 or -inf for      \
     * padding) -> S [T][lds] (lds >= N), m [T]. */                            \
    X(void, scores, (const float *K, int N, int dh, const float *Q, int T,     \
      int ldq, float scale, const float *bias, float *S, int lds, float *m))   \
    /* ---- threshold + compress (docs/SPEC.md §2) ---- */                     \
    /* keep_i = (s[i] - m >= theta8[levels[i]]), and keep_i = (s[i] > -inf)    \
     * where theta8 is -FLT_MAX (tau = 0: every finite score, even when        \
     * s[i] - m overflows); for kept keys in increasing i                      \
     * order: idx[k] = i, p[k] = exp(s[i] - m).  Returns the kept count and    \
     * writes *Z: seed mode Z = sum_all exp(s[i]-m); renorm Z = sum_kept p.    \
     * Special cases (checked once per call, not per element):                 \
     *   N == 0 or m == -inf  -> returns 0, *Z = 0;                            \
     *   m NaN or m == +inf   -> returns 0, *Z = NaN.                          \
     * No data-dependent branch per element in SIMD variants.                  \
     * s [N], levels [N] (each < 8), theta8 [8] (effective, finite)            \
     * -> idx [N+GA_KEEP_PAD], p [N+GA_KEEP_PAD], *Z. */                       \
    X(int, threshold, (const float *s, int N, float m, const uint8_t *levels,  \
      const float *theta8, ga_norm mode, int32_t *idx, float *p, float *Z))    \
    /* ---- contexts ---- */                                                   \
    /* c[j] = scale * sum_{k<count} p[k] * V[idx[k]][j]; count == 0 -> c = 0.  \
     * A term with p[k] == 0 is excluded (its V row does not influence c);     \
     * c is finite whenever the exact value is (p V may overflow float before  \
     * the scale 1/Z: such a c is recomputed exactly).                         \
     * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh]. */     \
    X(void, sparse_context, (const float *V, int dh, const int32_t *idx,       \
      const float *p, int count, float scale, float *c))                       \
    /* a[i] = exp(s[i] - m) / Z with Z = sum_i exp(s[i] - m); returns Z.       \
     * m == -inf or N == 0 -> a = 0, returns 0; m NaN/+inf -> a = NaN, returns NaN. \
     * s [N] -> a [N]. */                                                      \
    X(float, softmax, (const float *s, int N, float m, float *a))              \
    /* c[j] = sum_i a[i] * V[i][j].   V [N][dh], a [N] -> c [dh].              \
     * A row with a[i] == 0 (padding) is excluded; c is finite whenever the    \
     * exact value is (recomputed exactly if a float partial sum overflows). */ \
    X(void, dense_context, (const float *V, int N, int dh, const float *a,     \
      float *c))                                                               \
    /* ---- backward (docs/SPEC.md §4); "accum" outputs are added to, others overwritten ---- */ \
    /* dq[j] += scale * sum_i ds[i] K[i][j];  dK[i][j] += scale * ds[i] q[j].  \
     * A key with ds[i] == 0 (padding) is excluded from dq (its K row is not   \
     * used); the sum is finite whenever its exact value is.                   \
     * Either output may be NULL (not computed).  K [N][dh], q [dh], ds [N]. */ \
    X(void, scores_backward, (const float *K, int N, int dh, const float *q,   \
      float scale, const float *ds, float *dq, float *dK))                     \
    /* Attention-weight backward through the threshold, both modes.            \
     * Inputs: forward s [N], m, Z (the mode's Z), levels [N], theta8, L, mode; \
     * gv [N] = V[i] . dc for every key; cdc = c . dc.                         \
     * With p_i = exp(s_i - m), keep_i as in `threshold`:                      \
     *   seed:   ds[i] = (p_i/Z) * (keep_i * gv[i] - cdc)                      \
     *   renorm: ds[i] = keep_i * (p_i/Z) * (gv[i] - cdc)                      \
     * If dpi != NULL, the straight-through GPN gradient plus the regulariser: \
     *   G_i = (p_i/Z) * gv[i] (seed)  or  (p_i/Z) * (gv[i] - cdc) (renorm)    \
     *   dpi[l][i] += (G_i + reg) * [keep rule of level l]   for l < L.        \
     * Dropped keys: renorm gives exactly ds = 0; seed gives ds = -(p_i/Z) cdc \
     * (the gradient through Z, which every key is part of).  In both modes    \
     * gv of a dropped key is selected away, not multiplied by keep_i, so a    \
     * NaN/inf gv of a dropped key does not leak into ds.  A padded key        \
     * (s = -inf, p = 0) gets ds = 0 and leaves dpi unchanged.                 \
     * Special cases, checked in this order: m == -inf or Z == 0 -> ds = 0;    \
     * m NaN, m == +inf or Z NaN -> ds = NaN; dpi is unchanged in both.        \
     * -> ds [N] (overwritten), dpi [L][ldpi] (accum). */                      \
    X(void, threshold_backward, (const float *s, int N, float m, float Z,      \
      const uint8_t *levels, const float *theta8, int L, ga_norm mode,         \
      const float *gv, float cdc, float *ds, float *dpi, int ldpi,             \
      float reg))                                                              \
    /* ds[i] = a[i] * (da[i] - sum_j a[j] da[j]).   a, da [N] -> ds [N].       \
     * A key with a[i] == 0 (padding) is excluded: ds[i] = 0 and da[i] (even   \
     * NaN/inf) is not part of the sum. */                                     \
    X(void, softmax_backward, (const float *a, const float *da, int N,         \
      float *ds))                                                              \
    /* Backward of sparse_context with weights w_k = scale * p[k]:             \
     * dV[idx[k]][j] += w_k * dc[j] (accum; dV may be NULL);                   \
     * gk[k] = V[idx[k]] . dc (overwritten; gk may be NULL).                   \
     * idx must not repeat (threshold never repeats an index). */              \
    X(void, sparse_context_backward, (const float *V, int dh,                  \
      const int32_t *idx, const float *p, int count, float scale,              \
      const float *dc, float *dV, float *gk))                                  \
    /* Backward of dense_context: dV[i][j] += a[i] * dc[j] (accum; may be NULL); \
     * ga[i] = V[i] . dc (overwritten; may be NULL). */                        \
    X(void, dense_context_backward, (const float *V, int N, int dh,            \
      const float *a, const float *dc, float *dV, float *ga))                  \
    /* GPN head backward, given the forward probabilities pi [L][ldpi] and     \
     * dpi [L][ldpi] = dLoss/dpi:                                              \
     *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k);  u = relu(P[:,i] + r)       \
     *   dW2[l][j] += sum_i dz_l u_j;   db2[l] += sum_i dz_l   (accum)         \
     *   du_j = [P[j][i] + r[j] > 0] * sum_l W2[l][j] dz_l                     \
     *   dP[j][i] = du_j (overwritten);  dr[j] += sum_i du_j   (accum)         \
     * A key whose dpi is 0 at every level (padding: the threshold backward    \
     * never adds to it) is excluded: dz = 0, dP[.][i] = 0, and its pi and P   \
     * column (even NaN/inf) reach no output.                                  \
     * -> dP [g][lddp] (lddp >= N), dr [g], dW2 [L][g], db2 [L]. */            \
    X(void, gpn_backward, (const float *P, int ldp, const float *r,            \
      const float *W2, int N, int g, int L, const float *pi,                   \
      const float *dpi, int ldpi, float *dP, int lddp, float *dr, float *dW2,  \
      float *db2))                                                             \
    /* Backward of gpn_project_keys: with dP [g][lddp]:                        \
     *   dU[j][k] += sum_i dP[j][i] E[i][k];  db1[j] += sum_i dP[j][i];        \
     *   dE[i][k] += sum_j dP[j][i] U[j][k]        (all accum; each may be NULL). */ \
    X(void, gpn_project_keys_backward, (const float *E, int N, int d,          \
      const float *U, int g, const float *dP, int lddp, float *dU,             \
      float *db1, float *dE))                                                  \
    /* Backward of gpn_project_query: dW[j][k] += dr[j] x[k];                  \
     * dx[k] += sum_j W[j][k] dr[j]   (accum; each may be NULL). */            \
    X(void, gpn_project_query_backward, (const float *x, int d,                \
      const float *W, int g, const float *dr, float *dW, float *dx))           \
    /* ---- prepared keys (docs/SPEC.md §7) ---- */                            \
    /* Preview dot products: for i < N,                                        \
     *   dot[i] = sum_{d < dh4} qc[d] * codes[i/16][d/4][i%16][d%4]            \
     * (an exact integer, as float).  codes: int8 panels                       \
     * [ceil(N/16)][dh4/4][16][4] with values in [-127, 127]; the last panel   \
     * is whole (its lanes past N hold 0 and may be read).  ksum               \
     * [16*ceil(N/16)]: ksum[i] = sum_d codes of key i (0 past N, readable).   \
     * qc [dh4] with values in [-127, 127]; dh4 a multiple of 4,               \
     * 4 <= dh4 <= 1024 (|dot| <= 127*127*1024 < 2^24: exact in float).       \
     * -> dot [N] (exactly N floats written). */                               \
    X(void, preview_dots, (const int8_t *codes, const int32_t *ksum, int N,    \
      int dh4, const int8_t *qc, float *dot))                                  \
    /* Preview scores and their upper bounds, one query, with                  \
     * b_i = meta[3][i], w = qk[0], alpha = qk[1], beta = qk[2]:               \
     *   shat[i] = fma(w * meta[0][i], dot[i], b_i)                            \
     *   E_i     = fma(alpha, meta[1][i], fma(beta, meta[2][i], 2^-22 |b_i|))  \
     *   ub[i]   = shat[i] + E_i;  returns m_lb = max_i (shat[i] - E_i)        \
     * (each operation one float rounding: every variant gives the same bits;  \
     * a zero lower bound counts as +0, so a zero m_lb is +0 in any order).    \
     * A padded key (b_i == -inf): shat[i] = ub[i] = -inf, not part of m_lb;   \
     * m_lb = -inf when N == 0 or every key is padded.                         \
     * meta [4][ldm] (rows kscale, knorm, kerr, bias; ldm >= N), dot [N],      \
     * qk [3] -> shat [N], ub [N]. */                                          \
    X(float, preview_bounds, (const float *dot, const float *meta, int ldm,    \
      int N, const float *qk, float *shat, float *ub))                         \
    /* Candidates: the keys with ub[i] >= T8[levels[i]] (float compare; NaN    \
     * never a candidate), in increasing i: cand[k] = i; returns the count.    \
     * ub [N], levels [N] (each < 8), T8 [8] -> cand [N + GA_KEEP_PAD]         \
     * (entries past the count, up to index N + GA_KEEP_PAD - 1, may be        \
     * written). */                                                            \
    X(int, preview_select, (const float *ub, int N, const uint8_t *levels,     \
      const float *T8, int32_t *cand))                                         \
    /* The `scores` of the keys idx[0..count) for one query:                   \
     *   s[k] = scale * (q . K[idx[k]]) + (bias ? bias[idx[k]] : 0),           \
     * -inf exactly for a padded key (bias -inf); returns max_k s[k] (NaN if   \
     * any is NaN; -inf if count == 0).  Bitwise what `scores` of the same     \
     * table gives for those keys: in both, a key whose float result is not    \
     * finite is recomputed exactly (double), that key alone.                  \
     * K [*][dh] (rows idx[k] valid), q [dh], bias [*] or NULL,                \
     * idx [count] -> s [count]. */                                            \
    X(float, scores_gather, (const float *K, int dh, const int32_t *idx,       \
      int count, const float *q, float scale, const float *bias, float *s))    \
    /* Scores from keys packed across lanes, one query:                        \
     *   s[i] = scale * sum_d q[d] * Kp[i/16][d][i%16] + (bias ? bias[i] : 0), \
     * -inf exactly for a padded key; a non-finite result of an unpadded key   \
     * is recomputed exactly (double); returns max_i s[i] (NaN if any is NaN;  \
     * -inf if N == 0).  Kp [ceil(N/16)][dh][16] (the last panel whole; its    \
     * lanes past N are readable), q [dh], bias [N] or NULL -> s [N]. */       \
    X(float, scores_packed, (const float *Kp, int N, int dh, const float *q,   \
      float scale, const float *bias, float *s))                               \
    /* Int8 quantisation of rows for the preview, r < n, x = X[r][0..dh):      \
     *   a = max_d |x_d|, s = a / 127, y_d = x_d * (127 / a) (float),          \
     *   c_d = round-to-nearest-even(y_d) clamped to [-127, 127];              \
     *   codes[(r/lanes)*dh4*lanes + (d/4)*4*lanes + (r%lanes)*4 + d%4] = c_d  \
     *   (lanes 16: the keys' panel layout; lanes 1: contiguous), 0 for        \
     *   channels dh..dh4-1; scale[r] = s; csum[r] = sum_d c_d;                \
     *   norm[r] >= max(|x|, |s c|) and err[r] >= |x - s c| (Euclidean upper   \
     *   bounds, docs/SPEC.md §7).  a == 0: codes, s, csum, norm, err = 0.     \
     *   A row with a non-finite value or 0 < a < 2^-120: codes, s, csum = 0,  \
     *   norm = err = +inf (no bound).  Codes, scale and csum are the same     \
     *   bits in every variant; norm and err may differ in the last bits.      \
     * X [n][ldx] (ldx >= dh), 1 <= dh <= dh4 <= 1024, dh4 % 4 == 0, lanes 1  \
     * or 16 -> codes (the rows' slots only), scale, norm, err [n], csum [n]. */ \
    X(void, quantize_rows, (const float *X, int n, int ldx, int dh, int dh4,   \
      int lanes, int8_t *codes, float *scale, int32_t *csum, float *norm,      \
      float *err))                                                             \
    /* ---- dense query block, flash style (docs/SPEC.md §2) ---- */          \
    /* Dense attention of T queries over one head, K and V read once, with no  \
     * packing of K or V and no [T][N] score matrix: per row t < T            \
     *   s_i = scale * sum_d Q[t][d] K[i][d] + (bias ? bias[i] : 0),           \
     *   -inf exactly for a padded key (bias -inf, whatever its K or V row),   \
     *   C[t][j] = sum_i exp(s_i - m) V[i][j] / sum_i exp(s_i - m), m = max s, \
     * by an online softmax over key chunks (running max, rescaled sums).      \
     * Returns a mask: bit t set when row t has an unpadded key and every      \
     * unpadded score came out finite in float; the other rows of C are NaN   \
     * (the caller recomputes them: an overflowing float dot, NaN/inf in q,    \
     * K or bias, every key padded).  C of a flagged row may still be         \
     * non-finite (NaN/inf V row of a zero-weight key, an overflowing sum):    \
     * the caller checks it.  Error: docs/SPEC.md §2 (dense block rule).       \
     * Q [T][ldq] (dh used), K, V [N][dh], bias [N] or NULL -> C [T][ldc];     \
     * 1 <= T <= GA_FLASH_QB, N >= 0, dh >= 1; ws: GA_FLASH_WS(dh) floats,    \
     * any alignment, contents overwritten. */                                 \
    X(uint32_t, flash_block, (const float *Q, int ldq, int T, const float *K,  \
      const float *V, int N, int dh, float scale, const float *bias,          \
      float *C, int ldc, float *ws))

/* flash_block: queries per call and its workspace in floats (Q^T and C^T
 * [dh][32], one score tile of up to 256 keys [256][32], 4 x 32 row stats,
 * 16 floats of alignment slack). */
#define GA_FLASH_QB 32
#define GA_FLASH_NC 64 /* keys per chunk (every variant): at most N/64 rescales */
#define GA_FLASH_WS(dh) (64 * (size_t)(dh) + 256 * 32 + 4 * 32 + 16)

/* Dense linear algebra for the model: filled per ISA by kernels/gemm/
 * (ga_fill_gemm_<isa>), not by the attention-kernel libraries. */
#define GA_GEMM_LIST(X)                                                        \
    /* Row-major SGEMM: C = alpha * op(A) op(B) + beta * C, with op(A) [M][K]  \
     * and op(B) [K][N]; op(X) = X (trans = 0) or X^T (trans = 1).             \
     * A is [M][lda] (trans 0) or [K][lda] (trans 1); B is [K][ldb] or [N][ldb]; \
     * C [M][ldc].  beta == 0 overwrites C without reading it (NaN in C is not \
     * propagated); alpha == 0 or K == 0 only scales C.  Single-threaded;      \
     * callers split the work (e.g. over M) across a pool.  Each row of C is   \
     * bitwise independent of M (the same arithmetic whatever other rows the  \
     * call computes).  The blocked variants keep one packing buffer per      \
     * thread (allocated by the thread's first call, freed at its exit). */   \
    X(void, sgemm, (int transA, int transB, int M, int N, int K, float alpha,  \
      const float *A, int lda, const float *B, int ldb, float beta, float *C,  \
      int ldc))                                                                \
    /* Packs op(B) [K][N] (as sgemm reads B with transB, ldb) once, for many   \
     * sgemm_packed calls with the same B (model weights): writes Bp (64-byte  \
     * aligned) in this table's own layout and returns its size in floats;    \
     * Bp == NULL: only returns the size.  K, N >= 0. */                      \
    X(size_t, sgemm_pack, (int transB, int K, int N, const float *B, int ldb,  \
      float *Bp))                                                              \
    /* sgemm with op(B) [K][N] packed by this table's sgemm_pack: bitwise the  \
     * C that sgemm gives with the B it was packed from (same contract). */    \
    X(void, sgemm_packed, (int transA, int M, int N, int K, float alpha,       \
      const float *A, int lda, const float *Bp, float beta, float *C, int ldc))

/* The whole table, in struct order. */
#define GA_TABLE_LIST(X) GA_KERNEL_LIST(X) GA_GEMM_LIST(X)

#endif /* GRANATTN_OPS_H */
