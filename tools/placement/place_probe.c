/* place_probe.c — one placement measurement for tools/tune-placement.
 *
 *   place_probe --topology
 *       JSON: PU/core/package/NUMA counts, caches, and the worker -> PU maps
 *       of the compact and scatter policies for 1..#PUs threads.
 *   place_probe --threads T --place none|compact|scatter|list [--pus 0,2,..]
 *               --bytes B [--passes K] [--reps R] [--min-ms MS]
 *       Streams dot products over a working set of B bytes (two float arrays
 *       of B/2 bytes) split into one contiguous chunk per worker of a ga_pool
 *       (the same worker always owns the same chunk, and it also wrote it
 *       first, so pages are local to its NUMA node).  One "run" is one
 *       ga_pool_run in which each worker makes K passes over its chunk.  Each
 *       of the R samples times enough runs to last MS milliseconds and
 *       reports GB/s read (2 arrays x passes).  Prints one JSON line.
 *       --bytes 0 measures the pool alone: ns per ga_pool_run of T empty tasks.
 *
 * Built by tools/tune-placement with cc against the library (only the public
 * header and the ga_pool API are used).
 */
#include <errno.h>
#include <hwloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "granattn.h"

#define UNROLL 64 /* floats per inner step: independent accumulators */
#define MAX_SAMPLES 1000

typedef struct probe {
    const float *a, *b;
    size_t chunk;                   /* floats per worker, multiple of UNROLL */
    int passes;
    int threads;
    float *a_w, *b_w;               /* writable views for the first touch */
    struct { _Alignas(64) double sum; } *out; /* one cache line per worker */
} probe;

static void dot_task(void *arg, int task, int worker)
{
    probe *p = arg;
    const float *a = p->a + (size_t)task * p->chunk, *b = p->b + (size_t)task * p->chunk;
    float acc[UNROLL] = {0};
    for (int k = 0; k < p->passes; k++)
        for (size_t i = 0; i < p->chunk; i += UNROLL)
            for (int j = 0; j < UNROLL; j++) /* independent lanes: vectorises */
                acc[j] += a[i + j] * b[i + j];
    double s = 0;
    for (int j = 0; j < UNROLL; j++)
        s += acc[j];
    p->out[worker].sum += s;
}

static void init_task(void *arg, int task, int worker)
{
    probe *p = arg;
    (void)worker;
    float *a = p->a_w + (size_t)task * p->chunk, *b = p->b_w + (size_t)task * p->chunk;
    for (size_t i = 0; i < p->chunk; i++) {
        a[i] = (float)((i + (size_t)task) % 7) * 0.25f;
        b[i] = (float)(i % 5) * 0.5f;
    }
}

static void empty_task(void *arg, int task, int worker)
{
    (void)arg;
    (void)task;
    (void)worker;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median (mean of the middle two for an even count); sorts x. */
static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof x[0], cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "place_probe: %s\n", msg);
    fprintf(stderr,
            "usage: place_probe --topology\n"
            "       place_probe --threads T --place none|compact|scatter|list [--pus i,j,..]\n"
            "                   --bytes B [--passes K] [--reps R] [--min-ms MS]\n");
    return 2;
}

/* ------------------------------------------------------------ topology */

