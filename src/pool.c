/* pool.c — persistent thread pool with hwloc placement (ga_pool_* in granattn.h).
 *
 * Design
 *   - threads-1 pthreads are spawned at create; the thread calling
 *     ga_pool_run() is worker 0 for that run.
 *   - A run is published by bumping a generation counter (`gen`).  Idle
 *     workers spin on it for at most SPIN_NS (yielding the CPU after the
 *     first SPIN_PURE_NS), then block on a condition variable, so nothing
 *     burns CPU between runs.  The spin is disabled when the pool is
 *     oversubscribed (more threads than PUs), where spinning only steals time
 *     from the worker that has real work.
 *   - Every worker acknowledges every run by decrementing `pending` (also the
 *     workers that get no task), so the job fields can be rewritten safely as
 *     soon as `pending` reaches 0.  The caller waits for that the same way:
 *     bounded spin, then the `done` condition variable.
 *   - Tasks [0, ntasks) are cut into contiguous blocks, worker w gets block w
 *     (the first ntasks % threads workers get one task more).  The mapping
 *     depends only on (ntasks, threads): the same task always runs on the
 *     same worker.  ntasks == 1 runs inline on the caller without waking
 *     anybody (worker 0 owns task 0 in the block split as well).
 *   - Concurrent ga_pool_run() calls from different threads are serialised by
 *     `run_mu`.  A nested call from inside a task of the same pool runs its
 *     tasks inline on the calling worker (no deadlock).
 *
 * Placement (hwloc, one topology per pool)
 *   - The topology is restricted to the process's CPU binding as it was when
 *     the first pool of the process was created (like the initial affinity
 *     mask of OpenMP runtimes), so `taskset`/`numactl` masks and cgroup
 *     cpusets are respected, and a live pool that has bound its caller does
 *     not shrink the PU set of pools created later.  PU indices everywhere
 *     (GA_PLACE_LIST, ga_pool_describe) are hwloc logical indices within that
 *     restricted topology.
 *   - Worker w binds itself (HWLOC_CPUBIND_THREAD) to entry w mod n of the
 *     policy's PU order (compact: logical order; scatter: scatter_order();
 *     list: the caller's list) before the pool is returned; a binding
 *     failure fails ga_pool_create with GA_ESYS.
 *   - The calling thread (worker 0) is bound at create, and ga_pool_destroy
 *     restores its previous binding when destroy is called from the same
 *     thread.  If ga_pool_run is called from another thread, worker 0's block
 *     runs there with that thread's own binding (not changed).
 *   - If the topology is not this machine (HWLOC_XMLFILE / HWLOC_SYNTHETIC
 *     for inspection), nothing is bound and describe says so.
 *
 * Not supported: destroying a pool while a run is in flight, and using a
 * pool in a forked child.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hwloc.h>

#include "internal.h"

#define GA_POOL_MAX_THREADS 1024
/* Spin this long before blocking (idle or waiting), of which SPIN_PURE_NS
 * without yielding the CPU.  Compile-time knobs (-DGA_POOL_SPIN_NS=...). */
#ifndef GA_POOL_SPIN_NS
#define GA_POOL_SPIN_NS 50000L
#endif
#ifndef GA_POOL_SPIN_PURE_NS
#define GA_POOL_SPIN_PURE_NS 5000L
#endif
#define SPIN_NS ((long)GA_POOL_SPIN_NS)
#define SPIN_PURE_NS ((long)GA_POOL_SPIN_PURE_NS)

/* One worker's private state, on its own cache line(s). */
typedef struct slot {
    _Alignas(64) void *scratch;
    size_t cap;
    int pu;       /* hwloc logical PU index, -1 when unbound */
    int bind_err; /* errno of a failed binding (reported to the creator) */
    pthread_t tid;
} slot;

struct ga_pool {
    int threads;
    ga_place place;
    int npu;              /* PUs in the (restricted) topology */
    long spin_ns;         /* 0 when oversubscribed */
    int bound;            /* 1: workers are bound to sets[] */
    hwloc_topology_t topo;
    hwloc_bitmap_t *sets; /* per-worker binding, NULL when unbound */
    hwloc_bitmap_t caller_old; /* creator's binding before create */
    pthread_t creator;
    slot *slots;
    char *desc;

