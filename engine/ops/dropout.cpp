#include "engine/ops/dropout.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/norm.h"

namespace oar {

namespace cpu {
// mask (u8, contiguous) [i] = 1 with probability 1 - p, from draw (seed, base + i).
void dropout_mask(const Tensor& mask, uint64_t seed, uint64_t base, double p);
// out = mask ? x * scale : 0, mask of x's shape.
void apply_dropout_mask(const Tensor& out, const Tensor& x, const Tensor& mask, double scale);
// The f32 path: keep bits (bit i of byte i / 8 for element i, the same rule as dropout_mask) and
// out = bit ? x * scale : 0 on contiguous x and out.
void dropout_bits(const Tensor& bits, uint64_t seed, uint64_t base, int64_t n, double p);
void apply_dropout_bits(const Tensor& out, const Tensor& x, const Tensor& bits, double scale);
// engine/ops/cpu/layer_norm.cpp: y = layer_norm(bits-dropout(x) + residual) per row of [M, K].
void dropout_add_layer_norm_forward(const Tensor& y, const Tensor& sum, const Tensor& mean,
                                    const Tensor& var, const Tensor& x, const Tensor& residual,
                                    const Tensor& weight, const Tensor& bias, const Tensor& bits,
                                    double scale, double eps);
// engine/ops/cpu/norm.cpp (layer_norm's own backward).
void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void dropout_mask(const Tensor& mask, uint64_t seed, uint64_t base, double p);
void apply_dropout_mask(const Tensor& out, const Tensor& x, const Tensor& mask, double scale);
}  // namespace cuda
#endif

namespace {
Tensor apply_mask(const Tensor& x, const Tensor& mask, double scale) {
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), apply_dropout_mask, out, x, mask, scale);
  return out;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  OAR_CHECK(x.defined(), "dropout: undefined input");
  OAR_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  OAR_CHECK(is_floating(x.dtype()), "dropout: dtype ", dtype_name(x.dtype()),
            " not supported (floating types only)");
  Generator& g = gen ? *gen : default_generator();
  const uint64_t base = g.reserve(static_cast<uint64_t>(x.numel()));
  const double scale = 1.0 / (1.0 - p);
  if (x.device().is_cpu() && x.dtype() == DType::f32) {
    // One bit per element (an eighth of the u8 mask's memory), drawn eight at a time.
    const int64_t n = x.numel();
    const Tensor bits = empty({(n + 7) / 8}, DType::u8, x.device());
    cpu::dropout_bits(bits, g.seed(), base, n, p);
    auto apply = [bits, scale](const Tensor& t) {
      const Tensor tc = t.contiguous();
      Tensor out = empty(tc.shape(), DType::f32, tc.device());
      cpu::apply_dropout_bits(out, tc, bits, scale);
      return out;
    };
    Tensor out = apply(x.detach());
    if (autograd::needs_grad({x})) {
      autograd::record("dropout", {&out}, {x},
                       [apply, shape = x.shape()](const autograd::Grads& g) {
                         return autograd::TensorList{apply(g[0]).view(shape)};
                       });
    }
    return out;
  }
  Tensor mask = empty(x.shape(), DType::u8, x.device());
  OAR_DISPATCH_GPU(x.device(), dropout_mask, mask, g.seed(), base, p);
  Tensor out = apply_mask(x, mask, scale);
  if (autograd::needs_grad({x})) {
    autograd::record("dropout", {&out}, {x}, [mask, scale](const autograd::Grads& g) {
      return autograd::TensorList{apply_mask(g[0], mask, scale)};
    });
  }
  return out;
}

Tensor dropout_add_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                              const Tensor& bias, double eps, double p, bool training,
                              Generator* gen) {
  const char* op = "dropout_add_layer_norm";
  OAR_CHECK(x.defined() && residual.defined(), op, ": undefined input");
  OAR_CHECK(x.dim() >= 1 && x.shape() == residual.shape(), op, ": x ", shape_str(x.shape()),
            " and residual ", shape_str(residual.shape()), " must have one shape");
  OAR_CHECK(p >= 0.0 && p < 1.0, op, ": probability p must be in [0, 1), got ", p);
  const int64_t k = x.size(-1);
  for (const Tensor* t : {&weight, &bias})
    OAR_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == k), op,
              ": weight and bias must be [", k, "], got ", shape_str(t->shape()));
  auto f32_cpu = [](const Tensor& t) {
    return !t.defined() || (t.device().is_cpu() && t.dtype() == DType::f32);
  };
  if (!f32_cpu(x) || !f32_cpu(residual) || !f32_cpu(weight) || !f32_cpu(bias) || k == 0 ||
      x.numel() == 0)
    return layer_norm(add(dropout(x, p, training, gen), residual), 1, weight, bias, eps);
  OAR_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const int64_t n = x.numel(), m = n / k;
  const bool drop = training && p > 0.0;
  const double scale = drop ? 1.0 / (1.0 - p) : 1.0;
  Tensor bits;
  if (drop) {
    Generator& g = gen ? *gen : default_generator();
    const uint64_t base = g.reserve(static_cast<uint64_t>(n));  // as dropout draws
    bits = empty({(n + 7) / 8}, DType::u8, x.device());
    cpu::dropout_bits(bits, g.seed(), base, n, p);
  }
  const Tensor xc = x.detach().contiguous().view({m, k});
  const Tensor rc = residual.detach().contiguous().view({m, k});
  const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  const bool grad = autograd::needs_grad({x, residual, weight, bias});
  const Tensor sum = grad ? empty({m, k}, DType::f32, x.device()) : Tensor();
  const Tensor mean = grad ? empty({m}, DType::f32, x.device()) : Tensor();
  const Tensor var = grad ? empty({m}, DType::f32, x.device()) : Tensor();
  Tensor y = empty({m, k}, DType::f32, x.device());
  cpu::dropout_add_layer_norm_forward(y, sum, mean, var, xc, rc, w, b, bits, scale, eps);
  y = y.view(x.shape());
  if (grad) {
    autograd::record(
        op, {&y}, {x, residual, weight, bias},
        [sum, mean, var, w, b, bits, scale, eps, shape = x.shape()](const autograd::Grads& g) {
          const int64_t m = sum.size(0), k = sum.size(1);
          const Tensor gy =
              (g[0].dtype() == DType::f32 ? g[0] : g[0].to(DType::f32)).contiguous().view({m, k});
          Tensor gs = empty({m, k}, DType::f32, sum.device());
          Tensor gw = w.defined() ? empty({k}, DType::f32, sum.device()) : Tensor();
          Tensor gb = b.defined() ? empty({k}, DType::f32, sum.device()) : Tensor();
          cpu::layer_norm_backward(gs, gw, gb, gy, sum, mean, var, w, b, eps);
          Tensor gx;
          if (g.needs(0)) {
            if (bits.defined()) {
              gx = empty({m, k}, DType::f32, sum.device());
              cpu::apply_dropout_bits(gx, gs, bits, scale);
            } else {
              gx = g.needs(1) ? gs.clone() : gs;
            }
            gx = gx.view(shape);
          }
          return autograd::TensorList{gx, g.needs(1) ? gs.view(shape) : Tensor(),
                                      g.needs(2) ? gw : Tensor(), g.needs(3) ? gb : Tensor()};
        });
  }
  return y;
}

}  // namespace oar
