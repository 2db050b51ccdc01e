// main.cc — granattn-bench: command line, sweeps, registration, progress.
//
// Our own flags are parsed (and removed from argv) before
// benchmark::Initialize sees the rest; see usage() for all of them.  Every
// benchmark is registered with benchmark::RegisterBenchmark under a name
// that spells out all its arguments:
//   <family>/isa:<isa>/N:<N>/dh:<dh>/H:<H>/mix:<mix>/dist:<dist>/
//     mode:<seed|renorm|dense>/path:<full|prepared|prepared-bounded>/
//     threads:<t>/place:<policy>/cache:<hot|cold>
// (fields that do not apply to a family are left out, order kept); the
// trace family (trace.cc) has its own fields.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <regex.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "bench.h"

using namespace gab;

namespace {

const char *const kAllIsas[] = {"scalar", "avx2", "avx512", "neon"};

// The kernel families' names, wrapped at 72 columns with a 2-space indent.
std::string kernel_family_list()
{
    std::string out, line = " ";
    for (int f = 0; f < (int)gab::Fam::Count; f++) {
        if (gab::fam_is_attend((gab::Fam)f))
            continue;
        std::string w = gab::fam_name((gab::Fam)f);
        if (line.size() + 1 + w.size() > 72) {
            out += line + "\n";
            line = " ";
        }
        line += " " + w;
    }
    return out + line + ".\n";
}

void usage(FILE *f)
{
    std::fprintf(f,
"usage: granattn-bench [options] [Google Benchmark options]\n"
"\n"
"Benchmarks the granattn kernels (every kernel-table entry, forward and\n"
"backward) and the fused decode step (ga_attend) for every ISA variant this\n"
"CPU supports, with real GPN-driven sparsity.\n"
"\n"
"granattn-bench options:\n"
"  --help, -h          this text\n"
"  --sweep=NAME        which cases to register (default: default)\n"
"                        quick    a handful of attend cases per ISA (N 256 and\n"
"                                 4096; at 4096 also path:prepared and\n"
"                                 prepared-bounded, both modes) + one case per\n"
"                                 kernel; < 1 min on 2 cores\n"
"                        default  attend sparse vs dense per ISA, N 64..65536,\n"
"                                 dh 64, H 4/8, mixes dense/70-20-10/33-33-34,\n"
"                                 gauss2; attend_block on 1..2 threads x\n"
"                                 compact/scatter; cold at N 4096/16384; every\n"
"                                 kernel at N 4096; for avx2/avx512 also\n"
"                                 path:prepared(-bounded) vs full, N 64..16384,\n"
"                                 H 4, mixes dense/70-20-10, seed and renorm\n"
"                                 (attend; attend_block N 1024/16384 renorm);\n"
"                                 ~7 min on an idle 2-core box (4 trace files)\n"
"                        full     every axis of docs/SPEC.md section 6 (hours; see --list)\n"
"  --isa=LIST          restrict the ISA variants (comma list of scalar, avx2,\n"
"                      avx512, neon; default: all, unsupported ones skipped)\n"
"  --list              print the benchmark names that would run, and exit\n"
"  --sgemm             also run the blocked SGEMM family (sgemm/isa:<isa>/M/N/K,\n"
"                      model-sized shapes) against OpenBLAS (isa:openblas) when\n"
"                      built with it; set OPENBLAS_CORETYPE (e.g. SkylakeX) so\n"
"                      OpenBLAS uses this CPU's widest kernels\n"
"  --machine[=FILE]    measure the machine's limits (peak fp32 FMA per ISA and\n"
"                      read bandwidth at 17 working-set sizes from 16 KiB to\n"
"                      1 GiB, 1 and all threads; per-thread CPU time, so\n"
"                      other load on a shared machine does not lower them),\n"
"                      write them as JSON to FILE (default\n"
"                      results/machine-limits.json) and exit (~10 s, 1 GiB RAM)\n"
"  --limits=FILE       load limits written by --machine; adds the frac_limit\n"
"                      counter (without it frac_limit is omitted)\n"
"  Axis overrides (comma lists; they replace the sweep's values in every\n"
"  group of cases, except --family, which filters):\n"
"  --family=LIST       attend, attend_block, or kernel-table entry names\n"
"  --N=LIST  --dh=LIST  --H=LIST\n"
"  --mix=LIST          dense (cfg.dense baseline), fine (all level 2 through\n"
"                      the sparse path), coarse (all level 0), or percentages\n"
"                      of levels 0-1-2 such as 70-20-10, 33-33-34, 90-9-1\n"
"  --dist=LIST         gauss1, gauss2, gauss4 (Gaussian scores with std 1, 2,\n"
"                      4), peaked (8 keys per head ~10 above N(0,1) scores)\n"
"  --mode=LIST         seed, renorm (mix dense always runs as mode:dense)\n"
"  --path=LIST         full (ga_attend_run: the plan's step, unprepared K),\n"
"                      prepared (keys prepared once per source, outside the\n"
"                      timed loop, with ga_keys_create; the step is\n"
"                      ga_attend_run_prepared, seed with GA_PREP_Z_EXACT;\n"
"                      dense: the packed-K dense step), prepared-bounded\n"
"                      (seed with GA_PREP_Z_BOUNDED; for renorm and dense it\n"
"                      is path:prepared).  attend, attend_block, trace\n"
"  --threads=LIST      pool threads (attend: the pool splits heads, and the\n"
"                      keys of the T = 1 step, src/attend_split.c;\n"
"                      attend_block: T = 32 queries split over the pool)\n"
"  --place=LIST        none, compact, scatter (hwloc placement of the pool)\n"
"  --cache=LIST        hot (one K/V set, cache-resident when small) or cold\n"
"                      (rotates K/V sets totalling > 2.5x the LLC, so every\n"
"                      iteration reads DRAM; attend and attend_block only)\n"
"  --step-min          attend, attend_block: also time each step (steady\n"
"                      clock, ~50 ns per step) and report the fastest one as\n"
"                      step_min_us: on a shared machine the least disturbed\n"
"                      step (tools/two_threads.py reads it)\n"
"\n"
"Real traces (the trace family, trace.cc):\n"
"  --traces=LIST       .gatrace / .gatrace.gz files or directories holding\n"
"                      them (comma list; a directory: every such file in it,\n"
"                      sorted).  Each file (q, K, V, bias and the model's\n"
"                      levels of one decoder layer, include/granattn_trace.h)\n"
"                      is validated when the bench starts (a bad file: exit 2\n"
"                      with the reason).  Per file and ISA, one step (T = 1,\n"
"                      all heads, 1 thread) per iteration over a fixed sample\n"
"                      of its query rows with its levels and tau: both\n"
"                      sparse modes x path full/prepared(/prepared-bounded\n"
"                      for seed), and the dense step, full and on packed K.\n"
"                      ISAs: the best one unless --isa is given.  --path,\n"
"                      --mode and --mix (dense or not) select among them;\n"
"                      --family=trace runs the traces alone\n"
"  --trace-rows=N      query rows sampled per file (default 64: every row of\n"
"                      a shorter trace, else N rows evenly spaced)\n"
"  --trace-max=K       at most K files in all, evenly spread over the files\n"
"                      sorted by N (default 0: every file)\n"
"  --write-test-trace=FILE  write a small synthetic trace (H 2, N 200 with 8\n"
"                      padded keys, dh 16, T 6, renorm) for tests, and exit\n"
"\n"
"Main Google Benchmark options (passed through):\n"
"  --benchmark_filter=REGEX        run only matching names ('-REGEX' negates)\n"
"  --benchmark_min_time=SECONDS    minimum time per benchmark (a bare number\n"
"                                  in this version; default per sweep: quick\n"
"                                  0.05, default 0.2, full 0.5)\n"
"  --benchmark_repetitions=N       repeat each benchmark N times (+ mean,\n"
"                                  median, stddev, cv aggregates)\n"
"  --benchmark_report_aggregates_only=true|false\n"
"  --benchmark_out=FILE --benchmark_out_format=json|console|csv\n"
"                                  also write the results to FILE\n"
"  --benchmark_format=console|json|csv   stdout format (default console)\n"
"  --benchmark_counters_tabular=true|false\n"
"  --benchmark_color=auto|true|false\n"
"  --benchmark_list_tests=true     as --list\n"
"  --v=N                           Google Benchmark verbosity\n"
"\n"
"Benchmark names: fields appear in this order, only where they apply:\n"
"  <family>/isa:<isa>/N:<N>/dh:<dh>/H:<H>/mix:<mix>/dist:<dist>/\n"
"    mode:<seed|renorm|dense>/path:<full|prepared|prepared-bounded>/\n"
"    threads:<t>/place:<policy>/cache:<hot|cold>\n"
"  trace/isa:<isa>/file:<stem>/N:<N>/H:<H>/dh:<dh>/T:<T>/mode:<m>/path:<p>/\n"
"    threads:1\n"
"  (mix 70/20/10 is written mix:70-20-10).  Google Benchmark appends\n"
"  /real_time to the name of runs timed in wall-clock time (attend_block,\n"
"  and attend with threads > 1); the others report CPU time.\n"
"  Families: attend (one query, all heads), attend_block (T = 32 queries),\n"
"  and one per kernel-table entry (GA_KERNEL_LIST, granattn_ops.h):\n"
"%s"
"  Kernel families time one call on one head (head 0, query 0 of the\n"
"  attend data); gpn_project_* use the model width d = H*dh.\n"
"\n"
"Counters:\n"
"  items_per_second  keys/s: N*H*T keys per attend step; N per kernel call\n"
"                    (1 query per call for gpn_project_query[_backward])\n"
"  bytes_per_second  useful bytes/s.  attend, path:full: K and V once per\n"
"                    step (2*H*N*dh*4; a dense block of T queries reads them\n"
"                    once) in dense; per query K fully + only the kept rows\n"
"                    of V in sparse.  path:prepared: ga_prep_stats.bytes, the\n"
"                    bytes the step touched (preview codes, scales and\n"
"                    levels, candidate K rows, kept V rows; every K row of\n"
"                    exact-Z seed rows and fallback rows; dense: packed K\n"
"                    and V).  Kernels: the bytes the call must read and write\n"
"  bytes_read        the same bytes per step (attend, attend_block, trace)\n"
"  gflops            GFLOP/s: attend counts 2*dh per exactly computed score\n"
"                    (every key; path:prepared: the candidates) + 2*kept*dh\n"
"                    for the context + the GPN's %d flops per (query, key)\n"
"                    pair (int8 preview dot products are not counted);\n"
"                    kernels count their arithmetic (exp = 1 flop)\n"
"  density           kept / (N*H*T), averaged over the run\n"
"  mix0 mix1 mix2    fraction of (query, key) pairs at levels 0, 1, 2 that\n"
"                    the GPN actually produced (its b2 is calibrated to the\n"
"                    requested mix on the generated data)\n"
"  frac_limit        time_bound / measured time (with --limits): time_bound =\n"
"                    max(bytes / read bandwidth at the nearest measured\n"
"                    working-set size, flops / peak FMA of the run's ISA),\n"
"                    both for the run's thread count; ~1 means at the limit.\n"
"                    Working set: K and V (+ the GPN's P, whose bytes are in\n"
"                    the bound too) on path:full; on path:prepared the bytes\n"
"                    one step touches (bytes_read, + P); cold: every set\n"
"  x_dense_limit     (attend, attend_block, trace; with --limits) the dense\n"
"                    fp32 step of the same shape at its limit (its time_bound,\n"
"                    K and V read once, working set K and V) / this step's\n"
"                    time: > 1 means faster than dense could ever be; for a\n"
"                    dense step, its fraction of that bound\n"
"  cand_per_kept     (path:prepared) keys whose exact score was computed per\n"
"                    kept key; cand_frac: candidates / keys\n"
"  fallback          (path:prepared) (query, head) rows per step that took\n"
"                    the unprepared path (non-finite or out-of-range inputs)\n"
"  z_bound           (path:prepared-bounded) largest relative bound on Z\n"
"  prep_us           (path:prepared) ga_keys_prepare time into keys built\n"
"                    before (reused memory, as a decoder has it), median of 5,\n"
"                    outside the timed loop; prep_new_us: ga_keys_create into\n"
"                    fresh memory; prep_bytes: ga_keys_bytes; dense_us: the\n"
"                    dense full-path step of the same shape (median of a few\n"
"                    calls); prep_in_dense_steps = prep_us / dense_us\n"
"  rows, layer       (trace) query rows sampled, decoder layer of the file\n"
"  cold_sets         number of rotated K/V sets (cache:cold only)\n"
"\n"
"Environment: GRANATTN_AVX512_LOADS=auto|whole|halves (the avx512 variant's\n"
"load tuning, default auto: halves on AMD; shown in the first line and in\n"
"the JSON context as granattn_tuning_avx512).\n"
"\n"
"Exit status: 0 ok, 1 runtime failure, 2 bad command line.\n",
                 kernel_family_list().c_str(), 2 * kG + 2 * kL * kG + kL);
}

[[noreturn]] void die_usage(const std::string &msg)
{
    std::fprintf(stderr, "granattn-bench: %s (see --help)\n", msg.c_str());
    std::exit(2);
}

std::vector<std::string> split_list(const std::string &s, const char *flag)
{
    std::vector<std::string> out;
    size_t a = 0;
    while (a <= s.size()) {
        size_t b = s.find(',', a);
        if (b == std::string::npos)
            b = s.size();
        std::string item = s.substr(a, b - a);
        if (item.empty())
            die_usage(std::string("empty item in ") + flag + "=" + s);
        out.push_back(item);
        a = b + 1;
    }
    return out;
}

std::vector<int> int_list(const std::string &s, const char *flag, int lo, int hi)
{
    std::vector<int> out;
    for (const std::string &it : split_list(s, flag)) {
        char *end;
        long v = std::strtol(it.c_str(), &end, 10);
        if (*end || end == it.c_str() || v < lo || v > hi)
            die_usage(std::string("bad value '") + it + "' in " + flag + " (integer " +
                      std::to_string(lo) + ".." + std::to_string(hi) + ")");
        out.push_back((int)v);
    }
    return out;
}

// A group of cases: the cross product of its axes, for each family.
struct Grid {
    std::vector<Fam> fams;
    std::vector<int> N, dh, H;
    std::vector<std::string> mixes, dists;
    std::vector<ga_norm> modes;
    std::vector<int> threads;
    std::vector<ga_place> places;
    std::vector<bool> cold;
    std::vector<Path> paths = {Path::Full};
    std::vector<ga_isa> only_isas = {};   // empty: every ISA that runs
};

std::vector<Fam> all_kernel_fams()
{
    std::vector<Fam> v;
    for (int f = 0; f < (int)Fam::Count; f++)
        if (!fam_is_attend((Fam)f))
            v.push_back((Fam)f);
    return v;
}

std::vector<Grid> make_sweep(const std::string &name)
{
    const int ncpu = num_cpus();
    std::vector<int> all_threads;
    for (int t = 1; t <= ncpu; t++)
        all_threads.push_back(t);
    const std::vector<int> allN = {64, 256, 1024, 4096, 16384, 65536};
    const std::vector<std::string> all_mixes = {"dense", "fine", "33-33-34",
                                                "70-20-10", "90-9-1", "coarse"};
    const std::vector<std::string> all_dists = {"gauss1", "gauss2", "gauss4", "peaked"};
    const std::vector<ga_norm> both_modes = {GA_NORM_SEED, GA_NORM_RENORM};
    const std::vector<ga_place> all_places = {GA_PLACE_NONE, GA_PLACE_COMPACT, GA_PLACE_SCATTER};
    const std::vector<ga_norm> seed = {GA_NORM_SEED};
    const std::vector<ga_place> none = {GA_PLACE_NONE};
    const std::vector<bool> hot = {false};
    const std::vector<Path> all_paths = {Path::Full, Path::Prepared, Path::PreparedBounded};
    const std::vector<ga_isa> simd = {GA_ISA_AVX2, GA_ISA_AVX512};
    std::vector<Grid> g;
    if (name == "quick") {
        g.push_back({{Fam::Attend}, {256, 4096}, {64}, {4}, {"dense", "70-20-10"}, {"gauss2"},
                     seed, {1}, none, hot});
        g.push_back({{Fam::AttendBlock}, {4096}, {64}, {4}, {"70-20-10"}, {"gauss2"}, seed,
                     {ncpu}, {GA_PLACE_COMPACT}, hot});
        // The prepared path next to the full one (every ISA: the smoke test
        // runs the scalar tables too).
        g.push_back({{Fam::Attend}, {4096}, {64}, {4}, {"dense", "70-20-10"}, {"gauss2"},
                     both_modes, {1}, none, hot, all_paths});
        g.push_back({all_kernel_fams(), {4096}, {64}, {4}, {"70-20-10"}, {"gauss2"}, seed, {1},
                     none, hot});
    } else if (name == "default") {
        g.push_back({{Fam::Attend}, allN, {64}, {4, 8}, {"dense", "70-20-10", "33-33-34"},
                     {"gauss2"}, seed, {1}, none, hot});
        std::vector<int> t12 = {1};
        if (ncpu > 1)
            t12.push_back(2);
        g.push_back({{Fam::AttendBlock}, {1024, 16384}, {64}, {4}, {"dense", "70-20-10"},
                     {"gauss2"}, seed, t12, {GA_PLACE_COMPACT, GA_PLACE_SCATTER}, hot});
        g.push_back({{Fam::Attend}, {4096, 16384}, {64}, {4}, {"dense", "70-20-10"}, {"gauss2"},
                     seed, {1}, none, {true}});
        // Prepared keys (docs/SPEC.md §7) vs the full step, SIMD ISAs only:
        // dense full/packed, 70-20-10 seed (exact and bounded Z) and renorm.
        g.push_back({{Fam::Attend}, {64, 256, 1024, 4096, 16384}, {64}, {4},
                     {"dense", "70-20-10"}, {"gauss2"}, both_modes, {1}, none, hot, all_paths,
                     simd});
        g.push_back({{Fam::AttendBlock}, {1024, 16384}, {64}, {4}, {"70-20-10"}, {"gauss2"},
                     {GA_NORM_RENORM}, {1}, {GA_PLACE_COMPACT}, hot,
                     {Path::Full, Path::Prepared}, simd});
        g.push_back({all_kernel_fams(), {4096}, {64}, {4}, {"70-20-10"}, {"gauss2"}, both_modes,
                     {1}, none, hot});
    } else if (name == "full") {
        // Every data axis, one thread, hot, both paths.
        g.push_back({{Fam::Attend}, allN, {64, 128}, {4, 8}, all_mixes, all_dists, both_modes,
                     {1}, none, hot, all_paths});
        // Threads x placement for both step families.
        g.push_back({{Fam::Attend, Fam::AttendBlock}, allN, {64}, {4, 8},
                     {"dense", "70-20-10", "33-33-34"}, {"gauss2"}, seed, all_threads, all_places,
                     hot});
        // Cold cache.
        g.push_back({{Fam::Attend, Fam::AttendBlock}, {1024, 4096, 16384, 65536}, {64, 128},
                     {4, 8}, {"dense", "70-20-10"}, {"gauss2"}, seed, {1}, none, {true}});
        // Kernels over N, dh, H (where they apply), mixes and distributions.
        g.push_back({all_kernel_fams(), allN, {64, 128}, {4, 8},
                     {"fine", "33-33-34", "70-20-10", "90-9-1", "coarse"}, all_dists, both_modes,
                     {1}, none, hot});
    } else {
        die_usage("unknown sweep '" + name + "' (quick, default or full)");
    }
    return g;
}

// Command-line axis overrides (empty = keep the sweep's values).
struct Overrides {
    std::vector<Fam> fams;
    std::vector<int> N, dh, H, threads;
    std::vector<std::string> mixes, dists;
    std::vector<ga_norm> modes;
    std::vector<ga_place> places;
    std::vector<bool> cold;
    std::vector<Path> paths;
};

void apply(Grid *g, const Overrides &o)
{
    if (!o.fams.empty()) {
        std::vector<Fam> keep;
        for (Fam f : g->fams)
            if (std::find(o.fams.begin(), o.fams.end(), f) != o.fams.end())
                keep.push_back(f);
        g->fams = keep;
    }
    if (!o.N.empty()) g->N = o.N;
    if (!o.dh.empty()) g->dh = o.dh;
    if (!o.H.empty()) g->H = o.H;
    if (!o.mixes.empty()) g->mixes = o.mixes;
    if (!o.dists.empty()) g->dists = o.dists;
    if (!o.modes.empty()) g->modes = o.modes;
    if (!o.threads.empty()) g->threads = o.threads;
    if (!o.places.empty()) g->places = o.places;
    if (!o.cold.empty()) g->cold = o.cold;
    if (!o.paths.empty()) g->paths = o.paths;
}

// Returns "" if the case can run, else why it is skipped.
std::string invalid_reason(const Case &c)
{
    const unsigned f = fam_fields(c.fam);
    const std::string fam = fam_name(c.fam);
    if ((f & F_MIX) && !fam_is_attend(c.fam) && c.mix.dense)
        return "mix:dense does not apply to " + fam + " (it needs GPN levels; use mix:fine)";
    if (c.cold && !fam_is_attend(c.fam))
        return "cache:cold is implemented for attend and attend_block only, not " + fam;
    if ((f & F_THREADS) && c.threads > num_cpus())
        return "threads:" + std::to_string(c.threads) + " > " + std::to_string(num_cpus()) +
               " CPUs (oversubscribed timings are meaningless)";
    if (fam_is_attend(c.fam)) {
        const double set = 2.0 * c.H * c.N * c.dh * sizeof(float);
        if (set > (double)kMemCap)
            return "N:" + std::to_string(c.N) + " H:" + std::to_string(c.H) +
                   " dh:" + std::to_string(c.dh) + " needs more than the memory cap";
        if (c.cold) {
            std::string why;
            if (!cold_sets_needed((size_t)set, &why))
                return why;
        }
    }
    return "";
}

// Matches Google Benchmark's --benchmark_filter semantics (extended regex,
// searched anywhere in the name; a leading '-' negates; "" / "all" = all).
struct Filter {
    bool neg = false, all = true, ok = true;
    regex_t re;
    explicit Filter(std::string spec)
    {
        if (spec.empty() || spec == "all")
            return;
        if (spec[0] == '-') {
            neg = true;
            spec = spec.substr(1);
        }
        all = false;
        ok = regcomp(&re, spec.c_str(), REG_EXTENDED | REG_NOSUB) == 0;
    }
    ~Filter()
    {
        if (!all && ok)
            regfree(&re);
    }
    bool match(const std::string &name) const
    {
        if (all || !ok)
            return true;
        bool m = regexec(&re, name.c_str(), 0, nullptr, 0) == 0;
        return m != neg;
    }
};

// Wraps the display reporter chosen by --benchmark_format and prints one
// progress line per finished benchmark to stderr, unless the display is the
// console on a terminal (which already shows each benchmark as it ends).
class ProgressReporter : public benchmark::BenchmarkReporter {
public:
    ProgressReporter(benchmark::BenchmarkReporter *inner, bool echo, size_t total)
        : inner_(inner), echo_(echo), total_(total) {}
    bool ReportContext(const Context &ctx) override { return inner_->ReportContext(ctx); }
    void Finalize() override { inner_->Finalize(); }
    void ReportRuns(const std::vector<Run> &runs) override
    {
        inner_->ReportRuns(runs);
        if (runs.empty() || runs[0].run_type != Run::RT_Iteration)
            return;
        done_++;
        if (!echo_)
            return;
        const Run &r = runs.back();
        std::string line = "[" + std::to_string(done_) + "/" + std::to_string(total_) + "] " +
                           r.benchmark_name();
        char buf[256];
        if (r.error_occurred) {
            line += "  SKIPPED: " + r.error_message;
        } else {
            std::snprintf(buf, sizeof buf, "  real %.4g %s cpu %.4g %s", r.GetAdjustedRealTime(),
                          benchmark::GetTimeUnitString(r.time_unit), r.GetAdjustedCPUTime(),
                          benchmark::GetTimeUnitString(r.time_unit));
            line += buf;
            static const char *const keys[] = {"items_per_second", "gflops", "density",
                                               "frac_limit", "cand_per_kept", "x_dense_limit"};
            static const char *const labels[] = {"keys/s", "GFLOP/s", "density", "frac_limit",
                                                 "cand/kept", "x_dense_limit"};
            for (int k = 0; k < 6; k++) {
                auto it = r.counters.find(keys[k]);
                if (it != r.counters.end()) {
                    std::snprintf(buf, sizeof buf, "  %s %.4g", labels[k], it->second.value);
                    line += buf;
                }
            }
        }
        std::fprintf(stderr, "%s\n", line.c_str());
        std::fflush(stderr);
    }

private:
    benchmark::BenchmarkReporter *inner_;   // owned by Google Benchmark
    bool echo_;
    size_t total_, done_ = 0;
};

bool starts_with(const std::string &s, const char *p) { return s.rfind(p, 0) == 0; }

}  // namespace