    pthread_mutex_t run_mu; /* serialises ga_pool_run callers */
    pthread_mutex_t mu;     /* protects started, stopping; orders sleeps and wake-ups */
    pthread_cond_t wake;    /* workers: a new generation */
    pthread_cond_t done;    /* creator/caller: workers started / run finished */
    int started;
    int stopping;

    /* Current job: written by the caller while pending == 0, published by
     * the release store to gen, read by workers after the acquire load. */
    void (*fn)(void *, int, int);
    void *arg;
    int ntasks;

    /* Sleep/wake handshakes (Dekker style, all seq_cst): a thread about to
     * block announces itself (sleepers / caller_waiting), then re-checks the
     * condition; the other side changes the condition, then looks at the
     * announcement and only then takes mu to signal.  In the seq_cst total
     * order one of the two sees the other's write, so no wake-up is lost and
     * the fast path (nobody asleep) takes no lock. */
    _Alignas(64) atomic_ulong gen;
    atomic_int sleepers;       /* workers blocked (or about to block) on wake */
    _Alignas(64) atomic_int pending; /* workers that have not finished this run */
    atomic_int caller_waiting; /* the caller is blocked (or about to) on done */
};

/* The pool and worker index of the task running on this thread, for nested
 * ga_pool_run calls. */
static _Thread_local const ga_pool *tl_pool;
static _Thread_local int tl_worker;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A bounded spin: pause between polls; every 64 polls check the clock (give
 * up after `ns`) and, once past SPIN_PURE_NS, sched_yield() so that a
 * thread we are waiting for that shares our CPU (unbound pools, or a busy
 * shared machine) gets to run instead of waiting for our spin to expire. */
typedef struct spinner {
    struct timespec t0;
    long ns;
    unsigned i;
} spinner;

static void spin_start(spinner *s, long ns)
{
    s->ns = ns;
    s->i = 0;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
}

/* Returns 0 when the spin budget is spent. */
static int spin_step(spinner *s)
{
    cpu_relax();
    if ((++s->i & 63) != 0)
        return 1;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long el = (long)(t.tv_sec - s->t0.tv_sec) * 1000000000L + (t.tv_nsec - s->t0.tv_nsec);
    if (el > s->ns)
        return 0;
    if (el > SPIN_PURE_NS)
        sched_yield();
    return 1;
}

/* Spins for at most ns while *v == old; returns the last value seen. */
static unsigned long spin_gen(atomic_ulong *v, unsigned long old, long ns)
{
    unsigned long cur = atomic_load_explicit(v, memory_order_acquire);
    if (cur != old || ns <= 0)
        return cur;
    spinner s;
    spin_start(&s, ns);
    while ((cur = atomic_load_explicit(v, memory_order_acquire)) == old && spin_step(&s))
        ;
    return cur;
}

/* Spins for at most ns while *v != 0; returns the last value seen. */
static int spin_zero(atomic_int *v, long ns)
{
    int cur = atomic_load_explicit(v, memory_order_acquire);
    if (cur == 0 || ns <= 0)
        return cur;
    spinner s;
    spin_start(&s, ns);
    while ((cur = atomic_load_explicit(v, memory_order_acquire)) != 0 && spin_step(&s))
        ;
    return cur;
}

/* Runs worker w's contiguous block of the current job. */
static void run_block(ga_pool *p, int w)
{
    int n = p->ntasks, T = p->threads;
    int base = n / T, rem = n % T;
    int begin = w * base + (w < rem ? w : rem);
    int end = begin + base + (w < rem ? 1 : 0);
    for (int t = begin; t < end; t++)
        p->fn(p->arg, t, w);
}

typedef struct wstart {
    ga_pool *pool;
    int w;
} wstart;

