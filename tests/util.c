/* util.c — shared helpers of the granattn Criterion suite (see util.h). */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------ PRNG */
void rng_init(trng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

uint64_t rng_u64(trng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double rng_unit(trng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

double rng_range(trng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }

int rng_int(trng *r, int n) { return n > 0 ? (int)(rng_unit(r) * n) : 0; }

void fill_unif(trng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_range(r, lo, hi);
}

void fill_levels(trng *r, uint8_t *lev, size_t n, int L)
{
    for (size_t i = 0; i < n; i++)
        lev[i] = (uint8_t)rng_int(r, L);
}

/* ------------------------------------------------------------ test sizes */
int t_quick(void)
{
    const char *e = getenv("GA_TEST_QUICK");
    return e && *e && strcmp(e, "0") != 0;
}

int n_sizes(int *out, int hot)
{
    int n = 0;
    for (int i = 0; i <= 33; i++)
        out[n++] = i;
    out[n++] = 100;
    out[n++] = 1001;
    if (t_quick()) {
        if (hot)
            out[n++] = 4097;
    } else {
        out[n++] = 4097;
        if (hot)
            out[n++] = 65536;
    }
    return n;
}

/* ---------------------------------------------------------------- variants */
void variants_get(tvariants *v, const char *test)
{
    char ran[128] = "", skipped[512] = "";
    v->n = 0;
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        ga_isa isa = (ga_isa)i;
        const ga_kernels *k = ga_isa_supported(isa) ? ga_kernels_for(isa) : NULL;
        if (k) {
            v->k[v->n++] = k;
            size_t len = strlen(ran);
            snprintf(ran + len, sizeof ran - len, "%s%s", len ? " " : "", ga_isa_name(isa));
        } else {
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%s (%s)", len ? ", " : "",
                     ga_isa_name(isa), ga_isa_unsupported_reason(isa));
        }
    }
    cov_record(test, v);
    if (skipped[0])
        cr_log_info("%s: ran %s; skipped %s", test, ran, skipped);
    else
        cr_log_info("%s: ran %s", test, ran);
    cr_assert(v->n >= 1 && v->k[0] == ga_kernels_ref(),
              "%s: the scalar reference must always be available", test);
}

/* ----------------------------------------------------------------- checks */
void tc_init(tcheck *c, const char *test)
{
    memset(c, 0, sizeof *c);
    c->test = test;
    c->isa = "";
}

void tc_case(tcheck *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->ctx, sizeof c->ctx, fmt, ap);
    va_end(ap);
}

void tc_fail(tcheck *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->fails++;
    if (c->fails <= TC_MAX_MSGS)
        cr_expect_fail("[%s] %s (%s): %s", c->isa[0] ? c->isa : "-", c->test, c->ctx, msg);
}

void tc_finish(tcheck *c)
{
    if (c->fails > TC_MAX_MSGS)
        cr_expect_fail("%s: %ld further failed checks not shown (%ld failed of %ld)",
                       c->test, c->fails - TC_MAX_MSGS, c->fails, c->checks);
}

static int both_special_equal(float g, float r, int *handled)
{
    *handled = 1;
    if (isnan(r) || isnan(g))
        return isnan(r) && isnan(g);
    if (isinf(r) || isinf(g))
        return g == r;
    *handled = 0;
    return 0;
}

int tc_close2(tcheck *c, const char *what, const float *got, size_t ldg,
              const float *ref, size_t ldr, const float *mag, size_t ldm,
              int rows, int cols, double rtol, double atol)
{
    long bad = 0;
    double worst_ratio = -1.0;
    int wr = 0, wc = 0;
    double werr = 0, wbound = 0;
    c->checks++;
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            float g = got[(size_t)r * ldg + j], f = ref[(size_t)r * ldr + j];
            int handled;
            int ok = both_special_equal(g, f, &handled);
            double err, bound;
            if (handled) {
                err = ok ? 0.0 : INFINITY;
                bound = 1.0;
            } else {
                double m = mag ? fabs((double)mag[(size_t)r * ldm + j]) : fabs((double)f);
                err = fabs((double)g - (double)f);
                bound = atol + rtol * m;
                ok = err <= bound;
            }
            if (!ok)
                bad++;
            double ratio = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
            if (!ok && ratio > worst_ratio) {
                worst_ratio = ratio;
                wr = r;
                wc = j;
                werr = err;
                wbound = bound;
            }
        }
    }
    if (bad) {
        size_t gi = (size_t)wr * ldg + wc, ri = (size_t)wr * ldr + wc;
        tc_fail(c, "%s: %ld of %ld elements outside tolerance; worst [%d][%d]: got %.9g, "
                   "ref %.9g, |err| %.3g > bound %.3g (rtol %.3g, atol %.3g)",
                what, bad, (long)rows * cols, wr, wc, (double)got[gi], (double)ref[ri],
                werr, wbound, rtol, atol);
        return 0;
    }
    return 1;
}

