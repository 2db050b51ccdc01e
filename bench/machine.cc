// machine.cc — the machine's measured limits: `--machine[=FILE]` measures
// them and writes JSON, `--limits=FILE` loads them for the frac_limit counter.
//
// Peak fp32 FMA (GFLOP/s), per ISA, 1 thread and all threads: 12 independent
// accumulator chains (enough to cover FMA latency x 2 ports), each step
// acc = acc * a + b counted as 2 flops per lane.
//   scalar  one lane: scalar SSE mulss + addss (the baseline x86-64 code of the
//           reference has no FMA instruction; on AArch64 scalar fmadd)
//   avx2    ymm vfmadd (8 lanes)      avx512  zmm vfmadd (16 lanes)
//   neon    q-register fmla (4 lanes)
// Read bandwidth (GB/s = 1e9 bytes/s): a streaming sum with the best ISA
// over 15 working sets of 16 KiB .. 1 GiB, 1 thread and all threads (each
// thread sums its own contiguous share of the buffer).  Best of several
// trials each time, timed in per-thread CPU time, since the machine is shared.
//
// File format (all numbers plain JSON):
//   { "format": "granattn-machine-limits/1", "host": ..., "date": ...,
//     "cpus": 2, "llc_bytes": ...,
//     "peak_fma": [ {"isa": "avx512", "threads": 1, "gflops": 123.4}, ... ],
//     "bandwidth": { "isa": "avx512",
//                    "points": [ {"bytes": 16384, "threads": 1, "gbs": 200.1}, ... ] } }
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "bench.h"

namespace gab {

Limits g_limits;
bool g_step_min = false;

static double thread_cpu_seconds()
{
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Runs fn(thread_index) on `threads` threads at once (the caller runs index
// 0) and returns the longest per-thread CPU time of fn.  CPU time rather than
// wall time: on a shared machine other processes preempt the measurement, and
// Google Benchmark reports CPU time for the single-thread runs that frac_limit
// is mostly about.  (With several threads this assumes they overlapped.)
static double run_parallel(int threads, const std::function<void(int)> &fn)
{
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> cpu(threads, 0.0);
    auto body = [&](int t) {
        const double c0 = thread_cpu_seconds();
        fn(t);
        cpu[t] = thread_cpu_seconds() - c0;
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; t++)
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire))
                std::this_thread::yield();
            body(t);
        });
    while (ready.load() < threads - 1)
        std::this_thread::yield();
    go.store(true, std::memory_order_release);
    body(0);
    for (auto &th : pool)
        th.join();
    return *std::max_element(cpu.begin(), cpu.end());
}

static volatile float g_sink;

