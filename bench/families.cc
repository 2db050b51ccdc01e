// families.cc — the benchmark bodies of the fused step (attend,
// attend_block), the counters every family shares, and run_case; one family
// per kernel-table entry is in kernel_families.cc.
//
// Counters (all families; see --help):
//   items_per_second  keys/s: N*H*T keys per attend step; N per kernel call
//                     (1 query per call for gpn_project_query[_backward])
//   bytes_per_second  useful bytes/s (what the computation must read/write;
//                     see each family for the exact count)
//   gflops            GFLOP/s (flop counts below; exp counts as 1 flop)
//   density           kept / (N*H*T), averaged over the run (sparse paths)
//   mix0..mix2        fraction of pairs the GPN put at each level (reached)
//   frac_limit        time_bound / measured time, where time_bound =
//                     max(bytes / bandwidth(working set), flops / peak FMA)
//                     from --limits (omitted without limits)
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

// ------------------------------------------------------------ names
namespace {
struct FamInfo {
    Fam fam;
    const char *name;
    unsigned fields;
};
constexpr unsigned kAttendFields =
    F_N | F_DH | F_H | F_MIX | F_DIST | F_MODE | F_PATH | F_THREADS | F_PLACE | F_CACHE;
// Kernel families: name = the GA_KERNEL_LIST entry, fields = the axes that
// apply to it.
#define KFAM(name, fields) {Fam::name, #name, fields}
constexpr FamInfo kFams[] = {
    {Fam::Attend, "attend", kAttendFields},
    {Fam::AttendBlock, "attend_block", kAttendFields},
    // d = H*dh is the model width the GPN projects from.
    KFAM(gpn_project_keys, F_N | F_DH | F_H | F_CACHE),
    KFAM(gpn_project_query, F_DH | F_H | F_CACHE),
    KFAM(gpn_levels, F_N | F_MIX | F_CACHE),
    KFAM(gpn_probs, F_N | F_MIX | F_CACHE),
    KFAM(scores, F_N | F_DH | F_CACHE),
    KFAM(threshold, F_N | F_MIX | F_DIST | F_MODE | F_CACHE),
    KFAM(sparse_context, F_N | F_DH | F_MIX | F_DIST | F_CACHE),
    KFAM(softmax, F_N | F_CACHE),
    KFAM(dense_context, F_N | F_DH | F_CACHE),
    KFAM(scores_backward, F_N | F_DH | F_CACHE),
    KFAM(threshold_backward, F_N | F_MIX | F_DIST | F_MODE | F_CACHE),
    KFAM(softmax_backward, F_N | F_CACHE),
    KFAM(sparse_context_backward, F_N | F_DH | F_MIX | F_DIST | F_CACHE),
    KFAM(dense_context_backward, F_N | F_DH | F_CACHE),
    KFAM(gpn_backward, F_N | F_MIX | F_CACHE),
    KFAM(gpn_project_keys_backward, F_N | F_DH | F_H | F_CACHE),
    KFAM(gpn_project_query_backward, F_DH | F_H | F_CACHE),
    KFAM(preview_dots, F_N | F_DH | F_CACHE),
    KFAM(preview_bounds, F_N | F_CACHE),
    KFAM(preview_select, F_N | F_MIX | F_CACHE),
    KFAM(scores_gather, F_N | F_DH | F_MIX | F_DIST | F_CACHE),
    KFAM(scores_packed, F_N | F_DH | F_CACHE),
    KFAM(quantize_rows, F_N | F_DH | F_CACHE),
    KFAM(flash_block, F_N | F_DH | F_CACHE),
};
#undef KFAM
static_assert(sizeof kFams / sizeof kFams[0] == (size_t)Fam::Count, "one entry per family");
constexpr bool fams_in_order()
{
    for (size_t i = 0; i < sizeof kFams / sizeof kFams[0]; i++)
        if (kFams[i].fam != (Fam)i)
            return false;
    return true;
}
static_assert(fams_in_order(), "kFams must follow the order of enum Fam (GA_KERNEL_LIST)");

const char *place_str(ga_place p)
{
    switch (p) {
    case GA_PLACE_NONE: return "none";
    case GA_PLACE_COMPACT: return "compact";
    case GA_PLACE_SCATTER: return "scatter";
    default: return "list";
    }
}
}  // namespace

