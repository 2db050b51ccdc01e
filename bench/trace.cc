// trace.cc — the `trace` family: the fused step on real attention traces
// (.gatrace files, include/granattn_trace.h: q, K, V, bias and the GPN's
// levels of one decoder layer for a whole target sentence, dumped from a
// trained model by `granattn inspect --dump-trace`).
//
// Per file, ISA and variant, one benchmark times one decode step (T = 1, all
// heads, 1 thread) per iteration, cycling through a fixed sample of the
// file's query rows (every row when T <= --trace-rows, else --trace-rows
// rows evenly spaced), with the file's levels:
//   mode:seed|renorm path:full              ga_attend_run_levels
//   mode:seed|renorm path:prepared          ga_attend_run_prepared_levels over
//                                           keys prepared once (GA_PREP_Z_EXACT)
//   mode:seed path:prepared-bounded         the same with GA_PREP_Z_BOUNDED
//   mode:dense path:full                    the dense fp32 step (no levels)
//   mode:dense path:prepared                the dense step on packed K
// Both sparse modes run whatever mode the trace was recorded in (the levels
// are the model's either way; tau comes from the file).
// Names: trace/isa:<isa>/file:<stem>/N:<N>/H:<H>/dh:<dh>/T:<T>/mode:<m>/
//        path:<p>/threads:1
// Counters: those of attend (set_step_counters) plus rows (rows sampled),
// layer, and on the prepared path prep_us, prep_bytes, dense_us,
// prep_in_dense_steps.  Levels are read by the full sparse step too (N bytes
// per query): they are in its frac_limit bound, not in its bytes_read.
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef GA_HAVE_ZLIB
#include <zlib.h>
#endif

#include <benchmark/benchmark.h>

#include "bench.h"
#include "granattn_trace.h"

