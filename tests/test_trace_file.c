/* test_trace_file.c — attention trace files (include/granattn_trace.h):
 * round trip (bitwise, -inf bias and size-0 arrays included), the CRC-32
 * against known values, and every rejection of ga_trace_read /
 * ga_trace_write: truncated or extended file, flipped byte (CRC), bad magic,
 * negative / overflowing sizes, L, mode, tau, levels, bias. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "granattn_trace.h"
#include "util.h"

/* A temporary path per test (removed by the caller). */
static void tmp_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/ga-trace-test-%d-%s.gatrace", (int)getpid(), tag);
}

/* A small valid trace: H 2, N 5, dh 3, T 4, L 3, seed, layer 1; key 4 padded. */
typedef struct sample {
    ga_trace_data d;
    float Q[4 * 2 * 3], K[2 * 5 * 3], V[2 * 5 * 3], bias[5];
    uint8_t lev[4 * 5];
} sample;

static void sample_init(sample *s)
{
    memset(s, 0, sizeof *s);
    ga_trace_data *d = &s->d;
    d->H = 2;
    d->N = 5;
    d->dh = 3;
    d->T = 4;
    d->L = 3;
    d->mode = GA_NORM_SEED;
    d->layer = 1;
    d->tau[0] = 0.1f;
    d->tau[1] = 0.01f;
    d->tau[2] = 0.0f;
    for (int i = 0; i < 24; i++)
        s->Q[i] = 0.25f * (float)i - 2.0f;
    for (int i = 0; i < 30; i++) {
        s->K[i] = 1.0f / (float)(i + 1);
        s->V[i] = -3.5f + (float)i;
    }
    s->bias[4] = -INFINITY;
    for (int i = 0; i < 20; i++)
        s->lev[i] = (uint8_t)(i % 3);
    d->Q = s->Q;
    d->K = s->K;
    d->V = s->V;
    d->bias = s->bias;
    d->levels = s->lev;
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Overwrites n bytes at offset off of file p. */
static void patch(const char *p, long off, const void *b, size_t n)
{
    FILE *f = fopen(p, "r+b");
    cr_assert(f);
    fseek(f, off, SEEK_SET);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Reads p, expects EINVAL with `needle` in the message and a zeroed trace. */
static void expect_reject(const char *p, const char *needle)
{
    ga_trace_data r;
    memset(&r, 0x5a, sizeof r);
    ga_status st = ga_trace_read(p, &r);
    cr_expect_eq(st, GA_EINVAL, "expected EINVAL (%s), got %s: %s", needle, ga_status_name(st),
                 ga_last_error());
    cr_expect(strstr(ga_last_error(), needle) != NULL, "message '%s' lacks '%s'",
              ga_last_error(), needle);
    cr_expect(r.Q == NULL && r.K == NULL && r.levels == NULL && r.T == 0,
              "trace not zeroed after a failed read");
}

Test(trace_file, crc32_known_values, .timeout = TEST_TIMEOUT)
{
    cr_expect_eq(ga_crc32(0, "", 0), 0u);
    cr_expect_eq(ga_crc32(0, "123456789", 9), 0xCBF43926u); /* the standard check value */
    uint32_t c = ga_crc32(0, "1234", 4);
    cr_expect_eq(ga_crc32(c, "56789", 5), 0xCBF43926u, "incremental CRC differs");
}

Test(trace_file, round_trip, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "rt");
    sample s;
    sample_init(&s);
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    cr_expect_eq(file_size(p), 72 + 4 * (24 + 2 * 30 + 5) + 20 + 4);
    ga_trace_data r;
    cr_assert_eq(ga_trace_read(p, &r), GA_OK, "%s", ga_last_error());
    cr_expect(r.H == 2 && r.N == 5 && r.dh == 3 && r.T == 4 && r.L == 3 && r.mode == 0 &&
              r.layer == 1);
    cr_expect(memcmp(r.tau, s.d.tau, sizeof r.tau) == 0, "tau differs");
    cr_expect(memcmp(r.Q, s.Q, sizeof s.Q) == 0, "Q differs");
    cr_expect(memcmp(r.K, s.K, sizeof s.K) == 0, "K differs");
    cr_expect(memcmp(r.V, s.V, sizeof s.V) == 0, "V differs");
    cr_expect(memcmp(r.bias, s.bias, sizeof s.bias) == 0, "bias differs");
    cr_expect(memcmp(r.levels, s.lev, sizeof s.lev) == 0, "levels differ");
    ga_trace_free(&r);
    cr_expect(r.Q == NULL && r.N == 0, "ga_trace_free does not zero the trace");
    ga_trace_free(NULL);

    /* NULL bias is written as zeros; size-0 arrays (T = 0, N = 0) round trip */
    s.d.bias = NULL;
    s.d.T = 0;
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    cr_assert_eq(ga_trace_read(p, &r), GA_OK, "%s", ga_last_error());
    cr_expect(r.T == 0 && r.N == 5 && r.Q != NULL);
    for (int i = 0; i < 5; i++)
        cr_expect(r.bias[i] == 0.0f, "bias[%d] = %g, expected 0", i, (double)r.bias[i]);
    ga_trace_free(&r);
    s.d.N = 0;
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    cr_assert_eq(ga_trace_read(p, &r), GA_OK, "%s", ga_last_error());
    cr_expect(r.N == 0 && r.T == 0 && r.H == 2);
    ga_trace_free(&r);
    remove(p);
}

Test(trace_file, truncated_or_extended, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "trunc");
    sample s;
    sample_init(&s);
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    long n = file_size(p);
    cr_assert_eq(truncate(p, n - 1), 0);
    expect_reject(p, "truncated");
    cr_assert_eq(truncate(p, 40), 0);
    expect_reject(p, "shorter than a trace header");
    cr_assert_eq(truncate(p, 0), 0);
    expect_reject(p, "shorter than a trace header");
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    cr_assert_eq(truncate(p, n + 3), 0);
    expect_reject(p, "trailing bytes");
    remove(p);
    ga_trace_data r;
    cr_expect_eq(ga_trace_read(p, &r), GA_ESYS, "a missing file must be GA_ESYS");
    cr_expect(strstr(ga_last_error(), "cannot open") != NULL, "%s", ga_last_error());
}