// ------------------------------------------------------------ FMA kernels
// Each returns the number of flops performed (2 per lane per chain step).
#if defined(__x86_64__)
static double fma_scalar(long iters)
{
    __m128 a0 = _mm_set_ss(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m128 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m128 m = _mm_set_ss(0.999999f), b = _mm_set_ss(1e-7f);
#define GA_STEP(x) x = _mm_add_ss(_mm_mul_ss(x, m), b)
    for (long i = 0; i < iters; i++) {
        GA_STEP(a0); GA_STEP(a1); GA_STEP(a2); GA_STEP(a3); GA_STEP(a4); GA_STEP(a5);
        GA_STEP(a6); GA_STEP(a7); GA_STEP(a8); GA_STEP(a9); GA_STEP(a10); GA_STEP(a11);
    }
#undef GA_STEP
    __m128 s = _mm_add_ss(_mm_add_ss(_mm_add_ss(a0, a1), _mm_add_ss(a2, a3)),
                          _mm_add_ss(_mm_add_ss(a4, a5), _mm_add_ss(a6, a7)));
    s = _mm_add_ss(s, _mm_add_ss(_mm_add_ss(a8, a9), _mm_add_ss(a10, a11)));
    g_sink = _mm_cvtss_f32(s);
    return 2.0 * 12 * (double)iters;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters)
{
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m256 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#define GA_STEP(x) x = _mm256_fmadd_ps(x, m, b)
    for (long i = 0; i < iters; i++) {
        GA_STEP(a0); GA_STEP(a1); GA_STEP(a2); GA_STEP(a3); GA_STEP(a4); GA_STEP(a5);
        GA_STEP(a6); GA_STEP(a7); GA_STEP(a8); GA_STEP(a9); GA_STEP(a10); GA_STEP(a11);
    }
#undef GA_STEP
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    g_sink = _mm256_cvtss_f32(s);
    return 2.0 * 8 * 12 * (double)iters;
}

// Horizontal sum of a zmm (AVX-512F only; avoids _mm512_reduce_add_ps, which
// trips a -Wuninitialized false positive in GCC 12's header).
__attribute__((target("avx512f"))) static float hsum512(__m512 v)
{
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float s = 0;
    for (float x : lanes)
        s += x;
    return s;
}

__attribute__((target("avx512f,fma"))) static double fma_avx512(long iters)
{
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define GA_STEP(x) x = _mm512_fmadd_ps(x, m, b)
    for (long i = 0; i < iters; i++) {
        GA_STEP(a0); GA_STEP(a1); GA_STEP(a2); GA_STEP(a3); GA_STEP(a4); GA_STEP(a5);
        GA_STEP(a6); GA_STEP(a7); GA_STEP(a8); GA_STEP(a9); GA_STEP(a10); GA_STEP(a11);
    }
#undef GA_STEP
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    g_sink = hsum512(s);
    return 2.0 * 16 * 12 * (double)iters;
}
#elif defined(__aarch64__)
static double fma_scalar(long iters)
{
    float a[12];
    for (float &x : a)
        x = 1.0f;
    const float m = 0.999999f, b = 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) {
            a[j] = std::fma(a[j], m, b);
            __asm__ volatile("" : "+w"(a[j]));   // keep the 12 chains scalar
        }
    float s = 0;
    for (float x : a)
        s += x;
    g_sink = s;
    return 2.0 * 12 * (double)iters;
}

static double fma_neon(long iters)
{
    float32x4_t a[12];
    for (auto &x : a)
        x = vdupq_n_f32(1.0f);
    const float32x4_t m = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++)
            a[j] = vfmaq_f32(b, a[j], m);
    float32x4_t s = a[0];
    for (int j = 1; j < 12; j++)
        s = vaddq_f32(s, a[j]);
    g_sink = vaddvq_f32(s);
    return 2.0 * 4 * 12 * (double)iters;
}
#endif

// ------------------------------------------------------------ streaming sum
// Sums n floats (n a multiple of 128); returns the sum so it cannot be elided.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float sum_avx512(const float *x, size_t n)
{
    // 8 accumulators: enough independent adds to issue 2 loads per cycle.
    __m512 s[8];
    for (auto &v : s)
        v = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 128)
        for (int j = 0; j < 8; j++)
            s[j] = _mm512_add_ps(s[j], _mm512_loadu_ps(x + i + 16 * j));
    for (int j = 1; j < 8; j++)
        s[0] = _mm512_add_ps(s[0], s[j]);
    return hsum512(s[0]);
}

__attribute__((target("avx2"))) static float sum_avx2(const float *x, size_t n)
{
    __m256 s[8];
    for (auto &v : s)
        v = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 64)
        for (int j = 0; j < 8; j++)
            s[j] = _mm256_add_ps(s[j], _mm256_loadu_ps(x + i + 8 * j));
    __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])),
                             _mm256_add_ps(_mm256_add_ps(s[4], s[5]), _mm256_add_ps(s[6], s[7])));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, t);
    float r = 0;
    for (float v : lanes)
        r += v;
    return r;
}

