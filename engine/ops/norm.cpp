#include "engine/autograd/autocast.h"
#include "engine/ops/norm.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// oneDNN batch normalisation of contiguous f32 x [N, C, *] (2-5 dims). With global_stats,
// mean/var [C] are inputs; otherwise they receive the batch mean and biased variance.
// weight/bias [C] may be undefined. `training` keeps what backward needs.
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, bool global_stats,
                        bool training);
// gx from gy; gw and gb are written when weight and bias are defined.
void batch_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps, bool global_stats);
// oneDNN layer normalisation of each row of contiguous f32 x [M, K]; mean/var [M] are written
// when defined (training). weight/bias [K] may be undefined.
void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps);
void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps);
// Group normalisation of contiguous f32 x [N, C, *]; mean/rstd [N, groups] are written.
void group_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t groups, double eps);
// Writes each defined output of gx, gw, gb.
void group_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, int64_t groups);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, bool global_stats,
                        bool training);
void batch_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps, bool global_stats);
void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps);
void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps);
void group_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t groups, double eps);
void group_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, int64_t groups);
}  // namespace cuda
#endif

namespace {

void check_f32(const char* op, const char* what, const Tensor& t) {
  OAR_CHECK(t.dtype() == DType::f32, op, ": ", what, " has dtype ", dtype_name(t.dtype()),
            " (only f32 is supported)");
}

// weight/bias: undefined, or of `shape` on x's device.
void check_param(const char* op, const char* what, const Tensor& t, const Tensor& x,
                 const Shape& shape) {
  if (!t.defined()) return;
  OAR_CHECK(t.shape() == shape, op, ": ", what, " has shape ", shape_str(t.shape()), ", expected ",
            shape_str(shape), " for x ", shape_str(x.shape()));
  check_f32(op, what, t);
  OAR_CHECK_SAME_DEVICE(op, x, t);
}

Tensor plain(const Tensor& t) {
  return t.defined() ? t.detach().contiguous() : Tensor();
}

Tensor grad_as(const Tensor& g, const Shape& shape) {
  Tensor r = g.dtype() == DType::f32 ? g : g.to(DType::f32);
  return r.contiguous().reshape(shape);
}

}  // namespace

Tensor batch_norm(const Tensor& x_arg, const Tensor& running_mean,
 const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  Tensor x = x_arg;
  autocast_inputs("batch_norm", {&x});
  const char* op = "batch_norm";
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(x.dim() >= 2, op, ": expected x [N, C, *], got ", shape_str(x.shape()));
  check_f32(op, "x", x);
  const int64_t c = x.size(1);
  check_param(op, "weight", weight, x, {c});
  check_param(op, "bias", bias, x, {c});
  OAR_CHECK(running_mean.defined() == running_var.defined(), op,
            ": running_mean and running_var must be given together");
  for (const Tensor* r : {&running_mean, &running_var}) {
    if (!r->defined()) continue;
    OAR_CHECK(r->shape() == Shape{c} && is_floating(r->dtype()), op, ": running statistics of ",
              dtype_name(r->dtype()), " ", shape_str(r->shape()), " must be floating [", c,
              "] for x ", shape_str(x.shape()));
    OAR_CHECK_SAME_DEVICE(op, x, *r);
  }
  OAR_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const bool batch_stats = training || !running_mean.defined();
  const int64_t count = c > 0 ? x.numel() / c : 0;
  OAR_CHECK(!batch_stats || count > 1, op,
            ": expected more than 1 value per channel when using batch statistics, got x ",
            shape_str(x.shape()));

  // oneDNN takes 2-5 dims: fold the spatial dims of higher ranks.
  Tensor xc = plain(x);
  if (x.dim() > 5) xc = xc.view({x.size(0), c, count / x.size(0)});
  Tensor w = plain(weight), b = plain(bias);
  const bool grad = autograd::needs_grad({x, weight, bias});
  Tensor mean, var;
  if (batch_stats) {
    mean = empty({c}, DType::f32, x.device());
    var = empty({c}, DType::f32, x.device());
  } else {
    // Copies, so later in-place updates of the running statistics cannot change backward.
    mean = running_mean.detach().to(DType::f32).clone();
    var = running_var.detach().to(DType::f32).clone();
  }
  Tensor y = empty(xc.shape(), DType::f32, x.device());
  if (y.numel() > 0)
    OAR_DISPATCH_GPU(x.device(), batch_norm_forward, y, mean, var, xc, w, b, eps, !batch_stats,
                     grad || batch_stats);
  if (training && running_mean.defined()) {
    // PyTorch's update: the running variance tracks the unbiased batch variance.
    Tensor rm = running_mean, rv = running_var;
    mul_(rm, 1.0 - momentum);
    add_(rm, mean, momentum);
    mul_(rv, 1.0 - momentum);
    add_(rv, var, momentum * static_cast<double>(count) / static_cast<double>(count - 1));
  }
  y = y.view(x.shape());
  if (grad) {
    autograd::record(op, {&y}, {x, weight, bias},
                     [xc, mean, var, w, b, eps, global = !batch_stats,
                      shape = x.shape()](const autograd::Grads& g) {
                       const int64_t c = xc.size(1);
                       Tensor gx = empty(xc.shape(), DType::f32, xc.device());
                       Tensor gw = w.defined() ? empty({c}, DType::f32, xc.device()) : Tensor();
                       Tensor gb = b.defined() ? empty({c}, DType::f32, xc.device()) : Tensor();
                       if (xc.numel() > 0) {
                         OAR_DISPATCH_GPU(xc.device(), batch_norm_backward, gx, gw, gb,
                                          grad_as(g[0], xc.shape()), xc, mean, var, w, b, eps,
                                          global);
                       } else {
                         if (gw.defined()) gw.zero_();
                         if (gb.defined()) gb.zero_();
                       }
                       return autograd::TensorList{g.needs(0) ? gx.view(shape) : Tensor(),
                                                   g.needs(1) ? gw : Tensor(),
                                                   g.needs(2) ? gb : Tensor()};
                     });
  }
  return y;
}