namespace gab {

int g_trace_rows = 64;   // --trace-rows (main.cc)

namespace {

bool ends_with(const std::string &s, const char *suf)
{
    const size_t n = std::strlen(suf);
    return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

// Decompresses a .gz file to a temporary file; returns its path ("" + *err).
std::string gunzip_to_temp(const std::string &path, std::string *err)
{
#ifdef GA_HAVE_ZLIB
    gzFile in = gzopen(path.c_str(), "rb");
    if (!in) {
        *err = path + ": cannot open (" + std::strerror(errno) + ")";
        return "";
    }
    const char *tmpdir = std::getenv("TMPDIR");
    std::string tmp = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/granattn-trace-XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    const int fd = mkstemp(name.data());
    if (fd < 0) {
        *err = std::string("cannot create a temporary file in ") + tmp + " (" +
               std::strerror(errno) + ")";
        gzclose(in);
        return "";
    }
    std::vector<char> buf(1 << 16);
    bool ok = true;
    for (;;) {
        const int n = gzread(in, buf.data(), (unsigned)buf.size());
        if (n < 0) {
            int zerr = 0;
            const char *msg = gzerror(in, &zerr);
            *err = path + ": not a valid gzip file (" + (msg ? msg : "?") + ")";
            ok = false;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            const ssize_t w = write(fd, buf.data() + off, (size_t)(n - off));
            if (w <= 0) {
                *err = std::string("cannot write the temporary file ") + name.data() + " (" +
                       std::strerror(errno) + ")";
                ok = false;
                break;
            }
            off += w;
        }
        if (!ok)
            break;
    }
    gzclose(in);
    if (close(fd) != 0 && ok) {
        *err = std::string("cannot write the temporary file ") + name.data();
        ok = false;
    }
    if (!ok) {
        unlink(name.data());
        return "";
    }
    return name.data();
#else
    *err = path + ": granattn-bench was built without zlib; gunzip the file first";
    return "";
#endif
}

// Reads a trace (.gatrace or .gatrace.gz) into *tr; false + *err on error.
bool load_trace(const std::string &path, ga_trace_data *tr, std::string *err)
{
    std::memset(tr, 0, sizeof *tr);
    std::string file = path, tmp;
    if (ends_with(path, ".gz")) {
        tmp = gunzip_to_temp(path, err);
        if (tmp.empty())
            return false;
        file = tmp;
    }
    const ga_status rc = ga_trace_read(file.c_str(), tr);
    if (!tmp.empty())
        unlink(tmp.c_str());
    if (rc != GA_OK) {
        // The library's message names the file it read: for .gz inputs the
        // temporary one, which is replaced by the original's name.
        std::string msg = ga_last_error();
        for (size_t at; !tmp.empty() && (at = msg.find(tmp)) != std::string::npos;)
            msg.replace(at, tmp.size(), path + " (gunzipped)");
        *err = msg;
        return false;
    }
    return true;
}

std::string make_stem(const std::string &path)
{
    std::string b = path.substr(path.find_last_of('/') == std::string::npos
                                    ? 0
                                    : path.find_last_of('/') + 1);
    for (const char *suf : {".gz", ".gatrace"})
        if (ends_with(b, suf))
            b = b.substr(0, b.size() - std::strlen(suf));
    for (char &ch : b)
        if (!(std::isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_'))
            ch = '_';
    return b.empty() ? std::string("trace") : b;
}

struct TraceDeleter {
    void operator()(ga_trace_data *t) const
    {
        ga_trace_free(t);
        delete t;
    }
};
using TracePtr = std::unique_ptr<ga_trace_data, TraceDeleter>;

struct PlanDel {
    void operator()(ga_attend_plan *p) const { ga_attend_plan_destroy(p); }
};
struct PoolDel {
    void operator()(ga_pool *p) const { ga_pool_destroy(p); }
};

// Single-entry caches: consecutive cases share the file (and, per ISA, its
// prepared keys and the dense step time).
struct TraceCache {
    std::string path;
    TracePtr tr;
    ga_isa isa = GA_ISA_SCALAR;
    KeysPtr keys;
    double prep_us = 0, prep_new_us = 0, dense_us = -1; // prepare (reused) / create
    size_t keys_bytes = 0;
};
std::unique_ptr<TraceCache> g_tc;

struct TraceCase {
    TraceFile file;
    ga_isa isa;
    bool dense;
    ga_norm mode;
    Path path;
};

std::string trace_case_name(const TraceCase &c)
{
    const TraceFile &f = c.file;
    std::string n = std::string("trace/isa:") + ga_isa_name(c.isa) + "/file:" + f.stem +
                    "/N:" + std::to_string(f.N) + "/H:" + std::to_string(f.H) +
                    "/dh:" + std::to_string(f.dh) + "/T:" + std::to_string(f.T);
    n += c.dense ? "/mode:dense" : c.mode == GA_NORM_RENORM ? "/mode:renorm" : "/mode:seed";
    n += std::string("/path:") + path_name(c.path) + "/threads:1";
    return n;
}

void run_trace(benchmark::State &st, const TraceCase &c)
{
    const ga_kernels *kt = ga_kernels_for(c.isa);
    if (!kt) {
        st.SkipWithError(ga_last_error());
        return;
    }
    drop_cold_cache();
    drop_prep_cache();
    const bool prepared = c.path != Path::Full;
    try {
        if (!g_tc || g_tc->path != c.file.path) {
            g_tc.reset();
            auto tc = std::make_unique<TraceCache>();
            tc->path = c.file.path;
            tc->tr.reset(new ga_trace_data());
            std::string err;
            if (!load_trace(c.file.path, tc->tr.get(), &err)) {
                st.SkipWithError(err.c_str());
                return;
            }
            tc->isa = c.isa;
            g_tc = std::move(tc);
        }
    } catch (const std::bad_alloc &) {
        st.SkipWithError("out of memory while loading the trace");
        return;
    }
    TraceCache &tc = *g_tc;
    const ga_trace_data &tr = *tc.tr;
    const int N = tr.N, H = tr.H, dh = tr.dh, hd = H * dh;
    if (tr.T < 1 || N < 1) {
        st.SkipWithError("trace has no query rows or no keys");
        return;
    }
    if (tc.isa != c.isa) {
        tc.keys.reset();
        tc.dense_us = -1;
        tc.isa = c.isa;
    }

    ga_config cfg;
    ga_config_default(&cfg);
    cfg.H = H;
    cfg.dh = dh;
    cfg.g = 1;   // levels are given: the GPN is not evaluated
    cfg.L = tr.L;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        cfg.tau[l] = l < tr.L ? tr.tau[l] : 0.0f;
    cfg.mode = c.mode;
    cfg.dense = c.dense ? 1 : 0;
    if (ga_config_check(&cfg) != GA_OK) {
        std::string msg = std::string("trace configuration: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }
    const ga_prep_z zmode = c.path == Path::PreparedBounded ? GA_PREP_Z_BOUNDED : GA_PREP_Z_EXACT;

    std::unique_ptr<ga_pool, PoolDel> pool(ga_pool_create(1, GA_PLACE_NONE, nullptr, 0));
    if (!pool) {
        std::string msg = std::string("ga_pool_create: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }
    ga_status pst = GA_OK;
    std::unique_ptr<ga_attend_plan, PlanDel> plan(
        ga_attend_plan_create(kt, pool.get(), &cfg, N, 1, &pst));
    if (!plan) {
        std::string msg = std::string("ga_attend_plan_create: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }
    std::vector<float> C(hd);
    std::vector<int> kept(H);

    if (prepared && !tc.keys) {
        std::string err;
        KeysPtr k = make_keys_timed(kt, H, N, dh, tr.K, tr.V, tr.bias, 5, &tc.prep_new_us,
                                    &tc.prep_us, &err);
        if (!k) {
            st.SkipWithError(err.c_str());
            return;
        }
        tc.keys_bytes = ga_keys_bytes(k.get());
        tc.keys = std::move(k);
    }

    // The sampled rows.
    const int nr = std::min(tr.T, std::max(g_trace_rows, 1));
    std::vector<int> rows(nr);
    for (int j = 0; j < nr; j++)
        rows[j] = (int)((long long)j * tr.T / nr);

    ga_prep_stats ps;
    auto step = [&](int t) -> ga_status {
        const float *q = tr.Q + (size_t)t * hd;
        const uint8_t *lev = c.dense ? nullptr : tr.levels + (size_t)t * N;
        if (prepared) {
            ps = ga_prep_stats{};
            return ga_attend_run_prepared_levels(plan.get(), tc.keys.get(), 1, q, lev, zmode,
                                                 C.data(), kept.data(), &ps);
        }
        return ga_attend_run_levels(plan.get(), N, 1, q, tr.K, tr.V, tr.bias, lev, C.data(),
                                    kept.data());
    };
    if (step(rows[0]) != GA_OK) {
        std::string msg = std::string("step: ") + ga_last_error();
        st.SkipWithError(msg.c_str());
        return;
    }

    StepTotals tot;
    long long kept_sum = 0;
    int64_t it = 0;
    for (auto _ : st) {
        if (step(rows[(size_t)(it % nr)]) != GA_OK) {
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
    const double set_bytes = 2.0 * H * N * row;
    tot.keys = (double)N * H * iters;
    tot.kept = c.dense ? tot.keys : (double)kept_sum;
    if (!prepared)
        tot.bytes = c.dense ? 2.0 * tot.keys * row : tot.keys * row + tot.kept * row;
    else if (c.dense && tot.bytes <= 0)
        tot.bytes = ((double)((N + 15) / 16) * 16 * H * iters + tot.keys) * row;
    const double lev_bytes = c.dense || prepared ? 0.0 : (double)N;   // per step
    const double ws = prepared ? tot.bytes / std::max(iters, 1.0) : set_bytes + lev_bytes;
    set_step_counters(st, c.isa, 1, c.path, c.dense, N, H, dh, 1, tot, 0.0, lev_bytes * iters,
                      ws, set_bytes);
    st.counters["rows"] = nr;
    st.counters["layer"] = tr.layer;
    if (!c.dense) {
        std::vector<double> cnt(tr.L, 0.0);
        for (int t : rows)
            for (int i = 0; i < N; i++)
                cnt[tr.levels[(size_t)t * N + i] % tr.L] += 1.0;
        for (int l = 0; l < tr.L; l++)
            st.counters["mix" + std::to_string(l)] = cnt[l] / ((double)nr * N);
    }
    if (prepared) {
        st.counters["prep_us"] = tc.prep_us;
        st.counters["prep_new_us"] = tc.prep_new_us;
        st.counters["prep_bytes"] = (double)tc.keys_bytes;
        if (tc.dense_us < 0) {
            ga_config dcfg = cfg;
            dcfg.dense = 1;
            std::unique_ptr<ga_attend_plan, PlanDel> dplan(
                ga_attend_plan_create(kt, pool.get(), &dcfg, N, 1, &pst));
            if (dplan) {
                int j = 0;
                tc.dense_us = median_us(std::max(5, std::min(21, nr)), [&] {
                    ga_attend_run_levels(dplan.get(), N, 1, tr.Q + (size_t)rows[j++ % nr] * hd,
                                         tr.K, tr.V, tr.bias, nullptr, C.data(), kept.data());
                });
            }
        }
        if (tc.dense_us > 0) {
            st.counters["dense_us"] = tc.dense_us;
            st.counters["prep_in_dense_steps"] = tc.prep_us / tc.dense_us;
        }
    }
}

}  // namespace

void drop_trace_cache() { g_tc.reset(); }

bool scan_traces(const std::vector<std::string> &items, std::vector<TraceFile> *out,
                 std::string *err)
{
    std::vector<std::string> files;
    for (const std::string &item : items) {
        struct stat sb;
        if (stat(item.c_str(), &sb) != 0) {
            *err = "--traces: " + item + ": " + std::strerror(errno);
            return false;
        }
        if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(item.c_str());
            if (!d) {
                *err = "--traces: " + item + ": cannot read the directory (" +
                       std::strerror(errno) + ")";
                return false;
            }
            std::vector<std::string> here;
            while (struct dirent *e = readdir(d)) {
                const std::string n = e->d_name;
                if (ends_with(n, ".gatrace") || ends_with(n, ".gatrace.gz"))
                    here.push_back(item + (ends_with(item, "/") ? "" : "/") + n);
            }
            closedir(d);
            if (here.empty()) {
                *err = "--traces: " + item + ": no .gatrace or .gatrace.gz file in it";
                return false;
            }
            std::sort(here.begin(), here.end());
            files.insert(files.end(), here.begin(), here.end());
        } else if (S_ISREG(sb.st_mode)) {
            files.push_back(item);
        } else {
            *err = "--traces: " + item + ": not a regular file or a directory";
            return false;
        }
    }
    std::vector<std::string> stems;
    for (const std::string &path : files) {
        ga_trace_data tr;
        std::string e;
        if (!load_trace(path, &tr, &e)) {
            *err = "bad trace file: " + e;
            return false;
        }
        TraceFile f;
        f.path = path;
        f.H = tr.H;
        f.N = tr.N;
        f.dh = tr.dh;
        f.T = tr.T;
        f.L = tr.L;
        f.mode = tr.mode;
        f.layer = tr.layer;
        ga_trace_free(&tr);
        if (f.T < 1 || f.N < 1) {
            *err = "bad trace file " + path + ": no query rows or no keys (T " +
                   std::to_string(f.T) + ", N " + std::to_string(f.N) + ")";
            return false;
        }
        if (f.dh > 1024) {
            *err = "trace file " + path + ": dh " + std::to_string(f.dh) +
                   " > 1024 (prepared keys need dh <= 1024)";
            return false;
        }
        std::string stem = make_stem(path), s = stem;
        for (int k = 2; std::find(stems.begin(), stems.end(), s) != stems.end(); k++)
            s = stem + "-" + std::to_string(k);
        stems.push_back(s);
        f.stem = s;
        out->push_back(f);
    }
    return true;
}

std::vector<std::string> register_trace_benchmarks(const std::vector<TraceFile> &files,
                                                   const std::vector<ga_isa> &isas,
                                                   const TraceSel &sel)
{
    auto want_path = [&](Path p) {
        return sel.paths.empty() || std::find(sel.paths.begin(), sel.paths.end(), p) != sel.paths.end();
    };
    auto want_mode = [&](ga_norm m) {
        return sel.modes.empty() || std::find(sel.modes.begin(), sel.modes.end(), m) != sel.modes.end();
    };
    std::vector<std::string> names;
    for (const TraceFile &f : files)
        for (ga_isa isa : isas) {
            std::vector<TraceCase> cs;
            // The trace's own mode first, then the other one.
            const ga_norm own = f.mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
            const ga_norm other = own == GA_NORM_SEED ? GA_NORM_RENORM : GA_NORM_SEED;
            for (ga_norm m : {own, other}) {
                if (!want_mode(m))
                    continue;
                for (Path p : {Path::Full, Path::Prepared, Path::PreparedBounded}) {
                    if (!want_path(p) || (p == Path::PreparedBounded && m != GA_NORM_SEED))
                        continue;
                    cs.push_back({f, isa, false, m, p});
                }
            }
            if (sel.dense)
                for (Path p : {Path::Full, Path::Prepared})
                    if (want_path(p))
                        cs.push_back({f, isa, true, GA_NORM_SEED, p});
            for (const TraceCase &c : cs) {
                const std::string name = trace_case_name(c);
                auto *b = benchmark::RegisterBenchmark(
                    name.c_str(), [c](benchmark::State &st) { run_trace(st, c); });
                b->Unit(benchmark::kMicrosecond);
                names.push_back(name);
            }
        }
    return names;
}

int write_test_trace(const std::string &path)
{
    const int H = 2, N = 200, dh = 16, T = 6, L = 3, npad = 8;
    ga_trace_data tr;
    std::memset(&tr, 0, sizeof tr);
    tr.H = H;
    tr.N = N;
    tr.dh = dh;
    tr.T = T;
    tr.L = L;
    tr.mode = GA_NORM_RENORM;
    tr.layer = 0;
    tr.tau[0] = 0.10f;
    tr.tau[1] = 0.01f;
    tr.tau[2] = 0.0f;
    std::vector<float> Q((size_t)T * H * dh), K((size_t)H * N * dh), V((size_t)H * N * dh),
        bias(N, 0.0f);
    std::vector<uint8_t> lev((size_t)T * N);
    Rng rng(0x7eace001ull);
    // Keys N(0, 1); each query is 3 * (a few keys' sum) + noise, so its
    // scores have a handful of clear winners (a real attention's shape).
    for (float &x : K)
        x = (float)rng.gauss();
    for (float &x : V)
        x = (float)rng.gauss();
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            float *q = &Q[((size_t)t * H + h) * dh];
            for (int d = 0; d < dh; d++)
                q[d] = (float)(0.3 * rng.gauss());
            for (int j = 0; j < 3; j++) {
                const int i = (int)(rng.uniform() * (N - npad));
                for (int d = 0; d < dh; d++)
                    q[d] += 1.5f * K[((size_t)h * N + i) * dh + d];
            }
        }
    for (int i = N - npad; i < N; i++)
        bias[i] = -INFINITY;
    for (uint8_t &l : lev) {
        const double u = rng.uniform();
        l = u < 0.7 ? 0 : u < 0.9 ? 1 : 2;
    }
    tr.Q = Q.data();
    tr.K = K.data();
    tr.V = V.data();
    tr.bias = bias.data();
    tr.levels = lev.data();
    if (ga_trace_write(path.c_str(), &tr) != GA_OK) {
        std::fprintf(stderr, "granattn-bench: --write-test-trace: %s\n", ga_last_error());
        return 1;
    }
    std::fprintf(stderr, "granattn-bench: wrote a test trace (H %d, N %d, dh %d, T %d) to %s\n",
                 H, N, dh, T, path.c_str());
    return 0;
}

}  // namespace gab
