/* ggml_attn.c — ggml's CPU attention on granattn's decode work: the ggml peer
 * of tools/peers/run.py (driven through tools/peers/worker.py).
 *
 * Work (the same as granattn-bench's attend / attend_block, dense fp32):
 *   Q [H][T][dh], K and V [H][N][dh] (row-major, as ga_attend takes them),
 *   C [H][T][dh] = softmax(Q K^T / sqrt(dh)) V per head.
 * Variants:
 *   flash   ggml_flash_attn_ext(q, k, v, no mask, 1/sqrt(dh)), K and V fp32
 *           (one query: ggml's split-KV path across threads when N >= 512)
 *   mulmat  kq = ggml_mul_mat(k, q) [N,T,H]; ggml_soft_max_ext(kq, 1/sqrt(dh));
 *           ggml_mul_mat(vt, kq) with V stored transposed, [H][dh][N], as
 *           llama.cpp keeps its V cache when flash attention is off
 * Cold cache: NSETS K/V sets, set s the rows of each head rotated by
 * (s * 7919 mod N), as granattn-bench --cache=cold builds them; the timed
 * loop rotates through the sets.
 *
 * Usage: ggml_attn --threads T       line protocol on stdin/stdout (below)
 *        ggml_attn --selftest        both variants vs a naive double reference
 *        ggml_attn --help
 * Protocol (one command per line, one reply line each: "ok ..." or "error MSG"):
 *   load DIR N H T DH NSETS   read DIR/q.f32 [H,T,dh], DIR/k.f32, DIR/v.f32 [H,N,dh]
 *   run VARIANT SET FILE      one call on set SET, write C [H,T,dh] fp32 to FILE
 *   time VARIANT MIN_S START CHUNKS
 *                             warm-up, then CHUNKS windows of >= 1 call and
 *                             >= MIN_S/CHUNKS s each, sets rotating from START;
 *                             reply "ok US MEAN_US MEDIAN_CALL_US CALLS" (US: the
 *                             median of the windows' mean per call)
 *   info                      reply "ok KEY=VALUE ..." (ggml version, SIMD, threads)
 *   drop | quit
 * Threads: ggml's OpenMP build; OMP_NUM_THREADS / OMP_PLACES / OMP_PROC_BIND /
 * OMP_WAIT_POLICY and the CPU affinity come from the caller (worker.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"

enum { V_FLASH, V_MULMAT, NVAR };
static const char *const var_name[NVAR] = {"flash", "mulmat"};

typedef struct {
    int N, H, T, dh, nsets;
    float *q;                /* [H][T][dh] */
    float **k, **v, **vt;    /* per set: [H][N][dh], [H][N][dh], [H][dh][N] */
    struct ggml_context *ctx_in, *ctx_op[NVAR];
    struct ggml_tensor *tq, *tk, *tv, *tvt, *out[NVAR];
    struct ggml_cgraph *gf[NVAR];
    struct ggml_cplan plan[NVAR];
    uint8_t *work[NVAR];
} problem;

static int g_threads = 1;
static struct ggml_threadpool *g_pool;
static char g_err[512];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *falloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0)
        return NULL;
    return p;
}

static void problem_free(problem *p)
{
    for (int i = 0; i < NVAR; i++) {
        if (p->ctx_op[i])
            ggml_free(p->ctx_op[i]);
        free(p->work[i]);
    }
    if (p->ctx_in)
        ggml_free(p->ctx_in);
    for (int s = 0; s < p->nsets; s++) {
        if (p->k) free(p->k[s]);
        if (p->v) free(p->v[s]);
        if (p->vt) free(p->vt[s]);
    }
    free(p->k);
    free(p->v);
    free(p->vt);
    free(p->q);
    memset(p, 0, sizeof *p);
}