static float sum_sse(const float *x, size_t n)
{
    __m128 s0 = _mm_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 16) {
        s0 = _mm_add_ps(s0, _mm_loadu_ps(x + i));
        s1 = _mm_add_ps(s1, _mm_loadu_ps(x + i + 4));
        s2 = _mm_add_ps(s2, _mm_loadu_ps(x + i + 8));
        s3 = _mm_add_ps(s3, _mm_loadu_ps(x + i + 12));
    }
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, _mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#elif defined(__aarch64__)
static float sum_neon(const float *x, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 16) {
        s0 = vaddq_f32(s0, vld1q_f32(x + i));
        s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
        s2 = vaddq_f32(s2, vld1q_f32(x + i + 8));
        s3 = vaddq_f32(s3, vld1q_f32(x + i + 12));
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}
#else
static float sum_plain(const float *x, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}
#endif

// ------------------------------------------------------------ measurement
struct SumFn {
    const char *isa;
    float (*fn)(const float *, size_t);
};
static SumFn best_sum()
{
#if defined(__x86_64__)
    // ga_isa_supported also checks that the OS saves the wide registers.
    if (ga_isa_supported(GA_ISA_AVX512))
        return {"avx512", sum_avx512};
    if (ga_isa_supported(GA_ISA_AVX2))
        return {"avx2", sum_avx2};
    return {"scalar", sum_sse};   // SSE2: the x86-64 baseline
#elif defined(__aarch64__)
    return {"neon", sum_neon};
#else
    return {"scalar", sum_plain};
#endif
}

// Peak GFLOP/s of one FMA kernel on `threads` threads: best of 5 trials of
// about 40 ms each.
static double measure_peak(double (*fn)(long), int threads)
{
    long iters = 1 << 16;
    // Calibrate the per-thread iteration count to ~40 ms on one thread.
    for (;;) {
        double c0 = thread_cpu_seconds();
        fn(iters);
        if (thread_cpu_seconds() - c0 > 0.01 || iters > (1L << 40))
            break;
        iters *= 4;
    }
    {
        double c0 = thread_cpu_seconds();
        fn(iters);
        double s = thread_cpu_seconds() - c0;
        iters = std::max(1L, (long)((double)iters * 0.04 / std::max(s, 1e-6)));
    }
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        std::vector<double> flops(threads);
        double sec = run_parallel(threads, [&](int t) { flops[t] = fn(iters); });
        double total = 0;
        for (double f : flops)
            total += f;
        best = std::max(best, total / sec / 1e9);
    }
    return best;
}

// Read bandwidth (GB/s) over `bytes` split among `threads`: each trial sums
// every thread's share `reps` times; best of 5 trials.
static double measure_bw(const SumFn &sum, const float *buf, size_t bytes, int threads)
{
    const size_t nf = bytes / sizeof(float);
    const size_t share = (nf / threads) / 128 * 128;   // floats per thread
    if (share == 0)
        return 0;
    // About 30 ms per trial, at least one pass.
    const double target_bytes = 3e8;   // ~30 ms at 10 GB/s (DRAM); more passes in cache
    long reps = std::max(1L, (long)(target_bytes / (double)(share * threads * sizeof(float))));
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        double sec = run_parallel(threads, [&](int t) {
            float acc = 0;
            for (long r = 0; r < reps; r++)
                acc += sum.fn(buf + (size_t)t * share, share);
            g_sink = acc;
        });
        best = std::max(best, (double)reps * share * threads * sizeof(float) / sec / 1e9);
    }
    return best;
}

static std::string json_escape(const std::string &s)
{
    std::string o;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') {
            o += '\\';
            o += ch;
        } else if ((unsigned char)ch < 0x20) {
            o += ' ';
        } else {
            o += ch;
        }
    }
    return o;
}

static bool make_parent_dirs(const std::string &path)
{
    for (size_t i = 1; i < path.size(); i++)
        if (path[i] == '/') {
            std::string dir = path.substr(0, i);
            if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
                return false;
        }
    return true;
}

