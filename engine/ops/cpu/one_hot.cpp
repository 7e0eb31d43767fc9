#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {
template <typename T>
void set_ones(const Tensor& out, const int64_t* idx, int64_t n, int64_t num_classes) {
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t i = 0; i < n; ++i)
    store<T>(dst + (i * num_classes + idx[i]) * static_cast<int64_t>(sizeof(T)), 1);
}
}  // namespace

void one_hot(const Tensor& out, const Tensor& indices, int64_t num_classes) {
  const int64_t* idx = indices.data<int64_t>();
  const int64_t n = indices.numel();
  for (int64_t i = 0; i < n; ++i)
    OAR_CHECK(idx[i] >= 0 && idx[i] < num_classes, "one_hot: index ", idx[i], " at position ", i,
              " is outside [0, ", num_classes, ")");
  Tensor o = out;
  o.zero_();
  OAR_DTYPE_SWITCH(out.dtype(), set_ones<T>(out, idx, n, num_classes));
}

}  // namespace oar::cpu
