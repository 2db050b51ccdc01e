/* trace_file.c — attention trace files (include/granattn_trace.h): write,
 * read with full validation (magic, sizes, exact length, CRC-32, tau,
 * levels, bias), and the CRC-32 (zlib polynomial) they and the model's
 * token/checkpoint files use.
 *
 * Layout: 72-byte header (magic, 8 int32, tau[8]), then Q [T][H*dh],
 * K [H][N][dh], V [H][N][dh], bias [N] (float32), levels [T][N] (uint8),
 * then the CRC-32 of everything before it; little-endian. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "granattn_trace.h"
#include "internal.h"

/* ---------------------------------------------------------------- CRC-32 */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t ga_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* -------------------------------------------------------------- layout */
enum { HDR_BYTES = 8 + 8 * 4 + GA_MAX_LEVELS * 4 };

typedef struct sizes {
    size_t q, kv, n, lev; /* elements of Q, of K (= of V), of bias, of levels */
    long long file;       /* total bytes, CRC included */
} sizes;

static int host_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* 4-byte words between host order and little-endian (in place). */
static void swap4(void *p, size_t n)
{
    if (host_le())
        return;
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        uint8_t t = b[0];
        b[0] = b[3];
        b[3] = t;
        t = b[1];
        b[1] = b[2];
        b[2] = t;
    }
}

/* Sizes of the header's dimensions: each >= 0, every product in an int. */
static ga_status check_dims(const char *who, const int32_t dim[8], sizes *sz)
{
    static const char *const name[] = {"H", "N", "dh", "T", "L", "mode", "layer", "reserved"};
    for (int i = 0; i < 8; i++)
        if (dim[i] < 0)
            return ga_set_error(GA_EINVAL, "%s: %s = %d is negative", who, name[i], dim[i]);
    long long H = dim[0], N = dim[1], dh = dim[2], T = dim[3];
    if (dim[4] < 1 || dim[4] > GA_MAX_LEVELS)
        return ga_set_error(GA_EINVAL, "%s: L = %d outside 1 ... %d", who, dim[4],
                            GA_MAX_LEVELS);
    if (dim[5] != GA_NORM_SEED && dim[5] != GA_NORM_RENORM)
        return ga_set_error(GA_EINVAL, "%s: mode = %d (expected 0 seed or 1 renorm)", who,
                            dim[5]);
    if (dim[7] != 0)
        return ga_set_error(GA_EINVAL, "%s: reserved field = %d (expected 0)", who, dim[7]);
    const long long prod[] = {H * dh, T * H * dh, H * N * dh, T * N};
    static const char *const pname[] = {"H*dh", "T*H*dh", "H*N*dh", "T*N"};
    for (int i = 0; i < 4; i++)
        if (prod[i] > INT_MAX)
            return ga_set_error(GA_EINVAL,
                                "%s: size %s = %lld does not fit in an int (H %lld, N %lld, "
                                "dh %lld, T %lld)",
                                who, pname[i], prod[i], H, N, dh, T);
    sz->q = (size_t)(T * H * dh);
    sz->kv = (size_t)(H * N * dh);
    sz->n = (size_t)N;
    sz->lev = (size_t)(T * N);
    sz->file = HDR_BYTES + 4LL * (T * H * dh + 2 * H * N * dh + N) + T * N + 4;
    return GA_OK;
}

/* tau in [0, 1), non-increasing over the first L entries, 0 beyond. */
static ga_status check_tau(const char *who, const float *tau, int L)
{
    for (int l = 0; l < GA_MAX_LEVELS; l++) {
        float t = tau[l];
        if (l >= L) {
            if (t != 0.0f)
                return ga_set_error(GA_EINVAL, "%s: tau[%d] = %g beyond L = %d (expected 0)",
                                    who, l, (double)t, L);
            continue;
        }
        if (!(t >= 0.0f && t < 1.0f))
            return ga_set_error(GA_EINVAL, "%s: tau[%d] = %g outside [0, 1)", who, l,
                                (double)t);
        if (l > 0 && t > tau[l - 1])
            return ga_set_error(GA_EINVAL,
                                "%s: tau increases from level %d (%g) to %d (%g); it must be "
                                "non-increasing from coarse to fine",
                                who, l - 1, (double)tau[l - 1], l, (double)t);
    }
    return GA_OK;
}