int measure_machine(const std::string &path)
{
    const int ncpu = num_cpus();
    std::vector<int> thread_counts = {1};
    if (ncpu > 1)
        thread_counts.push_back(ncpu);

    struct PeakFn {
        ga_isa isa;
        double (*fn)(long);
    };
    std::vector<PeakFn> peak_fns;
#if defined(__x86_64__)
    peak_fns.push_back({GA_ISA_SCALAR, fma_scalar});
    if (ga_isa_supported(GA_ISA_AVX2))
        peak_fns.push_back({GA_ISA_AVX2, fma_avx2});
    if (ga_isa_supported(GA_ISA_AVX512))
        peak_fns.push_back({GA_ISA_AVX512, fma_avx512});
#elif defined(__aarch64__)
    peak_fns.push_back({GA_ISA_SCALAR, fma_scalar});
    peak_fns.push_back({GA_ISA_NEON, fma_neon});
#endif

    std::ostringstream js;
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
    js << "{\n  \"format\": \"granattn-machine-limits/1\",\n"
       << "  \"generator\": \"granattn-bench --machine\",\n"
       << "  \"host\": \"" << json_escape(host) << "\",\n"
       << "  \"date\": \"" << date << "\",\n"
       << "  \"cpus\": " << ncpu << ",\n"
       << "  \"llc_bytes\": " << llc_bytes() << ",\n"
       << "  \"peak_fma\": [";
    bool first = true;
    for (const PeakFn &p : peak_fns)
        for (int t : thread_counts) {
            double g = measure_peak(p.fn, t);
            std::fprintf(stderr, "peak fp32 FMA  %-7s %d thread%s: %8.1f GFLOP/s\n",
                         ga_isa_name(p.isa), t, t > 1 ? "s" : " ", g);
            char buf[160];
            std::snprintf(buf, sizeof buf, "%s\n    {\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.3f}",
                          first ? "" : ",", ga_isa_name(p.isa), t, g);
            js << buf;
            first = false;
        }
    js << "\n  ],\n";

    // Working sets: 16 KiB .. 1 GiB, 17 sizes, doubling (L3s of 32 MiB to
    // 260+ MiB are all seen on our boxes: a x4 step above 64 MiB put a
    // 128 MiB step between two points that bracket the L3 boundary).
    const size_t KiB = 1024, MiB = 1024 * KiB;
    std::vector<size_t> sizes;
    for (size_t s = 16 * KiB; s <= 1024 * MiB; s *= 2)
        sizes.push_back(s);
    const SumFn sum = best_sum();
    FloatBuf buf;
    try {
        buf = alloc_floats(sizes.back() / sizeof(float));
    } catch (const std::bad_alloc &) {
        std::fprintf(stderr, "granattn-bench: --machine: cannot allocate %zu MiB\n",
                     sizes.back() / MiB);
        return 1;
    }
    // First touch, spread over the threads (their NUMA nodes, if any).
    {
        const size_t nf = sizes.back() / sizeof(float);
        run_parallel(ncpu, [&](int t) {
            size_t a = nf * t / ncpu, b = nf * (t + 1) / ncpu;
            for (size_t i = a; i < b; i++)
                buf[i] = 1e-3f * (float)(i & 1023);
        });
    }
    js << "  \"bandwidth\": {\n    \"isa\": \"" << sum.isa << "\",\n    \"points\": [";
    first = true;
    for (size_t sz : sizes)
        for (int t : thread_counts) {
            double g = measure_bw(sum, buf.get(), sz, t);
            std::fprintf(stderr, "read bandwidth %-7s %d thread%s %8.0f KiB: %8.1f GB/s\n", sum.isa,
                         t, t > 1 ? "s" : " ", sz / 1024.0, g);
            char line[160];
            std::snprintf(line, sizeof line,
                          "%s\n      {\"bytes\": %zu, \"threads\": %d, \"gbs\": %.3f}",
                          first ? "" : ",", sz, t, g);
            js << line;
            first = false;
        }
    js << "\n    ]\n  }\n}\n";
    buf.reset();

    if (!make_parent_dirs(path)) {
        std::fprintf(stderr, "granattn-bench: cannot create the directory of '%s': %s\n",
                     path.c_str(), std::strerror(errno));
        return 1;
    }
    std::ofstream f(path);
    f << js.str();
    f.close();
    if (!f) {
        std::fprintf(stderr, "granattn-bench: cannot write '%s'\n", path.c_str());
        return 1;
    }
    std::fprintf(stderr, "granattn-bench: machine limits written to %s\n", path.c_str());
    return 0;
}