/* Reads exactly n floats from path into a new buffer (NULL + g_err on error). */
static float *read_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(g_err, sizeof g_err, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    float *b = falloc(n);
    size_t got = b ? fread(b, sizeof(float), n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (!b || got != n || extra) {
        snprintf(g_err, sizeof g_err, "%s: expected exactly %zu floats", path, n);
        free(b);
        return NULL;
    }
    return b;
}

/* Builds the sets and both graphs; returns 0 or -1 with g_err. */
static int problem_load(problem *p, const char *dir, int N, int H, int T, int dh, int nsets)
{
    char path[4096];
    const size_t per_head = (size_t)N * dh, kv = (size_t)H * per_head;
    p->N = N, p->H = H, p->T = T, p->dh = dh, p->nsets = nsets;
    snprintf(path, sizeof path, "%s/q.f32", dir);
    if (!(p->q = read_f32(path, (size_t)H * T * dh)))
        return -1;
    p->k = calloc((size_t)nsets, sizeof *p->k);
    p->v = calloc((size_t)nsets, sizeof *p->v);
    p->vt = calloc((size_t)nsets, sizeof *p->vt);
    if (!p->k || !p->v || !p->vt)
        goto oom;
    snprintf(path, sizeof path, "%s/k.f32", dir);
    if (!(p->k[0] = read_f32(path, kv)))
        return -1;
    snprintf(path, sizeof path, "%s/v.f32", dir);
    if (!(p->v[0] = read_f32(path, kv)))
        return -1;
    for (int s = 1; s < nsets; s++) {   /* granattn-bench's cold sets (get_cold) */
        const size_t rot = ((size_t)s * 7919u % (size_t)N) * dh;
        if (!(p->k[s] = falloc(kv)) || !(p->v[s] = falloc(kv)))
            goto oom;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < 2; w++) {
                const float *src = (w ? p->v[0] : p->k[0]) + (size_t)h * per_head;
                float *dst = (w ? p->v[s] : p->k[s]) + (size_t)h * per_head;
                memcpy(dst, src + rot, (per_head - rot) * sizeof(float));
                memcpy(dst + (per_head - rot), src, rot * sizeof(float));
            }
    }
    for (int s = 0; s < nsets; s++) {   /* V transposed per head: [H][dh][N] */
        if (!(p->vt[s] = falloc(kv)))
            goto oom;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++)
                for (int d = 0; d < dh; d++)
                    p->vt[s][(size_t)h * per_head + (size_t)d * N + i] =
                        p->v[s][(size_t)h * per_head + (size_t)i * dh + d];
    }

    struct ggml_init_params ip = {16 * ggml_tensor_overhead(), NULL, true};
    if (!(p->ctx_in = ggml_init(ip)))
        goto oom;
    p->tq = ggml_new_tensor_3d(p->ctx_in, GGML_TYPE_F32, dh, T, H);
    p->tk = ggml_new_tensor_3d(p->ctx_in, GGML_TYPE_F32, dh, N, H);
    p->tv = ggml_new_tensor_3d(p->ctx_in, GGML_TYPE_F32, dh, N, H);
    p->tvt = ggml_new_tensor_3d(p->ctx_in, GGML_TYPE_F32, N, dh, H);
    const float scale = 1.0f / sqrtf((float)dh);
    const size_t scores = (size_t)N * T * H * sizeof(float), outb = (size_t)H * T * dh * sizeof(float);
    for (int i = 0; i < NVAR; i++) {
        struct ggml_init_params op = {
            64 * ggml_tensor_overhead() + ggml_graph_overhead() + 2 * scores + 2 * outb + (1 << 20),
            NULL, false};
        if (!(p->ctx_op[i] = ggml_init(op)))
            goto oom;
        struct ggml_context *c = p->ctx_op[i];
        if (i == V_FLASH) {
            p->out[i] = ggml_flash_attn_ext(c, p->tq, p->tk, p->tv, NULL, scale, 0.0f, 0.0f);
        } else {
            struct ggml_tensor *kq = ggml_mul_mat(c, p->tk, p->tq);            /* [N,T,H] */
            kq = ggml_soft_max_ext(c, kq, NULL, scale, 0.0f);
            p->out[i] = ggml_mul_mat(c, p->tvt, kq);                          /* [dh,T,H] */
        }
        p->gf[i] = ggml_new_graph(c);
        ggml_build_forward_expand(p->gf[i], p->out[i]);
        p->plan[i] = ggml_graph_plan(p->gf[i], g_threads, g_pool);
        if (p->plan[i].work_size) {
            if (!(p->work[i] = malloc(p->plan[i].work_size)))
                goto oom;
            p->plan[i].work_data = p->work[i];
        }
    }
    return 0;
oom:
    snprintf(g_err, sizeof g_err, "out of memory (N %d H %d T %d dh %d, %d sets)", N, H, T, dh, nsets);
    return -1;
}

