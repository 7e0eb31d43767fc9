#pragma once
// topk, sort, argsort and cumsum along a dimension.
#include <utility>

#include "engine/tensor/tensor.h"

namespace oar {

// k largest (or smallest) values and their i64 indices along dim; sorted when `sorted`. Ties keep
// the lower index first (as ONNX TopK). Gradient flows to the selected elements.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true,
                               bool sorted = true);
// Stable sort along dim; returns values and i64 indices.
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
// Inclusive (or exclusive) cumulative sum along dim, optionally reversed (ONNX CumSum).
Tensor cumsum(const Tensor& x, int64_t dim, bool exclusive = false, bool reverse = false);

}  // namespace oar
