/* coverage.c — the coverage table that ends the suite's default output.
 *
 * Every variants_get() call (one per test, in the worker process that runs
 * the test) appends one line per ISA to a file shared by the run:
 *     <row>\t<isa>\t<"ran" or the reason it was skipped>\n
 * where <row> is the kernel the test exercises, read off its label: the
 * longest GA_TABLE_LIST name (include/granattn_ops.h) that starts at a word
 * of the label ("bounds scores" -> scores, "gpn probs_nan" -> gpn_probs,
 * "scores_backward fd" -> scores_backward; a space reads as '_'), else the
 * label's first word ("attend ...", "model_grad.linear" -> model_grad).
 * variants_cover() adds a row explicitly (a test that runs every kernel).
 * The runner process creates the file before the first test (PRE_ALL hook;
 * workers inherit its name through the environment) and, at exit (after
 * Criterion's Synthesis line), prints per kernel the number of tests each
 * variant ran, "-" for a skipped variant, and why each skipped variant was
 * skipped; a variant that is supported but ran no test of a kernel shows 0
 * and is listed as untested.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define COV_ENV "GA_TEST_COVERAGE_FILE"
#define COV_MAX_ROWS 64

static char cov_path[256];
static pid_t cov_runner;

static const char *const KERNELS[] = {
#define GA_T_NAME(ret, name, params) #name,
    GA_TABLE_LIST(GA_T_NAME)
#undef GA_T_NAME
};
enum { NKERNELS = (int)(sizeof KERNELS / sizeof KERNELS[0]) };

/* The row of a test label (see the header comment). */
static void label_row(const char *label, char *row, size_t cap)
{
    char norm[128];
    snprintf(norm, sizeof norm, "%s", label);
    for (char *p = norm; *p; p++)
        if (*p == ' ')
            *p = '_';
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *w = norm; *w; w++) {
        if (w != norm && w[-1] != '_')
            continue; /* not at a word start */
        for (int k = 0; k < NKERNELS; k++) {
            size_t n = strlen(KERNELS[k]);
            if (n > best_len && strncmp(w, KERNELS[k], n) == 0 &&
                (w[n] == '\0' || w[n] == '_')) {
                best = KERNELS[k];
                best_len = n;
            }
        }
    }
    if (best) {
        snprintf(row, cap, "%s", best);
        return;
    }
    size_t n = strcspn(label, " .");
    snprintf(row, cap, "%.*s", (int)n, label);
}

static void cov_write(const char *row, const tvariants *v)
{
    const char *path = getenv(COV_ENV);
    if (!path || !path[0])
        return; /* e.g. a single test run outside the runner's hook */
    char buf[1024];
    size_t len = 0;
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        ga_isa isa = (ga_isa)i;
        int ran = 0;
        for (int j = 0; j < v->n; j++)
            ran |= v->k[j]->isa == isa;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\t%s\t%s\n", row,
                                ga_isa_name(isa),
                                ran ? "ran" : ga_isa_unsupported_reason(isa));
        if (len >= sizeof buf)
            return;
    }
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0)
        return;
    ssize_t w = write(fd, buf, len); /* one O_APPEND write: lines never interleave */
    (void)w;
    close(fd);
}

void cov_record(const char *label, const tvariants *v)
{
    char row[64];
    label_row(label, row, sizeof row);
    cov_write(row, v);
}

void variants_cover(const tvariants *v, const char *kernel)
{
    cov_write(kernel, v);
}

/* ---- the runner: create the file, print the table at exit ---- */

typedef struct cov_row {
    char name[64];
    int ran[GA_ISA_COUNT];
    int seen;
} cov_row;

static cov_row *find_row(cov_row *rows, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    if (*n == COV_MAX_ROWS)
        return NULL;
    cov_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

static void cov_print(void)
{
    if (getpid() != cov_runner || !cov_path[0])
        return; /* a forked worker inherits this handler: only the runner prints */
    FILE *f = fopen(cov_path, "r");
    if (!f)
        return;
    cov_row rows[COV_MAX_ROWS];
    int nrows = 0;
    /* kernels first, in table order, so that a kernel without tests shows */
    for (int k = 0; k < NKERNELS; k++)
        find_row(rows, &nrows, KERNELS[k]);
    int nkern = nrows;
    char why[GA_ISA_COUNT][128];
    memset(why, 0, sizeof why);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *row = strtok(line, "\t"), *isa = strtok(NULL, "\t"), *st = strtok(NULL, "\n");
        ga_isa id;
        if (!row || !isa || !st || ga_isa_from_name(isa, &id) != GA_OK)
            continue;
        cov_row *r = find_row(rows, &nrows, row);
        if (!r)
            continue;
        r->seen = 1;
        if (strcmp(st, "ran") == 0)
            r->ran[id]++;
        else
            snprintf(why[id], sizeof why[id], "%s", st);
    }
    fclose(f);
    unlink(cov_path);

    fprintf(stderr, "\nCoverage: tests run per kernel and variant (- = variant skipped)\n");
    fprintf(stderr, "  %-28s", "kernel");
    for (int i = 0; i < GA_ISA_COUNT; i++)
        fprintf(stderr, " %7s", ga_isa_name((ga_isa)i));
    fprintf(stderr, "\n");
    int untested = 0;
    for (int r = 0; r < nrows; r++) {
        if (r == nkern)
            fprintf(stderr, "  %s\n", "(other tests: fused step, model, dispatch)");
        fprintf(stderr, "  %-28s", rows[r].name);
        for (int i = 0; i < GA_ISA_COUNT; i++) {
            if (why[i][0])
                fprintf(stderr, " %7s", "-");
            else
                fprintf(stderr, " %7d", rows[r].ran[i]);
            if (!why[i][0] && rows[r].ran[i] == 0 && r < nkern)
                untested++;
        }
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < GA_ISA_COUNT; i++)
        if (why[i][0])
            fprintf(stderr, "  skipped %s: %s\n", ga_isa_name((ga_isa)i), why[i]);
    if (untested)
        fprintf(stderr, "  UNTESTED: %d (kernel, supported variant) pairs ran no test\n",
                untested);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    snprintf(cov_path, sizeof cov_path, "%s/granattn-coverage-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(cov_path);
    if (fd < 0) {
        cov_path[0] = '\0';
        return;
    }
    close(fd);
    setenv(COV_ENV, cov_path, 1);
    cov_runner = getpid();
    atexit(cov_print);
}
