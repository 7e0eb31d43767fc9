#include "engine/ops/where.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"

namespace oar {

namespace cpu {
// out = cond ? a : b, all three broadcast to out's shape; a, b and out share a dtype.
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cuda
#endif

namespace {
Tensor select_values(const Tensor& cond, const Tensor& a, const Tensor& b, const char* op) {
  OAR_CHECK(cond.defined() && a.defined() && b.defined(), op, ": undefined input");
  OAR_CHECK(cond.dtype() == DType::boolean, op, ": condition must be bool, got ",
            dtype_name(cond.dtype()));
  OAR_CHECK_SAME_DEVICE(op, cond, a);
  OAR_CHECK_SAME_DEVICE(op, a, b);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), op), b.shape(), op);
  const DType dt = promote_types(a.dtype(), b.dtype());
  const Tensor ac = a.dtype() == dt ? a : a.detach().to(dt);
  const Tensor bc = b.dtype() == dt ? b : b.detach().to(dt);
  Tensor out = empty(shape, dt, a.device());
  OAR_DISPATCH_GPU(a.device(), where, out, cond, ac, bc);
  return out;
}
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = select_values(cond, a, b, "where");
  if (autograd::needs_grad({a, b})) {
    autograd::record("where", {&out}, {a, b},
                     [c = cond.detach(), sa = a.shape(), sb = b.shape()](const autograd::Grads& g) {
                       const Tensor zero = scalar_tensor(0.0, g[0].dtype(), g[0].device());
                       Tensor ga, gb;
                       if (g.needs(0)) ga = sum_to(select_values(c, g[0], zero, "where"), sa);
                       if (g.needs(1)) gb = sum_to(select_values(c, zero, g[0], "where"), sb);
                       return autograd::TensorList{ga, gb};
                     });
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  OAR_CHECK(x.defined() && mask.defined(), "masked_fill: undefined input");
  OAR_CHECK(broadcast_shapes(mask.shape(), x.shape(), "masked_fill") == x.shape(),
            "masked_fill: mask of shape ", shape_str(mask.shape()),
            " does not broadcast to the input's shape ", shape_str(x.shape()));
  OAR_CHECK(mask.dtype() == DType::boolean, "masked_fill: mask must be bool, got ",
            dtype_name(mask.dtype()));
  return where(mask, scalar_tensor(value, x.dtype(), x.device()), x);
}

}  // namespace oar