static void *worker_main(void *vp)
{
    wstart *ws = vp;
    ga_pool *p = ws->pool;
    int w = ws->w;
    free(ws);
    tl_pool = p;
    tl_worker = w;

    int err = 0;
    if (p->bound && hwloc_set_cpubind(p->topo, p->sets[w], HWLOC_CPUBIND_THREAD) < 0)
        err = errno ? errno : EINVAL;

    pthread_mutex_lock(&p->mu);
    p->slots[w].bind_err = err;
    p->started++;
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);

    unsigned long seen = 0; /* gen starts at 0 and is bumped once per run */
    for (;;) {
        unsigned long g = spin_gen(&p->gen, seen, p->spin_ns);
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stopping) /* written before the gen bump that woke us */
            break;
        run_block(p, w);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ placement */

/* Appends the logical indices of the PUs below obj to out[] in scatter
 * order: round robin over the children, each child's PUs already in scatter
 * order, so consecutive entries sit in different packages, then different
 * NUMA nodes / shared caches, then different cores, SMT siblings last.
 * Returns the count, or -1 on allocation failure. */
static int scatter_order(hwloc_obj_t obj, int *out)
{
    if (obj->type == HWLOC_OBJ_PU) {
        out[0] = (int)obj->logical_index;
        return 1;
    }
    if (obj->arity == 0)
        return 0;
    if (obj->arity == 1)
        return scatter_order(obj->children[0], out);

    int weight = hwloc_bitmap_weight(obj->cpuset);
    if (weight <= 0)
        weight = 1;
    int *tmp = malloc(sizeof *tmp * (size_t)weight);
    int *start = malloc(sizeof *start * obj->arity);
    int *len = malloc(sizeof *len * obj->arity);
    int total = -1;
    if (tmp && start && len) {
        total = 0;
        for (unsigned c = 0; c < obj->arity; c++) {
            start[c] = total;
            len[c] = scatter_order(obj->children[c], tmp + total);
            if (len[c] < 0) {
                total = -1;
                break;
            }
            total += len[c];
        }
        if (total > 0) { /* interleave: first of each child, then second, ... */
            int k = 0;
            for (int round = 0; k < total; round++)
                for (unsigned c = 0; c < obj->arity; c++)
                    if (round < len[c])
                        out[k++] = tmp[start[c] + round];
        }
    }
    free(tmp);
    free(start);
    free(len);
    return total;
}

/* The process binding seen by the first ga_pool_create (intentionally never
 * freed: it lives as long as the process). */
static pthread_mutex_t initial_mu = PTHREAD_MUTEX_INITIALIZER;
static hwloc_bitmap_t initial_binding;

/* Copies the initial process binding into set, capturing it on first use. */
static int get_initial_binding(hwloc_topology_t topo, hwloc_bitmap_t set)
{
    int rc = 0;
    pthread_mutex_lock(&initial_mu);
    if (!initial_binding) {
        hwloc_bitmap_t b = hwloc_bitmap_alloc();
        if (!b || hwloc_get_cpubind(topo, b, HWLOC_CPUBIND_PROCESS) < 0) {
            rc = -1;
            hwloc_bitmap_free(b);
        } else {
            initial_binding = b;
        }
    }
    if (rc == 0)
        rc = hwloc_bitmap_copy(set, initial_binding);
    pthread_mutex_unlock(&initial_mu);
    return rc;
}

/* Loads the topology restricted to the initial process binding. */
static ga_status load_topology(ga_pool *p)
{
    if (hwloc_topology_init(&p->topo) < 0) {
        p->topo = NULL;
        return ga_set_error(GA_ESYS, "hwloc_topology_init failed: %s", strerror(errno));
    }
    /* Never let discovery rebind threads (other threads may be running). */
    hwloc_topology_set_flags(p->topo, HWLOC_TOPOLOGY_FLAG_DONT_CHANGE_BINDING);
    if (hwloc_topology_load(p->topo) < 0)
        return ga_set_error(GA_ESYS, "hwloc_topology_load failed: %s", strerror(errno));

    if (hwloc_topology_is_thissystem(p->topo)) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        if (!set)
            return ga_set_error(GA_ENOMEM, "hwloc_bitmap_alloc failed");
        ga_status st = GA_OK;
        hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(p->topo);
        if (get_initial_binding(p->topo, set) < 0)
            st = ga_set_error(GA_ESYS, "hwloc_get_cpubind(process) failed: %s",
                              strerror(errno));
        else if (!hwloc_bitmap_intersects(set, all))
            st = ga_set_error(GA_ESYS, "process CPU binding has no PU in the topology");
        else if (!hwloc_bitmap_isincluded(all, set) &&
                 hwloc_topology_restrict(p->topo, set,
                                         HWLOC_RESTRICT_FLAG_REMOVE_CPULESS) < 0)
            st = ga_set_error(GA_ESYS, "hwloc_topology_restrict failed: %s",
                              strerror(errno));
        hwloc_bitmap_free(set);
        if (st != GA_OK)
            return st;
    }
    p->npu = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_PU);
    if (p->npu <= 0)
        return ga_set_error(GA_ESYS, "hwloc topology has no PU");
    return GA_OK;
}

