#include "model/swinmae/relpos.h"

void relative_position_index(int64_t *idx, int window) {
    int w = window, n = w * w;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int dh = i / w - j / w + w - 1, dw = i % w - j % w + w - 1;
            idx[(int64_t)i * n + j] = (int64_t)dh * (2 * w - 1) + dw;
        }
}
