#pragma once
// Variance, standard deviation, p-norms and logsumexp over dims.
#include "engine/tensor/tensor.h"

namespace oar {

// correction = 1 gives the unbiased estimator (as torch.var's default), 0 the population one.
Tensor var(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
// (sum |x|^p)^(1/p); p = 2 by default. Gradient at 0 is 0 for p = 2.
Tensor norm(const Tensor& x, double p = 2.0, const Shape& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);

}  // namespace oar
