#pragma once
// Convolution internals shared by conv's forward, its backward and the device kernels: the
// normalised geometry and the two gradient ops (dispatched, so backward runs on any device;
// first order only).
#include <utility>
#include <vector>

#include "engine/ops/conv.h"

namespace oar {

struct ConvGeometry {
  std::vector<int64_t> stride, pad_begin, pad_end, dilation;  // one per spatial dim
  int64_t groups = 1;
};

// Checks x [N, C, *spatial] and weight [O, C/groups, *kernel] against p (naming `op`) and
// expands p to one value per spatial dim and side.
ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& weight,
                           const ConvParams& p);
// The output shape [N, O, *out] of that convolution.
Shape conv_output_shape(const Shape& x, const Shape& weight, const ConvGeometry& g);

// dL/dx of shape x_shape from dL/dy and the weight. cache_weight: the weight is a parameter
// whose reordered copy may be kept until its storage's version changes.
Tensor conv_backward_data(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                          const ConvGeometry& g, bool cache_weight = false);
// dL/dweight of shape w_shape and, when with_bias, dL/dbias [O] (of bias_dtype).
std::pair<Tensor, Tensor> conv_backward_weights(const Tensor& x, const Tensor& grad_out,
                                                const Shape& w_shape, bool with_bias,
                                                DType bias_dtype, const ConvGeometry& g);

}  // namespace oar
