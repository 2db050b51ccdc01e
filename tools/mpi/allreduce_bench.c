/* allreduce_bench.c — times MPI_Allreduce(MPI_SUM, float) of the gradient
 * sizes `granattn train` reduces per step, for the scaling note
 * (tools/mpi/scaling.sh builds it with mpicc and runs it under mpirun).
 *
 *   mpirun -np R allreduce_bench BYTES [BYTES ...]
 *
 * Per size: 3 warm-up calls, then 30 timed calls, each after an
 * MPI_Barrier (so a call does not include waiting for a late rank); prints
 * "bytes  median_ms  min_ms  algbw_GBps  busbw_GBps" on rank 0, with
 * algbw = bytes / median time and busbw = algbw * 2 (R - 1) / R (what each
 * rank sends and receives in a ring or reduce-scatter + allgather
 * allreduce, the usual way to compare with a link's bandwidth). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    enum { WARM = 3, REPS = 30 };
    if (rank == 0)
        printf("ranks\tbytes\tmedian_ms\tmin_ms\talgbw_GBps\tbusbw_GBps\n");
    for (int a = 1; a < argc; a++) {
        size_t bytes = strtoull(argv[a], NULL, 10);
        int n = (int)(bytes / sizeof(float));
        float *buf = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            buf[i] = 1e-3f * (float)(i % 1000);
        double t[REPS];
        for (int r = 0; r < WARM + REPS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double dt = MPI_Wtime() - t0;
            /* the slowest rank's time is the call's time */
            MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= WARM)
                t[r - WARM] = dt;
        }
        qsort(t, REPS, sizeof t[0], cmp);
        double med = t[REPS / 2], alg = (double)bytes / med / 1e9;
        if (rank == 0)
            printf("%d\t%zu\t%.4f\t%.4f\t%.3f\t%.3f\n", size, bytes, 1e3 * med, 1e3 * t[0], alg,
                   alg * 2.0 * (size - 1) / size);
        free(buf);
    }
    MPI_Finalize();
    return 0;
}
