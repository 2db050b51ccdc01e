/* cli_calibrate.c — `granattn calibrate`: the threshold of the fixed
 * uniform-level baseline (and the expected density of a random level mix)
 * that matches a target density, from the attention rows of a traced
 * (ideally dense) model over dev pairs. */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "data.h"
#include "trace.h"

static void usage_calibrate(FILE *f)
{
    fprintf(f,
"usage: granattn calibrate --model CKPT --density RHO [options]\n"
"\n"
"Picks the threshold tau of the \"fixed uniform level\" baseline so that its\n"
"density matches RHO: runs the model teacher-forced over dev pairs, collects\n"
"every cross-attention row's ratios a_i / max_j a_j (the quantity a level's\n"
"tau is compared with) and inverts the mean row density (kept / N).  Use a\n"
"dense model (configs/dense.ini): a sparse model's dropped weights are not\n"
"observed.  Also prints the density each configured level would give alone,\n"
"and, with --mix, the expected density of the \"random level per pair\"\n"
"baseline with those level probabilities (sum_l mix_l * density_l).\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint (ideally of a dense model)\n"
"  --density RHO      target density in (0, 1], e.g. the learned model's eval density\n"
"  --mix P0,P1,...    level probabilities for the random baseline (optional)\n"
"  --split NAME       dev (default)\n"
"  --limit N          pairs used (default 300)\n"
"  --data-dir DIR     token files (default: the checkpoint's data_dir)\n"
"  --isa NAME         kernel variant (default: best supported)\n"
"  -h, --help         this text\n");
}

typedef struct ratio {
    float r;     /* a_i / a_max */
    float w;     /* 1 / (rows * N_row) */
} ratio;

static int cmp_ratio_desc(const void *a, const void *b)
{
    float x = ((const ratio *)a)->r, y = ((const ratio *)b)->r;
    return (x < y) - (x > y);
}

