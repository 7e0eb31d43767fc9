#pragma once
// Sum and mean over any set of dimensions, and sum_to (undoes broadcasting in backward).
#include "engine/tensor/tensor.h"

namespace oar {

// Sums over `dims` (all dims when empty). keepdim keeps them as size 1.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// Sums x down to `shape`, which x's shape must broadcast from.
Tensor sum_to(const Tensor& x, const Shape& shape);

// The reduced dims normalised, sorted and deduplicated (all dims when empty).
std::vector<int64_t> reduction_dims(const Shape& dims, int64_t rank, const char* op);
// The output shape of a reduction.
Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim);

}  // namespace oar