static int topology(void)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) < 0 || hwloc_topology_load(topo) < 0) {
        fprintf(stderr, "place_probe: hwloc topology load failed: %s\n", strerror(errno));
        return 1;
    }
    /* Same PU set as ga_pool: restricted to the process binding. */
    int thissystem = hwloc_topology_is_thissystem(topo);
    if (thissystem) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        if (set && hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0 &&
            !hwloc_bitmap_isincluded(hwloc_topology_get_topology_cpuset(topo), set))
            hwloc_topology_restrict(topo, set, HWLOC_RESTRICT_FLAG_REMOVE_CPULESS);
        hwloc_bitmap_free(set);
    }
    int npu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int ncore = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int npkg = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    int nnuma = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    int smt = 1;
    for (int i = 0; i < ncore; i++) {
        hwloc_obj_t c = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)i);
        int w = hwloc_bitmap_weight(c->cpuset);
        if (w > smt)
            smt = w;
    }
    printf("{\"hwloc_api\":\"%u.%u.%u\",\"thissystem\":%d,\"pus\":%d,\"cores\":%d,"
           "\"packages\":%d,\"numa_nodes\":%d,\"max_pus_per_core\":%d,",
           HWLOC_API_VERSION >> 16, (HWLOC_API_VERSION >> 8) & 0xff, HWLOC_API_VERSION & 0xff,
           thissystem, npu, ncore ? ncore : npu, npkg ? npkg : 1, nnuma ? nnuma : 1, smt);
    hwloc_obj_t numa = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, 0);
    printf("\"numa0_bytes\":%llu,", numa ? (unsigned long long)numa->attr->numanode.local_memory : 0ULL);

    /* Data/unified caches per level: size of one instance, instances, PUs sharing one. */
    static const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE,
                                              HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE,
                                              HWLOC_OBJ_L5CACHE};
    printf("\"caches\":[");
    int first = 1;
    for (int l = 0; l < 5; l++) {
        int n = hwloc_get_nbobjs_by_type(topo, levels[l]);
        if (n <= 0)
            continue;
        hwloc_obj_t c = hwloc_get_obj_by_type(topo, levels[l], 0);
        if (c->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION)
            continue;
        printf("%s{\"level\":%d,\"bytes\":%llu,\"instances\":%d,\"pus_per_instance\":%d}",
               first ? "" : ",", l + 1, (unsigned long long)c->attr->cache.size, n,
               hwloc_bitmap_weight(c->cpuset));
        first = 0;
    }
    printf("],");
    hwloc_topology_destroy(topo);

    /* Placement maps straight from the pool (what the measurements will use). */
    static const ga_place pl[] = {GA_PLACE_COMPACT, GA_PLACE_SCATTER};
    printf("\"maps\":{");
    for (int k = 0; k < 2; k++) {
        printf("%s\"%s\":[", k ? "," : "", ga_place_name(pl[k]));
        for (int t = 1; t <= npu; t++) {
            ga_pool *pool = ga_pool_create(t, pl[k], NULL, 0);
            if (!pool) {
                fprintf(stderr, "place_probe: %s\n", ga_last_error());
                return 1;
            }
            if (t > 1)
                putchar(',');
            json_string(ga_pool_describe(pool));
            ga_pool_destroy(pool);
        }
        printf("]");
    }
    printf("}}\n");
    return 0;
}

/* --------------------------------------------------------- measurement */

