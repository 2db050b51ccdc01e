/* table.c — ga_fill_<isa>: installs the ISA's ga_<isa>_<op> for every entry
 * of GA_KERNEL_LIST (include/granattn_ops.h) into a table pre-filled with
 * the scalar references (see src/internal.h).  Compiled once per ISA with
 * -DGA_SIMD_ISA; every ISA implements every attention kernel, generic
 * (kernels/simd/) or hand-written (kernels/<isa>/).  sgemm is filled by
 * kernels/gemm/ (ga_fill_gemm_<isa>).
 */
#include "simd.h"

void GA_FILL_FN(ga_kernels *t)
{
#define GA_FILL_ENTRY(ret, name, params) t->name = GA_FN(name);
    GA_KERNEL_LIST(GA_FILL_ENTRY)
#undef GA_FILL_ENTRY
}
