/* sgemm_avx2.c — placeholder: installs nothing yet (reference SGEMM used). */
#include "internal.h"
void ga_fill_gemm_avx2(ga_kernels *t) { (void)t; }