const char *path_name(Path p)
{
    switch (p) {
    case Path::Full: return "full";
    case Path::Prepared: return "prepared";
    default: return "prepared-bounded";
    }
}

bool parse_path(const std::string &s, Path *out)
{
    if (s == "full")
        *out = Path::Full;
    else if (s == "prepared")
        *out = Path::Prepared;
    else if (s == "prepared-bounded")
        *out = Path::PreparedBounded;
    else
        return false;
    return true;
}

const char *fam_name(Fam f) { return kFams[(int)f].name; }
unsigned fam_fields(Fam f) { return kFams[(int)f].fields; }
bool fam_is_attend(Fam f) { return f == Fam::Attend || f == Fam::AttendBlock; }

bool fam_from_name(const std::string &s, Fam *out)
{
    for (const FamInfo &fi : kFams)
        if (s == fi.name) {
            *out = fi.fam;
            return true;
        }
    return false;
}

void normalize_case(Case *c)
{
    const unsigned f = fam_fields(c->fam);
    if (!(f & F_N))
        c->N = 0;
    if (!(f & F_DH))
        c->dh = 64;
    if (!(f & F_H))
        c->H = 1;
    if (!(f & F_MIX))
        parse_mix("70-20-10", &c->mix);
    if (!(f & F_DIST))
        parse_dist("gauss2", &c->dist);
    if (!(f & F_MODE) || (fam_is_attend(c->fam) && c->mix.dense))
        c->mode = GA_NORM_SEED;
    // The bounded Z is a seed-mode choice: renorm and dense plans ignore it.
    if (!(f & F_PATH))
        c->path = Path::Full;
    else if (c->path == Path::PreparedBounded &&
             (c->mode != GA_NORM_SEED || (fam_is_attend(c->fam) && c->mix.dense)))
        c->path = Path::Prepared;
    if (!(f & F_THREADS)) {
        c->threads = 1;
        c->place = GA_PLACE_NONE;
    }
    if (!(f & F_CACHE))
        c->cold = false;
}

std::string case_name(const Case &c)
{
    const unsigned f = fam_fields(c.fam);
    std::string n = fam_name(c.fam);
    n += "/isa:";
    n += ga_isa_name(c.isa);
    if (f & F_N)
        n += "/N:" + std::to_string(c.N);
    if (f & F_DH)
        n += "/dh:" + std::to_string(c.dh);
    if (f & F_H)
        n += "/H:" + std::to_string(c.H);
    if (f & F_MIX)
        n += "/mix:" + c.mix.name;
    if (f & F_DIST)
        n += "/dist:" + c.dist.name;
    if (f & F_MODE) {
        if (fam_is_attend(c.fam) && c.mix.dense)
            n += "/mode:dense";
        else
            n += c.mode == GA_NORM_RENORM ? "/mode:renorm" : "/mode:seed";
    }
    if (f & F_PATH)
        n += std::string("/path:") + path_name(c.path);
    if (f & F_THREADS)
        n += "/threads:" + std::to_string(c.threads);
    if (f & F_PLACE)
        n += std::string("/place:") + place_str(c.place);
    if (f & F_CACHE)
        n += c.cold ? "/cache:cold" : "/cache:hot";
    return n;
}

// ------------------------------------------------------------ counters
using benchmark::Counter;

