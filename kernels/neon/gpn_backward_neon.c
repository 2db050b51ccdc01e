/* gpn_backward_neon.c — GPN head backward (docs/SPEC.md §4), AArch64 NEON.
 *
 * Per key i, from the forward probabilities pi and dpi = dLoss/dpi:
 *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k)          (l < L)
 *   u_j  = relu(P[j][i] + r[j])  (NaN kept),   du_j = [P[j][i] + r[j] > 0] *
 *                                                      sum_l W2[l][j] dz_l
 *   dP[j][i] = du_j (overwritten);  dr[j] += sum_i du_j;
 *   dW2[l][j] += sum_i dz_l u_j;    db2[l] += sum_i dz_l     (accum)
 * P [g][ldp], r [g], W2 [L][g], pi, dpi [L][ldpi] -> dP [g][lddp], dr [g],
 * dW2 [L][g], db2 [L].  1 <= L <= 8.
 *
 * Lanes across keys.  Keys are processed in chunks of CHUNK: dz of the chunk
 * goes to a stack buffer (lanes past N are 0), then each hidden unit j sweeps
 * the chunk; the per-chunk sums are added to dr, dW2, db2 (so the summation
 * order depends only on N).  Padded lanes of the last block are masked out
 * of every sum.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

enum { CHUNK = 128 }; /* keys per chunk; multiple of 4 */

/* dz of keys [i0, i0 + nc) into dz[l][0 .. nc rounded up to 4); adds the
 * chunk's sum of dz_l to db2[l].  live[c] is all ones for a key in range
 * with a nonzero dpi at some level; a key whose dpi is 0 at every level
 * (padding) is excluded: dz = 0, and the caller clears its u and du, so its
 * pi and P column never reach an output. */
static void chunk_dz(const float *pi, const float *dpi, int ldpi, int L, int i0,
                     int nc, float dz[GA_MAX_LEVELS][CHUNK], uint32_t live[CHUNK],
                     float *db2)
{
    float32x4_t dbsum[GA_MAX_LEVELS];
    for (int l = 0; l < L; l++)
        dbsum[l] = vdupq_n_f32(0.0f);
    for (int c = 0; c < nc; c += 4) {
        int n = nc - c < 4 ? nc - c : 4;
        float32x4_t pv[GA_MAX_LEVELS], dv[GA_MAX_LEVELS];
        float32x4_t dot = vdupq_n_f32(0.0f);
        uint32x4_t on = vdupq_n_u32(0);
        for (int l = 0; l < L; l++) {
            const float *pl = pi + (size_t)l * ldpi + i0 + c;
            const float *dl = dpi + (size_t)l * ldpi + i0 + c;
            pv[l] = n == 4 ? vld1q_f32(pl) : ga_neon_load_tail(pl, n, 0.0f);
            dv[l] = n == 4 ? vld1q_f32(dl) : ga_neon_load_tail(dl, n, 0.0f);
            dot = vfmaq_f32(dot, pv[l], dv[l]);
            on = vorrq_u32(on, vmvnq_u32(vceqq_f32(dv[l], vdupq_n_f32(0.0f))));
        }
        vst1q_u32(live + c, on); /* tail lanes have dpi 0: not live */
        for (int l = 0; l < L; l++) {
            float32x4_t z = vreinterpretq_f32_u32(vandq_u32(
                on, vreinterpretq_u32_f32(vmulq_f32(pv[l], vsubq_f32(dv[l], dot)))));
            vst1q_f32(dz[l] + c, z);
            dbsum[l] = vaddq_f32(dbsum[l], z);
        }
    }
    for (int l = 0; l < L; l++)
        db2[l] += vaddvq_f32(dbsum[l]);
}

void ga_neon_gpn_backward(const float *P, int ldp, const float *r, const float *W2,
                          int N, int g, int L, const float *pi, const float *dpi,
                          int ldpi, float *dP, int lddp, float *dr, float *dW2,
                          float *db2)
{
    float dz[GA_MAX_LEVELS][CHUNK];
    uint32_t live[CHUNK];
    const float32x4_t zero = vdupq_n_f32(0.0f);

    for (int i0 = 0; i0 < N; i0 += CHUNK) {
        int nc = N - i0 < CHUNK ? N - i0 : CHUNK;
        chunk_dz(pi, dpi, ldpi, L, i0, nc, dz, live, db2);

        for (int j = 0; j < g; j++) {
            const float32x4_t vr = vdupq_n_f32(r[j]);
            float32x4_t drsum = zero;
            float32x4_t dw[GA_MAX_LEVELS];
            for (int l = 0; l < L; l++)
                dw[l] = zero;
            for (int c = 0; c < nc; c += 4) {
                int n = nc - c < 4 ? nc - c : 4;
                const float *pj = P + (size_t)j * ldp + i0 + c;
                float32x4_t pre = vaddq_f32(n == 4 ? vld1q_f32(pj)
                                                   : ga_neon_load_tail(pj, n, 0.0f), vr);
                float32x4_t u = vbslq_f32(vcltq_f32(pre, zero), zero, pre);
                float32x4_t du = zero;
                for (int l = 0; l < L; l++)
                    du = vfmaq_n_f32(du, vld1q_f32(dz[l] + c), W2[(size_t)l * g + j]);
                du = vbslq_f32(vcgtq_f32(pre, zero), du, zero);
                /* tail lanes and excluded keys: no contribution, even for
                 * inf/NaN r, W2, P or pi */
                uint32x4_t on = vld1q_u32(live + c);
                u = vbslq_f32(on, u, zero);
                du = vbslq_f32(on, du, zero);
                for (int l = 0; l < L; l++)
                    dw[l] = vfmaq_f32(dw[l], vld1q_f32(dz[l] + c), u);
                float *dst = dP + (size_t)j * lddp + i0 + c;
                if (n == 4)
                    vst1q_f32(dst, du);
                else
                    ga_neon_store_tail(dst, n, du);
                drsum = vaddq_f32(drsum, du);
            }
            dr[j] += vaddvq_f32(drsum);
            for (int l = 0; l < L; l++)
                dW2[(size_t)l * g + j] += vaddvq_f32(dw[l]);
        }
    }
}
