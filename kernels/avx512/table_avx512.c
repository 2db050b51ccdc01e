/* table_avx512.c — installs the avx512 variants into a table pre-filled with the
 * scalar references (see src/internal.h).  Every entry is overridden. */
#include "avx512.h"

void ga_fill_avx512(ga_kernels *t)
{
    t->gpn_project_keys = ga_avx512_gpn_project_keys;
    t->gpn_project_query = ga_avx512_gpn_project_query;
    t->gpn_levels = ga_avx512_gpn_levels;
    t->gpn_probs = ga_avx512_gpn_probs;
    t->scores = ga_avx512_scores;
    t->threshold = ga_avx512_threshold;
    t->sparse_context = ga_avx512_sparse_context;
    t->softmax = ga_avx512_softmax;
    t->dense_context = ga_avx512_dense_context;
    t->scores_backward = ga_avx512_scores_backward;
    t->threshold_backward = ga_avx512_threshold_backward;
    t->softmax_backward = ga_avx512_softmax_backward;
    t->sparse_context_backward = ga_avx512_sparse_context_backward;
    t->dense_context_backward = ga_avx512_dense_context_backward;
    t->gpn_backward = ga_avx512_gpn_backward;
    t->gpn_project_keys_backward = ga_avx512_gpn_project_keys_backward;
    t->gpn_project_query_backward = ga_avx512_gpn_project_query_backward;
}
