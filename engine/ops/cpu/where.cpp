#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {
template <typename T>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  using C = typename compute_type<T>::type;
  map3<T, bool, T, T>(out, cond, a, b, [](bool c, C x, C y) { return c ? x : y; });
}
}  // namespace

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  OAR_DTYPE_SWITCH(out.dtype(), where_typed<T>(out, cond, a, b));
}

}  // namespace oar::cpu
