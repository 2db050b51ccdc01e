/* preview_dots.c — PLACEHOLDER: plain C preview dot products compiled per ISA
 * (docs/SPEC.md §7), until the hand-written kernels/<isa>/preview_dots_<isa>.c
 * replace it.  Same loop as the reference (exact integers: the same bits).
 * codes [ceil(N/16)][dh4/4][16][4], qc [dh4] -> dot [N].
 */
#include "simd.h"

void GA_FN(preview_dots)(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                         const int8_t *qc, float *dot)
{
    ga_ref_preview_dots(codes, ksum, N, dh4, qc, dot);
}