static ga_status check_values(const char *who, const ga_trace_data *tr, const sizes *sz)
{
    for (size_t i = 0; i < sz->lev; i++)
        if (tr->levels[i] >= tr->L)
            return ga_set_error(GA_EINVAL,
                                "%s: level %u at step %zu, key %zu is not below L = %d", who,
                                (unsigned)tr->levels[i], i / sz->n, i % sz->n, tr->L);
    if (tr->bias)
        for (size_t i = 0; i < sz->n; i++)
            if (!(tr->bias[i] == 0.0f || tr->bias[i] == -INFINITY))
                return ga_set_error(GA_EINVAL, "%s: bias[%zu] = %g (expected 0 or -inf)", who,
                                    i, (double)tr->bias[i]);
    return GA_OK;
}

static void header_of(const ga_trace_data *tr, int32_t dim[8])
{
    dim[0] = tr->H;
    dim[1] = tr->N;
    dim[2] = tr->dh;
    dim[3] = tr->T;
    dim[4] = tr->L;
    dim[5] = tr->mode;
    dim[6] = tr->layer;
    dim[7] = 0;
}

/* --------------------------------------------------------------- write */
typedef struct wr {
    FILE *f;
    uint32_t crc;
    int err;
} wr;

static void put(wr *w, const void *p, size_t bytes)
{
    if (w->err || bytes == 0)
        return;
    w->crc = ga_crc32(w->crc, p, bytes);
    if (fwrite(p, 1, bytes, w->f) != bytes)
        w->err = errno ? errno : EIO;
}

/* n 4-byte words, converted to little-endian through a small buffer. */
static void put4(wr *w, const void *p, size_t n)
{
    if (host_le()) {
        put(w, p, n * 4);
        return;
    }
    uint32_t buf[1024];
    const uint8_t *src = p;
    while (n > 0 && !w->err) {
        size_t k = n < 1024 ? n : 1024;
        memcpy(buf, src, k * 4);
        swap4(buf, k);
        put(w, buf, k * 4);
        src += k * 4;
        n -= k;
    }
}

ga_status ga_trace_write(const char *path, const ga_trace_data *tr)
{
    const char *who = "ga_trace_write";
    if (!path || !tr)
        return ga_set_error(GA_EINVAL, "%s: path or trace is NULL", who);
    int32_t dim[8];
    header_of(tr, dim);
    sizes sz;
    ga_status st = check_dims(who, dim, &sz);
    if (st != GA_OK)
        return st;
    if ((sz.q && !tr->Q) || (sz.kv && (!tr->K || !tr->V)) || (sz.lev && !tr->levels))
        return ga_set_error(GA_EINVAL, "%s: a required array (Q, K, V or levels) is NULL",
                            who);
    if ((st = check_tau(who, tr->tau, tr->L)) != GA_OK ||
        (st = check_values(who, tr, &sz)) != GA_OK)
        return st;

    wr w = {fopen(path, "wb"), 0, 0};
    if (!w.f)
        return ga_set_error(GA_ESYS, "%s: cannot create %s: %s", who, path, strerror(errno));
    errno = 0;
    put(&w, GA_TRACE_MAGIC, 8);
    put4(&w, dim, 8);
    put4(&w, tr->tau, GA_MAX_LEVELS);
    put4(&w, tr->Q, sz.q);
    put4(&w, tr->K, sz.kv);
    put4(&w, tr->V, sz.kv);
    if (tr->bias) {
        put4(&w, tr->bias, sz.n);
    } else {
        static const float zeros[256];
        for (size_t i = 0; i < sz.n; i += 256)
            put4(&w, zeros, sz.n - i < 256 ? sz.n - i : 256);
    }
    put(&w, tr->levels, sz.lev);
    uint32_t crc = w.crc;
    swap4(&crc, 1);
    if (!w.err && fwrite(&crc, 1, 4, w.f) != 4)
        w.err = errno ? errno : EIO;
    if (fclose(w.f) != 0 && !w.err)
        w.err = errno ? errno : EIO;
    if (w.err) {
        remove(path);
        return ga_set_error(GA_ESYS, "%s: writing %s: %s", who, path, strerror(w.err));
    }
    return GA_OK;
}

/* ---------------------------------------------------------------- read */
void ga_trace_free(ga_trace_data *tr)
{
    if (!tr)
        return;
    free(tr->Q);
    free(tr->K);
    free(tr->V);
    free(tr->bias);
    free(tr->levels);
    memset(tr, 0, sizeof *tr);
}

/* bytes from f into p (CRC updated); 0, or -1 on a short read. */
static int get(FILE *f, void *p, size_t bytes, uint32_t *crc)
{
    if (bytes == 0)
        return 0;
    if (fread(p, 1, bytes, f) != bytes)
        return -1;
    *crc = ga_crc32(*crc, p, bytes);
    return 0;
}

