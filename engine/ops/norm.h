#pragma once
// Normalisation layers' functional forms (oneDNN batch/layer norm on CPU).
#include "engine/tensor/tensor.h"

namespace oar {

// x [N, C, *]; weight/bias [C] (may be undefined). In training, normalises by batch statistics
// and updates running_mean/running_var in place (unbiased variance, as PyTorch) when defined;
// otherwise uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
// Normalises over the trailing dims given by normalized_ndim (weight/bias of those dims' shape).
Tensor layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);
// x [N, C, *] in `groups` groups of channels; weight/bias [C].
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  double eps = 1e-5);

}  // namespace oar
