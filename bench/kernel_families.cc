// kernel_families.cc — one benchmark family per kernel-table entry (forward
// and backward), on single-head inputs from the same generated data as the
// attend families; the counters are families.cc's (set_rates, set_mix).
#include <algorithm>
#include <array>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include <benchmark/benchmark.h>

#include "bench.h"

namespace gab {

using benchmark::Counter;

// ------------------------------------------------------------ kernels
// Single-head inputs for the kernel families, from the same generated data
// as attend (head 0, query 0), prepared with the scalar references.
namespace {
struct KIn {
    int N = 0, dh = 0;
    std::shared_ptr<AttnData> A;
    std::shared_ptr<GpnData> G;
    const float *K = nullptr, *V = nullptr, *q = nullptr;
    const float *P = nullptr, *r = nullptr, *W2 = nullptr, *b2 = nullptr;
    float scale = 1;
    std::vector<float> s;           // scores [N]
    float m = 0;                    // row max
    std::vector<uint8_t> lev;       // levels [N]
    float theta8[GA_MAX_LEVELS] = {0};
    std::vector<int32_t> idx;       // kept indices [N + pad]
    std::vector<float> p;           // their exp(s - m) [N + pad]
    float Z = 0;                    // threshold's Z (the case's mode)
    int count = 0;                  // kept
    std::vector<float> a;           // softmax [N]
};

void prepare(KIn *in, const Case &c, bool need_gpn)
{
    const int N = c.N, dh = c.dh;
    in->N = N;
    in->dh = dh;
    in->A = get_attn(N, dh, 1, c.dist);
    in->K = in->A->K.get();
    in->V = in->A->V.get();
    in->q = in->A->Q.data();
    in->scale = 1.0f / std::sqrt((float)dh);
    in->s.resize(std::max(N, 1));
    ga_kernels_ref()->scores(in->K, N, dh, in->q, 1, dh, in->scale, nullptr, in->s.data(), N, &in->m);
    in->a.resize(std::max(N, 1));
    ga_kernels_ref()->softmax(in->s.data(), N, in->m, in->a.data());
    ga_config cfg;
    ga_config_default(&cfg);
    ga_theta_from_tau(&cfg, in->theta8);
    in->lev.assign(std::max(N, 1), (uint8_t)(kL - 1));
    if (need_gpn) {
        in->G = get_gpn(N, dh);   // d = dh for the single-head kernel inputs
        in->P = in->G->P.get();
        in->r = in->G->R.data();
        in->W2 = in->G->W2.data();
        in->b2 = in->G->b2_for(c.mix);
        ga_kernels_ref()->gpn_levels(in->P, N, in->r, in->W2, in->b2, N, kG, kL, in->lev.data());
    }
    in->idx.resize((size_t)N + GA_KEEP_PAD);
    in->p.resize((size_t)N + GA_KEEP_PAD);
    in->count = ga_kernels_ref()->threshold(in->s.data(), N, in->m, in->lev.data(), in->theta8, c.mode,
                                 in->idx.data(), in->p.data(), &in->Z);
}

std::vector<float> random_vec(size_t n, double std, uint64_t seed)
{
    Rng rng(seed);
    std::vector<float> v(std::max<size_t>(n, 1));
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(std * rng.gauss());
    return v;
}

// Deliberate slowdown for testing the regression checker (tools/compare.py):
// GRANATTN_BENCH_SLOWDOWN=FAMILY:R makes every iteration of kernel family
// FAMILY call the kernel R times (R in 1..100) while its counters still count
// one call, i.e. an R-times slower kernel.  Unset in every real measurement.
static int g_repeat = 1;

static int slowdown_for(const char *family)
{
    const char *env = getenv("GRANATTN_BENCH_SLOWDOWN");
    if (!env)
        return 1;
    const char *colon = strchr(env, ':');
    if (!colon || (size_t)(colon - env) != strlen(family) ||
        strncmp(env, family, (size_t)(colon - env)) != 0)
        return 1;
    int r = atoi(colon + 1);
    return r >= 1 && r <= 100 ? r : 1;
}

// The timed loop of a kernel: f() is one call.
template <class F>
void timed(benchmark::State &st, F &&f)
{
    const int repeat = g_repeat;
    for (auto _ : st) {
        for (int r = 0; r < repeat; r++)
            f();
        benchmark::ClobberMemory();
    }
}
}  // namespace

// Per-call work of a kernel (set after its loop).
struct Work {
    double items = 0, bytes = 0, flops = 0, ws = 0;
};

static void run_kernel_loop(benchmark::State &st, const Case &c, const ga_kernels *kt, KIn &in,
                            Work *wk);

void run_kernel(benchmark::State &st, const Case &c)
{
    const ga_kernels *kt = ga_kernels_for(c.isa);
    if (!kt) {
        st.SkipWithError(ga_last_error());
        return;
    }
    drop_cold_cache();
    drop_trace_cache();
    drop_prep_cache();
    KIn in;
    Work w;
    // Inputs are built before each timed loop; an allocation failure there
    // skips the benchmark (nothing inside the loops allocates).
    try {
        const bool need_gpn = (fam_fields(c.fam) & F_MIX) != 0;
        if (c.fam != Fam::gpn_project_keys && c.fam != Fam::gpn_project_query &&
            c.fam != Fam::gpn_project_keys_backward && c.fam != Fam::gpn_project_query_backward)
            prepare(&in, c, need_gpn);
        g_repeat = slowdown_for(fam_name(c.fam));
        run_kernel_loop(st, c, kt, in, &w);
        g_repeat = 1;
    } catch (const std::bad_alloc &) {
        st.SkipWithError("out of memory while building the inputs");
        return;
    }
    if (st.error_occurred())
        return;
    const double iters = (double)st.iterations();
    set_rates(st, c, w.items * iters, w.bytes * iters, w.flops * iters, w.ws, w.bytes * iters);
}

// Builds one kernel's inputs, runs its timed loop and fills *wk with the
// per-call work.
static void run_kernel_loop(benchmark::State &st, const Case &c, const ga_kernels *kt, KIn &in,
                            Work *wk)
{
    const int N = c.N, dh = c.dh, g = kG, L = kL;
    const double f4 = sizeof(float);
    Work &w = *wk;
    switch (c.fam) {
    case Fam::gpn_project_keys: {
        const int d = c.H * dh;
        auto G = get_gpn(N, d);
        const float *E = get_encoder(N, d);
        std::vector<float> P((size_t)g * std::max(N, 1));
        timed(st, [&] { kt->gpn_project_keys(E, N, d, G->U.data(), G->b1.data(), g, P.data(), N); });
        w.items = N;
        w.bytes = ((double)N * d + (double)g * d + g + (double)g * N) * f4;
        w.flops = 2.0 * N * d * g;
        w.ws = w.bytes;
        break;
    }
    case Fam::gpn_project_query: {
        const int d = c.H * dh;
        auto G = get_gpn(0, d);
        std::vector<float> r(g);
        timed(st, [&] { kt->gpn_project_query(G->X.data(), d, G->W.data(), g, r.data()); });
        w.items = 1;
        w.bytes = ((double)d + (double)g * d + g) * f4;
        w.flops = 2.0 * d * g;
        w.ws = w.bytes;
        break;
    }
    case Fam::gpn_levels: {
        std::vector<uint8_t> lev(std::max(N, 1));
        timed(st, [&] {
            benchmark::DoNotOptimize(
                kt->gpn_levels(in.P, N, in.r, in.W2, in.b2, N, g, L, lev.data()));
        });
        w.items = N;
        w.bytes = (double)g * N * f4 + N;
        w.flops = N * kGpnPairFlops;
        w.ws = w.bytes;
        set_mix(st, lev.data(), (size_t)N);
        break;
    }
    case Fam::gpn_probs: {
        std::vector<uint8_t> lev(std::max(N, 1));
        std::vector<float> pi((size_t)L * std::max(N, 1));
        timed(st, [&] {
            benchmark::DoNotOptimize(kt->gpn_probs(in.P, N, in.r, in.W2, in.b2, N, g, L,
                                                   pi.data(), N, lev.data()));
        });
        w.items = N;
        w.bytes = (double)g * N * f4 + N + (double)L * N * f4;
        w.flops = N * (kGpnPairFlops + 4.0 * L);   // softmax: sub, exp, add, div per level
        w.ws = w.bytes;
        set_mix(st, lev.data(), (size_t)N);
        break;
    }
    case Fam::scores: {
        std::vector<float> S(std::max(N, 1));
        float m;
        timed(st, [&] {
            kt->scores(in.K, N, dh, in.q, 1, dh, in.scale, nullptr, S.data(), N, &m);
            benchmark::DoNotOptimize(m);
        });
        w.items = N;
        w.bytes = ((double)N * dh + N + dh) * f4;
        w.flops = 2.0 * N * dh;
        w.ws = w.bytes;
        break;
    }
    case Fam::threshold: {
        std::vector<int32_t> idx((size_t)N + GA_KEEP_PAD);
        std::vector<float> p((size_t)N + GA_KEEP_PAD);
        float Z;
        int count = 0;
        timed(st, [&] {
            count = kt->threshold(in.s.data(), N, in.m, in.lev.data(), in.theta8, c.mode,
                                  idx.data(), p.data(), &Z);
            benchmark::DoNotOptimize(count);
        });
        w.items = N;
        // Reads s and levels, writes the kept (idx, p).
        w.bytes = (double)N * (f4 + 1) + (double)count * 8;
        // Per key: subtract + compare; exp + add for every key (seed) or the
        // kept ones (renorm).
        w.flops = c.mode == GA_NORM_SEED ? 4.0 * N : 2.0 * N + 2.0 * count;
        w.ws = (double)N * (f4 + 1) + 8.0 * N;
        st.counters["density"] = N ? (double)count / N : 0.0;
        set_mix(st, in.lev.data(), (size_t)N);
        break;
    }
    case Fam::sparse_context: {
        std::vector<float> cv(dh);
        const float sc = in.Z > 0 ? 1.0f / in.Z : 1.0f;
        timed(st, [&] { kt->sparse_context(in.V, dh, in.idx.data(), in.p.data(), in.count, sc, cv.data()); });
        w.items = N;
        w.bytes = (double)in.count * dh * f4 + in.count * 8.0 + dh * f4;
        w.flops = 2.0 * in.count * dh;
        w.ws = w.bytes;   // only the kept rows are touched (the same ones every call)
        st.counters["density"] = N ? (double)in.count / N : 0.0;
        set_mix(st, in.lev.data(), (size_t)N);
        break;
    }
    case Fam::softmax: {
        std::vector<float> a(std::max(N, 1));
        timed(st, [&] { benchmark::DoNotOptimize(kt->softmax(in.s.data(), N, in.m, a.data())); });
        w.items = N;
        w.bytes = 8.0 * N;
        w.flops = 4.0 * N;   // sub, exp, add, scale
        w.ws = w.bytes;
        break;
    }
    case Fam::dense_context: {
        std::vector<float> cv(dh);
        timed(st, [&] { kt->dense_context(in.V, N, dh, in.a.data(), cv.data()); });
        w.items = N;
        w.bytes = ((double)N * dh + N + dh) * f4;
        w.flops = 2.0 * N * dh;
        w.ws = w.bytes;
        break;
    }
    case Fam::scores_backward: {
        std::vector<float> ds = random_vec(N, 1e-3, 11), dq(dh, 0.0f);
        std::vector<float> dK((size_t)std::max(N, 1) * dh, 0.0f);
        timed(st, [&] { kt->scores_backward(in.K, N, dh, in.q, in.scale, ds.data(), dq.data(), dK.data()); });
        w.items = N;
        // Reads K and ds, read-modify-writes dK (and dq).
        w.bytes = ((double)N * dh * 3 + N + 2.0 * dh) * f4;
        w.flops = 4.0 * N * dh;
        w.ws = ((double)N * dh * 2 + N) * f4;
        break;
    }
    case Fam::threshold_backward: {
        std::vector<float> gv = random_vec(N, 1.0, 12), ds(std::max(N, 1));
        std::vector<float> dpi((size_t)L * std::max(N, 1), 0.0f);
        timed(st, [&] {
            kt->threshold_backward(in.s.data(), N, in.m, in.Z, in.lev.data(), in.theta8, L, c.mode,
                                   gv.data(), 0.1f, ds.data(), dpi.data(), N, 0.01f);
        });
        w.items = N;
        // Reads s, gv, levels; writes ds; read-modify-writes dpi [L][N].
        w.bytes = (double)N * (3 * f4 + 1) + 2.0 * L * N * f4;
        // Per key: sub, exp, div, mul, sub/add for ds and G; L compares + adds.
        w.flops = (double)N * (6.0 + 2.0 * L);
        w.ws = (double)N * (3 * f4 + 1) + (double)L * N * f4;
        st.counters["density"] = N ? (double)in.count / N : 0.0;
        set_mix(st, in.lev.data(), (size_t)N);
        break;
    }
    case Fam::softmax_backward: {
        std::vector<float> da = random_vec(N, 1.0, 13), ds(std::max(N, 1));
        timed(st, [&] { kt->softmax_backward(in.a.data(), da.data(), N, ds.data()); });
        w.items = N;
        w.bytes = 12.0 * N;
        w.flops = 4.0 * N;   // dot (2) + sub, mul
        w.ws = w.bytes;
        break;
    }
    case Fam::sparse_context_backward: {
        std::vector<float> dc = random_vec(dh, 1.0, 14), gk(std::max(in.count, 1));
        std::vector<float> dV((size_t)std::max(N, 1) * dh, 0.0f);
        const float sc = in.Z > 0 ? 1.0f / in.Z : 1.0f;
        timed(st, [&] {
            kt->sparse_context_backward(in.V, dh, in.idx.data(), in.p.data(), in.count, sc,
                                        dc.data(), dV.data(), gk.data());
        });
        w.items = N;
        // Kept rows of V read, of dV read-modify-written; idx, p read; gk written.
        w.bytes = (double)in.count * dh * 3 * f4 + in.count * 12.0;
        w.flops = 4.0 * in.count * dh;
        w.ws = (double)in.count * dh * 2 * f4 + in.count * 12.0;   // kept rows of V and dV
        st.counters["density"] = N ? (double)in.count / N : 0.0;
        set_mix(st, in.lev.data(), (size_t)N);
        break;
    }
    case Fam::dense_context_backward: {
        std::vector<float> dc = random_vec(dh, 1.0, 15), ga(std::max(N, 1));
        std::vector<float> dV((size_t)std::max(N, 1) * dh, 0.0f);
        timed(st, [&] { kt->dense_context_backward(in.V, N, dh, in.a.data(), dc.data(), dV.data(), ga.data()); });
        w.items = N;
        w.bytes = (double)N * dh * 3 * f4 + 8.0 * N;
        w.flops = 4.0 * N * dh;
        w.ws = (double)N * dh * 2 * f4 + 8.0 * N;
        break;
    }
    case Fam::gpn_backward: {
        std::vector<uint8_t> lev(std::max(N, 1));
        std::vector<float> pi((size_t)L * std::max(N, 1));
        ga_kernels_ref()->gpn_probs(in.P, N, in.r, in.W2, in.b2, N, g, L, pi.data(), N, lev.data());
        std::vector<float> dpi = random_vec((size_t)L * N, 1e-3, 16);
        std::vector<float> dP((size_t)g * std::max(N, 1)), dr(g, 0.0f), dW2((size_t)L * g, 0.0f),
            db2(L, 0.0f);
        timed(st, [&] {
            kt->gpn_backward(in.P, N, in.r, in.W2, N, g, L, pi.data(), dpi.data(), N, dP.data(), N,
                             dr.data(), dW2.data(), db2.data());
        });
        w.items = N;
        // Reads P, pi, dpi; writes dP.
        w.bytes = (2.0 * g * N + 2.0 * L * N) * f4;
        // Per key: softmax backward (3L), u (2g), dW2 + du (4Lg), db2 (L), dr (g).
        w.flops = (double)N * (4.0 * L * g + 3.0 * g + 4.0 * L);
        w.ws = w.bytes;
        set_mix(st, lev.data(), (size_t)N);
        break;
    }
    case Fam::gpn_project_keys_backward: {
        const int d = c.H * dh;
        auto G = get_gpn(N, d);
        const float *E = get_encoder(N, d);
        std::vector<float> dP = random_vec((size_t)g * N, 1e-3, 17);
        std::vector<float> dU((size_t)g * d, 0.0f), db1(g, 0.0f);
        std::vector<float> dE((size_t)std::max(N, 1) * d, 0.0f);
        timed(st, [&] {
            kt->gpn_project_keys_backward(E, N, d, G->U.data(), g, dP.data(), N, dU.data(),
                                          db1.data(), dE.data());
        });
        w.items = N;
        // Reads E, U, dP; read-modify-writes dE (and dU, db1).
        w.bytes = ((double)N * d * 3 + (double)g * N + 3.0 * g * d) * f4;
        w.flops = 4.0 * N * d * g + (double)N * g;
        w.ws = ((double)N * d * 2 + (double)g * N + 2.0 * g * d) * f4;
        break;
    }
    case Fam::gpn_project_query_backward: {
        const int d = c.H * dh;
        auto G = get_gpn(0, d);
        std::vector<float> dr = random_vec(g, 1e-3, 18), dW((size_t)g * d, 0.0f), dx(d, 0.0f);
        timed(st, [&] {
            kt->gpn_project_query_backward(G->X.data(), d, G->W.data(), g, dr.data(), dW.data(),
                                           dx.data());
        });
        w.items = 1;
        w.bytes = ((double)g * d * 3 + 3.0 * d + g) * f4;
        w.flops = 4.0 * d * g;
        w.ws = ((double)g * d * 2 + 2.0 * d + g) * f4;
        break;
    }
    case Fam::preview_dots: {
        // Random codes in [-127, 127] in the panel layout (docs/SPEC.md §7):
        // Gaussian (std 0.4, clamped to [-1, 1]) times 127, lanes past N 0,
        // ksum the codes' sums (the VNNI paths use it).
        const int dh4 = (dh + 3) / 4 * 4, P = (N + 15) / 16;
        std::vector<float> rc = random_vec((size_t)P * 16 * dh4 + dh4, 0.4, 41);
        auto q8 = [](float x) {
            return (int8_t)std::lrint(std::min(1.0f, std::max(-1.0f, x)) * 127.0f);
        };
        // codes 64-byte aligned, as the prepared keys hold them (a std::vector
        // is only 16-byte aligned: every 64-byte load would then straddle two
        // cache lines, which halves the L2-resident rate).
        const size_t ncodes = (size_t)P * 16 * dh4;
        FloatBuf codes_buf = alloc_floats(ncodes / sizeof(float) + 1);
        int8_t *codes = reinterpret_cast<int8_t *>(codes_buf.get());
        std::memset(codes, 0, ncodes);
        std::vector<int8_t> qc(dh4);
        std::vector<int32_t> ksum((size_t)P * 16, 0);
        for (int i = 0; i < N; i++)
            for (int d = 0; d < dh4; d++) {
                const size_t at = (size_t)(i / 16) * 16 * dh4 + (size_t)(d / 4) * 64 +
                                  (size_t)(i % 16) * 4 + d % 4;
                codes[at] = q8(rc[at]);
                ksum[i] += codes[at];
            }
        for (int j = 0; j < dh4; j++)
            qc[j] = q8(rc[ncodes + j]);
        std::vector<float> dot(std::max(N, 1));
        timed(st, [&] {
            kt->preview_dots(codes, ksum.data(), N, dh4, qc.data(), dot.data());
            benchmark::DoNotOptimize(dot.data());
        });
        w.items = N;
        // What the kernel touches: the codes of ceil(N/16) whole panels, ksum
        // of as many keys (read by the VNNI paths; counted for every variant,
        // it is part of the preview data), qc, and the N dots written.
        w.bytes = (double)P * 16 * dh4 + 4.0 * P * 16 + dh4 + f4 * N;
        w.flops = 2.0 * N * dh4;
        w.ws = w.bytes;
        break;
    }
    case Fam::preview_bounds: {
        std::vector<float> dot = random_vec(std::max(N, 1), 1000.0, 42);
        std::vector<float> meta = random_vec(4 * (size_t)std::max(N, 1), 1.0, 43);
        for (int i = 0; i < N; i++)
            meta[3 * (size_t)N + i] = 0.0f;
        const float qk[3] = {1e-3f, 0.05f, 0.05f};
        std::vector<float> shat(std::max(N, 1)), ub(std::max(N, 1));
        float mlb = 0;
        timed(st, [&] {
            mlb = kt->preview_bounds(dot.data(), meta.data(), N, N, qk, shat.data(), ub.data());
            benchmark::DoNotOptimize(mlb);
        });
        w.items = N;
        w.bytes = 7.0 * N * f4;
        w.flops = 8.0 * N;
        w.ws = w.bytes;
        break;
    }
    case Fam::preview_select: {
        // ub = the case's scores, thresholds m + theta: the candidates are the
        // keys the threshold keeps (the mix decides how many).
        float T8[GA_MAX_LEVELS];
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            T8[l] = in.theta8[l] == -FLT_MAX ? -FLT_MAX : in.m + in.theta8[l];
        std::vector<int32_t> cand((size_t)N + GA_KEEP_PAD);
        int count = 0;
        timed(st, [&] {
            count = kt->preview_select(in.s.data(), N, in.lev.data(), T8, cand.data());
            benchmark::DoNotOptimize(count);
        });
        w.items = N;
        w.bytes = (double)N * (f4 + 1) + 4.0 * count;
        w.ws = w.bytes;
        break;
    }
    case Fam::scores_gather: {
        // The keys the case's threshold keeps (in.idx, in.count).
        std::vector<float> s(std::max(in.count, 1));
        float m = 0;
        timed(st, [&] {
            m = kt->scores_gather(in.K, dh, in.idx.data(), in.count, in.q, in.scale, nullptr,
                                  s.data());
            benchmark::DoNotOptimize(m);
        });
        w.items = in.count;
        w.bytes = ((double)in.count * dh + 2.0 * in.count + dh) * f4;
        w.flops = 2.0 * in.count * dh;
        w.ws = w.bytes;
        break;
    }
    case Fam::scores_packed: {
        // 64-byte aligned like the other inputs (and the prepared keys): a
        // std::vector (16-byte aligned; + 16 bytes past a page when mmapped)
        // splits every 64-byte load, ~0.55x on AVX-512.
        const int P = (N + 15) / 16;
        const size_t nkp = (size_t)P * dh * 16;
        FloatBuf Kp = alloc_floats(std::max<size_t>(nkp, 1));
        std::fill(Kp.get(), Kp.get() + nkp, 0.0f);
        for (int i = 0; i < N; i++)
            for (int d = 0; d < dh; d++)
                Kp[(size_t)(i / 16) * dh * 16 + (size_t)d * 16 + i % 16] = in.K[(size_t)i * dh + d];
        std::vector<float> s(std::max(N, 1));
        float m = 0;
        timed(st, [&] {
            m = kt->scores_packed(Kp.get(), N, dh, in.q, in.scale, nullptr, s.data());
            benchmark::DoNotOptimize(m);
        });
        w.items = N;
        w.bytes = ((double)P * 16 * dh + N + dh) * f4;
        w.flops = 2.0 * N * dh;
        w.ws = w.bytes;
        break;
    }
    case Fam::quantize_rows: {
        // The keys of the case quantised into the panel layout (ga_keys_create's pass).
        const int dh4 = (dh + 3) / 4 * 4, P = (N + 15) / 16;
        std::vector<int8_t> codes((size_t)P * 16 * dh4);
        std::vector<float> sc(std::max(N, 1)), nr(std::max(N, 1)), er(std::max(N, 1));
        std::vector<int32_t> cs(std::max(N, 1));
        timed(st, [&] {
            kt->quantize_rows(in.K, N, dh, dh, dh4, 16, codes.data(), sc.data(), cs.data(),
                              nr.data(), er.data());
            benchmark::DoNotOptimize(codes.data());
        });
        w.items = N;
        w.bytes = (double)N * dh * f4 + (double)N * dh4 + 16.0 * N;
        w.flops = 8.0 * N * dh;
        w.ws = w.bytes;
        break;
    }
    case Fam::flash_block: {
        // A block of 32 queries (the case's q, row t scaled by 1 + t/64) over
        // the case's K, V: one head of the dense attend_block step.
        const int T = GA_FLASH_QB;
        std::vector<float> Q((size_t)T * dh), C((size_t)T * dh), ws(GA_FLASH_WS(dh));
        for (int t = 0; t < T; t++)
            for (int d = 0; d < dh; d++)
                Q[(size_t)t * dh + d] = in.q[d] * (1.0f + t / 64.0f);
        timed(st, [&] {
            uint32_t ok = kt->flash_block(Q.data(), dh, T, in.K, in.V, N, dh, in.scale, nullptr,
                                          C.data(), dh, ws.data());
            benchmark::DoNotOptimize(ok);
        });
        w.items = (double)N * T;
        w.bytes = (2.0 * N * dh + 2.0 * T * dh) * f4;
        w.flops = 4.0 * N * dh * T;
        w.ws = w.bytes;
        break;
    }
    default:
        st.SkipWithError("not a kernel family");
        return;
    }
}

}  // namespace gab