ga_status ga_trace_read(const char *path, ga_trace_data *tr)
{
    const char *who = "ga_trace_read";
    if (!tr)
        return ga_set_error(GA_EINVAL, "%s: trace is NULL", who);
    memset(tr, 0, sizeof *tr);
    if (!path)
        return ga_set_error(GA_EINVAL, "%s: path is NULL", who);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ga_set_error(GA_ESYS, "%s: cannot open %s: %s", who, path, strerror(errno));
    ga_status st = GA_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = ga_set_error(GA_ESYS, "%s: cannot stat %s: %s", who, path, strerror(errno));
        goto fail;
    }
    unsigned char hdr[HDR_BYTES];
    uint32_t crc = 0;
    if ((long long)sb.st_size < HDR_BYTES + 4 || get(f, hdr, HDR_BYTES, &crc) != 0) {
        st = ga_set_error(GA_EINVAL, "%s: %s: %lld bytes, shorter than a trace header (%d)",
                          who, path, (long long)sb.st_size, HDR_BYTES + 4);
        goto fail;
    }
    if (memcmp(hdr, GA_TRACE_MAGIC, 8) != 0) {
        st = ga_set_error(GA_EINVAL, "%s: %s is not a trace file (magic is not %s)", who, path,
                          GA_TRACE_MAGIC);
        goto fail;
    }
    int32_t dim[8];
    memcpy(dim, hdr + 8, sizeof dim);
    swap4(dim, 8);
    memcpy(tr->tau, hdr + 40, sizeof tr->tau);
    swap4(tr->tau, GA_MAX_LEVELS);
    sizes sz;
    char ctx[64 + 512];
    snprintf(ctx, sizeof ctx, "%s: %s", who, path);
    if ((st = check_dims(ctx, dim, &sz)) != GA_OK)
        goto fail;
    if ((long long)sb.st_size != sz.file) {
        st = ga_set_error(GA_EINVAL,
                          "%s: %lld bytes, but its header (H %d, N %d, dh %d, T %d) needs "
                          "%lld (%s)",
                          ctx, (long long)sb.st_size, dim[0], dim[1], dim[2], dim[3], sz.file,
                          (long long)sb.st_size < sz.file ? "truncated" : "trailing bytes");
        goto fail;
    }
    tr->H = dim[0];
    tr->N = dim[1];
    tr->dh = dim[2];
    tr->T = dim[3];
    tr->L = dim[4];
    tr->mode = dim[5];
    tr->layer = dim[6];
    /* at least one element each, so that a size-0 array is still non-NULL */
    tr->Q = malloc(4 * (sz.q ? sz.q : 1));
    tr->K = malloc(4 * (sz.kv ? sz.kv : 1));
    tr->V = malloc(4 * (sz.kv ? sz.kv : 1));
    tr->bias = malloc(4 * (sz.n ? sz.n : 1));
    tr->levels = malloc(sz.lev ? sz.lev : 1);
    if (!tr->Q || !tr->K || !tr->V || !tr->bias || !tr->levels) {
        st = ga_set_error(GA_ENOMEM, "%s: out of memory (%lld bytes)", ctx, sz.file);
        goto fail;
    }
    uint32_t stored;
    if (get(f, tr->Q, 4 * sz.q, &crc) || get(f, tr->K, 4 * sz.kv, &crc) ||
        get(f, tr->V, 4 * sz.kv, &crc) || get(f, tr->bias, 4 * sz.n, &crc) ||
        get(f, tr->levels, sz.lev, &crc) || fread(&stored, 1, 4, f) != 4) {
        st = ga_set_error(GA_ESYS, "%s: read error%s%s", ctx, ferror(f) ? ": " : "",
                          ferror(f) ? strerror(errno) : " (file shrank while read)");
        goto fail;
    }
    swap4(&stored, 1);
    if (stored != crc) {
        st = ga_set_error(GA_EINVAL, "%s: CRC mismatch (stored %08x, computed %08x): corrupt",
                          ctx, (unsigned)stored, (unsigned)crc);
        goto fail;
    }
    swap4(tr->Q, sz.q);
    swap4(tr->K, sz.kv);
    swap4(tr->V, sz.kv);
    swap4(tr->bias, sz.n);
    if ((st = check_tau(ctx, tr->tau, tr->L)) != GA_OK ||
        (st = check_values(ctx, tr, &sz)) != GA_OK)
        goto fail;
    fclose(f);
    return GA_OK;
fail:
    fclose(f);
    ga_trace_free(tr);
    return st;
}
