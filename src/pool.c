/* pool.c — placeholder serial pool (replaced by the hwloc thread pool). */
#include <stdlib.h>
#include "internal.h"
struct ga_pool { int threads; void *scratch; size_t cap; };
const char *ga_place_name(ga_place p) { (void)p; return "none"; }
ga_status ga_place_from_name(const char *name, ga_place *out) { (void)name; *out = GA_PLACE_NONE; return GA_OK; }
ga_pool *ga_pool_create(int threads, ga_place place, const int *pus, int npus)
{ (void)place; (void)pus; (void)npus; ga_pool *p = calloc(1, sizeof *p); if (p) p->threads = 1; (void)threads; return p; }
void ga_pool_destroy(ga_pool *p) { if (p) { free(p->scratch); free(p); } }
int ga_pool_threads(const ga_pool *p) { return p->threads; }
void ga_pool_run(ga_pool *p, void (*fn)(void *, int, int), void *arg, int n) { (void)p; for (int i = 0; i < n; i++) fn(arg, i, 0); }
void *ga_pool_scratch(ga_pool *p, int w, size_t bytes) { (void)w; if (bytes > p->cap) { free(p->scratch); p->scratch = aligned_alloc(64, (bytes + 63) / 64 * 64); p->cap = p->scratch ? bytes : 0; } return p->scratch; }
const char *ga_pool_describe(const ga_pool *p) { (void)p; return "serial"; }
