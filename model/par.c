/* par.c — par.h: MPI for `granattn train` when built with -Dmpi (GM_HAVE_MPI)
 * and launched by mpirun; single-rank no-ops otherwise. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "par.h"

#ifdef GM_HAVE_MPI
#include <mpi.h>

static int g_on, g_rank, g_size = 1, g_local = 1;

static int launched_by_mpirun(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                 "PMI_SIZE", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static int check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "granattn train: rank %d: %s failed: %s\n", g_rank, what, msg);
    return -1;
}

int par_init(int *argc, char ***argv)
{
    if (!launched_by_mpirun())
        return 0;
    int provided = 0;
    /* only the main thread calls MPI (the pool's workers never do) */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "granattn train: MPI_Init failed\n");
        return -1;
    }
    g_on = 1;
    /* errors come back as codes (reported with the rank), not an abort
     * without context */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    return 0;
}

void par_finalize(void)
{
    if (g_on)
        MPI_Finalize();
    g_on = 0;
}

int par_rank(void) { return g_rank; }
int par_size(void) { return g_size; }
int par_local_size(void) { return g_local; }
int par_active(void) { return g_size > 1; }

int par_sum_f32(float *buf, size_t n)
{
    if (g_size <= 1)
        return 0;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
        if (check(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM,
                                MPI_COMM_WORLD),
                  "MPI_Allreduce (gradients)"))
            return -1;
        off += k;
    }
    return 0;
}

int par_sum_f64(double *buf, int n)
{
    if (g_size <= 1)
        return 0;
    return check(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                 "MPI_Allreduce (statistics)");
}

int par_bcast(void *buf, size_t bytes, int root)
{
    if (g_size <= 1)
        return 0;
    char *p = buf;
    for (size_t off = 0; off < bytes;) {
        size_t k = bytes - off < (size_t)INT_MAX ? bytes - off : (size_t)INT_MAX;
        MPI_Request rq;
        if (check(MPI_Ibcast(p + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD, &rq),
                  "MPI_Ibcast"))
            return -1;
        for (;;) {
            int done = 0;
            if (check(MPI_Test(&rq, &done, MPI_STATUS_IGNORE), "MPI_Ibcast"))
                return -1;
            if (done)
                break;
            struct timespec ts = {0, 200000}; /* 0.2 ms */
            nanosleep(&ts, NULL);
        }
        off += k;
    }
    return 0;
}

void par_abort(int code)
{
    if (g_on && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}

#else /* no MPI in this build: one rank */

int par_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
void par_finalize(void) {}
int par_rank(void) { return 0; }
int par_size(void) { return 1; }
int par_local_size(void) { return 1; }
int par_active(void) { return 0; }
int par_sum_f32(float *buf, size_t n)
{
    (void)buf;
    (void)n;
    return 0;
}
int par_sum_f64(double *buf, int n)
{
    (void)buf;
    (void)n;
    return 0;
}
int par_bcast(void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
    return 0;
}
void par_abort(int code) { (void)code; }

#endif
