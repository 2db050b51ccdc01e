/* sgemm_avx512.c — placeholder: installs nothing yet (reference SGEMM used). */
#include "internal.h"
void ga_fill_gemm_avx512(ga_kernels *t) { (void)t; }