static int call(problem *p, int var, int s)
{
    p->tq->data = p->q;
    p->tk->data = p->k[s];
    p->tv->data = p->v[s];
    p->tvt->data = p->vt[s];
    return ggml_graph_compute(p->gf[var], &p->plan[var]) == GGML_STATUS_SUCCESS ? 0 : -1;
}

/* The output in [H][T][dh] order (flash's result is [dh, H, T]). */
static void output(const problem *p, int var, float *c)
{
    const float *o = (const float *)p->out[var]->data;
    for (int h = 0; h < p->H; h++)
        for (int t = 0; t < p->T; t++)
            for (int d = 0; d < p->dh; d++) {
                const size_t src = var == V_FLASH ? ((size_t)t * p->H + h) * p->dh + d
                                                  : ((size_t)h * p->T + t) * p->dh + d;
                c[((size_t)h * p->T + t) * p->dh + d] = o[src];
            }
}

static int var_of(const char *name)
{
    for (int i = 0; i < NVAR; i++)
        if (strcmp(name, var_name[i]) == 0)
            return i;
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* "time": the rule of worker.py's timed_loop: a warm-up (>= 2 calls, >= min_s/5),
 * then `chunks` windows of >= 1 call and >= min_s/chunks s each; *us = the
 * median of the windows' mean per call. */
static int time_variant(problem *p, int var, double min_s, long start, int chunks, double *us,
                        double *mean_us, double *median_us, long *calls)
{
    long it = start;
    double t0 = now_s();
    for (int w = 0; w < 2 || now_s() - t0 < min_s / 5; w++)
        if (call(p, var, (int)(it++ % p->nsets)))
            return -1;
    size_t cap = 1024, n = 0;
    double *ts = malloc(cap * sizeof *ts), *means = malloc((size_t)chunks * sizeof *means);
    if (!ts || !means)
        goto fail;
    const double begin = now_s();
    double last = begin;
    for (int c = 0; c < chunks; c++) {
        const double c0 = last;
        const size_t n0 = n;
        while (n == n0 || last - c0 < min_s / chunks) {
            if (call(p, var, (int)(it++ % p->nsets)))
                goto fail;
            const double t = now_s();
            if (n == cap) {
                double *g = realloc(ts, 2 * cap * sizeof *ts);
                if (!g)
                    goto fail;
                ts = g, cap *= 2;
            }
            ts[n++] = t - last;
            last = t;
        }
        means[c] = (last - c0) / (double)(n - n0);
    }
    *mean_us = (last - begin) / (double)n * 1e6;
    qsort(ts, n, sizeof *ts, cmp_double);
    *median_us = (n % 2 ? ts[n / 2] : 0.5 * (ts[n / 2 - 1] + ts[n / 2])) * 1e6;
    qsort(means, (size_t)chunks, sizeof *means, cmp_double);
    *us = (chunks % 2 ? means[chunks / 2] : 0.5 * (means[chunks / 2 - 1] + means[chunks / 2])) * 1e6;
    *calls = (long)n;
    free(ts);
    free(means);
    return 0;
fail:
    free(ts);
    free(means);
    return -1;
}

static void reply_error(const char *fmt, const char *arg)
{
    printf("error ");
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
}

static int serve(void)
{
    problem p;
    memset(&p, 0, sizeof p);
    char line[8192];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "", a[4096] = "";
        if (sscanf(line, "%31s", cmd) != 1)
            continue;
        if (strcmp(cmd, "quit") == 0) {
            printf("ok\n");
            fflush(stdout);
            break;
        } else if (strcmp(cmd, "drop") == 0) {
            problem_free(&p);
            printf("ok\n");
        } else if (strcmp(cmd, "info") == 0) {
            printf("ok version=%s commit=%s threads=%d avx2=%d avx512=%d avx512_bf16=%d "
                   "fma=%d f16c=%d neon=%d llamafile=%d\n",
                   ggml_version(), ggml_commit(), g_threads, ggml_cpu_has_avx2(),
                   ggml_cpu_has_avx512(), ggml_cpu_has_avx512_bf16(), ggml_cpu_has_fma(),
                   ggml_cpu_has_f16c(), ggml_cpu_has_neon(), ggml_cpu_has_llamafile());
        } else if (strcmp(cmd, "load") == 0) {
            int N, H, T, dh, ns;
            problem_free(&p);
            if (sscanf(line, "%*s %4095s %d %d %d %d %d", a, &N, &H, &T, &dh, &ns) != 6 || N < 1 ||
                H < 1 || T < 1 || dh < 1 || ns < 1 || (double)N * H * dh > 1e9 ||
                (double)N * T * H > 1e9) {
                reply_error("%s", "usage: load DIR N H T DH NSETS (positive, sizes < 1e9)");
                continue;
            }
            if (problem_load(&p, a, N, H, T, dh, ns)) {
                problem_free(&p);
                reply_error("%s", g_err);
                continue;
            }
            printf("ok\n");
        } else if (strcmp(cmd, "run") == 0 || strcmp(cmd, "time") == 0) {
            char vn[32] = "";
            int var;
            if (!p.q) {
                reply_error("%s", "nothing loaded");
                continue;
            }
            if (sscanf(line, "%*s %31s", vn) != 1 || (var = var_of(vn)) < 0) {
                reply_error("unknown variant '%s' (flash, mulmat)", vn);
                continue;
            }
            if (cmd[0] == 'r') {
                int s;
                if (sscanf(line, "%*s %*s %d %4095s", &s, a) != 2 || s < 0 || s >= p.nsets) {
                    reply_error("%s", "usage: run VARIANT SET FILE (0 <= SET < NSETS)");
                    continue;
                }
                float *c = falloc((size_t)p.H * p.T * p.dh);
                FILE *f = NULL;
                int ok = c && call(&p, var, s) == 0;
                if (ok) {
                    output(&p, var, c);
                    ok = (f = fopen(a, "wb")) != NULL &&
                         fwrite(c, sizeof(float), (size_t)p.H * p.T * p.dh, f) ==
                             (size_t)p.H * p.T * p.dh;
                    if (f && fclose(f) != 0)
                        ok = 0;
                }
                free(c);
                if (!ok) {
                    reply_error("run failed (compute or writing %s)", a);
                    continue;
                }
                printf("ok\n");
            } else {
                double min_s, us, mean, med;
                long start, calls;
                int chunks;
                if (sscanf(line, "%*s %*s %lf %ld %d", &min_s, &start, &chunks) != 3 ||
                    !(min_s >= 0) || min_s > 600 || start < 0 || chunks < 1 || chunks > 1000) {
                    reply_error("%s", "usage: time VARIANT MIN_S START CHUNKS "
                                      "(0 <= MIN_S <= 600, 1 <= CHUNKS <= 1000)");
                    continue;
                }
                if (time_variant(&p, var, min_s, start, chunks, &us, &mean, &med, &calls)) {
                    reply_error("%s", "compute failed");
                    continue;
                }
                printf("ok %.4f %.4f %.4f %ld\n", us, mean, med, calls);
            }
        } else {
            reply_error("unknown command '%s' (load, run, time, info, drop, quit)", cmd);
            continue;
        }
        fflush(stdout);
    }
    problem_free(&p);
    return 0;
}

