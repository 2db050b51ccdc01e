/* optim.c — see optim.h. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define CHUNK 65536 /* elements per task; fixed so sums are reproducible */

const char *go_sched_name(go_sched s)
{
    switch (s) {
    case GO_SCHED_INVSQRT: return "invsqrt";
    case GO_SCHED_COSINE: return "cosine";
    case GO_SCHED_CONSTANT: return "constant";
    }
    return "?";
}

int go_sched_from_name(const char *name, go_sched *out)
{
    if (!strcasecmp(name, "invsqrt") || !strcasecmp(name, "inverse_sqrt") ||
        !strcasecmp(name, "inv_sqrt"))
        *out = GO_SCHED_INVSQRT;
    else if (!strcasecmp(name, "cosine"))
        *out = GO_SCHED_COSINE;
    else if (!strcasecmp(name, "constant"))
        *out = GO_SCHED_CONSTANT;
    else
        return -1;
    return 0;
}

void go_options_default(go_options *o)
{
    o->lr = 7e-4f;
    o->min_lr = 1e-5f;
    o->warmup = 1000;
    o->total_steps = 20000;
    o->sched = GO_SCHED_INVSQRT;
    o->beta1 = 0.9f;
    o->beta2 = 0.98f;
    o->eps = 1e-9f;
    o->weight_decay = 0.01f;
    o->clip = 1.0f;
}

float go_lr(const go_options *o, long step)
{
    if (step < 1)
        step = 1;
    double peak = o->lr, lr;
    if (o->warmup > 0 && step <= o->warmup)
        return (float)(peak * (double)step / (double)o->warmup);
    switch (o->sched) {
    case GO_SCHED_INVSQRT:
        lr = o->warmup > 0 ? peak * sqrt((double)o->warmup / (double)step) : peak;
        break;
    case GO_SCHED_COSINE: {
        double span = (double)(o->total_steps - o->warmup);
        double prog = span > 0 ? (double)(step - o->warmup) / span : 1.0;
        if (prog > 1.0)
            prog = 1.0;
        lr = o->min_lr + 0.5 * (peak - o->min_lr) * (1.0 + cos(M_PI * prog));
        break;
    }
    default:
        lr = peak;
        break;
    }
    if (lr < o->min_lr)
        lr = o->min_lr;
    return (float)lr;
}

int go_init(go_adamw *a, const go_options *o, size_t n)
{
    memset(a, 0, sizeof *a);
    a->o = *o;
    a->n = n;
    a->m = gu_calloc(n, sizeof(float));
    a->v = gu_calloc(n, sizeof(float));
    a->decay = gu_malloc(n);
    if (!a->m || !a->v || !a->decay) {
        go_free(a);
        return -1;
    }
    memset(a->decay, 1, n);
    return 0;
}

void go_free(go_adamw *a)
{
    free(a->m);
    free(a->v);
    free(a->decay);
    memset(a, 0, sizeof *a);
}

int go_no_decay(go_adamw *a, size_t offset, size_t count)
{
    if (offset > a->n || count > a->n - offset)
        return gu_fail("no-decay range [%zu, %zu) outside the %zu parameters",
                       offset, offset + count, a->n);
    memset(a->decay + offset, 0, count);
    return 0;
}

/* ------------------------------------------------------------ reductions */
typedef struct norm_job {
    const float *g;
    size_t n;
    double *partial;
} norm_job;

static void norm_task(void *arg, int task, int worker)
{
    (void)worker;
    norm_job *j = arg;
    size_t s = (size_t)task * CHUNK, e = s + CHUNK < j->n ? s + CHUNK : j->n;
    double acc = 0;
    for (size_t i = s; i < e; i++)
        acc += (double)j->g[i] * (double)j->g[i];
    j->partial[task] = acc;
}

static void run_tasks(ga_pool *pool, void (*fn)(void *, int, int), void *arg,
                      int ntasks)
{
    if (pool && ntasks > 1) {
        ga_pool_run(pool, fn, arg, ntasks);
    } else {
        for (int t = 0; t < ntasks; t++)
            fn(arg, t, 0);
    }
}

double go_global_norm(ga_pool *pool, const float *g, size_t n)
{
    int ntasks = (int)((n + CHUNK - 1) / CHUNK);
    double stack[64], *partial = ntasks <= 64 ? stack : malloc((size_t)ntasks * sizeof(double));
    if (!partial) { /* fall back to a serial sum in the same order */
        double acc = 0;
        for (int t = 0; t < ntasks; t++) {
            double a2 = 0;
            size_t s = (size_t)t * CHUNK, e = s + CHUNK < n ? s + CHUNK : n;
            for (size_t i = s; i < e; i++)
                a2 += (double)g[i] * (double)g[i];
            acc += a2;
        }
        return sqrt(acc);
    }
    norm_job j = {g, n, partial};
    run_tasks(pool, norm_task, &j, ntasks);
    double acc = 0;
    for (int t = 0; t < ntasks; t++)
        acc += partial[t];
    if (partial != stack)
        free(partial);
    return sqrt(acc);
}

typedef struct scale_job {
    float *g;
    size_t n;
    float s;
} scale_job;

static void scale_task(void *arg, int task, int worker)
{
    (void)worker;
    scale_job *j = arg;
    size_t s = (size_t)task * CHUNK, e = s + CHUNK < j->n ? s + CHUNK : j->n;
    for (size_t i = s; i < e; i++)
        j->g[i] *= j->s;
}

double go_clip(ga_pool *pool, float *g, size_t n, float max_norm)
{
    double norm = go_global_norm(pool, g, n);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        scale_job j = {g, n, (float)(max_norm / (norm + 1e-6))};
        run_tasks(pool, scale_task, &j, (int)((n + CHUNK - 1) / CHUNK));
    }
    return norm;
}

/* ------------------------------------------------------------------ step */
typedef struct step_job {
    go_adamw *a;
    float *p;
    const float *g;
    float lr, b1, b2, c1, c2, eps, wd;
} step_job;

static void step_task(void *arg, int task, int worker)
{
    (void)worker;
    step_job *j = arg;
    size_t n = j->a->n;
    size_t s = (size_t)task * CHUNK, e = s + CHUNK < n ? s + CHUNK : n;
    float *m = j->a->m, *v = j->a->v, *p = j->p;
    const float *g = j->g;
    const uint8_t *dec = j->a->decay;
    for (size_t i = s; i < e; i++) {
        float gi = g[i];
        m[i] = j->b1 * m[i] + (1.0f - j->b1) * gi;
        v[i] = j->b2 * v[i] + (1.0f - j->b2) * gi * gi;
        float mhat = m[i] * j->c1, vhat = v[i] * j->c2;
        float upd = mhat / (sqrtf(vhat) + j->eps);
        if (dec[i])
            upd += j->wd * p[i];
        p[i] -= j->lr * upd;
    }
}

void go_step(go_adamw *a, ga_pool *pool, float *params, const float *grads,
             float lr)
{
    a->t++;
    double b1 = a->o.beta1, b2 = a->o.beta2;
    step_job j = {
        .a = a, .p = params, .g = grads, .lr = lr,
        .b1 = a->o.beta1, .b2 = a->o.beta2,
        .c1 = (float)(1.0 / (1.0 - pow(b1, (double)a->t))),
        .c2 = (float)(1.0 / (1.0 - pow(b2, (double)a->t))),
        .eps = a->o.eps, .wd = a->o.weight_decay,
    };
    run_tasks(pool, step_task, &j, (int)((a->n + CHUNK - 1) / CHUNK));
}
