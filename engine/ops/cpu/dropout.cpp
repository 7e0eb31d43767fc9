#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

void dropout_mask(const Tensor& mask, uint64_t seed, uint64_t base, double p) {
  uint8_t* m = mask.data<uint8_t>();
  const int64_t n = mask.numel();
  const float threshold = static_cast<float>(p);
#pragma omp parallel for if (n > kGrain)
  for (int64_t i = 0; i < n; ++i)
    m[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >=
           threshold;
}

namespace {
template <typename T>
void apply_typed(const Tensor& out, const Tensor& x, const Tensor& mask, double scale) {
  using C = typename compute_type<T>::type;
  const C s = static_cast<C>(scale);
  map2<T, T, uint8_t>(out, x, mask,
                      [s](C v, uint8_t keep) { return keep ? static_cast<C>(v * s) : C(0); });
}
}  // namespace

void apply_dropout_mask(const Tensor& out, const Tensor& x, const Tensor& mask, double scale) {
  OAR_FLOAT_SWITCH(x.dtype(), "dropout", apply_typed<T>(out, x, mask, scale));
}

}  // namespace oar::cpu
