#pragma once
// softmax and log_softmax along one dimension (oneDNN softmax on CPU).
#include "engine/tensor/tensor.h"

namespace oar {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace oar