Test(trace_file, bad_crc, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "crc");
    sample s;
    sample_init(&s);
    /* one flipped byte in each section: Q, K, V, bias, levels, the CRC itself */
    const long offs[] = {72 + 5, 72 + 96 + 7, 72 + 96 + 120 + 1, 72 + 96 + 240 + 2,
                         72 + 96 + 240 + 20 + 3, 72 + 96 + 240 + 20 + 20 + 1};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
        FILE *f = fopen(p, "rb");
        cr_assert(f);
        fseek(f, offs[k], SEEK_SET);
        unsigned char b = (unsigned char)fgetc(f);
        fclose(f);
        b ^= 0x10;
        patch(p, offs[k], &b, 1);
        expect_reject(p, "CRC mismatch");
    }
    remove(p);
}

Test(trace_file, bad_magic, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "magic");
    sample s;
    sample_init(&s);
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    patch(p, 7, "2", 1); /* "GATRACE2" */
    expect_reject(p, "not a trace file");
    remove(p);
}

/* Header field i (0 H, 1 N, 2 dh, 3 T, 4 L, 5 mode, 6 layer, 7 reserved)
 * set to v in a valid file (the CRC is NOT fixed: size checks come first). */
static void reject_field(const char *p, int i, int32_t v, const char *needle)
{
    sample s;
    sample_init(&s);
    cr_assert_eq(ga_trace_write(p, &s.d), GA_OK, "%s", ga_last_error());
    patch(p, 8 + 4 * i, &v, 4); /* little-endian host (x86-64, AArch64) */
    expect_reject(p, needle);
}

