#include "engine/ops/reduce.h"

#include <algorithm>

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// out (contiguous, shape = in with reduced dims of size 1) = sum of x over `dims`.
void sum(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
}
#ifdef OAR_WITH_CUDA
namespace cuda {
void sum(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
}
#endif

std::vector<int64_t> reduction_dims(const Shape& dims, int64_t rank, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(in.size()); ++i) {
    const bool reduced = std::binary_search(dims.begin(), dims.end(), i);
    if (!reduced) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Tensor sum(const Tensor& x, const Shape& dims_in, bool keepdim) {
  OAR_CHECK(x.defined(), "sum: undefined input");
  const auto dims = reduction_dims(dims_in, x.dim(), "sum");
  DType dt = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = empty(reduced_shape(x.shape(), dims, true), dt, x.device());
  OAR_DISPATCH_GPU(x.device(), sum, out, x, dims);
  if (!keepdim) out = out.view(reduced_shape(x.shape(), dims, false));
  if (autograd::needs_grad({x})) {
    autograd::record("sum", {&out}, {x}, [shape = x.shape(), dims](const autograd::Grads& g) {
      // A broadcast view, not a materialised copy: the consumers read it through strides (a
      // leaf's .grad is a contiguous copy made by accumulate_leaf).
      return autograd::TensorList{g[0].reshape(reduced_shape(shape, dims, true)).expand(shape)};
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims_in, bool keepdim) {
  OAR_CHECK(is_floating(x.dtype()), "mean: dtype ", dtype_name(x.dtype()),
            " not supported (floating types only)");
  const auto dims = reduction_dims(dims_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.dim() ? x.size(d) : 1;
  OAR_CHECK(count > 0, "mean: reduction over an empty dimension of ", shape_str(x.shape()));
  return div(sum(x, dims_in, keepdim), static_cast<double>(count));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  OAR_CHECK(lead >= 0, "sum_to: cannot sum ", shape_str(x.shape()), " to ", shape_str(shape));
  Shape dims;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
    } else if (shape[i - lead] == 1 && x.size(i) != 1) {
      dims.push_back(i);
    } else {
      OAR_CHECK(shape[i - lead] == x.size(i), "sum_to: cannot sum ", shape_str(x.shape()), " to ",
                shape_str(shape));
    }
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, true).reshape(shape);
}

}  // namespace oar
