#include "engine/ops/minmax.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"

namespace oar {

namespace cpu {
// values (may be undefined) and i64 indices, contiguous with x's shape but size 1 along dim: the
// max (min) of each row along dim and its first (last when `last`) position.
void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                 bool is_max, bool last);
// out (contiguous, x's shape with the reduced dims of size 1) = max (min) of x over dims.
void extreme(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, bool is_max);
// out (zero-filled here) gets src[..., j, ...] at index[..., j, ...] along dim: the gradient of
// taking elements along dim. index and src share a shape.
void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                 bool is_max, bool last);
void extreme(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, bool is_max);
void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace cuda
#endif

namespace {

void check_dim_input(const Tensor& x, int64_t dim, const char* op) {
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(x.dtype() != DType::boolean, op, ": dtype bool not supported (numeric types only)");
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  OAR_CHECK(x.dim() == 0 || x.size(d) > 0, op, ": dimension ", dim, " of ", shape_str(x.shape()),
            " is empty (nothing to select from)");
}

Shape keep_shape(const Tensor& x, int64_t d) {
  Shape s = x.shape();
  if (!s.empty()) s[static_cast<size_t>(d)] = 1;
  return s;
}

std::pair<Tensor, Tensor> max_min(const Tensor& x_in, int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  check_dim_input(x_in, dim, op);
  const Tensor x = x_in.dim() == 0 ? x_in.reshape({1}) : x_in;
  const int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor values = empty(keep_shape(x, d), x.dtype(), x.device());
  Tensor indices = empty(keep_shape(x, d), DType::i64, x.device());
  OAR_DISPATCH_GPU(x.device(), arg_extreme, values, indices, x, d, is_max, false);
  const Tensor idx_keep = indices;
  Shape out_shape = x_in.dim() == 0 ? Shape{} : keep_shape(x, d);
  if (!keepdim && x_in.dim() > 0) out_shape.erase(out_shape.begin() + d);
  values = values.view(out_shape);
  indices = indices.view(out_shape);
  if (autograd::needs_grad({x_in})) {
    autograd::record(op, {&values}, {x_in},
                     [d, idx = idx_keep.detach(), shape1 = x.shape(),
                      shape = x_in.shape()](const autograd::Grads& g) {
                       const Tensor gv = g[0].reshape(idx.shape()).contiguous();
                       Tensor gx = empty(shape1, gv.dtype(), gv.device());
                       OAR_DISPATCH_GPU(gv.device(), put_along, gx, d, idx, gv);
                       return autograd::TensorList{gx.view(shape)};
                     });
  }
  return {values, indices};
}

Tensor arg_min_max(const Tensor& x_in, int64_t dim, bool keepdim, bool is_max, bool last) {
  const char* op = is_max ? "argmax" : "argmin";
  check_dim_input(x_in, dim, op);
  const Tensor x = x_in.dim() == 0 ? x_in.reshape({1}) : x_in;
  const int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor indices = empty(keep_shape(x, d), DType::i64, x.device());
  OAR_DISPATCH_GPU(x.device(), arg_extreme, Tensor(), indices, x, d, is_max, last);
  Shape out_shape = x_in.dim() == 0 ? Shape{} : keep_shape(x, d);
  if (!keepdim && x_in.dim() > 0) out_shape.erase(out_shape.begin() + d);
  return indices.view(out_shape);
}

Tensor amax_amin(const Tensor& x, const Shape& dims_in, bool keepdim, bool is_max) {
  const char* op = is_max ? "amax" : "amin";
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(x.dtype() != DType::boolean, op, ": dtype bool not supported (numeric types only)");
  const auto dims = reduction_dims(dims_in, x.dim(), op);
  for (int64_t d : dims)
    OAR_CHECK(x.size(d) > 0, op, ": reduction over the empty dimension ", d, " of ",
              shape_str(x.shape()));
  Tensor out = empty(reduced_shape(x.shape(), dims, true), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), extreme, out, x, dims, is_max);
  const Tensor out_keep = out;
  out = out.view(reduced_shape(x.shape(), dims, keepdim));
  if (autograd::needs_grad({x})) {
    autograd::record(op, {&out}, {x},
                     [x = x.detach(), o = out_keep.detach(), dims](const autograd::Grads& g) {
                       // Ties share the gradient evenly.
                       const Tensor hit = eq(x, o).to(x.dtype());
                       const Tensor count = sum(hit, Shape(dims.begin(), dims.end()), true);
                       return autograd::TensorList{hit * (g[0].reshape(o.shape()) / count)};
                     });
  }
  return out;
}

}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min(x, dim, keepdim, true);
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min(x, dim, keepdim, false);
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) {
  return amax_amin(x, dims, keepdim, true);
}
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) {
  return amax_amin(x, dims, keepdim, false);
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim, bool select_last_index) {
  return arg_min_max(x, dim, keepdim, true, select_last_index);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim, bool select_last_index) {
  return arg_min_max(x, dim, keepdim, false, select_last_index);
}

}  // namespace oar