/* Fills slots[w].pu and sets[w] for the bound policies. */
static ga_status plan_placement(ga_pool *p, const int *pus, int npus)
{
    for (int w = 0; w < p->threads; w++)
        p->slots[w].pu = -1;
    if (p->place == GA_PLACE_NONE)
        return GA_OK;

    int *order = malloc(sizeof *order * (size_t)p->npu);
    if (!order)
        return ga_set_error(GA_ENOMEM, "out of memory planning placement");
    int norder = p->npu;
    if (p->place == GA_PLACE_COMPACT) {
        for (int i = 0; i < p->npu; i++)
            order[i] = i;
    } else if (p->place == GA_PLACE_SCATTER) {
        norder = scatter_order(hwloc_get_root_obj(p->topo), order);
        if (norder != p->npu) {
            free(order);
            return norder < 0
                ? ga_set_error(GA_ENOMEM, "out of memory planning placement")
                : ga_set_error(GA_ESYS, "hwloc tree has %d PUs below the root, expected %d",
                               norder, p->npu);
        }
    }
    for (int w = 0; w < p->threads; w++)
        p->slots[w].pu = p->place == GA_PLACE_LIST ? pus[w % npus] : order[w % norder];
    free(order);

    size_t nt = p->threads > 0 ? (size_t)p->threads : 1; /* >= 1 (checked at create) */
    p->sets = calloc(nt, sizeof *p->sets);
    if (!p->sets)
        return ga_set_error(GA_ENOMEM, "out of memory planning placement");
    for (int w = 0; w < p->threads; w++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_PU, (unsigned)p->slots[w].pu);
        if (!pu || !(p->sets[w] = hwloc_bitmap_dup(pu->cpuset)))
            return ga_set_error(GA_ESYS, "cannot get the cpuset of PU %d", p->slots[w].pu);
    }
    p->bound = hwloc_topology_is_thissystem(p->topo);
    return GA_OK;
}

/* --------------------------------------------------------------- describe */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Logical index of the object of `type` containing PU pu, or -1. */
static int ancestor_index(hwloc_topology_t topo, hwloc_obj_t pu, hwloc_obj_type_t type)
{
    hwloc_obj_t a = hwloc_get_ancestor_obj_by_type(topo, type, pu);
    return a ? (int)a->logical_index : -1;
}

/* NUMA nodes are not ancestors in hwloc 2: find the first one whose cpuset
 * contains the PU. */
static int numa_index(hwloc_topology_t topo, hwloc_obj_t pu)
{
    hwloc_obj_t n = NULL;
    while ((n = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n)))
        if (hwloc_bitmap_isset(n->cpuset, pu->os_index))
            return (int)n->logical_index;
    return -1;
}

