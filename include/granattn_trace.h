/* granattn_trace.h — attention trace files: the inputs of one decoder
 * layer's cross-attention (q, K, V, bias and the GPN's levels) for a whole
 * target sentence, dumped from a trained model (`granattn inspect
 * --dump-trace`) so that kernels and benchmarks can run on real data.
 *
 * File layout (".gatrace"), little-endian throughout:
 *   char    magic[8] = "GATRACE1"
 *   int32   H, N, dh, T, L, mode (0 seed, 1 renorm), layer, reserved (0)
 *   float   tau[8]                 (entries >= L are 0)
 *   float   Q      [T][H*dh]       queries, one row per target step; head h at column h*dh
 *   float   K      [H][N][dh]      head-major keys   (docs/SPEC.md §1 layouts)
 *   float   V      [H][N][dh]      head-major values
 *   float   bias   [N]             0 or -inf (padding)
 *   uint8   levels [T][N]          the GPN's level of (step t, key i), < L
 *   uint32  crc                    CRC-32 (zlib polynomial) of every byte before it
 * so the file is 72 + 4*(T*H*dh + 2*H*N*dh + N) + T*N + 4 bytes.
 *
 * Errors follow the library's convention: a ga_status, and a message in
 * ga_last_error().  Nothing aborts.
 */
#ifndef GRANATTN_TRACE_H
#define GRANATTN_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "granattn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GA_TRACE_MAGIC "GATRACE1"

typedef struct ga_trace_data {
    int32_t H, N, dh, T; /* heads, keys, head width, target steps (each >= 0) */
    int32_t L;           /* levels, 1 ... 8 */
    int32_t mode;        /* ga_norm: 0 seed, 1 renorm */
    int32_t layer;       /* decoder layer the trace comes from (>= 0) */
    float tau[GA_MAX_LEVELS]; /* [0, 1), non-increasing over the first L; rest 0 */
    float *Q;            /* [T][H*dh] */
    float *K, *V;        /* [H][N][dh] */
    float *bias;         /* [N]: 0 or -inf (write: NULL = all 0) */
    uint8_t *levels;     /* [T][N], each < L */
} ga_trace_data;

/* Writes *tr to path (replacing it).  Checks what ga_trace_read checks
 * (sizes, L, mode, tau, levels < L, bias values, non-NULL arrays of nonzero
 * size) before creating the file.  GA_EINVAL (bad data, NULL arguments),
 * GA_ESYS (cannot create / write / close the file; a partial file is
 * removed). */
ga_status ga_trace_write(const char *path, const ga_trace_data *tr);

/* Reads path into *tr (arrays allocated here; release with ga_trace_free).
 * Validates the magic, the sizes (each >= 0, every product fits in an int,
 * the file length is exactly the layout's), the CRC, L in 1 ... 8, mode,
 * tau in [0, 1) and non-increasing, every level < L, every bias 0 or -inf.
 * On error *tr is left zeroed (nothing to free): GA_EINVAL (NULL argument,
 * a malformed file, with the reason), GA_ESYS (cannot open / read),
 * GA_ENOMEM. */
ga_status ga_trace_read(const char *path, ga_trace_data *tr);

/* Frees the arrays of a trace read by ga_trace_read and zeroes *tr.  NULL: no-op. */
void ga_trace_free(ga_trace_data *tr);

/* CRC-32 of the zlib / IEEE 802.3 polynomial (reflected, 0xEDB88320),
 * incremental: crc = ga_crc32(0, a, na); crc = ga_crc32(crc, b, nb); ...
 * equals zlib.crc32(a + b).  Thread-safe. */
uint32_t ga_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* GRANATTN_TRACE_H */
