#include "engine/ops/unary.h"

#include <cmath>
#include <limits>

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"

namespace oar {

enum class UnaryOp {
  exp, log, sqrt, rsqrt, abs, sign, erf, sin, cos, reciprocal, square, clamp, relu, relu6,
  leaky_relu, elu, gelu, gelu_tanh, sigmoid, tanh, silu, hard_sigmoid, hard_swish, softplus,
  // backward helpers: out = f'(x) * g, computed in one pass
  d_clamp, d_relu6, d_leaky_relu, d_elu, d_gelu, d_gelu_tanh, d_silu, d_hard_sigmoid,
  d_hard_swish, d_softplus
};

namespace cpu {
void unary(UnaryOp op, const Tensor& out, const Tensor& x, double p0, double p1);
void unary_backward(UnaryOp op, const Tensor& out, const Tensor& g, const Tensor& x, double p0,
                    double p1);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void unary(UnaryOp op, const Tensor& out, const Tensor& x, double p0, double p1);
void unary_backward(UnaryOp op, const Tensor& out, const Tensor& g, const Tensor& x, double p0,
                    double p1);
}  // namespace cuda
#endif

namespace {

const char* name_of(UnaryOp op) {
  switch (op) {
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::sign: return "sign";
    case UnaryOp::erf: return "erf";
    case UnaryOp::sin: return "sin";
    case UnaryOp::cos: return "cos";
    case UnaryOp::reciprocal: return "reciprocal";
    case UnaryOp::square: return "square";
    case UnaryOp::clamp: return "clamp";
    case UnaryOp::relu: return "relu";
    case UnaryOp::relu6: return "relu6";
    case UnaryOp::leaky_relu: return "leaky_relu";
    case UnaryOp::elu: return "elu";
    case UnaryOp::gelu: return "gelu";
    case UnaryOp::gelu_tanh: return "gelu_tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::silu: return "silu";
    case UnaryOp::hard_sigmoid: return "hard_sigmoid";
    case UnaryOp::hard_swish: return "hard_swish";
    case UnaryOp::softplus: return "softplus";
    default: return "unary_backward";
  }
}

Tensor run(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  const char* name = name_of(op);
  OAR_CHECK(x.defined(), name, ": undefined input");
  OAR_CHECK(is_floating(x.dtype()) || op == UnaryOp::abs || op == UnaryOp::sign ||
                op == UnaryOp::square || op == UnaryOp::relu,
            name, ": dtype ", dtype_name(x.dtype()), " not supported (floating types only)");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), unary, op, out, x, p0, p1);
  return out;
}

// g * f'(x) in one kernel.
Tensor run_backward(UnaryOp op, const Tensor& g, const Tensor& x, double p0 = 0, double p1 = 0) {
  Tensor out = empty(x.shape(), g.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), unary_backward, op, out, g, x, p0, p1);
  return out;
}

// Records a node whose backward is g * f'(x) via the fused backward kernel.
Tensor with_fused_grad(UnaryOp op, UnaryOp dop, const Tensor& x, double p0 = 0, double p1 = 0) {
  Tensor out = run(op, x, p0, p1);
  if (autograd::needs_grad({x})) {
    autograd::record(name_of(op), {&out}, {x}, [dop, x = x.detach(), p0, p1](const autograd::Grads& g) {
      return autograd::TensorList{run_backward(dop, g[0], x, p0, p1)};
    });
  }
  return out;
}

template <typename F>
Tensor with_grad(UnaryOp op, const Tensor& x, F backward, double p0 = 0, double p1 = 0) {
  Tensor out = run(op, x, p0, p1);
  if (autograd::needs_grad({x})) {
    autograd::record(name_of(op), {&out}, {x},
                     [backward, x = x.detach(), o = out.detach()](const autograd::Grads& g) {
                       return autograd::TensorList{backward(g[0], x, o)};
                     });
  }
  return out;
}

}  // namespace