// Sets the rate counters from per-run totals and the frac_limit bound.
void set_rates(benchmark::State &st, const Case &c, double items, double bytes, double flops,
               double ws, double bound_bytes)
{
    st.SetItemsProcessed((int64_t)items);
    st.counters["bytes_per_second"] = Counter(bytes, Counter::kIsRate, Counter::kIs1024);
    st.counters["gflops"] = Counter(flops * 1e-9, Counter::kIsRate);
    if (g_limits.loaded) {
        const double tb =
            g_limits.time_bound(ga_isa_name(c.isa), c.threads, ws, bound_bytes, flops);
        if (tb > 0)
            st.counters["frac_limit"] = Counter(tb, Counter::kIsRate);
    }
}

void set_mix(benchmark::State &st, const uint8_t *levels, size_t n)
{
    size_t cnt[GA_MAX_LEVELS] = {0};
    for (size_t i = 0; i < n; i++)
        cnt[levels[i] < GA_MAX_LEVELS ? levels[i] : GA_MAX_LEVELS - 1]++;
    for (int l = 0; l < kL; l++)
        st.counters["mix" + std::to_string(l)] = n ? (double)cnt[l] / (double)n : 0.0;
}

struct PoolDeleter {
    void operator()(ga_pool *p) const { ga_pool_destroy(p); }
};

