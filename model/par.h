/* par.h — the data-parallel layer of `granattn train` (cli_train.c): the few
 * MPI operations it needs, behind functions that are no-ops in a build
 * without MPI (-Dmpi=disabled) and in an MPI build not launched by mpirun.
 *
 * Only the granattn executable links MPI; libgranattn and libgmodel never do
 * (the model side is gm_forward_backward_part, model.h, and
 * gm_train_step_part, train_step.h, which take a reduction callback).
 *
 * Every rank runs the same program on the same data; rank 0 alone reads the
 * checkpoint it resumes from (par_bcast gives it to the others) and alone
 * writes files.  All collectives are blocking; an MPI error makes the
 * function print "rank R: MPI_xxx failed: ..." and return -1.
 */
#ifndef GM_PAR_H
#define GM_PAR_H

#include <stddef.h>

/* Starts MPI when the process was launched by mpirun/mpiexec (OpenMPI's
 * OMPI_COMM_WORLD_SIZE or a PMIx/PMI rank in the environment) and the build
 * has MPI; otherwise does nothing (one rank).  Returns 0, or -1 with a
 * message printed. */
int par_init(int *argc, char ***argv);
void par_finalize(void);
int par_rank(void);       /* 0 without MPI */
int par_size(void);       /* 1 without MPI */
int par_local_size(void); /* ranks on this machine (1 without MPI) */
int par_active(void);     /* 1: more than one rank */

/* In-place sums over all ranks.  Floats: one MPI_Allreduce of the whole
 * buffer (split only beyond INT_MAX elements). */
int par_sum_f32(float *buf, size_t n);
int par_sum_f64(double *buf, int n);
/* Rank root's bytes to every rank.  A waiting rank sleeps between polls
 * (it does not spin on a core that a computing rank needs). */
int par_bcast(void *buf, size_t bytes, int root);
/* Ends every rank of the job (after a fatal error on one rank). */
void par_abort(int code);

#endif /* GM_PAR_H */