Tensor exp(const Tensor& x) {
  return with_grad(UnaryOp::exp, x, [](const Tensor& g, const Tensor&, const Tensor& o) { return g * o; });
}
Tensor log(const Tensor& x) {
  return with_grad(UnaryOp::log, x, [](const Tensor& g, const Tensor& x, const Tensor&) { return g / x; });
}
Tensor sqrt(const Tensor& x) {
  return with_grad(UnaryOp::sqrt, x,
                   [](const Tensor& g, const Tensor&, const Tensor& o) { return g / (o * 2.0); });
}
Tensor rsqrt(const Tensor& x) {
  return with_grad(UnaryOp::rsqrt, x, [](const Tensor& g, const Tensor& x, const Tensor& o) {
    return g * o / x * -0.5;
  });
}
Tensor abs(const Tensor& x) {
  return with_grad(UnaryOp::abs, x,
                   [](const Tensor& g, const Tensor& x, const Tensor&) { return g * sign(x); });
}
Tensor sign(const Tensor& x) { return run(UnaryOp::sign, x); }
Tensor erf(const Tensor& x) {
  return with_grad(UnaryOp::erf, x, [](const Tensor& g, const Tensor& x, const Tensor&) {
    return g * exp(neg(x * x)) * (2.0 / std::sqrt(M_PI));
  });
}
Tensor sin(const Tensor& x) {
  return with_grad(UnaryOp::sin, x, [](const Tensor& g, const Tensor& x, const Tensor&) { return g * cos(x); });
}
Tensor cos(const Tensor& x) {
  return with_grad(UnaryOp::cos, x,
                   [](const Tensor& g, const Tensor& x, const Tensor&) { return neg(g * sin(x)); });
}
Tensor reciprocal(const Tensor& x) {
  return with_grad(UnaryOp::reciprocal, x,
                   [](const Tensor& g, const Tensor&, const Tensor& o) { return neg(g * o * o); });
}
Tensor square(const Tensor& x) {
  return with_grad(UnaryOp::square, x,
                   [](const Tensor& g, const Tensor& x, const Tensor&) { return g * x * 2.0; });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  OAR_CHECK(!(lo > hi), "clamp: min ", lo, " is greater than max ", hi);
  return with_fused_grad(UnaryOp::clamp, UnaryOp::d_clamp, x, lo, hi);
}
Tensor relu(const Tensor& x) {
  // g where the output is positive, 0 elsewhere (d_clamp on the output would pass g through
  // every clamped zero).
  return with_grad(UnaryOp::relu, x, [](const Tensor& g, const Tensor&, const Tensor& o) {
    return run_backward(UnaryOp::d_leaky_relu, g, o, 0.0);
  });
}
Tensor relu6(const Tensor& x) { return with_fused_grad(UnaryOp::relu6, UnaryOp::d_relu6, x); }
Tensor leaky_relu(const Tensor& x, double s) {
  return with_fused_grad(UnaryOp::leaky_relu, UnaryOp::d_leaky_relu, x, s);
}
Tensor elu(const Tensor& x, double a) { return with_fused_grad(UnaryOp::elu, UnaryOp::d_elu, x, a); }
Tensor gelu(const Tensor& x, bool approximate) {
  return approximate ? with_fused_grad(UnaryOp::gelu_tanh, UnaryOp::d_gelu_tanh, x)
                     : with_fused_grad(UnaryOp::gelu, UnaryOp::d_gelu, x);
}
Tensor sigmoid(const Tensor& x) {
  return with_grad(UnaryOp::sigmoid, x, [](const Tensor& g, const Tensor&, const Tensor& o) {
    return g * o * (1.0 - o);
  });
}
Tensor tanh(const Tensor& x) {
  return with_grad(UnaryOp::tanh, x, [](const Tensor& g, const Tensor&, const Tensor& o) {
    return g * (1.0 - o * o);
  });
}
Tensor silu(const Tensor& x) { return with_fused_grad(UnaryOp::silu, UnaryOp::d_silu, x); }
Tensor hard_sigmoid(const Tensor& x) {
  return with_fused_grad(UnaryOp::hard_sigmoid, UnaryOp::d_hard_sigmoid, x);
}
Tensor hard_swish(const Tensor& x) {
  return with_fused_grad(UnaryOp::hard_swish, UnaryOp::d_hard_swish, x);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  OAR_CHECK(beta > 0, "softplus: beta must be positive, got ", beta);
  return with_fused_grad(UnaryOp::softplus, UnaryOp::d_softplus, x, beta, threshold);
}

}  // namespace oar