int tc_close_d(tcheck *c, const char *what, const float *got, const double *ref,
               int n, double rtol, double scale)
{
    long bad = 0;
    double worst = -1, werr = 0, wb = 0;
    int wi = 0;
    c->checks++;
    for (int i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        double bound = rtol * (fabs(ref[i]) + scale);
        int ok = err <= bound; /* NaN fails */
        if (!ok) {
            bad++;
            double ratio = bound > 0 ? err / bound : INFINITY;
            if (!(ratio <= worst)) {
                worst = ratio;
                wi = i;
                werr = err;
                wb = bound;
            }
        }
    }
    if (bad) {
        tc_fail(c, "%s: %ld of %d elements off; worst [%d]: got %.9g, expected %.12g, "
                   "|err| %.3g > bound %.3g",
                what, bad, n, wi, (double)got[wi], ref[wi], werr, wb);
        return 0;
    }
    return 1;
}

int tc_eq_i32(tcheck *c, const char *what, const int32_t *got, const int32_t *ref, int n)
{
    c->checks++;
    for (int i = 0; i < n; i++)
        if (got[i] != ref[i]) {
            tc_fail(c, "%s: first mismatch at [%d]: got %d, ref %d", what, i, (int)got[i],
                    (int)ref[i]);
            return 0;
        }
    return 1;
}

int tc_eq_u8(tcheck *c, const char *what, const uint8_t *got, const uint8_t *ref, int n)
{
    c->checks++;
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (got[i] != ref[i]) {
            if (first < 0)
                first = i;
            bad++;
        }
    if (bad) {
        tc_fail(c, "%s: %d of %d differ; first at [%d]: got %d, ref %d", what, bad, n, first,
                got[first], ref[first]);
        return 0;
    }
    return 1;
}

int tc_eq_long(tcheck *c, const char *what, long got, long ref)
{
    c->checks++;
    if (got != ref) {
        tc_fail(c, "%s: got %ld, expected %ld", what, got, ref);
        return 0;
    }
    return 1;
}

int tc_bits(tcheck *c, const char *what, const void *a, const void *b, size_t bytes)
{
    c->checks++;
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < bytes; i++)
        if (x[i] != y[i]) {
            tc_fail(c, "%s: not bitwise identical (first differing byte %zu of %zu)", what, i,
                    bytes);
            return 0;
        }
    return 1;
}

int tc_true(tcheck *c, int cond, const char *fmt, ...)
{
    c->checks++;
    if (cond)
        return 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tc_fail(c, "%s", msg);
    return 0;
}

int tc_gap_untouched(tcheck *c, const char *what, const float *buf, int rows, int cols,
                     int ld, float sentinel)
{
    c->checks++;
    uint32_t s = f2u(sentinel);
    for (int r = 0; r < rows; r++)
        for (int j = cols; j < ld; j++)
            if (f2u(buf[(size_t)r * ld + j]) != s) {
                tc_fail(c, "%s: padding element [%d][%d] (cols %d, ld %d) was written "
                           "(now %.9g)",
                        what, r, j, cols, ld, (double)buf[(size_t)r * ld + j]);
                return 0;
            }
    return 1;
}

/* ------------------------------------------------------------------ arena */
#define CANARY_BYTES 64
#define CANARY_VALUE 0x5A

struct tblock {
    struct tblock *next;
    const char *name;
    unsigned char *base;
    unsigned char *user;
    size_t bytes;
};

void *ar_alloc(tarena *a, const char *name, size_t bytes, size_t misalign)
{
    struct tblock *b = calloc(1, sizeof *b);
    size_t total = 64 + CANARY_BYTES + misalign + bytes + CANARY_BYTES;
    cr_assert(b, "out of memory");
    b->base = malloc(total);
    cr_assert(b->base, "out of memory (%zu bytes for %s)", total, name);
    uintptr_t p = ((uintptr_t)b->base + 63) & ~(uintptr_t)63;
    b->user = (unsigned char *)p + CANARY_BYTES + misalign;
    b->bytes = bytes;
    b->name = name;
    memset(b->user - CANARY_BYTES, CANARY_VALUE, CANARY_BYTES);
    memset(b->user, 0xFF, bytes);
    memset(b->user + bytes, CANARY_VALUE, CANARY_BYTES);
    b->next = a->head;
    a->head = b;
    return b->user;
}

float *ar_f(tarena *a, const char *name, size_t n, int off)
{
    return ar_alloc(a, name, n * sizeof(float), (size_t)off * sizeof(float));
}

int32_t *ar_i32(tarena *a, const char *name, size_t n, int off)
{
    return ar_alloc(a, name, n * sizeof(int32_t), (size_t)off * sizeof(int32_t));
}

uint8_t *ar_u8(tarena *a, const char *name, size_t n, int off)
{
    return ar_alloc(a, name, n, (size_t)off);
}

double *ar_d(tarena *a, const char *name, size_t n)
{
    return ar_alloc(a, name, n * sizeof(double), 0);
}

float *ar_copy(tarena *a, const char *name, const float *x, size_t n, int off)
{
    float *y = ar_f(a, name, n, off);
    if (n)
        memcpy(y, x, n * sizeof *x);
    return y;
}

