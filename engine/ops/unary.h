#pragma once
// Elementwise math and activations on floating tensors (bf16/f16 compute in f32).
#include "engine/tensor/tensor.h"

namespace oar {

Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)
Tensor erf(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor square(const Tensor& x);
// Clamps into [lo, hi]; pass -inf/inf to leave a side open. Gradient flows where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);

Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
// approximate=false: x * Phi(x) (erf); true: the tanh approximation ("gelu_new").
Tensor gelu(const Tensor& x, bool approximate = false);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor hard_sigmoid(const Tensor& x);  // relu6(x + 3) / 6
Tensor hard_swish(const Tensor& x);    // x * relu6(x + 3) / 6
// log(1 + exp(beta x)) / beta, linear above `threshold` (as PyTorch).
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);

}  // namespace oar
