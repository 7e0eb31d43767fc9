#include <numeric>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {
template <typename T>
void sum_rows(const Tensor& xp, const Tensor& out, int64_t outer, int64_t inner) {
  const T* src = static_cast<const T*>(xp.raw_data());
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    char* dst = static_cast<char*>(out.raw_data());
#pragma omp parallel for if (outer * inner > kGrain && outer > 1)
    for (int64_t o = 0; o < outer; ++o) {
      double acc = 0;
      const T* row = src + o * inner;
      for (int64_t i = 0; i < inner; ++i) acc += to_double(row[i]);
      store<T>(dst + o * static_cast<int64_t>(sizeof(T)), acc);
    }
  } else {
    OAR_CHECK(out.dtype() == DType::i64, "sum: integer sums accumulate in i64");
    int64_t* dst = static_cast<int64_t*>(out.raw_data());
#pragma omp parallel for if (outer * inner > kGrain && outer > 1)
    for (int64_t o = 0; o < outer; ++o) {
      int64_t acc = 0;
      const T* row = src + o * inner;
      for (int64_t i = 0; i < inner; ++i) acc += static_cast<int64_t>(row[i]);
      dst[o] = acc;
    }
  }
}
}  // namespace

// Moves reduced dims last (a copy only when they are not already innermost and contiguous),
// then reduces each row with a double (or int64) accumulator.
void sum(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  Shape perm;
  std::vector<bool> red(rank, false);
  for (int64_t d : dims) red[d] = true;
  for (int64_t d = 0; d < rank; ++d)
    if (!red[d]) perm.push_back(d);
  for (int64_t d : dims) perm.push_back(d);
  Tensor xp = x.detach().permute(perm).contiguous();
  int64_t inner = 1;
  for (int64_t d : dims) inner *= x.size(d);
  const int64_t outer = out.numel();
  OAR_DTYPE_SWITCH(x.dtype(), sum_rows<T>(xp, out, outer, inner));
}

}  // namespace oar::cpu