void register_sgemm_benchmarks(); // bench/sgemm.cc
namespace gab {
extern int g_trace_rows;          // bench/trace.cc
}

int main(int argc, char **argv)
{
    std::vector<char *> gb_args = {argv[0]};
    std::string sweep = "default", limits_path, machine_path, format = "console";
    bool list = false, with_sgemm = false, machine = false, user_min_time = false;
    std::vector<std::string> isas(std::begin(kAllIsas), std::end(kAllIsas));
    bool isa_given = false, trace_family = false;
    std::vector<std::string> trace_items;
    int trace_max = 0;
    Overrides ov;

    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto val = [&](const char *flag) -> std::string {
            return a.substr(std::strlen(flag) + 1);   // after "--flag="
        };
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (starts_with(a, "--benchmark_") || a == "--v" || starts_with(a, "--v=")) {
            if (starts_with(a, "--benchmark_min_time"))
                user_min_time = true;
            if (starts_with(a, "--benchmark_format="))
                format = a.substr(std::strlen("--benchmark_format="));
            if (starts_with(a, "--benchmark_list_tests") && a != "--benchmark_list_tests=false")
                list = true;
            gb_args.push_back(argv[i]);
        } else if (a == "--step-min") {
            g_step_min = true;
        } else if (a == "--machine") {
            machine = true;
            machine_path = "results/machine-limits.json";
        } else if (starts_with(a, "--machine=")) {
            machine = true;
            machine_path = val("--machine");
            if (machine_path.empty())
                die_usage("--machine= needs a file name");
        } else if (starts_with(a, "--limits=")) {
            limits_path = val("--limits");
            if (limits_path.empty())
                die_usage("--limits= needs a file name");
        } else if (starts_with(a, "--sweep=")) {
            sweep = val("--sweep");
        } else if (starts_with(a, "--isa=")) {
            isas = split_list(val("--isa"), "--isa");
            isa_given = true;
            for (const std::string &s : isas) {
                ga_isa x;
                if (ga_isa_from_name(s.c_str(), &x) != GA_OK)
                    die_usage("unknown ISA '" + s + "' in --isa (scalar, avx2, avx512, neon)");
            }
        } else if (a == "--list") {
            list = true;
        } else if (a == "--sgemm") {
            with_sgemm = true;
        } else if (starts_with(a, "--family=")) {
            bool any = false;
            for (const std::string &s : split_list(val("--family"), "--family")) {
                Fam f;
                if (s == "trace")
                    trace_family = true;
                else if (!fam_from_name(s, &f))
                    die_usage("unknown family '" + s + "' in --family");
                else
                    ov.fams.push_back(f);
                any = true;
            }
            // Only "trace": no grid family at all (an empty filter keeps them).
            if (any && ov.fams.empty())
                ov.fams.push_back(Fam::Count);
        } else if (starts_with(a, "--N=")) {
            ov.N = int_list(val("--N"), "--N", 0, 1 << 24);
        } else if (starts_with(a, "--dh=")) {
            ov.dh = int_list(val("--dh"), "--dh", 1, 4096);
        } else if (starts_with(a, "--H=")) {
            ov.H = int_list(val("--H"), "--H", 1, 256);
        } else if (starts_with(a, "--threads=")) {
            ov.threads = int_list(val("--threads"), "--threads", 1, 4096);
        } else if (starts_with(a, "--mix=")) {
            for (const std::string &s : split_list(val("--mix"), "--mix")) {
                Mix m;
                if (!parse_mix(s, &m))
                    die_usage("bad mix '" + s + "' (dense, fine, coarse or a-b-c percentages "
                              "summing to 100)");
                ov.mixes.push_back(m.name);
            }
        } else if (starts_with(a, "--dist=")) {
            for (const std::string &s : split_list(val("--dist"), "--dist")) {
                Dist d;
                if (!parse_dist(s, &d))
                    die_usage("bad dist '" + s + "' (gauss1, gauss2, gauss4, peaked)");
                ov.dists.push_back(s);
            }
        } else if (starts_with(a, "--mode=")) {
            for (const std::string &s : split_list(val("--mode"), "--mode")) {
                if (s == "seed")
                    ov.modes.push_back(GA_NORM_SEED);
                else if (s == "renorm")
                    ov.modes.push_back(GA_NORM_RENORM);
                else
                    die_usage("bad mode '" + s + "' (seed, renorm; use --mix=dense for dense)");
            }
        } else if (starts_with(a, "--path=")) {
            for (const std::string &s : split_list(val("--path"), "--path")) {
                Path pth;
                if (!parse_path(s, &pth))
                    die_usage("bad path '" + s + "' (full, prepared, prepared-bounded)");
                ov.paths.push_back(pth);
            }
        } else if (starts_with(a, "--traces=")) {
            for (const std::string &s : split_list(val("--traces"), "--traces"))
                trace_items.push_back(s);
        } else if (starts_with(a, "--trace-rows=")) {
            g_trace_rows = int_list(val("--trace-rows"), "--trace-rows", 1, 1 << 20)[0];
        } else if (starts_with(a, "--trace-max=")) {
            trace_max = int_list(val("--trace-max"), "--trace-max", 0, 1 << 20)[0];
        } else if (starts_with(a, "--write-test-trace=")) {
            const std::string f = val("--write-test-trace");
            if (f.empty())
                die_usage("--write-test-trace= needs a file name");
            return write_test_trace(f);
        } else if (starts_with(a, "--place=")) {
            for (const std::string &s : split_list(val("--place"), "--place")) {
                if (s == "none")
                    ov.places.push_back(GA_PLACE_NONE);
                else if (s == "compact")
                    ov.places.push_back(GA_PLACE_COMPACT);
                else if (s == "scatter")
                    ov.places.push_back(GA_PLACE_SCATTER);
                else
                    die_usage("bad place '" + s + "' (none, compact, scatter)");
            }
        } else if (starts_with(a, "--cache=")) {
            for (const std::string &s : split_list(val("--cache"), "--cache")) {
                if (s == "hot")
                    ov.cold.push_back(false);
                else if (s == "cold")
                    ov.cold.push_back(true);
                else
                    die_usage("bad cache '" + s + "' (hot, cold)");
            }
        } else {
            die_usage("unknown option '" + a + "'");
        }
    }

    if (machine)
        return measure_machine(machine_path);

    if (!limits_path.empty()) {
        std::string err;
        if (!load_limits(limits_path, &err)) {
            std::fprintf(stderr, "granattn-bench: %s\n", err.c_str());
            return 2;
        }
    }

    // ISA variants: supported ones run, the others get one line each.
    std::vector<ga_isa> run_isas;
    for (const std::string &s : isas) {
        ga_isa x;
        ga_isa_from_name(s.c_str(), &x);
        if (std::find(run_isas.begin(), run_isas.end(), x) != run_isas.end())
            continue;
        if (ga_isa_supported(x)) {
            if (!ga_kernels_for(x)) { // e.g. a bad GRANATTN_AVX512_LOADS
                std::fprintf(stderr, "granattn-bench: %s\n", ga_last_error());
                return 2;
            }
            run_isas.push_back(x);
        } else
            std::fprintf(stderr, "skipping %s: %s\n", s.c_str(), ga_isa_unsupported_reason(x));
    }

    // Expand the sweep into cases (ISA innermost, so consecutive runs share
    // their generated inputs), dropping duplicates and invalid combinations.
    std::vector<Grid> grids = make_sweep(sweep);
    std::vector<Case> cases;
    std::set<std::string> names, reasons;
    for (Grid &g : grids) {
        apply(&g, ov);
        // Odometer over the axes; the last one (ISA) turns fastest.
        const size_t dims[] = {g.fams.size(),  g.N.size(),       g.dh.size(),     g.H.size(),
                               g.mixes.size(), g.dists.size(),   g.modes.size(),  g.threads.size(),
                               g.places.size(), g.cold.size(),   g.paths.size(),  run_isas.size()};
        constexpr size_t nd = sizeof dims / sizeof dims[0];
        bool empty = false;
        for (size_t d : dims)
            empty |= d == 0;
        if (empty)
            continue;
        size_t ix[nd] = {0};
        for (;;) {
            Case c;
            c.fam = g.fams[ix[0]];
            c.N = g.N[ix[1]];
            c.dh = g.dh[ix[2]];
            c.H = g.H[ix[3]];
            parse_mix(g.mixes[ix[4]], &c.mix);
            parse_dist(g.dists[ix[5]], &c.dist);
            c.mode = g.modes[ix[6]];
            c.threads = g.threads[ix[7]];
            c.place = g.places[ix[8]];
            c.cold = g.cold[ix[9]];
            c.path = g.paths[ix[10]];
            c.isa = run_isas[ix[11]];
            normalize_case(&c);
            const std::string why = invalid_reason(c);
            if (!g.only_isas.empty() &&
                std::find(g.only_isas.begin(), g.only_isas.end(), c.isa) == g.only_isas.end()) {
                // this group is for other ISAs
            } else if (!why.empty()) {
                if (reasons.insert(why).second)
                    std::fprintf(stderr, "skipping: %s\n", why.c_str());
            } else if (names.insert(case_name(c)).second) {
                cases.push_back(c);
            }
            size_t k = nd;
            while (k > 0 && ++ix[k - 1] == dims[k - 1])
                ix[--k] = 0;
            if (k == 0)
                break;
        }
    }

    // Trace files: validated now (a bad file stops the run before anything
    // is measured); with --family, only when it names trace.
    std::vector<TraceFile> traces;
    const bool want_traces = !trace_items.empty() && (ov.fams.empty() || trace_family);
    if (trace_family && trace_items.empty())
        die_usage("--family=trace needs --traces=FILES|DIRS");
    if (want_traces) {
        std::string err;
        if (!scan_traces(trace_items, &traces, &err)) {
            std::fprintf(stderr, "granattn-bench: %s\n", err.c_str());
            return 2;
        }
        if (trace_max > 0 && (int)traces.size() > trace_max) {
            // Evenly spread over the files sorted by N (ties: by name).
            std::stable_sort(traces.begin(), traces.end(),
                             [](const TraceFile &a, const TraceFile &b) { return a.N < b.N; });
            std::vector<TraceFile> pick;
            for (int j = 0; j < trace_max; j++)
                pick.push_back(traces[(size_t)((double)j * (traces.size() - 1) /
                                               std::max(trace_max - 1, 1) + 0.5)]);
            traces = pick;
        }
    }
    // Traces run on the best ISA unless --isa was given.
    std::vector<ga_isa> trace_isas = run_isas;
    if (!isa_given && !run_isas.empty()) {
        ga_isa best = run_isas[0];
        for (ga_isa x : run_isas)
            if (x == ga_isa_best())
                best = x;
        trace_isas = {best};
    }

    if (cases.empty() && traces.empty()) {
        std::fprintf(stderr, "granattn-bench: no benchmark left to run (sweep %s with the "
                             "given --isa and axis flags)\n", sweep.c_str());
        return list ? 0 : 1;
    }
    if (list)
        gb_args.push_back(const_cast<char *>("--benchmark_list_tests=true"));
    // Per-sweep default minimum time, passed as the flag: Benchmark::MinTime()
    // would append "/min_time:X" to every name.
    std::string min_time_flag = std::string("--benchmark_min_time=") +
                                (sweep == "quick" ? "0.05" : sweep == "default" ? "0.2" : "0.5");
    if (!user_min_time)
        gb_args.push_back(&min_time_flag[0]);
    int gb_argc = (int)gb_args.size();
    gb_args.push_back(nullptr);
    // The per-microarchitecture tuning the variants run with (ga_isa_tuning):
    // in the JSON context, so that results from two machines compare.
    for (ga_isa x : run_isas)
        if (ga_isa_tuning(x)[0])
            benchmark::AddCustomContext(std::string("granattn_tuning_") + ga_isa_name(x),
                                        ga_isa_tuning(x));
    benchmark::Initialize(&gb_argc, gb_args.data());
    if (benchmark::ReportUnrecognizedArguments(gb_argc, gb_args.data()))
        return 2;

    Filter filter(benchmark::GetBenchmarkFilter());
    if (!filter.ok) {
        std::fprintf(stderr, "granattn-bench: bad --benchmark_filter regex\n");
        return 2;
    }
    size_t total = 0;
    for (const Case &c : cases) {
        const std::string name = case_name(c);
        // Wall-clock time where several threads work (and for attend_block
        // throughout, so its thread counts compare like with like).
        const bool real_time = c.fam == Fam::AttendBlock || c.threads > 1;
        auto *b = benchmark::RegisterBenchmark(name.c_str(),
                                               [c](benchmark::State &st) { run_case(st, c); });
        b->Unit(benchmark::kMicrosecond);
        if (real_time)
            b->UseRealTime();
        if (filter.match(real_time ? name + "/real_time" : name))
            total++;
    }
    if (!traces.empty()) {
        TraceSel sel;
        sel.paths = ov.paths;
        sel.modes = ov.modes;
        sel.dense = ov.mixes.empty() ||
                    std::find(ov.mixes.begin(), ov.mixes.end(), "dense") != ov.mixes.end();
        // --mix without any sparse mix: no sparse trace cases.
        if (!ov.mixes.empty() &&
            std::all_of(ov.mixes.begin(), ov.mixes.end(),
                        [](const std::string &m) { return m == "dense"; }))
            sel.modes = {(ga_norm)-1};
        for (const std::string &name : register_trace_benchmarks(traces, trace_isas, sel))
            if (filter.match(name))
                total++;
    }

    if (!list) {
        std::fprintf(stderr,
                     "granattn-bench: sweep %s, %zu benchmarks (%zu trace files), LLC %.0f MiB, "
                     "%d CPUs, limits %s%s%s\n",
                     sweep.c_str(), total, traces.size(), llc_bytes() / 1048576.0, num_cpus(),
                     g_limits.loaded ? g_limits.path.c_str() : "none (no frac_limit)",
                     ga_isa_supported(GA_ISA_AVX512) ? ", avx512 " : "",
                     ga_isa_tuning(GA_ISA_AVX512));
    }
    if (with_sgemm)
        register_sgemm_benchmarks(); // not counted in the progress total
    benchmark::BenchmarkReporter *display = benchmark::CreateDefaultDisplayReporter();
    const bool echo = !isatty(STDOUT_FILENO) || format != "console";
    ProgressReporter progress(display, echo && !list, total);
    benchmark::RunSpecifiedBenchmarks(&progress);
    benchmark::Shutdown();
    return 0;
}