int main(int argc, char **argv)
{
    int threads = 1, passes = 1, reps = 5, npus = 0;
    double min_ms = 50;
    long long bytes = -1;
    ga_place place = GA_PLACE_NONE;
    int pus[1024];

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--topology"))
            return topology();
        if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return usage(NULL), 0;
        if (!v)
            return usage("missing value");
        i++;
        if (!strcmp(o, "--threads"))
            threads = atoi(v);
        else if (!strcmp(o, "--bytes"))
            bytes = atoll(v);
        else if (!strcmp(o, "--passes"))
            passes = atoi(v);
        else if (!strcmp(o, "--reps"))
            reps = atoi(v);
        else if (!strcmp(o, "--min-ms"))
            min_ms = atof(v);
        else if (!strcmp(o, "--place")) {
            if (ga_place_from_name(v, &place) != GA_OK)
                return usage(ga_last_error());
        } else if (!strcmp(o, "--pus")) {
            for (char *s = (char *)v; *s && npus < 1024;) {
                pus[npus++] = (int)strtol(s, &s, 10);
                if (*s == ',')
                    s++;
                else if (*s)
                    return usage("bad --pus list");
            }
        } else
            return usage("unknown option");
    }
    if (bytes < 0 || threads < 1 || passes < 1 || reps < 1 || reps > MAX_SAMPLES || min_ms <= 0)
        return usage("need --bytes >= 0 and positive --threads/--passes/--reps/--min-ms");

    ga_pool *pool = ga_pool_create(threads, place, npus ? pus : NULL, npus);
    if (!pool) {
        fprintf(stderr, "place_probe: ga_pool_create: %s\n", ga_last_error());
        return 1;
    }

    probe p = {0};
    p.threads = threads;
    p.passes = passes;
    float *buf = NULL;
    void (*fn)(void *, int, int) = empty_task;
    double bytes_per_run = 0;
    if (bytes > 0) {
        /* Two arrays, each split in `threads` chunks of a multiple of UNROLL floats. */
        size_t per = (size_t)bytes / 2 / sizeof(float) / (size_t)threads;
        p.chunk = per < UNROLL ? UNROLL : per / UNROLL * UNROLL;
        size_t n = p.chunk * (size_t)threads;
        buf = aligned_alloc(64, 2 * n * sizeof(float));
        p.out = aligned_alloc(64, sizeof *p.out * (size_t)threads);
        if (!buf || !p.out) {
            fprintf(stderr, "place_probe: cannot allocate %zu bytes\n", 2 * n * sizeof(float));
            return 1;
        }
        memset(p.out, 0, sizeof *p.out * (size_t)threads);
        p.a = p.a_w = buf;
        p.b = p.b_w = buf + n;
        ga_pool_run(pool, init_task, &p, threads); /* first touch by the owner */
        fn = dot_task;
        bytes_per_run = 2.0 * (double)n * sizeof(float) * passes;
        bytes = (long long)(2 * n * sizeof(float));
    }

    /* Warm up, then calibrate the number of runs per sample. */
    long runs = 1;
    for (;;) {
        double t0 = now_s();
        for (long r = 0; r < runs; r++)
            ga_pool_run(pool, fn, &p, threads);
        double dt = now_s() - t0;
        if (dt * 1e3 >= min_ms / 4 || runs >= (1L << 30))
            break;
        runs *= dt > 0 ? (dt * 1e3 * 8 < min_ms ? 8 : 2) : 8;
    }
    double t_probe = 0;
    {
        double t0 = now_s();
        for (long r = 0; r < runs; r++)
            ga_pool_run(pool, fn, &p, threads);
        t_probe = now_s() - t0;
    }
    if (t_probe > 0 && t_probe * 1e3 < min_ms)
        runs = (long)((double)runs * min_ms / (t_probe * 1e3)) + 1;

    double gbps[MAX_SAMPLES], nsrun[MAX_SAMPLES];
    for (int s = 0; s < reps; s++) {
        double t0 = now_s();
        for (long r = 0; r < runs; r++)
            ga_pool_run(pool, fn, &p, threads);
        double dt = now_s() - t0;
        nsrun[s] = 1e9 * dt / (double)runs;
        gbps[s] = bytes_per_run * (double)runs / dt / 1e9;
    }

    double sink = 0;
    for (int w = 0; w < threads && p.out; w++)
        sink += p.out[w].sum;

    printf("{\"threads\":%d,\"place\":\"%s\",\"bytes\":%lld,\"passes\":%d,\"runs_per_sample\":%ld,"
           "\"gbps\":[",
           threads, ga_place_name(place), bytes, passes, runs);
    for (int s = 0; s < reps; s++)
        printf("%s%.4f", s ? "," : "", gbps[s]);
    printf("],\"ns_per_run\":[");
    for (int s = 0; s < reps; s++)
        printf("%s%.1f", s ? "," : "", nsrun[s]);
    printf("],\"median_gbps\":%.4f,\"median_ns_per_run\":%.1f,\"checksum\":%.6g,\"describe\":",
           median(gbps, reps), median(nsrun, reps), sink);
    json_string(ga_pool_describe(pool));
    printf("}\n");

    ga_pool_destroy(pool);
    free(buf);
    free(p.out);
    return 0;
}
