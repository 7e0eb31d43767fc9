#pragma once
// max/min with indices, argmax/argmin, amax/amin over dims.
#include <utility>

#include "engine/tensor/tensor.h"

namespace oar {

// Values and i64 indices of the max (min) along `dim`; ties take the first index.
// Gradient flows to the selected element.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
// Max (min) over `dims` (all when empty); gradient split evenly among ties.
Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// i64 indices; select_last_index picks the last of ties (ONNX's attribute).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false, bool select_last_index = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false, bool select_last_index = false);

}  // namespace oar