// ------------------------------------------------------------ JSON reader
// A small recursive-descent parser, enough for the file written above
// (objects, arrays, strings without \u escapes, numbers, true/false/null).
namespace {
struct JVal {
    enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
    double num = 0;
    std::string str;
    std::vector<JVal> arr;
    std::vector<std::pair<std::string, JVal>> obj;
    const JVal *get(const char *key) const
    {
        for (const auto &kv : obj)
            if (kv.first == key)
                return &kv.second;
        return nullptr;
    }
};

class JParser {
public:
    explicit JParser(const std::string &s) : s_(s) {}
    bool parse(JVal *out, std::string *err)
    {
        if (!value(out) || (ws(), pos_ != s_.size())) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "JSON syntax error at byte %zu", pos_);
            *err = buf;
            return false;
        }
        return true;
    }

private:
    const std::string &s_;
    size_t pos_ = 0;
    int depth_ = 0;
    void ws()
    {
        while (pos_ < s_.size() && std::strchr(" \t\r\n", s_[pos_]))
            pos_++;
    }
    bool lit(const char *w)
    {
        size_t n = std::strlen(w);
        if (s_.compare(pos_, n, w) != 0)
            return false;
        pos_ += n;
        return true;
    }
    bool string(std::string *o)
    {
        if (pos_ >= s_.size() || s_[pos_] != '"')
            return false;
        pos_++;
        while (pos_ < s_.size() && s_[pos_] != '"') {
            char c = s_[pos_++];
            if (c == '\\') {
                if (pos_ >= s_.size())
                    return false;
                c = s_[pos_++];
                if (c == 'n')
                    c = '\n';
                else if (c == 't')
                    c = '\t';
                else if (c == 'u')
                    return false;   // not produced by the writer
            }
            o->push_back(c);
        }
        if (pos_ >= s_.size())
            return false;
        pos_++;
        return true;
    }
    bool value(JVal *v)
    {
        if (++depth_ > 64)
            return false;
        ws();
        bool ok = false;
        if (pos_ >= s_.size()) {
            ok = false;
        } else if (s_[pos_] == '{') {
            v->type = JVal::Obj;
            pos_++;
            ws();
            if (pos_ < s_.size() && s_[pos_] == '}') {
                pos_++;
                ok = true;
            } else {
                for (;;) {
                    std::string k;
                    JVal x;
                    ws();
                    if (!string(&k))
                        break;
                    ws();
                    if (pos_ >= s_.size() || s_[pos_] != ':')
                        break;
                    pos_++;
                    if (!value(&x))
                        break;
                    v->obj.emplace_back(std::move(k), std::move(x));
                    ws();
                    if (pos_ < s_.size() && s_[pos_] == ',') {
                        pos_++;
                        continue;
                    }
                    if (pos_ < s_.size() && s_[pos_] == '}') {
                        pos_++;
                        ok = true;
                    }
                    break;
                }
            }
        } else if (s_[pos_] == '[') {
            v->type = JVal::Arr;
            pos_++;
            ws();
            if (pos_ < s_.size() && s_[pos_] == ']') {
                pos_++;
                ok = true;
            } else {
                for (;;) {
                    JVal x;
                    if (!value(&x))
                        break;
                    v->arr.push_back(std::move(x));
                    ws();
                    if (pos_ < s_.size() && s_[pos_] == ',') {
                        pos_++;
                        continue;
                    }
                    if (pos_ < s_.size() && s_[pos_] == ']') {
                        pos_++;
                        ok = true;
                    }
                    break;
                }
            }
        } else if (s_[pos_] == '"') {
            v->type = JVal::Str;
            ok = string(&v->str);
        } else if (lit("true")) {
            v->type = JVal::Bool;
            v->num = 1;
            ok = true;
        } else if (lit("false")) {
            v->type = JVal::Bool;
            ok = true;
        } else if (lit("null")) {
            ok = true;
        } else {
            const char *b = s_.c_str() + pos_;
            char *e;
            v->num = std::strtod(b, &e);
            v->type = JVal::Num;
            ok = e != b;
            pos_ += (size_t)(e - b);
        }
        depth_--;
        return ok;
    }
};
}  // namespace

