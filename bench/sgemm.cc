// sgemm.cc — Google Benchmark family for the `sgemm` kernel-table entry,
// against OpenBLAS's cblas_sgemm as the peer.
//
// Entry point, to be called from main() before RunSpecifiedBenchmarks:
//   void register_sgemm_benchmarks();
//
// Registers, for every shape below and every supported SIMD variant
// (avx2, avx512, neon):
//   sgemm/isa:<isa>/M:<M>/N:<N>/K:<K>
// and, when built with GA_HAVE_OPENBLAS (meson found OpenBLAS), the same
// shapes as
//   sgemm/isa:openblas/M:<M>/N:<N>/K:<K>
// The scalar reference is not registered: it is a naive loop nest with double
// accumulation (about 1 GFLOP/s, seconds per call at these sizes).
//
// Shapes are those of the model (width d = 256, FFN width 1024, a batch of
// ~2000 tokens) plus the classic 512^3:
//   2048 x 256 x 256   projections   (tokens x d) (d x d)
//   2048 x 1024 x 256  FFN up        (tokens x d) (d x 4d)
//   2048 x 256 x 1024  FFN down      (tokens x 4d) (4d x d)
//   512 x 512 x 512
// Every call is C = 1 * A B + 0 * C, no transposes, row-major, tight
// leading dimensions, 64-byte aligned buffers, single-threaded, hot caches
// (the same buffers every iteration), CPU time.
//
// Counters: gflops = 2 M N K flops per call (rate, GFLOP/s).  The label
// names the register tile (ours) or OpenBLAS's core type.
//
// OpenBLAS is forced to one thread (openblas_set_num_threads(1)).  Its
// DYNAMIC_ARCH build picks the kernels from the CPU model when the library
// loads; OpenBLAS 0.3.21 (Debian 12) does not know some recent Xeons and
// falls back to its Prescott (SSE3) kernels, ~10x slower than its
// SkylakeX ones.  The label shows the core type, and a warning is printed at
// registration when its vectors are narrower than the CPU's; set
// OPENBLAS_CORETYPE=SkylakeX (or Haswell) in the environment to compare
// like with like.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include <benchmark/benchmark.h>

#include "granattn.h"

#if defined(GA_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace {

struct Shape {
    int M, N, K;
};

const Shape kShapes[] = {
    {2048, 256, 256},
    {2048, 1024, 256},
    {2048, 256, 1024},
    {512, 512, 512},
};

// 64-byte aligned float buffer filled with values in [-1, 1).
struct Buf {
    float *p = nullptr;
    explicit Buf(size_t n, unsigned seed)
    {
        size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
        p = static_cast<float *>(std::aligned_alloc(64, bytes ? bytes : 64));
        if (!p)
            throw std::bad_alloc();
        unsigned x = seed * 2654435761u + 1u;
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;   // LCG: plenty for benchmark data
            p[i] = (float)((x >> 8) * (1.0 / 8388608.0) - 1.0);
        }
    }
    ~Buf() { std::free(p); }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
};

void set_gflops(benchmark::State &st, const Shape &s)
{
    const double flops = 2.0 * s.M * s.N * s.K * (double)st.iterations();
    st.counters["gflops"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
}

void run_ours(benchmark::State &st, ga_isa isa, Shape s)
{
    const ga_kernels *kt = ga_kernels_for(isa);
    if (!kt) {
        st.SkipWithError(ga_last_error());
        return;
    }
    Buf A((size_t)s.M * s.K, 1), B((size_t)s.K * s.N, 2), C((size_t)s.M * s.N, 3);
    for (auto _ : st) {
        kt->sgemm(0, 0, s.M, s.N, s.K, 1.0f, A.p, s.K, B.p, s.N, 0.0f, C.p, s.N);
        benchmark::DoNotOptimize(C.p);
        benchmark::ClobberMemory();
    }
    set_gflops(st, s);
    switch (isa) {
    case GA_ISA_AVX512: st.SetLabel("12x32 zmm tile"); break;
    case GA_ISA_AVX2: st.SetLabel("6x16 ymm tile"); break;
    case GA_ISA_NEON: st.SetLabel("8x12 q tile"); break;
    default: break;
    }
}

#if defined(GA_HAVE_OPENBLAS)
void run_openblas(benchmark::State &st, Shape s)
{
    Buf A((size_t)s.M * s.K, 1), B((size_t)s.K * s.N, 2), C((size_t)s.M * s.N, 3);
    for (auto _ : st) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.M, s.N, s.K, 1.0f, A.p, s.K,
                    B.p, s.N, 0.0f, C.p, s.N);
        benchmark::DoNotOptimize(C.p);
        benchmark::ClobberMemory();
    }
    set_gflops(st, s);
    st.SetLabel(std::string("OpenBLAS ") + openblas_get_corename() + ", 1 thread");
}

// True when OpenBLAS's kernels use narrower vectors than this CPU offers
// (x86 only: its AVX-512 core types on an AVX-512 CPU, AVX2 ones on an AVX2
// CPU; OpenBLAS's Arm builds have no such fallback problem).
bool openblas_core_is_narrow()
{
    const std::string core = openblas_get_corename();
    const bool avx512 = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
    const bool avx2 = avx512 || core == "Haswell" || core == "Zen";
    if (ga_isa_supported(GA_ISA_AVX512))
        return !avx512;
    if (ga_isa_supported(GA_ISA_AVX2))
        return !avx2;
    return false;
}
#endif

}  // namespace

void register_sgemm_benchmarks()
{
    static const ga_isa kIsas[] = {GA_ISA_AVX2, GA_ISA_AVX512, GA_ISA_NEON};
#if defined(GA_HAVE_OPENBLAS)
    openblas_set_num_threads(1);
    if (openblas_core_is_narrow())
        std::fprintf(stderr,
                     "granattn-bench: OpenBLAS uses its '%s' kernels, narrower than this "
                     "CPU's vectors; set OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell "
                     "(AVX2) for a fair sgemm comparison\n",
                     openblas_get_corename());
#endif
    for (const Shape &s : kShapes) {
        const std::string dims = "/M:" + std::to_string(s.M) + "/N:" + std::to_string(s.N) +
                                 "/K:" + std::to_string(s.K);
        for (ga_isa isa : kIsas) {
            if (!ga_isa_supported(isa))
                continue;
            const std::string name = std::string("sgemm/isa:") + ga_isa_name(isa) + dims;
            benchmark::RegisterBenchmark(name.c_str(), [isa, s](benchmark::State &st) {
                run_ours(st, isa, s);
            })->Unit(benchmark::kMicrosecond);
        }
#if defined(GA_HAVE_OPENBLAS)
        const std::string name = "sgemm/isa:openblas" + dims;
        benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State &st) {
            run_openblas(st, s);
        })->Unit(benchmark::kMicrosecond);
#endif
    }
}