float *ar_abs(tarena *a, const char *name, const float *x, size_t n)
{
    float *y = ar_f(a, name, n, 0);
    for (size_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]);
    return y;
}

int ar_check(tarena *a, tcheck *c)
{
    int ok = 1;
    c->checks++;
    for (struct tblock *b = a->head; b; b = b->next) {
        for (size_t i = 0; i < CANARY_BYTES; i++) {
            if (b->user[-(ptrdiff_t)CANARY_BYTES + (ptrdiff_t)i] != CANARY_VALUE) {
                tc_fail(c, "buffer '%s' (%zu bytes): canary byte %zu before its start was "
                           "overwritten",
                        b->name, b->bytes, CANARY_BYTES - i);
                ok = 0;
                break;
            }
        }
        for (size_t i = 0; i < CANARY_BYTES; i++) {
            if (b->user[b->bytes + i] != CANARY_VALUE) {
                tc_fail(c, "buffer '%s' (%zu bytes): canary byte %zu past its end was "
                           "overwritten",
                        b->name, b->bytes, i);
                ok = 0;
                break;
            }
        }
    }
    return ok;
}

void ar_free(tarena *a)
{
    struct tblock *b = a->head;
    while (b) {
        struct tblock *n = b->next;
        free(b->base);
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* ------------------------------------------------------------- guard pages */
void *guard_alloc(tguard *g, size_t bytes, int side)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (bytes + ps - 1) / ps * ps;
    if (body == 0)
        body = ps;
    g->len = body + ps;
    g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(g->map != MAP_FAILED, "mmap of %zu bytes failed", g->len);
    unsigned char *m = g->map;
    if (side == GUARD_AFTER) {
        cr_assert(mprotect(m + body, ps, PROT_NONE) == 0, "mprotect failed");
        memset(m, 0xFF, body);
        return m + body - bytes;
    }
    cr_assert(mprotect(m, ps, PROT_NONE) == 0, "mprotect failed");
    memset(m + ps, 0xFF, body);
    return m + ps;
}

void guard_free(tguard *g)
{
    if (g->map)
        munmap(g->map, g->len);
    g->map = NULL;
}

/* ------------------------------------------------------- GPN logit model */
int gpn_logits_d(const float *P, int ldp, const float *r, const float *W2,
                 const float *b2, int N, int g, int L, double *z, double *err)
{
    int any_nan = 0;
    for (int i = 0; i < N; i++) {
        for (int l = 0; l < L; l++) {
            double acc = b2[l], mag = fabs((double)b2[l]);
            for (int j = 0; j < g; j++) {
                float u = P[(size_t)j * ldp + i] + r[j];
                if (u < 0.0f)
                    u = 0.0f; /* relu; NaN propagates */
                acc += (double)W2[(size_t)l * g + j] * u;
                mag += fabs((double)W2[(size_t)l * g + j] * u);
            }
            z[(size_t)i * L + l] = acc;
            err[(size_t)i * L + l] = rtol_sum(g + 1) * mag;
            if (isnan(acc))
                any_nan = 1;
        }
    }
    return any_nan;
}

int gpn_level_d(const double *z, const double *err, int L, int *robust, unsigned *cand)
{
    /* running strict '>' from level 0: first maximum, a NaN never wins, a
     * NaN z_0 keeps level 0 (exactly what every variant must do) */
    int best = 0;
    for (int l = 1; l < L; l++)
        if (z[l] > z[best])
            best = l;
    int rob = 1;
    unsigned mask = 1u << best;
    if (!isnan(z[best])) {
        for (int l = 0; l < L; l++) {
            if (l == best || isnan(z[l]))
                continue;
            if (!(z[best] - z[l] > err[best] + err[l])) {
                rob = 0;
                mask |= 1u << l;
            }
        }
    }
    if (robust)
        *robust = rob;
    if (cand)
        *cand = mask;
    return best;
}

/* ------------------------------------------------------------------- misc */
void test_theta(int L, float theta8[GA_MAX_LEVELS], ga_config *cfg_out)
{
    static const float tau7[7] = {0.5f, 0.2f, 0.1f, 0.05f, 0.01f, 1e-3f, 1e-4f};
    ga_config cfg;
    ga_config_default(&cfg);
    cfg.L = L;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        cfg.tau[l] = 0.0f;
    if (L == 1) {
        cfg.tau[0] = 0.05f;
    } else if (L == 2) {
        cfg.tau[0] = 0.1f;
    } else if (L == 3) {
        cfg.tau[0] = 0.1f;
        cfg.tau[1] = 0.01f;
    } else {
        for (int l = 0; l < L - 1; l++)
            cfg.tau[l] = tau7[l];
    }
    cr_assert(ga_config_check(&cfg) == GA_OK, "test config invalid: %s", ga_last_error());
    ga_theta_from_tau(&cfg, theta8);
    if (cfg_out)
        *cfg_out = cfg;
}

uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

float u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float ulp_step(float x, int k)
{
    while (k > 0) {
        x = nextafterf(x, INFINITY);
        k--;
    }
    while (k < 0) {
        x = nextafterf(x, -INFINITY);
        k++;
    }
    return x;
}