static ga_status build_description(ga_pool *p)
{
    strbuf b = {0};
    sb_printf(&b, "%d thread%s, %s", p->threads, p->threads == 1 ? "" : "s",
              ga_place_name(p->place));
    if (p->threads > p->npu)
        sb_printf(&b, ", oversubscribed (%d threads on %d PU%s)", p->threads, p->npu,
                  p->npu == 1 ? "" : "s");
    if (p->place != GA_PLACE_NONE && !p->bound)
        sb_printf(&b, ", not bound (hwloc topology is not this system)");
    sb_printf(&b, ":");
    if (p->place == GA_PLACE_NONE) {
        sb_printf(&b, " unbound");
    } else {
        int npkg = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_PACKAGE);
        int nnuma = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_NUMANODE);
        for (int w = 0; w < p->threads; w++) {
            hwloc_obj_t pu = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_PU, (unsigned)p->slots[w].pu);
            sb_printf(&b, " w%d->PU%d(", w, p->slots[w].pu);
            int core = ancestor_index(p->topo, pu, HWLOC_OBJ_CORE);
            const char *sep = "";
            if (core >= 0) {
                sb_printf(&b, "core%d", core);
                sep = ",";
            }
            if (npkg > 1) {
                sb_printf(&b, "%spkg%d", sep, ancestor_index(p->topo, pu, HWLOC_OBJ_PACKAGE));
                sep = ",";
            }
            if (nnuma > 1) {
                sb_printf(&b, "%snuma%d", sep, numa_index(p->topo, pu));
                sep = ",";
            }
            if (pu->os_index != pu->logical_index)
                sb_printf(&b, "%sP#%u", sep, pu->os_index);
            sb_printf(&b, ")");
        }
    }
    if (b.failed) {
        free(b.s);
        return ga_set_error(GA_ENOMEM, "out of memory describing the pool");
    }
    p->desc = b.s;
    return GA_OK;
}

/* ----------------------------------------------------------------- public */

const char *ga_place_name(ga_place p)
{
    switch (p) {
    case GA_PLACE_NONE: return "none";
    case GA_PLACE_COMPACT: return "compact";
    case GA_PLACE_SCATTER: return "scatter";
    case GA_PLACE_LIST: return "list";
    }
    return "unknown";
}

ga_status ga_place_from_name(const char *name, ga_place *out)
{
    static const ga_place all[] = {GA_PLACE_NONE, GA_PLACE_COMPACT, GA_PLACE_SCATTER,
                                   GA_PLACE_LIST};
    if (!name || !out)
        return ga_set_error(GA_EINVAL, "ga_place_from_name: NULL argument");
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(name, ga_place_name(all[i])) == 0) {
            *out = all[i];
            return GA_OK;
        }
    return ga_set_error(GA_EINVAL,
                        "unknown placement \"%s\" (expected none, compact, scatter or list)",
                        name);
}

/* Stops and joins the first `nspawned` workers, restores the creator's
 * binding when called from the creator, and frees everything. */
static void teardown(ga_pool *p, int nspawned, int restore)
{
    if (nspawned > 0) {
        pthread_mutex_lock(&p->mu);
        p->stopping = 1;
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int w = 1; w <= nspawned; w++)
            pthread_join(p->slots[w].tid, NULL);
    }
    /* The creator's old binding is restored only on the creator thread:
     * another thread cannot safely rebind it (it may have exited). */
    if (restore && p->caller_old && pthread_equal(pthread_self(), p->creator))
        hwloc_set_cpubind(p->topo, p->caller_old, HWLOC_CPUBIND_THREAD);
    if (p->slots)
        for (int w = 0; w < p->threads; w++)
            free(p->slots[w].scratch);
    if (p->sets)
        for (int w = 0; w < p->threads; w++)
            hwloc_bitmap_free(p->sets[w]);
    free(p->sets);
    hwloc_bitmap_free(p->caller_old);
    if (p->topo)
        hwloc_topology_destroy(p->topo);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p->slots);
    free(p->desc);
    free(p);
}

