/* train_par.c — what `granattn train` does differently under mpirun (par.h):
 * the message a rank prints when mpirun's signal ends it, the reduction of
 * each step's statistics and gradients across the ranks (gm_part's hook),
 * the check that every rank holds the same parameters, and the per-step
 * timing line of the MPI run.  Without an MPI build (or under one rank)
 * par.h's calls are the identity and none of this is active. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_train.h"
#include "par.h"

/* Under mpirun with several ranks: the message a signal prints (two buffers,
 * g_par_msg_cur the complete one, so the handler never reads one half
 * written). */
static volatile sig_atomic_t g_par_on, g_par_msg_cur;
static char g_par_msg[2][PATH_MAX + 400];

void train_par_set_msg(const char *outdir, long ckpt_step)
{
    int next = !g_par_msg_cur;
    if (ckpt_step > 0)
        snprintf(g_par_msg[next], sizeof g_par_msg[next],
                 "granattn train: rank %d: stopped by a signal from mpirun (a rank "
                 "died, or the job was cancelled); the last checkpoint is %s/last.ckpt "
                 "at step %ld (rank 0's machine); continue with: mpirun -np R granattn "
                 "train --out %s --resume\n",
                 par_rank(), outdir, ckpt_step, outdir);
    else
        snprintf(g_par_msg[next], sizeof g_par_msg[next],
                 "granattn train: rank %d: stopped by a signal from mpirun (a rank "
                 "died, or the job was cancelled) before the first checkpoint\n",
                 par_rank());
    g_par_msg_cur = next;
}

void train_par_enable(int on) { g_par_on = on; }

int train_par_on_signal(int sig)
{
    if (!g_par_on)
        return 0;
    /* the other ranks cannot finish the step with this one (a dead rank
     * never will): stop now; checkpoints are atomic */
    const char *msg = g_par_msg[g_par_msg_cur];
    ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
    (void)r;
    _exit(128 + sig);
}

/* gm_part's reduction over the MPI ranks (par.h): the statistics and the
 * failure flag in one small MPI_Allreduce, then, unless a rank failed, the
 * gradients in one fused MPI_Allreduce of the whole buffer. */
static double g_par_wait_s, g_par_grad_s; /* time in the two reductions */
static double g_par_update_s;             /* clipping + AdamW */
static long g_par_steps;

int train_par_reduce(void *ctx, float *g, size_t n, gm_stats *st, int *failed)
{
    (void)ctx;
    double t0 = gu_now();
    double v[12 + GA_MAX_LEVELS];
    int k = 0;
    v[k++] = st->loss_sum;
    v[k++] = st->nll_sum;
    v[k++] = (double)st->tokens;
    v[k++] = (double)st->correct;
    v[k++] = st->density_sum;
    v[k++] = (double)st->density_count;
    v[k++] = st->pairs;
    v[k++] = st->exp_density_sum;
    v[k++] = st->exp_density_count;
    v[k++] = *failed ? 1.0 : 0.0;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        v[k++] = st->level_count[l];
    if (par_sum_f64(v, k) != 0) {
        gm_set_error(GA_EINVAL, "the reduction across MPI ranks failed");
        return -1;
    }
    k = 0;
    st->loss_sum = v[k++];
    st->nll_sum = v[k++];
    st->tokens = (long)v[k++];
    st->correct = (long)v[k++];
    st->density_sum = v[k++];
    st->density_count = (long)v[k++];
    st->pairs = v[k++];
    st->exp_density_sum = v[k++];
    st->exp_density_count = v[k++];
    *failed = v[k++] > 0.0;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        st->level_count[l] = v[k++];
    if (*failed)
        return 0;
    double t1 = gu_now();
    if (par_sum_f32(g, n) != 0) {
        gm_set_error(GA_EINVAL, "the reduction across MPI ranks failed");
        return -1;
    }
    g_par_wait_s += t1 - t0;
    g_par_grad_s += gu_now() - t1;
    g_par_steps++;
    return 0;
}

/* Under mpirun: are the parameters bit-identical on every rank?  (They are
 * by construction, every rank applying the same update to the same summed
 * gradient; checked at every checkpoint.)  0: yes; -1: no or MPI failed. */
int train_par_check_same(const float *p, size_t n, long step)
{
    if (!par_active())
        return 0;
    uint64_t h = 1469598103934665603ull, h0;
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n * sizeof(float); i++)
        h = (h ^ b[i]) * 1099511628211ull;
    h0 = h;
    if (par_bcast(&h0, sizeof h0, 0) != 0)
        return -1;
    double diff = h0 != h ? 1.0 : 0.0;
    if (par_sum_f64(&diff, 1) != 0)
        return -1;
    if (diff > 0.0)
        return gu_fail("step %ld: the parameters differ between ranks (%g of %d ranks "
                       "differ from rank 0)",
                       step, diff, par_size());
    return 0;
}

void train_par_add_update(double seconds) { g_par_update_s += seconds; }

void train_par_report(size_t grad_bytes)
{
    if (g_par_steps > 0) /* the first reduction also waits for the slowest rank */
        printf("mpi: rank 0 per step: %.3f ms in the statistics allreduce (waiting "
               "for the slowest rank), %.3f ms in the gradient allreduce of %zu "
               "bytes, %.3f ms clipping + AdamW; %ld steps\n",
               1e3 * g_par_wait_s / g_par_steps, 1e3 * g_par_grad_s / g_par_steps,
               grad_bytes, 1e3 * g_par_update_s / g_par_steps, g_par_steps);
}
