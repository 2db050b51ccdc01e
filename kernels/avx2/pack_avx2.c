/* pack_avx2.c — the compress table of the AVX2 kernels that pack selected
 * lanes (threshold, preview_select): AVX2 has no vcompress, so a lane mask
 * of 8 keys indexes a permutation that moves the selected lanes first.
 *
 *   ga_avx2_pack[mask][k] = position of the k-th set bit of mask (k below
 *   popcount(mask)), then zeros (those lanes are stored past the count and
 *   never read).  256 x 8 bytes, built once (ga_avx2_pack_init).
 */
#include <pthread.h>

#include "avx2.h"

uint8_t ga_avx2_pack[256][8];
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void build_pack(void)
{
    for (int mask = 0; mask < 256; mask++) {
        int k = 0;
        for (int lane = 0; lane < 8; lane++)
            if (mask & (1 << lane))
                ga_avx2_pack[mask][k++] = (uint8_t)lane;
        for (; k < 8; k++)
            ga_avx2_pack[mask][k] = 0;
    }
}

void ga_avx2_pack_init(void) { pthread_once(&pack_once, build_pack); }