int cmd_calibrate(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"density", required_argument, 0, 'r'},
        {"mix", required_argument, 0, 'x'},   {"split", required_argument, 0, 'S'},
        {"limit", required_argument, 0, 'n'}, {"data-dir", required_argument, 0, 'D'},
        {"isa", required_argument, 0, 'i'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *split = "dev", *data_dir = NULL, *isa = NULL,
               *mix_s = NULL;
    double rho = -1;
    long limit = 300;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'r':
            if (parse_float("--density", optarg, 1e-6, 1, &rho))
                return 2;
            break;
        case 'x': mix_s = optarg; break;
        case 'S': split = optarg; break;
        case 'n':
            if (parse_int("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 'D': data_dir = optarg; break;
        case 'i': isa = optarg; break;
        case 'h': usage_calibrate(stdout); return 0;
        default: usage_calibrate(stderr); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model || rho < 0) {
        errorf("--model and --density are required (try --help)");
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    gd_corpus corp;
    memset(&corp, 0, sizeof corp);
    ratio *rat = NULL;
    size_t nrat = 0, cap = 0;
    long rows = 0;
    int32_t *tin = NULL, *tout = NULL, *src = NULL;
    double mix[GA_MAX_LEVELS] = {0};
    int nmix = 0;
    if (mix_s) {
        char buf[256];
        if (strlen(mix_s) >= sizeof buf) {
            errorf("--mix: value longer than %zu characters", sizeof buf - 1);
            return 2;
        }
        snprintf(buf, sizeof buf, "%s", mix_s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (nmix == GA_MAX_LEVELS) {
                errorf("--mix '%s': more than %d values (one probability per "
                       "level, at most %d levels)",
                       mix_s, GA_MAX_LEVELS, GA_MAX_LEVELS);
                return 2;
            }
            if (parse_float("--mix", gu_trim(t), 0, 1, &mix[nmix]))
                return 2;
            nmix++;
        }
        if (nmix == 0) {
            errorf("--mix '%s': expected comma-separated probabilities", mix_s);
            return 2;
        }
    }
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    const gm_config *mc = &L.mc;
    if (!mc->dense)
        warnf("%s is not a dense model: dropped weights are unobserved, so the "
              "densities below are lower bounds of the dense model's",
              model);
    if (nmix && nmix != mc->L) {
        errorf("--mix has %d values but the model has L = %d levels", nmix, mc->L);
        goto out;
    }
    char bin_path[PATH_MAX + 64], dd_buf[PATH_MAX];
    snprintf(bin_path, sizeof bin_path, "%s/%s.bin",
             data_dir ? data_dir
                      : checkpoint_data_dir(L.cfg.train.data_dir, dd_buf, sizeof dd_buf),
             split);
    if (gd_load(bin_path, mc->max_len, mc->vocab, &corp) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    int n = corp.n < limit ? corp.n : (int)limit;
    tin = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    tout = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    src = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    if (!tin || !tout || !src) {
        errorf("out of memory");
        goto out;
    }
    fprintf(stderr, "tracing %d %s pairs ...\n", n, split);
    /* First pass: the ratios of every (layer, head, query) row. */
    for (int k = 0; k < n; k++) {
        const gd_pair *p = &corp.pairs[k];
        int S = p->n_src + 1, T = p->n_tgt + 1;
        for (int i = 0; i < p->n_src; i++)
            src[i] = p->src[i];
        src[S - 1] = GM_EOS;
        tin[0] = GM_BOS;
        for (int t = 0; t < p->n_tgt; t++) {
            tin[t + 1] = p->tgt[t];
            tout[t] = p->tgt[t];
        }
        tout[T - 1] = GM_EOS;
        gt_trace tr;
        if (gt_run(L.m, src, S, tin, tout, T, &tr) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        size_t need = nrat + (size_t)tr.n_dec * tr.H * T * S;
        if (need > cap) {
            cap = need * 2;
            ratio *nr = realloc(rat, cap * sizeof *nr);
            if (!nr) {
                gt_free(&tr);
                errorf("out of memory");
                goto out;
            }
            rat = nr;
        }
        for (size_t row = 0; row < (size_t)tr.n_dec * tr.H * T; row++) {
            const float *w = tr.weights + row * S;
            float mx = 0;
            for (int i = 0; i < S; i++)
                mx = w[i] > mx ? w[i] : mx;
            if (!(mx > 0))
                continue;
            for (int i = 0; i < S; i++) {
                rat[nrat].r = w[i] / mx;
                rat[nrat].w = 1.0f / (float)S; /* divided by rows below */
                nrat++;
            }
            rows++;
        }
        gt_free(&tr);
    }
    if (rows == 0) {
        errorf("no attention rows traced");
        goto out;
    }
    qsort(rat, nrat, sizeof *rat, cmp_ratio_desc);
    /* density(tau) = (1/rows) * sum_{r_i >= tau} 1/N_row: walk down the sorted
     * ratios until the cumulative density reaches rho. */
    double cum = 0, tau = 0;
    for (size_t i = 0; i < nrat; i++) {
        cum += rat[i].w / (double)rows;
        if (cum >= rho - 1e-12) {
            tau = rat[i].r;
            break;
        }
    }
    printf("%ld attention rows (%d pairs x %d layers x %d heads), %zu keys\n", rows,
           n, mc->n_dec, mc->H, nrat);
    printf("fixed level matching density %.4f: fixed_tau = %.6g   (granattn train "
           "--config configs/exp/fixed-match.ini --set fixed_tau=%.6g)\n",
           rho, tau, tau);
    double dl[GA_MAX_LEVELS];
    for (int l = 0; l < mc->L; l++) {
        double dens = 0;
        for (size_t i = 0; i < nrat && rat[i].r >= mc->tau[l]; i++)
            dens += rat[i].w;
        dl[l] = dens / (double)rows;
        printf("level %d (tau %g) alone: density %.4f\n", l, mc->tau[l], dl[l]);
    }
    if (nmix) {
        double e = 0, s = 0;
        for (int l = 0; l < mc->L; l++) {
            e += mix[l] * dl[l];
            s += mix[l];
        }
        printf("random levels with probabilities %s: expected density %.4f%s\n", mix_s,
               s > 0 ? e / s : 0.0, fabs(s - 1) > 1e-3 ? " (mix renormalised)" : "");
    }
    rc = 0;
out:
    free(rat);
    free(tin);
    free(tout);
    free(src);
    gd_free(&corp);
    loaded_free(&L);
    return rc;
}
