/* preview_dots_ref.c — scalar reference of the int8 preview dot products
 * (docs/SPEC.md §7).
 *
 *   dot[i] = sum_{d < dh4} qc[d] * codes[i/16][d/4][i%16][d%4]     i < N
 * codes: int8 panels [ceil(N/16)][dh4/4][16][4]; qc [dh4]; -> dot [N].
 * The sum is an exact integer (|dot| <= 127*127*1024 < 2^24), so the float
 * result is exact and every variant must give the same bits.  ksum is not
 * needed here (the VNNI variant uses it to undo its unsigned offset).
 */
#include "internal.h"

void ga_ref_preview_dots(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                         const int8_t *qc, float *dot)
{
    (void)ksum;
    const size_t panel = (size_t)dh4 * 16; /* bytes per panel of 16 keys */
    for (int i = 0; i < N; i++) {
        const int8_t *p = codes + (size_t)(i / 16) * panel + (size_t)(i % 16) * 4;
        int32_t acc = 0;
        for (int d = 0; d < dh4; d++)
            acc += (int32_t)qc[d] * p[(size_t)(d / 4) * 64 + d % 4];
        dot[i] = (float)acc;
    }
}
