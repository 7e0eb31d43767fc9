#include "engine/ops/statistics.h"

#include <cmath>

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/minmax.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"

namespace oar {

namespace cpu {
// var and mean (contiguous, x's shape with the reduced dims of size 1) of x over dims, dividing
// the squared deviations by count - correction. Two passes in double.
void moments(const Tensor& var, const Tensor& mean, const Tensor& x,
             const std::vector<int64_t>& dims, int64_t correction);
// out = (sum |x|^p)^(1/p) over dims for finite p (p = 0 counts the nonzeros).
void pnorm(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, double p);
// out = log(sum exp(x)) over dims, shifted by the row max so nothing overflows.
void logsumexp(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void moments(const Tensor& var, const Tensor& mean, const Tensor& x,
             const std::vector<int64_t>& dims, int64_t correction);
void pnorm(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, double p);
void logsumexp(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
}  // namespace cuda
#endif

namespace {

std::vector<int64_t> float_reduction(const Tensor& x, const Shape& dims, const char* op) {
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(is_floating(x.dtype()), op, ": dtype ", dtype_name(x.dtype()),
            " not supported (floating types only)");
  return reduction_dims(dims, x.dim(), op);
}

// n where n != 0, else 1: a divisor that turns 0/0 into 0 where the norm vanishes.
Tensor nonzero_divisor(const Tensor& n) {
  return n + eq(n, 0.0).to(n.dtype());
}

}  // namespace

Tensor var(const Tensor& x, const Shape& dims_in, int64_t correction, bool keepdim) {
  const auto dims = float_reduction(x, dims_in, "var");
  OAR_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  int64_t count = 1;
  for (int64_t d : dims) count *= x.size(d);
  const Shape keep = reduced_shape(x.shape(), dims, true);
  Tensor out = empty(keep, x.dtype(), x.device());
  Tensor mu = empty(keep, x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), moments, out, mu, x, dims, correction);
  out = out.view(reduced_shape(x.shape(), dims, keepdim));
  if (autograd::needs_grad({x})) {
    const double scale = 2.0 / static_cast<double>(count - correction);
    autograd::record("var", {&out}, {x},
                     [x = x.detach(), mu = mu.detach(), scale](const autograd::Grads& g) {
                       return autograd::TensorList{g[0].reshape(mu.shape()) * (x - mu) * scale};
                     });
  }
  return out;
}

Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

Tensor norm(const Tensor& x, double p, const Shape& dims_in, bool keepdim) {
  const auto dims = float_reduction(x, dims_in, "norm");
  OAR_CHECK(!std::isnan(p), "norm: p must be a number, got nan");
  if (std::isinf(p)) return p > 0 ? amax(abs(x), dims_in, keepdim) : amin(abs(x), dims_in, keepdim);
  const Shape keep = reduced_shape(x.shape(), dims, true);
  Tensor out = empty(keep, x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), pnorm, out, x, dims, p);
  const Tensor out_keep = out;
  out = out.view(reduced_shape(x.shape(), dims, keepdim));
  if (autograd::needs_grad({x})) {
    autograd::record("norm", {&out}, {x},
                     [x = x.detach(), n = out_keep.detach(), p](const autograd::Grads& g) {
                       const Tensor gk = g[0].reshape(n.shape());
                       if (p == 0.0) return autograd::TensorList{zeros_like(x)};
                       if (p == 1.0) return autograd::TensorList{gk * sign(x)};
                       if (p == 2.0) return autograd::TensorList{gk * x / nonzero_divisor(n)};
                       const Tensor num = sign(x) * pow(abs(x), p - 1.0);
                       return autograd::TensorList{gk * num / pow(nonzero_divisor(n), p - 1.0)};
                     });
  }
  return out;
}

Tensor logsumexp(const Tensor& x, const Shape& dims_in, bool keepdim) {
  const auto dims = float_reduction(x, dims_in, "logsumexp");
  Tensor out = empty(reduced_shape(x.shape(), dims, true), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), logsumexp, out, x, dims);
  const Tensor out_keep = out;
  out = out.view(reduced_shape(x.shape(), dims, keepdim));
  if (autograd::needs_grad({x})) {
    autograd::record("logsumexp", {&out}, {x},
                     [x = x.detach(), o = out_keep.detach()](const autograd::Grads& g) {
                       return autograd::TensorList{g[0].reshape(o.shape()) * exp(x - o)};
                     });
  }
  return out;
}

}  // namespace oar
