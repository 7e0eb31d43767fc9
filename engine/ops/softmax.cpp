#include "engine/autograd/autocast.h"
#include "engine/ops/softmax.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// out = softmax (log_softmax when `log`) of x along dim; x and out contiguous, same shape.
void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log);
// gx = the gradient through softmax (log_softmax) given g and that op's output `out`; all
// contiguous of one shape.
void softmax_backward(const Tensor& gx, const Tensor& g, const Tensor& out, int64_t dim, bool log);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log);
void softmax_backward(const Tensor& gx, const Tensor& g, const Tensor& out, int64_t dim, bool log);
}  // namespace cuda
#endif

namespace {

Tensor softmax_like(const Tensor& x_in, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  OAR_CHECK(x_in.defined(), op, ": undefined input");
  OAR_CHECK(is_floating(x_in.dtype()), op, ": dtype ", dtype_name(x_in.dtype()),
            " not supported (floating types only)");
  const Tensor x = (x_in.dim() == 0 ? x_in.reshape({1}) : x_in).contiguous();
  const int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) OAR_DISPATCH_GPU(x.device(), softmax, out, x, d, log);
  out = out.view(x_in.shape());
  if (autograd::needs_grad({x_in})) {
    autograd::record(op, {&out}, {x_in},
                     [o = out.reshape(x.shape()).detach(), d, log](const autograd::Grads& g) {
                       const Tensor gc = g[0].reshape(o.shape()).contiguous();
                       Tensor gx = empty(o.shape(), gc.dtype(), gc.device());
                       if (gx.numel() > 0)
                         OAR_DISPATCH_GPU(gc.device(), softmax_backward, gx, gc, o, d, log);
                       return autograd::TensorList{gx.view(g[0].shape())};
                     });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x_arg, int64_t dim) {
  Tensor x = x_arg;
  autocast_inputs("softmax", {&x});
  return softmax_like(x, dim, false);
}
Tensor log_softmax(const Tensor& x_arg, int64_t dim) {
  Tensor x = x_arg;
  autocast_inputs("log_softmax", {&x});
  return softmax_like(x, dim, true);
}

}  // namespace oar