bool load_limits(const std::string &path, std::string *err)
{
    std::ifstream f(path);
    if (!f) {
        *err = "cannot open limits file '" + path + "': " + std::strerror(errno);
        return false;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    JVal root;
    std::string perr;
    if (!JParser(text).parse(&root, &perr)) {
        *err = path + ": " + perr;
        return false;
    }
    Limits L;
    L.path = path;
    const JVal *pk = root.get("peak_fma");
    const JVal *bw = root.get("bandwidth");
    const JVal *pts = bw ? bw->get("points") : nullptr;
    if (root.type != JVal::Obj || !pk || pk->type != JVal::Arr || !pts || pts->type != JVal::Arr) {
        *err = path + ": not a granattn machine-limits file (needs peak_fma[] and bandwidth.points[]; "
                      "write one with --machine=FILE)";
        return false;
    }
    for (const JVal &e : pk->arr) {
        const JVal *isa = e.get("isa"), *t = e.get("threads"), *g = e.get("gflops");
        if (!isa || !t || !g || isa->type != JVal::Str || t->type != JVal::Num || g->type != JVal::Num) {
            *err = path + ": malformed peak_fma entry";
            return false;
        }
        L.peaks.push_back({isa->str, (int)t->num, g->num});
    }
    if (const JVal *isa = bw->get("isa"))
        L.bw_isa = isa->str;
    for (const JVal &e : pts->arr) {
        const JVal *b = e.get("bytes"), *t = e.get("threads"), *g = e.get("gbs");
        if (!b || !t || !g || b->type != JVal::Num || t->type != JVal::Num || g->type != JVal::Num) {
            *err = path + ": malformed bandwidth point";
            return false;
        }
        L.bws.push_back({b->num, (int)t->num, g->num});
    }
    if (L.peaks.empty() || L.bws.empty()) {
        *err = path + ": no peak or bandwidth entries";
        return false;
    }
    L.loaded = true;
    g_limits = L;
    return true;
}

// Among entries' thread counts, the largest <= want (else the smallest).
template <class V>
static int pick_threads(const V &entries, int want)
{
    int best = -1, smallest = 1 << 30;
    for (const auto &e : entries) {
        if (e.threads <= want && e.threads > best)
            best = e.threads;
        smallest = std::min(smallest, e.threads);
    }
    return best >= 0 ? best : smallest;
}

double Limits::peak_gflops(const char *isa, int threads) const
{
    std::vector<Peak> mine;
    for (const Peak &p : peaks)
        if (p.isa == isa)
            mine.push_back(p);
    if (mine.empty())
        return 0;
    int t = pick_threads(mine, threads);
    for (const Peak &p : mine)
        if (p.threads == t)
            return p.gflops;
    return 0;
}

double Limits::bw_gbs(double ws, int threads) const
{
    if (bws.empty())
        return 0;
    int t = pick_threads(bws, threads);
    double best = 0, best_d = 1e300;
    for (const Bw &b : bws)
        if (b.threads == t) {
            double d = std::fabs(std::log(std::max(ws, 1.0) / b.bytes));
            if (d < best_d) {
                best_d = d;
                best = b.gbs;
            }
        }
    return best;
}

double Limits::time_bound(const char *isa, int threads, double ws, double bytes,
                          double flops) const
{
    if (!loaded)
        return 0;
    const double bw = bw_gbs(ws, threads), pk = peak_gflops(isa, threads);
    double tb = 0;
    if (bw > 0)
        tb = std::max(tb, bytes / (bw * 1e9));
    if (pk > 0)
        tb = std::max(tb, flops / (pk * 1e9));
    return tb;
}

}  // namespace gab