// ------------------------------------------------------------ step helpers
double median_us(int reps, const std::function<void()> &fn)
{
    fn();   // warm-up
    std::vector<double> t;
    for (int r = 0; r < std::max(reps, 1); r++) {
        const auto a = std::chrono::steady_clock::now();
        fn();
        const auto b = std::chrono::steady_clock::now();
        t.push_back(std::chrono::duration<double, std::micro>(b - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

KeysPtr make_keys_timed(const ga_kernels *kt, int H, int N, int dh, const float *K,
                        const float *V, const float *bias, int reps, double *new_us,
                        double *prep_us, std::string *err)
{
    ga_status rc = GA_OK;
    KeysPtr k;
    *new_us = median_us(reps, [&] {
        k.reset();
        k.reset(ga_keys_create(kt, H, N, dh, K, V, bias, &rc));
    });
    if (!k) {
        *err = std::string("ga_keys_create: ") + ga_last_error();
        return nullptr;
    }
    *prep_us = median_us(reps, [&] { rc = ga_keys_prepare(k.get(), kt, H, N, dh, K, V, bias); });
    if (rc != GA_OK) {
        *err = std::string("ga_keys_prepare: ") + ga_last_error();
        return nullptr;
    }
    return k;
}

// Bytes and flops of the steps (docs/SPEC.md §2, §7):
//   full dense     reads K and V fully: 2*H*N*dh*4 per step (once for all T
//                  queries: blocks are GEMM-shaped)
//   full sparse    K fully (every score) + the kept V rows
//   prepared       what ga_prep_stats.bytes reports: the preview (codes,
//                  ksum, meta, levels), the candidate K rows, the kept V rows
//                  (every K row of exact-Z seed rows and fallback rows); for
//                  dense plans the packed K and V
// Flops: 2*dh per score computed exactly (all keys, or the candidates) and per
// kept V row (all rows in dense), + the GPN's pair flops where it runs; the
// int8 preview dot products are not fp32 flops and are not counted.
void set_step_counters(benchmark::State &st, ga_isa isa, int threads, Path path, bool dense,
                       int N, int H, int dh, int T, const StepTotals &tot, double gpn_flops,
                       double extra_bytes, double ws, double dense_ws)
{
    const double iters = std::max<double>((double)st.iterations(), 1.0);
    const double row = (double)dh * sizeof(float);
    double scored = path == Path::Full || dense ? tot.keys : tot.candidates;
    const double flops = 2.0 * scored * dh + 2.0 * (dense ? tot.keys : tot.kept) * dh + gpn_flops;
    st.SetItemsProcessed((int64_t)tot.keys);
    st.counters["bytes_per_second"] = Counter(tot.bytes, Counter::kIsRate, Counter::kIs1024);
    st.counters["bytes_read"] = Counter(tot.bytes / iters);
    st.counters["gflops"] = Counter(flops * 1e-9, Counter::kIsRate);
    if (!dense)
        st.counters["density"] = tot.keys > 0 ? tot.kept / tot.keys : 0.0;
    if (path != Path::Full && !dense) {
        st.counters["cand_per_kept"] = tot.kept > 0 ? tot.candidates / tot.kept : 0.0;
        st.counters["cand_frac"] = tot.keys > 0 ? tot.candidates / tot.keys : 0.0;
    }
    if (path != Path::Full) {
        st.counters["fallback"] = Counter(tot.fallback / iters);
        if (path == Path::PreparedBounded)
            st.counters["z_bound"] = tot.z_bound;
    }
    if (g_limits.loaded) {
        const char *in = ga_isa_name(isa);
        const double tb = g_limits.time_bound(in, threads, ws, tot.bytes + extra_bytes, flops);
        if (tb > 0)
            st.counters["frac_limit"] = Counter(tb, Counter::kIsRate);
        // The dense fp32 step of the same shape at its limit (K and V read
        // once per step, 4*N*dh flops per query and head).
        const double dkeys = (double)N * H * T * iters;
        const double dtb = g_limits.time_bound(in, threads, dense_ws,
                                               2.0 * N * H * iters * row, 4.0 * dkeys * dh);
        if (dtb > 0)
            st.counters["x_dense_limit"] = Counter(dtb, Counter::kIsRate);
    }
}

// ------------------------------------------------------------ attend
namespace {
struct PlanDeleter {
    void operator()(ga_attend_plan *p) const { ga_attend_plan_destroy(p); }
};
using PlanPtr = std::unique_ptr<ga_attend_plan, PlanDeleter>;

// Prepared keys of the current inputs (one per K/V set), with the time of
// ga_keys_prepare and of ga_keys_create (median of kPrepReps, set 0) -- built once per (inputs, ISA)
// and kept while consecutive cases share them (single entry, like the inputs).
constexpr int kPrepReps = 5;
struct PrepCache {
    std::shared_ptr<AttnData> A;    // holds the inputs (their address is the key)
    std::shared_ptr<ColdSets> CS;
    ga_isa isa = GA_ISA_SCALAR;
    std::vector<KeysPtr> keys;
    double prep_us = 0;      // ga_keys_prepare into keys already built (reused memory)
    double prep_new_us = 0;  // ga_keys_create + destroy (fresh memory)
    size_t keys_bytes = 0;
    // Dense full-path step time (µs) per (threads, place, T), measured on
    // demand for prep_in_dense_steps.
    std::vector<std::pair<std::array<int, 3>, double>> dense_us;
};
// One entry per ISA for the current inputs (the ISA turns fastest in the
// registration order, so consecutive cases alternate between ISAs).
std::vector<std::unique_ptr<PrepCache>> g_prep;

// Drops the prepared keys (and the inputs they hold on to) unless they were
// built for inputs of this shape and distribution: called before the inputs
// of the next case are built, so that old and new never coexist in memory.
// Hot cases (cold == false) also drop keys of cold sets (which hold the sets).
void drop_prep_unless(int N, int dh, int H, const std::string &dist, bool cold)
{
    g_prep.erase(std::remove_if(g_prep.begin(), g_prep.end(),
                                [&](const std::unique_ptr<PrepCache> &e) {
                                    return e->A->N != N || e->A->dh != dh || e->A->H != H ||
                                           e->A->dist.name != dist || (!cold && e->CS);
                                }),
                 g_prep.end());
}

// Keys for A (and every cold set); throws std::bad_alloc, returns nullptr
// with *err on a library error.
PrepCache *get_prep(const ga_kernels *kt, ga_isa isa, const std::shared_ptr<AttnData> &A,
                    const std::shared_ptr<ColdSets> &CS, std::string *err)
{
    const int nsets = CS ? (int)CS->K.size() : 1;
    for (auto &e : g_prep)
        if (e->A == A && e->CS == CS && e->isa == isa && (int)e->keys.size() == nsets)
            return e.get();
    // Other inputs (or cold sets): drop every entry of them first.
    g_prep.erase(std::remove_if(g_prep.begin(), g_prep.end(),
                                [&](const std::unique_ptr<PrepCache> &e) {
                                    return e->A != A || e->CS != CS || e->isa == isa;
                                }),
                 g_prep.end());
    auto pc = std::make_unique<PrepCache>();
    pc->A = A;
    pc->CS = CS;
    pc->isa = isa;
    ga_status rc = GA_OK;
    KeysPtr k0 = make_keys_timed(kt, A->H, A->N, A->dh, A->K.get(), A->V.get(), nullptr,
                                 kPrepReps, &pc->prep_new_us, &pc->prep_us, err);
    if (!k0)
        return nullptr;
    pc->keys_bytes = ga_keys_bytes(k0.get());
    pc->keys.push_back(std::move(k0));
    for (int s = 1; s < nsets; s++) {
        KeysPtr k(ga_keys_create(kt, A->H, A->N, A->dh, CS->K[s], CS->V[s], nullptr, &rc));
        if (!k) {
            *err = std::string("ga_keys_create: ") + ga_last_error();
            return nullptr;
        }
        pc->keys.push_back(std::move(k));
    }
    g_prep.push_back(std::move(pc));
    return g_prep.back().get();
}
}  // namespace

void drop_prep_cache() { g_prep.clear(); }

// The fused decode step: T = 1 query (attend; the pool splits the heads) or
// T = 32 (attend_block), through a plan created once (ga_attend_plan_create)
// and run per iteration.  attend cycles through the 32 generated queries, so
// density is averaged over them.
//   path:full              ga_attend_run (GPN levels; dense plans for mix:dense)
//   path:prepared          keys prepared once outside the loop (ga_keys_create),
//                          ga_attend_run_prepared with GA_PREP_Z_EXACT (dense:
//                          the packed-K dense step)
//   path:prepared-bounded  the same with GA_PREP_Z_BOUNDED (seed mode only)
// Bytes (bytes_read per call; bytes_per_second): full dense 2*H*N*dh*4 per
// step (whatever T); full sparse T*H*N*dh*4 + kept*dh*4; prepared: ga_prep_stats.bytes.  The GPN's P
// (g*N*4 bytes per query) is not in them but is in the frac_limit bound.
// frac_limit's working set: K and V (+ P) on the full path; on the prepared
// path the bytes one step touches (+ P); cold: every set (+ its prepared keys).
// Prepared cases also report prep_us (ga_keys_prepare into keys built
// before, i.e. reused memory as a decoder has it; median of 5, outside the
// loop), prep_new_us (ga_keys_create into fresh memory), prep_bytes (ga_keys_bytes), dense_us (the dense full-path step
// of the same shape, threads and placement) and prep_in_dense_steps.
static void run_attend(benchmark::State &st, const Case &c)
{
    const ga_kernels *kt = ga_kernels_for(c.isa);
    if (!kt) {
        st.SkipWithError(ga_last_error());
        return;
    }
    const int T = c.fam == Fam::AttendBlock ? kBlockT : 1;
    const int N = c.N, dh = c.dh, H = c.H, hd = H * dh;
    const bool dense = c.mix.dense;
    const bool prepared = c.path != Path::Full;
    const double set_bytes = 2.0 * H * N * dh * sizeof(float);
    const double p_bytes = dense ? 0.0 : (double)kG * N * sizeof(float);

    std::shared_ptr<AttnData> A;
    std::shared_ptr<GpnData> G;
    std::shared_ptr<ColdSets> CS;
    const float *b2 = nullptr;
    PrepCache *pc = nullptr;
    drop_trace_cache();
    drop_prep_unless(N, dh, H, c.dist.name, c.cold);
    try {
        A = get_attn(N, dh, H, c.dist);
        if (!dense) {
            G = get_gpn(N, hd);
            b2 = G->b2_for(c.mix);
        }
        if (c.cold) {
            std::string why;
            const int nsets = cold_sets_needed((size_t)set_bytes, &why);
            if (!nsets) {
                st.SkipWithError(why.c_str());
                return;
            }
            CS = get_cold(A, nsets);
        } else {
            drop_cold_cache();
        }
        if (prepared) {
            std::string err;
            pc = get_prep(kt, c.isa, A, CS, &err);
            if (!pc) {
                st.SkipWithError(err.c_str());
                return;
            }
        }
    } catch (const std::bad_alloc &) {
        st.SkipWithError("out of memory while building the inputs");
        return;
    }
    const int nsets = CS ? (int)CS->K.size() : 1;

    ga_config cfg;
    ga_config_default(&cfg);
    cfg.H = H;
    cfg.dh = dh;
    cfg.g = kG;
    cfg.L = kL;
    cfg.mode = c.mode;
    cfg.dense = dense ? 1 : 0;
    const ga_prep_z zmode = c.path == Path::PreparedBounded ? GA_PREP_Z_BOUNDED : GA_PREP_Z_EXACT;

    // One pool and one plan per benchmark run (never per iteration).
    std::unique_ptr<ga_pool, PoolDeleter> pool(ga_pool_create(c.threads, c.place, nullptr, 0));
    if (!pool) {
        std::string msg = std::string("ga_pool_create: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }
    ga_status pst = GA_OK;
    PlanPtr plan(ga_attend_plan_create(kt, pool.get(), &cfg, N, T, &pst));
    if (!plan) {
        std::string msg = std::string("ga_attend_plan_create: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }

    std::vector<float> C((size_t)T * hd);
    std::vector<int> kept((size_t)T * H);
    const float *P = G ? G->P.get() : nullptr;
    const float *R = G ? G->R.data() : nullptr;
    const float *W2 = G ? G->W2.data() : nullptr;
    ga_prep_stats ps;

    // One step on query block t0 and K/V set s (stats into ps when prepared).
    auto step = [&](int t0, int s) -> ga_status {
        const float *Q = &A->Q[(size_t)t0 * hd];
        const float *Rt = R ? R + (size_t)t0 * kG : nullptr;
        if (prepared) {
            ps = ga_prep_stats{};
            return ga_attend_run_prepared(plan.get(), pc->keys[s].get(), T, Q, P, N, Rt, W2, b2,
                                          zmode, C.data(), kept.data(), nullptr, &ps);
        }
        const float *K = CS ? CS->K[s] : A->K.get();
        const float *V = CS ? CS->V[s] : A->V.get();
        return ga_attend_run(plan.get(), N, T, Q, K, V, nullptr, P, N, Rt, W2, b2, C.data(),
                             kept.data(), nullptr);
    };
    // Untimed warm-up call: checks the arguments and faults in the pool's
    // scratch buffers.
    if (step(0, 0) != GA_OK) {
        std::string msg = std::string(prepared ? "ga_attend_run_prepared: " : "ga_attend_run: ") +
                          ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }

    StepTotals tot;
    long long kept_sum = 0;
    int64_t it = 0;
    double step_min = HUGE_VAL; // --step-min: fastest step, seconds
    for (auto _ : st) {
        const int t0 = T == 1 ? (int)(it % kQueries) : 0;
        const int s = (int)(it % nsets);
        std::chrono::steady_clock::time_point c0;
        if (g_step_min)
            c0 = std::chrono::steady_clock::now();
        const ga_status sst = step(t0, s);
        if (g_step_min)
            step_min = std::min(
                step_min,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
        if (sst != GA_OK) {
            std::string msg = std::string("step: ") + ga_last_error();
            st.SkipWithError(msg.c_str());
            break;
        }
        if (prepared)
            tot.add(ps);
        for (int k : kept)
            kept_sum += k;
        benchmark::DoNotOptimize(C.data());
        benchmark::ClobberMemory();
        ++it;
    }
    if (st.error_occurred())
        return;

    const double iters = (double)st.iterations();
    const double row = (double)dh * sizeof(float);
    tot.keys = (double)N * H * T * iters;
    tot.kept = dense ? tot.keys : (double)kept_sum;
    if (!prepared)   // dense: K and V once per step (a block of T queries reads them
                     // once: GEMM-shaped), so T = 32 is bound by the FMA peak
        tot.bytes = dense ? 2.0 * N * H * iters * row : tot.keys * row + tot.kept * row;
    else if (dense && tot.bytes <= 0)   // stats without bytes: packed K + V
        tot.bytes = ((double)((N + 15) / 16) * 16 * H * T * iters + tot.keys) * row;
    const double gpn_flops = dense ? 0.0 : (double)N * T * iters * kGpnPairFlops;
    double ws;
    if (CS)
        ws = (double)CS->total_bytes + (prepared ? (double)pc->keys_bytes * nsets : 0.0) + p_bytes;
    else if (prepared)
        ws = tot.bytes / std::max(iters, 1.0) + p_bytes;
    else
        ws = set_bytes + p_bytes;
    const double dense_ws = CS ? (double)CS->total_bytes : set_bytes;
    set_step_counters(st, c.isa, c.threads, c.path, dense, N, H, dh, T, tot, gpn_flops,
                      p_bytes * T * iters, ws, dense_ws);
    if (g_step_min && step_min < HUGE_VAL)
        st.counters["step_min_us"] = step_min * 1e6;

    if (prepared) {
        st.counters["prep_us"] = pc->prep_us;
        st.counters["prep_new_us"] = pc->prep_new_us;
        st.counters["prep_bytes"] = (double)pc->keys_bytes;
        // The dense full-path step of the same shape (measured once per
        // threads/placement/T and cached with the keys).
        const std::array<int, 3> key = {c.threads, (int)c.place, T};
        double dus = -1;
        for (auto &e : pc->dense_us)
            if (e.first == key)
                dus = e.second;
        if (dus < 0) {
            ga_config dcfg = cfg;
            dcfg.dense = 1;
            PlanPtr dplan(ga_attend_plan_create(kt, pool.get(), &dcfg, N, T, &pst));
            if (dplan) {
                // ~50 ms at ~10 GB/s, 3 to 21 calls.
                const int reps =
                    std::max(3, std::min(21, (int)(5e4 / (1.0 + set_bytes * T / 1e4))));
                dus = median_us(reps, [&] {
                    ga_attend_run(dplan.get(), N, T, A->Q.data(), A->K.get(), A->V.get(), nullptr,
                                  nullptr, 0, nullptr, nullptr, nullptr, C.data(), kept.data(),
                                  nullptr);
                });
                pc->dense_us.push_back({key, dus});
            }
        }
        if (dus > 0) {
            st.counters["dense_us"] = dus;
            st.counters["prep_in_dense_steps"] = pc->prep_us / dus;
        }
    }

    // Mix actually reached: the levels of the ISA's gpn_levels for all the
    // generated queries (the ones attend cycles through).
    if (dense) {
        for (int l = 0; l < kL; l++)
            st.counters["mix" + std::to_string(l)] = l == kL - 1 ? 1.0 : 0.0;
    } else {
        std::vector<uint8_t> lev((size_t)kQueries * N);
        for (int t = 0; t < kQueries; t++)
            kt->gpn_levels(P, N, R + (size_t)t * kG, W2, b2, N, kG, kL, lev.data() + (size_t)t * N);
        set_mix(st, lev.data(), lev.size());
    }
    if (CS)
        st.counters["cold_sets"] = (double)nsets;
}

void run_case(benchmark::State &st, const Case &c)
{
    if (fam_is_attend(c.fam))
        run_attend(st, c);
    else
        run_kernel(st, c);
}

}  // namespace gab
