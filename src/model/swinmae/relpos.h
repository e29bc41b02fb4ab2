// Swin's relative_position_index buffer: for query position i and key position j inside a
// window (row-major, W*W positions each), the row of the (2W-1)^2 x heads bias table to use.
#ifndef ANOSWIN_MODEL_RELPOS_H
#define ANOSWIN_MODEL_RELPOS_H

#include <stdint.h>

// idx (W*W, W*W): idx[i][j] = (hi - hj + W-1) * (2W-1) + (wi - wj + W-1), where
// (hi, wi) = (i / W, i % W). Exactly the PyTorch buffer.
void relative_position_index(int64_t *idx, int window);

#endif
