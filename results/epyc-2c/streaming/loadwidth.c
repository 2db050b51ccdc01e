/* loadwidth.c — one thread streams 10 buffers of 64 MiB (640 MiB, far past the
 * 32 MiB L3) through four FMA chains, reading with 512-bit loads, 256-bit
 * loads, or 512-bit vectors built from two 256-bit loads (what the
 * loads:halves tuning does); prints GB/s per variant, 4 rounds interleaved.
 *   gcc -O2 -mavx512f -mavx512dq -mfma -o /tmp/loadwidth loadwidth.c && /tmp/loadwidth
 * The measurement behind src/dispatch.c's choice of loads:halves on AMD. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define HALVES(p) _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps((p) + 8), 1)
/* Four FMA chains over n floats, each 512-bit vector read by LOAD. */
#define STREAM512(name, LOAD)                                                          \
    __attribute__((noinline)) static float name(const float *K, size_t n)              \
    {                                                                                  \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                    \
        for (size_t i = 0; i < n; i += 64) {                                           \
            a0 = _mm512_fmadd_ps(a0, a0, LOAD(K + i));                                 \
            a1 = _mm512_fmadd_ps(a1, a1, LOAD(K + i + 16));                            \
            a2 = _mm512_fmadd_ps(a2, a2, LOAD(K + i + 32));                            \
            a3 = _mm512_fmadd_ps(a3, a3, LOAD(K + i + 48));                            \
        }                                                                              \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
    }
STREAM512(s512, _mm512_loadu_ps)
STREAM512(s512h, HALVES)
__attribute__((noinline)) static float s256(const float *K, size_t n)
{
    __m256 a[8];
    for (int j = 0; j < 8; j++)
        a[j] = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 64)
        for (int j = 0; j < 8; j++)
            a[j] = _mm256_fmadd_ps(a[j], a[j], _mm256_loadu_ps(K + i + 8 * j));
    float r = 0, t[8];
    for (int j = 0; j < 8; j++) {
        _mm256_storeu_ps(t, a[j]);
        r += t[0];
    }
    return r;
}
int main(void)
{
    const size_t n = (size_t)16 << 20, sets = 10; /* 64 MiB of floats per set */
    float *K = aligned_alloc(64, n * sets * sizeof(float));
    if (!K)
        return 1;
    for (size_t i = 0; i < n * sets; i++)
        K[i] = 1e-9f;
    float (*f[])(const float *, size_t) = {s512, s256, s512h};
    const char *name[] = {"512-bit loads", "256-bit loads", "512 from 2x256"};
    volatile float sink = 0;
    for (int round = 0; round < 4; round++) {
        for (int v = 0; v < 3; v++) {
            double t = 0;
            for (int r = 0; r < 12; r++) {
                double t0 = now();
                sink += f[v](K + (r % sets) * n, n);
                if (r >= 2)
                    t += now() - t0;
            }
            printf("%-15s %5.1f GB/s | ", name[v], (double)n * sizeof(float) * 10 / t / 1e9);
        }
        printf("\n");
    }
    return 0;
}
