/* internal.h — declarations shared inside the library (not installed).
 *
 * ref/ defines ga_ref_<op> for every entry of ga_kernels (same signature and
 * semantics as the entry documented in include/granattn_ops.h).
 * kernels/simd/table.c, compiled once per ISA, defines ga_fill_<isa>(), which
 * installs that ISA's ga_<isa>_<op> for every GA_KERNEL_LIST entry into a
 * table pre-filled with the references (BLIS style: the reference is always
 * there, optimised variants override).
 */
#ifndef GA_INTERNAL_H
#define GA_INTERNAL_H

#include "granattn.h"

/* ---- scalar references (ref/<name>_ref.c): ga_ref_<name> for every entry
 * of GA_TABLE_LIST (include/granattn_ops.h), same signature and semantics. */
#define GA_REF_DECL(ret, name, params) ret ga_ref_##name params;
GA_TABLE_LIST(GA_REF_DECL)
#undef GA_REF_DECL

/* ---- per-ISA tables (kernels/simd/table.c, compiled once per ISA) ---- */
void ga_fill_avx2(ga_kernels *t);
void ga_fill_avx512(ga_kernels *t);
void ga_fill_neon(ga_kernels *t);
/* SGEMM variants live in kernels/gemm/ (their own per-ISA libraries). */
void ga_fill_gemm_avx2(ga_kernels *t);
void ga_fill_gemm_avx512(ga_kernels *t);
void ga_fill_gemm_neon(ga_kernels *t);

/* ---- errors (src/error.c) ---- */
/* Records a printf-style message for ga_last_error() and returns `st`. */
ga_status ga_set_error(ga_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ga_clear_error(void);

#endif