ga_pool *ga_pool_create(int threads, ga_place place, const int *pus, int npus)
{
    if (threads < 1 || threads > GA_POOL_MAX_THREADS) {
        ga_set_error(GA_EINVAL, "threads = %d: must be in 1..%d", threads, GA_POOL_MAX_THREADS);
        return NULL;
    }
    if (place != GA_PLACE_NONE && place != GA_PLACE_COMPACT && place != GA_PLACE_SCATTER &&
        place != GA_PLACE_LIST) {
        ga_set_error(GA_EINVAL, "placement %d is not a ga_place value", (int)place);
        return NULL;
    }
    if (place == GA_PLACE_LIST && (!pus || npus < 1)) {
        ga_set_error(GA_EINVAL, "GA_PLACE_LIST needs a PU list (pus = %p, npus = %d)",
                     (const void *)pus, npus);
        return NULL;
    }

    /* aligned_alloc: the struct has 64-byte aligned members (calloc only
     * guarantees fundamental alignment). */
    ga_pool *p = aligned_alloc(64, sizeof *p);
    if (p)
        memset(p, 0, sizeof *p);
    if (!p) {
        ga_set_error(GA_ENOMEM, "out of memory creating the pool");
        return NULL;
    }
    p->threads = threads;
    p->place = place;
    p->creator = pthread_self();
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_waiting, 0);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);

    p->slots = aligned_alloc(64, sizeof *p->slots * (size_t)threads);
    if (!p->slots) {
        ga_set_error(GA_ENOMEM, "out of memory creating the pool");
        teardown(p, 0, 0);
        return NULL;
    }
    memset(p->slots, 0, sizeof *p->slots * (size_t)threads);

    ga_status st = load_topology(p);
    if (st == GA_OK && place == GA_PLACE_LIST)
        for (int i = 0; i < npus; i++)
            if (pus[i] < 0 || pus[i] >= p->npu) {
                st = ga_set_error(GA_EINVAL,
                                  "PU list entry %d is %d: logical PU indices are 0..%d here",
                                  i, pus[i], p->npu - 1);
                break;
            }
    if (st == GA_OK)
        st = plan_placement(p, pus, npus);
    if (st == GA_OK)
        st = build_description(p);
    if (st != GA_OK) {
        teardown(p, 0, 0);
        return NULL;
    }
    p->spin_ns = threads <= p->npu ? SPIN_NS : 0;

    int nspawned = 0;
    for (int w = 1; w < threads && st == GA_OK; w++) {
        wstart *ws = malloc(sizeof *ws);
        int err = ws ? 0 : ENOMEM;
        if (ws) {
            *ws = (wstart){p, w};
            err = pthread_create(&p->slots[w].tid, NULL, worker_main, ws);
            if (err)
                free(ws);
        }
        if (err)
            st = ga_set_error(GA_ESYS, "cannot start worker %d of %d: %s", w, threads,
                              strerror(err));
        else
            nspawned++;
    }

    /* Wait until every started worker has tried its binding. */
    pthread_mutex_lock(&p->mu);
    while (p->started < nspawned)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    for (int w = 1; w <= nspawned && st == GA_OK; w++)
        if (p->slots[w].bind_err)
            st = ga_set_error(GA_ESYS, "hwloc_set_cpubind(worker %d -> PU %d) failed: %s", w,
                              p->slots[w].pu, strerror(p->slots[w].bind_err));

    /* Bind the caller (worker 0), remembering its binding for destroy. */
    if (st == GA_OK && p->bound) {
        p->caller_old = hwloc_bitmap_alloc();
        if (!p->caller_old)
            st = ga_set_error(GA_ENOMEM, "hwloc_bitmap_alloc failed");
        else if (hwloc_get_cpubind(p->topo, p->caller_old, HWLOC_CPUBIND_THREAD) < 0) {
            st = ga_set_error(GA_ESYS, "hwloc_get_cpubind(caller) failed: %s", strerror(errno));
            hwloc_bitmap_free(p->caller_old);
            p->caller_old = NULL;
        } else if (hwloc_set_cpubind(p->topo, p->sets[0], HWLOC_CPUBIND_THREAD) < 0) {
            st = ga_set_error(GA_ESYS, "hwloc_set_cpubind(caller -> PU %d) failed: %s",
                              p->slots[0].pu, strerror(errno));
        }
    }
    if (st != GA_OK) {
        teardown(p, nspawned, 1);
        return NULL;
    }
    return p;
}

void ga_pool_destroy(ga_pool *pool)
{
    if (pool)
        teardown(pool, pool->threads - 1, 1);
}

int ga_pool_threads(const ga_pool *pool) { return pool ? pool->threads : 1; }

const char *ga_pool_describe(const ga_pool *pool)
{
    return pool ? pool->desc : "1 thread, serial (no pool)";
}