Tensor layer_norm(const Tensor& x_arg, int64_t normalized_ndim, const Tensor& weight,
                  const Tensor& bias, double eps) {
  Tensor x = x_arg;
  autocast_inputs("layer_norm", {&x});
  const char* op = "layer_norm";
  OAR_CHECK(x.defined(), op, ": undefined input");
  check_f32(op, "x", x);
  OAR_CHECK(normalized_ndim >= 1 && normalized_ndim <= x.dim(), op, ": normalized_ndim ",
            normalized_ndim, " must be in [1, ", x.dim(), "] for x ", shape_str(x.shape()));
  const Shape nshape(x.shape().end() - normalized_ndim, x.shape().end());
  check_param(op, "weight", weight, x, nshape);
  check_param(op, "bias", bias, x, nshape);
  OAR_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const int64_t k = shape_numel(nshape);
  OAR_CHECK(k > 0, op, ": normalized dims ", shape_str(nshape), " are empty");
  const int64_t m = x.numel() / k;
  Tensor xc = plain(x).view({m, k});
  Tensor w = weight.defined() ? plain(weight).view({k}) : Tensor();
  Tensor b = bias.defined() ? plain(bias).view({k}) : Tensor();
  const bool grad = autograd::needs_grad({x, weight, bias});
  Tensor mean = grad ? empty({m}, DType::f32, x.device()) : Tensor();
  Tensor var = grad ? empty({m}, DType::f32, x.device()) : Tensor();
  Tensor y = empty({m, k}, DType::f32, x.device());
  if (m > 0) OAR_DISPATCH_GPU(x.device(), layer_norm_forward, y, mean, var, xc, w, b, eps);
  y = y.view(x.shape());
  if (grad) {
    autograd::record(
        op, {&y}, {x, weight, bias},
        [xc, mean, var, w, b, eps, shape = x.shape(), nshape](const autograd::Grads& g) {
          const int64_t k = xc.size(1);
          Tensor gx = empty(xc.shape(), DType::f32, xc.device());
          Tensor gw = w.defined() ? empty({k}, DType::f32, xc.device()) : Tensor();
          Tensor gb = b.defined() ? empty({k}, DType::f32, xc.device()) : Tensor();
          if (xc.numel() > 0) {
            OAR_DISPATCH_GPU(xc.device(), layer_norm_backward, gx, gw, gb,
                             grad_as(g[0], xc.shape()), xc, mean, var, w, b, eps);
          } else {
            if (gw.defined()) gw.zero_();
            if (gb.defined()) gb.zero_();
          }
          return autograd::TensorList{g.needs(0) ? gx.view(shape) : Tensor(),
                                      g.needs(1) ? gw.view(nshape) : Tensor(),
                                      g.needs(2) ? gb.view(nshape) : Tensor()};
        });
  }
  return y;
}

Tensor group_norm(const Tensor& x_arg, int64_t groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  Tensor x = x_arg;
  autocast_inputs("group_norm", {&x});
  const char* op = "group_norm";
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(x.dim() >= 2, op, ": expected x [N, C, *], got ", shape_str(x.shape()));
  check_f32(op, "x", x);
  const int64_t n = x.size(0), c = x.size(1);
  OAR_CHECK(groups > 0 && c % groups == 0, op, ": ", c, " channels of x ", shape_str(x.shape()),
            " cannot be split into ", groups, " groups");
  check_param(op, "weight", weight, x, {c});
  check_param(op, "bias", bias, x, {c});
  OAR_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  Tensor xc = plain(x), w = plain(weight), b = plain(bias);
  Tensor y = empty(x.shape(), DType::f32, x.device());
  Tensor mean = empty({n, groups}, DType::f32, x.device());
  Tensor rstd = empty({n, groups}, DType::f32, x.device());
  OAR_DISPATCH_GPU(x.device(), group_norm_forward, y, mean, rstd, xc, w, b, groups, eps);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::record(
        op, {&y}, {x, weight, bias}, [xc, mean, rstd, w, groups](const autograd::Grads& g) {
          const int64_t c = xc.size(1);
          Tensor gx = g.needs(0) ? empty(xc.shape(), DType::f32, xc.device()) : Tensor();
          Tensor gw = g.needs(1) ? empty({c}, DType::f32, xc.device()) : Tensor();
          Tensor gb = g.needs(2) ? empty({c}, DType::f32, xc.device()) : Tensor();
          OAR_DISPATCH_GPU(xc.device(), group_norm_backward, gx, gw, gb,
                           grad_as(g[0], xc.shape()), xc, mean, rstd, w, groups);
          return autograd::TensorList{gx, gw, gb};
        });
  }
  return y;
}

}  // namespace oar
