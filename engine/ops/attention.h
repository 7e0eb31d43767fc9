#pragma once
#include <vector>

#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar {

// softmax(q k^T * scale + mask) v for q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] (equal
// batch dims "..."), returning [..., Lq, Dv] in q's dtype (computed in f32). mask broadcasts to
// [..., Lq, Lk]: floating masks are additive (e.g. 0 / -inf or -1e4 for padding) and receive a
// gradient when they require one; bool masks mean true = attend. A row whose scores are all
// -inf gets zero weights (output 0, not NaN). scale <= 0 means 1/sqrt(D). Dropout on the
// attention weights when training with 0 < p < 1: gen->reserve(B*Lq*Lk) (B = prod of "..."),
// weight (b, i, j) kept (scaled by 1/(1-p)) when to_unit_float(hash(seed, base + (b*Lq+i)*Lk + j))
// >= p. Fused CPU kernel: the [Lq, Lk] weights are the only per-head intermediate kept.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(), double scale = 0.0,
                                    double dropout_p = 0.0, bool training = false,
                                    Generator* gen = nullptr);

// A packed projection qkv [N, L, 3 * heads * D] (q, k, v side by side in each row, as one
// linear with the stacked weights gives) split into q, k, v [N, heads, L, D] views, no copy.
// One autograd node takes the three gradients back: when they are the three parts of one
// [N, L, 3, heads, D] buffer (as scaled_dot_product_attention's CPU backward writes them for
// such views), that buffer is the gradient of qkv as is; otherwise they are copied into one
// (zeros for a part that got none).
std::vector<Tensor> split_qkv_heads(const Tensor& qkv, int64_t heads);

}  // namespace oar
