// families.cc — the benchmark bodies: the fused step (attend, attend_block)
// and one family per kernel-table entry, forward and backward.
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
// GPN work per (query, key) pair: g adds + g relus + L*g FMAs (2 flops) + L
// bias adds (docs/SPEC.md §3: independent of d).
constexpr double kGpnPairFlops = 2.0 * kG + 2.0 * kL * kG + kL;

using benchmark::Counter;

// Sets the rate counters from per-run totals and the frac_limit bound.
static void set_rates(benchmark::State &st, const Case &c, double items, double bytes,
                      double flops, double ws, double bound_bytes)
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

static void set_mix(benchmark::State &st, const uint8_t *levels, size_t n)
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
struct KeysDeleter {
    void operator()(ga_keys *k) const { ga_keys_destroy(k); }
};
struct PlanDeleter {
    void operator()(ga_attend_plan *p) const { ga_attend_plan_destroy(p); }
};
using KeysPtr = std::unique_ptr<ga_keys, KeysDeleter>;
using PlanPtr = std::unique_ptr<ga_attend_plan, PlanDeleter>;

// Prepared keys of the current inputs (one per K/V set), with the time of
// ga_keys_create (median of kPrepReps, set 0) -- built once per (inputs, ISA)
// and kept while consecutive cases share them (single entry, like the inputs).
constexpr int kPrepReps = 5;
struct PrepCache {
    std::shared_ptr<AttnData> A;    // holds the inputs (their address is the key)
    std::shared_ptr<ColdSets> CS;
    ga_isa isa = GA_ISA_SCALAR;
    std::vector<KeysPtr> keys;
    double prep_us = 0;
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
    KeysPtr k0;
    pc->prep_us = median_us(kPrepReps, [&] {
        k0.reset();
        k0.reset(ga_keys_create(kt, A->H, A->N, A->dh, A->K.get(), A->V.get(), nullptr, &rc));
    });
    if (!k0) {
        *err = std::string("ga_keys_create: ") + ga_last_error();
        return nullptr;
    }
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
// Prepared cases also report prep_us (ga_keys_create, median of 5, outside
// the loop), prep_bytes (ga_keys_bytes), dense_us (the dense full-path step
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

static void run_kernel(benchmark::State &st, const Case &c)
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

void run_case(benchmark::State &st, const Case &c)
{
    if (fam_is_attend(c.fam))
        run_attend(st, c);
    else
        run_kernel(st, c);
}

}  // namespace gab