void ga_pool_run(ga_pool *pool, void (*fn)(void *arg, int task, int worker), void *arg,
                 int ntasks)
{
    if (!fn || ntasks <= 0)
        return;
    /* No pool, a nested call from one of this pool's tasks, a one-thread pool
     * or a single task: run inline (the block split gives task 0 to worker 0
     * too, so the task -> worker mapping stays the same). */
    if (!pool || tl_pool == pool || pool->threads == 1 || ntasks == 1) {
        int w = pool && tl_pool == pool ? tl_worker : 0;
        for (int t = 0; t < ntasks; t++)
            fn(arg, t, w);
        return;
    }

    pthread_mutex_lock(&pool->run_mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->ntasks = ntasks;
    atomic_store_explicit(&pool->pending, pool->threads - 1, memory_order_relaxed);
    /* Publish (the job fields are ordered before this seq_cst bump), then
     * wake sleepers if there are any; see the handshake note in ga_pool. */
    atomic_fetch_add(&pool->gen, 1);
    if (atomic_load(&pool->sleepers)) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mu);
    }

    const ga_pool *saved_pool = tl_pool;
    int saved_worker = tl_worker;
    tl_pool = pool;
    tl_worker = 0;
    run_block(pool, 0);
    tl_pool = saved_pool;
    tl_worker = saved_worker;

    if (spin_zero(&pool->pending, pool->spin_ns) != 0) {
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->caller_waiting, 1);
        while (atomic_load(&pool->pending) != 0)
            pthread_cond_wait(&pool->done, &pool->mu);
        atomic_store(&pool->caller_waiting, 0);
        pthread_mutex_unlock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->run_mu);
}

void *ga_pool_scratch(ga_pool *pool, int worker, size_t bytes)
{
    if (!pool || worker < 0 || worker >= pool->threads) {
        ga_set_error(GA_EINVAL, "ga_pool_scratch: no pool or worker %d out of range", worker);
        return NULL;
    }
    slot *s = &pool->slots[worker];
    if (s->scratch && bytes <= s->cap)
        return s->scratch;
    if (bytes > SIZE_MAX - 63) {
        ga_set_error(GA_ENOMEM, "ga_pool_scratch: %zu bytes is too large", bytes);
        return NULL;
    }
    /* Contents are not preserved when the buffer grows.  The first touch
     * happens on the worker that uses it, so pages land on its NUMA node. */
    size_t want = bytes < 64 ? 64 : (bytes + 63) / 64 * 64;
    void *q = aligned_alloc(64, want);
    if (!q) {
        ga_set_error(GA_ENOMEM, "ga_pool_scratch: cannot allocate %zu bytes", want);
        return NULL;
    }
    free(s->scratch);
    s->scratch = q;
    s->cap = want;
    return q;
}

/* ---------------------------------------------- per-thread gemm buffer
 * ga_gemm_buffer (internal.h): one 64-byte aligned buffer per thread, grown
 * on demand and kept; freed by the key's destructor when the thread exits
 * (the main thread's stays reachable until the process ends). */
typedef struct gemm_buf {
    void *p;
    size_t bytes;
} gemm_buf;

static pthread_key_t gemm_key;
static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;
static int gemm_key_ok;

static void gemm_buf_free(void *x)
{
    gemm_buf *b = x;
    free(b->p);
    free(b);
}

static void gemm_key_init(void) { gemm_key_ok = pthread_key_create(&gemm_key, gemm_buf_free) == 0; }

void *ga_gemm_buffer(size_t bytes)
{
    pthread_once(&gemm_once, gemm_key_init);
    if (!gemm_key_ok || bytes > SIZE_MAX - 63)
        return NULL;
    gemm_buf *b = pthread_getspecific(gemm_key);
    if (b && b->bytes >= bytes)
        return b->p;
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            return NULL;
        if (pthread_setspecific(gemm_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    size_t want = (bytes + 63) / 64 * 64;
    void *q = aligned_alloc(64, want ? want : 64);
    if (!q)
        return NULL;
    free(b->p);
    b->p = q;
    b->bytes = want;
    return q;
}
