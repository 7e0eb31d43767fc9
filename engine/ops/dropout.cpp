#include "engine/ops/dropout.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"

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

}  // namespace oar