/* Small cases (odd N, the split-KV path, a block) vs a naive double reference. */
static int selftest(void)
{
    static const int cases[][4] = {{37, 3, 5, 16}, {700, 2, 1, 64}, {130, 4, 33, 64}};
    char dir[] = "/tmp/ggml_attn_selftest_XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "ggml_attn: mkdtemp failed: %s\n", strerror(errno));
        return 1;
    }
    int bad = 0;
    uint64_t rng = 12345;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int N = cases[ci][0], H = cases[ci][1], T = cases[ci][2], dh = cases[ci][3];
        const size_t nq = (size_t)H * T * dh, nkv = (size_t)H * N * dh;
        float *buf[3] = {falloc(nq), falloc(nkv), falloc(nkv)};
        const char *names[3] = {"q", "k", "v"};
        for (int b = 0; b < 3; b++) {
            const size_t n = b ? nkv : nq;
            for (size_t i = 0; i < n; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                buf[b][i] = (float)((double)(rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
            }
            char path[256];
            snprintf(path, sizeof path, "%s/%s.f32", dir, names[b]);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(buf[b], sizeof(float), n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "ggml_attn: cannot write %s\n", path);
                return 1;
            }
        }
        problem p;
        memset(&p, 0, sizeof p);
        if (problem_load(&p, dir, N, H, T, dh, 2)) {
            fprintf(stderr, "ggml_attn: %s\n", g_err);
            return 1;
        }
        float *c = falloc(nq);
        for (int var = 0; var < NVAR; var++)
            for (int s = 0; s < 2; s++) {   /* a rotated set gives the same context */
                double maxerr = 0;
                if (call(&p, var, s)) {
                    fprintf(stderr, "ggml_attn: compute failed\n");
                    return 1;
                }
                output(&p, var, c);
                for (int h = 0; h < H; h++)
                    for (int t = 0; t < T; t++) {
                        const float *q = buf[0] + ((size_t)h * T + t) * dh;
                        double m = -INFINITY, z = 0, sc[1024];
                        for (int i = 0; i < N; i++) {
                            double d = 0;
                            for (int j = 0; j < dh; j++)
                                d += (double)q[j] * buf[1][((size_t)h * N + i) * dh + j];
                            sc[i] = d / sqrt((double)dh);
                            m = sc[i] > m ? sc[i] : m;
                        }
                        for (int i = 0; i < N; i++)
                            z += (sc[i] = exp(sc[i] - m));
                        for (int j = 0; j < dh; j++) {
                            double r = 0;
                            for (int i = 0; i < N; i++)
                                r += sc[i] / z * buf[2][((size_t)h * N + i) * dh + j];
                            const double e = fabs(r - c[((size_t)h * T + t) * dh + j]);
                            maxerr = e > maxerr ? e : maxerr;
                        }
                    }
                /* fp32 inputs in [-2, 2], dh <= 64: scores carry ~1e-6 relative
                 * error, the context (a convex combination of |v| <= 2) ~1e-6;
                 * 1e-4 leaves margin and still catches any fp16 rounding (~1e-3). */
                const int ok = maxerr <= 1e-4;
                bad += !ok;
                printf("%s %s N %d H %d T %d dh %d set %d: max |err| %.2e\n", ok ? "ok  " : "FAIL",
                       var_name[var], N, H, T, dh, s, maxerr);
            }
        free(c);
        problem_free(&p);
        for (int b = 0; b < 3; b++) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s.f32", dir, names[b]);
            remove(path);
            free(buf[b]);
        }
    }
    remove(dir);
    return bad ? 1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ggml_attn --threads T   serve the line protocol on stdin/stdout\n"
            "       ggml_attn --selftest    check both variants against a naive reference\n"
            "       ggml_attn --help\n"
            "\n"
            "Times ggml's CPU attention (ggml_flash_attn_ext: 'flash'; mul_mat + soft_max +\n"
            "mul_mat with V transposed: 'mulmat') on granattn's decode work, fp32:\n"
            "Q [H,T,dh], K and V [H,N,dh], C [H,T,dh].  tools/peers/worker.py drives it.\n"
            "Protocol (one reply line per command: 'ok ...' or 'error MSG'):\n"
            "  load DIR N H T DH NSETS   DIR/q.f32 [H,T,dh], DIR/k.f32, DIR/v.f32 [H,N,dh];\n"
            "                            NSETS-1 more sets rotated as granattn-bench --cache=cold\n"
            "  run VARIANT SET FILE      one call, C [H,T,dh] fp32 written to FILE\n"
            "  time VARIANT MIN_S START CHUNKS\n"
            "                            CHUNKS windows of >= MIN_S/CHUNKS s; reply\n"
            "                            'ok US MEAN_US MEDIAN_CALL_US CALLS' (US: median of\n"
            "                            the windows' mean per call)\n"
            "  info | drop | quit\n"
            "Threads: OpenMP (OMP_* variables and the CPU affinity from the caller).\n");
}

int main(int argc, char **argv)
{
    int self = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--selftest") == 0) {
            self = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 512) {
                fprintf(stderr, "ggml_attn: bad --threads '%s' (1..512)\n", argv[i]);
                return 2;
            }
            g_threads = (int)t;
        } else {
            fprintf(stderr, "ggml_attn: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(g_threads);
    if (!(g_pool = ggml_threadpool_new(&tpp))) {
        fprintf(stderr, "ggml_attn: ggml_threadpool_new(%d) failed\n", g_threads);
        return 1;
    }
    int rc = self ? selftest() : serve();
    ggml_threadpool_free(g_pool);
    return rc;
}
