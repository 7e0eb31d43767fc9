#pragma once
#include "engine/tensor/tensor.h"

namespace oar {

// i64 indices of any shape -> [..., num_classes] tensor of `dtype` (f32 by default).
// Out-of-range indices are an error naming the index.
Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype = DType::f32);

}  // namespace oar
