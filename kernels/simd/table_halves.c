/* table_halves.c — ga_fill_avx512h: the AVX-512 "loads:halves" tuning.
 * Compiled only into the ga_avx512h library, with the files of
 * simd_halves_sources (kernels/simd/meson.build) and -DGAV_SPLIT_LOADS=1:
 * the kernels that stream K or V rows from memory, with every full-vector
 * load issued as two 256-bit loads, and gathered V rows (sparse context)
 * prefetched 16 rows ahead (GAV_WSUM_PREFETCH; the whole build: none).  Installed over the AVX-512 table by
 * src/dispatch.c when the tuning is chosen (AMD CPUs, or
 * GRANATTN_AVX512_LOADS=halves); the other entries stay ga_avx512_<op>.
 * The same operations on the same values as the whole-load build, so the
 * results are bitwise equal (tests/test_tuning.c).
 */
#include "simd.h"

#if !GAV_SPLIT_LOADS || GA_SIMD_ISA != 2
#error "table_halves.c is compiled only with -DGA_SIMD_ISA=2 -DGAV_SPLIT_LOADS=1"
#endif

/* One entry per kernel of simd_halves_sources. */
#define GA_HALVES_LIST(X)                                                      \
    X(scores)                                                                  \
    X(scores_backward)                                                         \
    X(dense_context)                                                           \
    X(dense_context_backward)                                                  \
    X(sparse_context)                                                          \
    X(sparse_context_backward)                                                 \
    X(scores_gather)                                                           \
    X(scores_packed)

void GA_FILL_FN(ga_kernels *t)
{
#define GA_HALVES_ENTRY(name) t->name = GA_FN(name);
    GA_HALVES_LIST(GA_HALVES_ENTRY)
#undef GA_HALVES_ENTRY
}
