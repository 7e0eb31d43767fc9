#pragma once
#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar {

// softmax(q k^T * scale + mask) v for q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv]; mask is
// additive and broadcasts to [..., Lq, Lk] (e.g. 0 / -inf or -1e4 for padding). scale <= 0
// means 1/sqrt(D). Dropout on the attention weights when training with p > 0.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(), double scale = 0.0,
                                    double dropout_p = 0.0, bool training = false,
                                    Generator* gen = nullptr);

}  // namespace oar
