/* table_avx2.c — installs the avx2 variants into a table pre-filled with the
 * scalar references (see src/internal.h).  Every entry is overridden. */
#include "avx2.h"

void ga_fill_avx2(ga_kernels *t)
{
    t->gpn_project_keys = ga_avx2_gpn_project_keys;
    t->gpn_project_query = ga_avx2_gpn_project_query;
    t->gpn_levels = ga_avx2_gpn_levels;
    t->gpn_probs = ga_avx2_gpn_probs;
    t->scores = ga_avx2_scores;
    t->threshold = ga_avx2_threshold;
    t->sparse_context = ga_avx2_sparse_context;
    t->softmax = ga_avx2_softmax;
    t->dense_context = ga_avx2_dense_context;
    t->scores_backward = ga_avx2_scores_backward;
    t->threshold_backward = ga_avx2_threshold_backward;
    t->softmax_backward = ga_avx2_softmax_backward;
    t->sparse_context_backward = ga_avx2_sparse_context_backward;
    t->dense_context_backward = ga_avx2_dense_context_backward;
    t->gpn_backward = ga_avx2_gpn_backward;
    t->gpn_project_keys_backward = ga_avx2_gpn_project_keys_backward;
    t->gpn_project_query_backward = ga_avx2_gpn_project_query_backward;
}
