// bench.h — declarations shared by the files of granattn-bench.
//
//   main.cc      command line, sweeps, registration, progress reporter
//   families.cc  the benchmark bodies (attend, attend_block, every kernel)
//   workload.cc  generated inputs: GPN with calibrated b2, score
//                distributions, cold-cache buffer sets, LLC size
//   machine.cc   --machine (peak FMA, read bandwidth) and --limits loading
//   trace.cc     the `trace` family: steps on .gatrace files (real q, K, V,
//                levels), --write-test-trace
#ifndef GA_BENCH_H
#define GA_BENCH_H

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "granattn.h"

namespace benchmark {
class State;
}

namespace gab {

// ------------------------------------------------------------ fixed shapes
constexpr int kG = 16;          // GPN hidden width (docs/SPEC.md §1 default)
constexpr int kL = 3;           // levels: 0 coarse, 1 medium, 2 fine
// GPN work per (query, key) pair: g adds + g relus + L*g FMAs (2 flops) + L
// bias adds (docs/SPEC.md §3: independent of d).
constexpr double kGpnPairFlops = 2.0 * kG + 2.0 * kL * kG + kL;
constexpr int kBlockT = 32;     // queries per attend_block step
constexpr int kQueries = 32;    // queries generated per workload (attend cycles them)

// ------------------------------------------------------------ axes
// Sparsity mix: target fraction of (query, key) pairs at each level.
struct Mix {
    std::string name;                 // as it appears in benchmark names
    bool dense = false;               // cfg.dense baseline (no GPN)
    std::array<double, kL> frac{};    // targets, sum 1 (unused when dense)
};
// Parses dense, fine, coarse, or "a-b-c" / "a/b/c" percentages summing to
// 100.  Returns false on a bad name.
bool parse_mix(const std::string &s, Mix *out);

// Score distribution of s_i = q.k_i / sqrt(dh) over the keys of a query.
struct Dist {
    std::string name;   // gauss1, gauss2, gauss4, peaked
    double sigma = 1;   // std of the background scores
    bool peaked = false;
};
bool parse_dist(const std::string &s, Dist *out);

// Path of the fused step (attend, attend_block, trace): the unprepared plan
// run, or the run over keys prepared once (ga_keys_create, docs/SPEC.md §7)
// with the exact seed-mode Z or (seed only) the bounded one.
enum class Path { Full, Prepared, PreparedBounded };
const char *path_name(Path p);            // full, prepared, prepared-bounded
bool parse_path(const std::string &s, Path *out);

// Benchmark families: the fused step and one per kernel-table entry, the
// latter generated from GA_KERNEL_LIST (include/granattn_ops.h): Fam::<entry>
// (e.g. Fam::scores_backward).  A new list entry needs a line in kFams and a
// case in run_case (families.cc); the compiler points at both.
enum class Fam {
    Attend,
    AttendBlock,
#define GAB_FAM_ENUM(ret, name, params) name,
    GA_KERNEL_LIST(GAB_FAM_ENUM)
#undef GAB_FAM_ENUM
    Count
};

// Name fields, in the order they appear in a benchmark name.
enum Field : unsigned {
    F_N = 1u << 0,
    F_DH = 1u << 1,
    F_H = 1u << 2,
    F_MIX = 1u << 3,
    F_DIST = 1u << 4,
    F_MODE = 1u << 5,
    F_THREADS = 1u << 6,
    F_PLACE = 1u << 7,
    F_CACHE = 1u << 8,
    F_PATH = 1u << 9,   // after mode in the name
};

const char *fam_name(Fam f);
unsigned fam_fields(Fam f);         // which Field bits apply to the family
bool fam_from_name(const std::string &s, Fam *out);
bool fam_is_attend(Fam f);          // attend or attend_block

// One benchmark instance.  Fields that do not apply to the family hold
// canonical defaults (see normalize_case) so equal names mean equal cases.
struct Case {
    Fam fam = Fam::Attend;
    ga_isa isa = GA_ISA_SCALAR;
    int N = 4096, dh = 64, H = 4;
    Mix mix;
    Dist dist;
    ga_norm mode = GA_NORM_SEED;
    Path path = Path::Full;
    int threads = 1;
    ga_place place = GA_PLACE_NONE;
    bool cold = false;
};
void normalize_case(Case *c);
std::string case_name(const Case &c);
void run_case(benchmark::State &st, const Case &c);   // families.cc
// One kernel-table family's body (kernel_families.cc; run_case calls it).
void run_kernel(benchmark::State &st, const Case &c);
// Sets items/s, bytes/s, GFLOP/s and frac_limit (from --limits) from per-run
// totals: items, bytes and flops; ws = the working set that picks the
// bandwidth level, bound_bytes = the bytes the bound charges.
void set_rates(benchmark::State &st, const Case &c, double items, double bytes, double flops,
               double ws, double bound_bytes);
// mix0..mix2: the fraction of levels[0..n) at each level.
void set_mix(benchmark::State &st, const uint8_t *levels, size_t n);

// ------------------------------------------------------------ workloads
// Deterministic random numbers (splitmix64 + Box-Muller).
class Rng {
public:
    explicit Rng(uint64_t seed) : s_(seed) {}
    uint64_t next();
    double uniform();   // in (0, 1)
    double gauss();     // N(0, 1)
private:
    uint64_t s_;
    bool have_ = false;
    double spare_ = 0;
};

// 64-byte aligned float buffer without zero-initialisation.
struct FreeDeleter {
    void operator()(void *p) const;
};
using FloatBuf = std::unique_ptr<float[], FreeDeleter>;
FloatBuf alloc_floats(size_t n);   // throws std::bad_alloc on failure

// GPN of one layer for a source of N keys and model width d = H*dh:
// P = U E^T + b1 (via the reference gpn_project_keys, E discarded),
// R[t] = W x_t for kQueries decoder states, random W2; b2 calibrated per mix.
struct GpnData {
    int N = 0, d = 0;
    std::vector<float> U, b1, W, X, W2;   // U,W [g][d]; b1 [g]; X [T][d]; W2 [L][g]
    FloatBuf P;                           // [g][N], ldp = N
    std::vector<float> R;                 // [kQueries][g]
    // Calibrated output bias for a sparse mix (cached per mix name).
    const float *b2_for(const Mix &mix);
private:
    std::vector<std::pair<std::string, std::array<float, GA_MAX_LEVELS>>> b2_cache_;
};
std::shared_ptr<GpnData> get_gpn(int N, int d);

// Attention inputs: Q [kQueries][H*dh], K and V [H][N][dh] with scores of
// the requested distribution.
struct AttnData {
    int N = 0, dh = 0, H = 0;
    Dist dist;
    std::vector<float> Q;
    FloatBuf K, V;
    size_t kv_floats() const { return (size_t)H * N * dh; }
};
std::shared_ptr<AttnData> get_attn(int N, int dh, int H, const Dist &dist);

// Independent copies of K/V for cold-cache runs (set 0 is the AttnData
// itself; the others are row-rotated copies so every set has the same score
// statistics but its own memory).
struct ColdSets {
    std::vector<const float *> K, V;       // one pointer per set
    std::vector<FloatBuf> owned;           // backing memory of sets 1..n-1
    size_t total_bytes = 0;                // K+V bytes over all sets
};
// Number of sets needed so that the sets together exceed 2.5x the LLC,
// or 0 with *why set when that would pass the memory cap.
int cold_sets_needed(size_t set_bytes, std::string *why);
std::shared_ptr<ColdSets> get_cold(const std::shared_ptr<AttnData> &a, int nsets);
void drop_cold_cache();

// Encoder output E [N][d] for the gpn_project_keys kernels (cached).
const float *get_encoder(int N, int d);

// Total last-level cache bytes (hwloc, else sysconf, else 32 MiB).
size_t llc_bytes();
// Memory cap for one run's inputs (bytes).
constexpr size_t kMemCap = (size_t)1792 << 20;

// ------------------------------------------------------------ limits
struct Limits {
    bool loaded = false;
    std::string path;
    struct Peak { std::string isa; int threads; double gflops; };
    struct Bw { double bytes; int threads; double gbs; };
    std::vector<Peak> peaks;
    std::vector<Bw> bws;
    std::string bw_isa;
    // GFLOP/s peak of `isa` for the entry with the largest thread count <=
    // threads (0 when unknown).
    double peak_gflops(const char *isa, int threads) const;
    // Read bandwidth (GB/s) at the measured size nearest to ws (log scale),
    // same thread rule (0 when unknown).
    double bw_gbs(double ws, int threads) const;
    // Lower bound of the run time in seconds for moving `bytes` (working set
    // ws) and computing `flops`: max(bytes/bw, flops/peak); 0 when unknown.
    double time_bound(const char *isa, int threads, double ws, double bytes,
                      double flops) const;
};
extern Limits g_limits;
// --step-min: attend and attend_block also time every step with a steady
// clock and report the fastest as the counter step_min_us.
extern bool g_step_min;
// Loads FILE (written by --machine); false + message on error.
bool load_limits(const std::string &path, std::string *err);
// Measures the machine and writes FILE; returns a process exit code.
int measure_machine(const std::string &path);

int num_cpus();

// ------------------------------------------------------------ step helpers
// (families.cc; shared by attend, attend_block and trace)
// Per-iteration totals of a fused-step loop, from ga_prep_stats (prepared)
// or counted by the harness (full).
struct StepTotals {
    double keys = 0;         // (query, head, key) triples
    double kept = 0;
    double candidates = 0;   // prepared: keys whose exact score was computed
    double rows = 0, fallback = 0;
    double bytes = 0;        // bytes touched (bytes_read)
    double z_bound = 0;      // largest relative Z bound (bounded seed)
    // Adds one prepared step's statistics.
    void add(const ga_prep_stats &ps)
    {
        candidates += (double)ps.candidates;
        rows += (double)ps.rows;
        fallback += (double)ps.fallback;
        bytes += ps.bytes;
        z_bound = std::max(z_bound, ps.z_bound);
    }
};
// Time of fn() in microseconds: median of `reps` calls after one warm-up.
double median_us(int reps, const std::function<void()> &fn);
struct KeysDeleter {
    void operator()(ga_keys *k) const { ga_keys_destroy(k); }
};
using KeysPtr = std::unique_ptr<ga_keys, KeysDeleter>;
// Prepared keys of K, V [H][N][dh] (bias [N] or NULL) with the two timings the
// prepared cases report, medians of `reps`: *new_us = ga_keys_create into
// fresh memory, *prep_us = ga_keys_prepare into the keys built (reused
// memory, as a decoder has it).  nullptr with *err on a library error.
KeysPtr make_keys_timed(const ga_kernels *kt, int H, int N, int dh, const float *K,
                        const float *V, const float *bias, int reps, double *new_us,
                        double *prep_us, std::string *err);
// Sets the step counters of an attend/attend_block/trace run (see --help):
// items, bytes_per_second, bytes_read, gflops, density, frac_limit,
// x_dense_limit and, on the prepared path, cand_per_kept, cand_frac,
// fallback, z_bound.  extra_bytes: bytes read besides the step's own per
// iteration (the GPN's P) -- in the bound, not in bytes_read; ws: working
// set of the bandwidth limit; dense_ws: working set of the dense step
// (K and V) for x_dense_limit.
void set_step_counters(benchmark::State &st, ga_isa isa, int threads, Path path, bool dense,
                       int N, int H, int dh, int T, const StepTotals &tot, double gpn_flops,
                       double extra_bytes, double ws, double dense_ws);

// ------------------------------------------------------------ traces (trace.cc)
// One registered trace case per (file, ISA, mode or dense, path).
struct TraceFile {
    std::string path;        // as given
    std::string stem;        // name field: base name without .gatrace[.gz], sanitised
    int H = 0, N = 0, dh = 0, T = 0, L = 0, mode = 0, layer = 0;
};
// Expands --traces items (files or directories: every *.gatrace and
// *.gatrace.gz in them, sorted) and validates each file (a full read:
// magic, sizes, CRC, values).  false + message on the first bad item.
bool scan_traces(const std::vector<std::string> &items, std::vector<TraceFile> *out,
                 std::string *err);
// Which trace cases to register: paths and sparse modes (empty = all),
// and whether the dense steps (full and packed) are included.
struct TraceSel {
    std::vector<Path> paths;
    std::vector<ga_norm> modes;
    bool dense = true;
};
// Registers the trace family for the given files and ISAs; returns the
// names registered (for the progress total).
std::vector<std::string> register_trace_benchmarks(const std::vector<TraceFile> &files,
                                                   const std::vector<ga_isa> &isas,
                                                   const TraceSel &sel);
// Frees the cached trace file and its prepared keys (other families call it).
void drop_trace_cache();
// Frees the prepared keys of the attend families (the trace family calls it).
void drop_prep_cache();
// Writes a small synthetic trace (H 2, N 200 with 8 padded keys, dh 16,
// T 6, L 3, renorm) to path; returns a process exit code.
int write_test_trace(const std::string &path);

}  // namespace gab

#endif
