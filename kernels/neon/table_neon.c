/* table_neon.c — installs the NEON variants into a table pre-filled with the
 * scalar references (see src/internal.h).  Every entry has a NEON version. */
#include "neon.h"

void ga_fill_neon(ga_kernels *t)
{
    t->gpn_project_keys = ga_neon_gpn_project_keys;
    t->gpn_project_query = ga_neon_gpn_project_query;
    t->gpn_levels = ga_neon_gpn_levels;
    t->gpn_probs = ga_neon_gpn_probs;
    t->scores = ga_neon_scores;
    t->threshold = ga_neon_threshold;
    t->sparse_context = ga_neon_sparse_context;
    t->softmax = ga_neon_softmax;
    t->dense_context = ga_neon_dense_context;
    t->scores_backward = ga_neon_scores_backward;
    t->threshold_backward = ga_neon_threshold_backward;
    t->softmax_backward = ga_neon_softmax_backward;
    t->sparse_context_backward = ga_neon_sparse_context_backward;
    t->dense_context_backward = ga_neon_dense_context_backward;
    t->gpn_backward = ga_neon_gpn_backward;
    t->gpn_project_keys_backward = ga_neon_gpn_project_keys_backward;
    t->gpn_project_query_backward = ga_neon_gpn_project_query_backward;
}