Test(trace_file, bad_sizes, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "sizes");
    reject_field(p, 0, -1, "H = -1 is negative");
    reject_field(p, 1, -5, "N = -5 is negative");
    reject_field(p, 2, -3, "dh = -3 is negative");
    reject_field(p, 3, -4, "T = -4 is negative");
    reject_field(p, 1, 6, "truncated");                   /* N one larger */
    reject_field(p, 1, 4, "trailing bytes");              /* N one smaller */
    reject_field(p, 1, 1 << 30, "H*N*dh");                /* overflows an int */
    reject_field(p, 3, 1 << 29, "T*H*dh");
    reject_field(p, 4, 0, "L = 0 outside");
    reject_field(p, 4, 9, "L = 9 outside");
    reject_field(p, 5, 2, "mode = 2");
    reject_field(p, 7, 1, "reserved");
    remove(p);
}

/* Content that passes the size checks but not the value checks: written
 * with a valid CRC by patching the arrays, then the CRC recomputed. */
static void reject_content(const char *p, sample *s, const char *needle)
{
    /* ga_trace_write refuses it ... */
    cr_expect_eq(ga_trace_write(p, &s->d), GA_EINVAL, "write accepted bad data (%s)", needle);
    cr_expect(strstr(ga_last_error(), needle) != NULL, "write message '%s' lacks '%s'",
              ga_last_error(), needle);
    /* ... and ga_trace_read refuses the same bytes with a valid CRC */
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    unsigned char buf[72 + 4 * 89 + 20];
    memcpy(buf, GA_TRACE_MAGIC, 8);
    int32_t dim[8] = {s->d.H, s->d.N, s->d.dh, s->d.T, s->d.L, s->d.mode, s->d.layer, 0};
    memcpy(buf + 8, dim, 32);
    memcpy(buf + 40, s->d.tau, 32);
    memcpy(buf + 72, s->Q, 96);
    memcpy(buf + 168, s->K, 120);
    memcpy(buf + 288, s->V, 120);
    memcpy(buf + 408, s->bias, 20);
    memcpy(buf + 428, s->lev, 20);
    uint32_t crc = ga_crc32(0, buf, sizeof buf);
    fwrite(buf, 1, sizeof buf, f);
    fwrite(&crc, 1, 4, f);
    fclose(f);
    expect_reject(p, needle);
}

Test(trace_file, bad_values, .timeout = TEST_TIMEOUT)
{
    char p[256];
    tmp_path(p, sizeof p, "values");
    sample s;
    sample_init(&s);
    s.lev[7] = 3; /* L = 3 */
    reject_content(p, &s, "level 3 at step 1, key 2 is not below L = 3");
    sample_init(&s);
    s.d.tau[1] = 0.2f;
    reject_content(p, &s, "tau increases");
    sample_init(&s);
    s.d.tau[0] = 1.0f;
    reject_content(p, &s, "outside [0, 1)");
    sample_init(&s);
    s.d.tau[0] = NAN;
    reject_content(p, &s, "outside [0, 1)");
    sample_init(&s);
    s.d.tau[5] = 0.5f;
    reject_content(p, &s, "beyond L = 3");
    sample_init(&s);
    s.bias[2] = 1.0f;
    reject_content(p, &s, "bias[2] = 1");
    sample_init(&s);
    s.bias[2] = NAN;
    reject_content(p, &s, "bias[2] = nan");
    remove(p);

    /* write: NULL arguments and arrays */
    sample_init(&s);
    cr_expect_eq(ga_trace_write(NULL, &s.d), GA_EINVAL);
    cr_expect_eq(ga_trace_write(p, NULL), GA_EINVAL);
    s.d.K = NULL;
    cr_expect_eq(ga_trace_write(p, &s.d), GA_EINVAL);
    cr_expect(strstr(ga_last_error(), "NULL") != NULL, "%s", ga_last_error());
    cr_expect_eq(access(p, F_OK), -1, "a refused write must not create the file");
    ga_trace_data r;
    cr_expect_eq(ga_trace_read(p, NULL), GA_EINVAL);
    cr_expect_eq(ga_trace_read(NULL, &r), GA_EINVAL);
    /* an unwritable path */
    sample_init(&s);
    cr_expect_eq(ga_trace_write("/nonexistent-dir/x.gatrace", &s.d), GA_ESYS);
}
