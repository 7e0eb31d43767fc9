#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// Sum of n values in double, with eight independent accumulators so the adds pipeline (and
// vectorise) instead of waiting on one another.
template <typename T>
double sum_run(const T* row, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += to_double(row[i + k]);
  for (; i < n; ++i) acc[0] += to_double(row[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename T>
void sum_rows(const Tensor& xp, const Tensor& out, int64_t outer, int64_t inner) {
  const T* src = static_cast<const T*>(xp.raw_data());
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    char* dst = static_cast<char*>(out.raw_data());
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (outer < threads && outer * inner > kGrain) {
      // Few long rows (a full reduction): split each row across threads, add the partial sums
      // in thread order.
      std::vector<double> part(threads);
      for (int64_t o = 0; o < outer; ++o) {
        const T* row = src + o * inner;
#pragma omp parallel num_threads(threads)
        {
          const int t = omp_get_thread_num(), nt = omp_get_num_threads();
          const int64_t b = inner * t / nt, e = inner * (t + 1) / nt;
          part[t] = sum_run(row + b, e - b);
          if (t == 0)
            for (int u = nt; u < threads; ++u) part[u] = 0;
        }
        double acc = 0;
        for (double v : part) acc += v;
        store<T>(dst + o * static_cast<int64_t>(sizeof(T)), acc);
      }
      return;
    }
#pragma omp parallel for if (outer * inner > kGrain && outer > 1)
    for (int64_t o = 0; o < outer; ++o)
      store<T>(dst + o * static_cast<int64_t>(sizeof(T)), sum_run(src + o * inner, inner));
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

// Column sums of a contiguous [rows, cols] block: threads own column ranges and add the rows
// in order, in double, so no transposed copy is needed (linear's bias gradient).
template <typename T>
void sum_columns(const Tensor& x, const Tensor& out, int64_t rows, int64_t cols) {
  const T* src = static_cast<const T*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  constexpr int64_t kBlock = 256;  // columns per task: a double accumulator block in L1
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols > kGrain && blocks > 1)
  for (int64_t bl = 0; bl < blocks; ++bl) {
    const int64_t c0 = bl * kBlock, n = std::min(kBlock, cols - c0);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = src + r * cols + c0;
      for (int64_t j = 0; j < n; ++j) acc[j] += to_double(row[j]);
    }
    for (int64_t j = 0; j < n; ++j)
      store<T>(dst + (c0 + j) * static_cast<int64_t>(sizeof(T)), acc[j]);
  }
}

// Moves reduced dims last (a copy only when they are not already innermost and contiguous),
// then reduces each row with a double (or int64) accumulator. Leading reduced dims of a
// contiguous float tensor are summed as columns instead.
void sum(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  if (is_floating(x.dtype()) && x.is_contiguous() && !dims.empty() &&
      dims.back() == static_cast<int64_t>(dims.size()) - 1 &&
      static_cast<int64_t>(dims.size()) < rank) {
    int64_t rows = 1;
    for (int64_t d : dims) rows *= x.size(d);
    const int64_t cols = x.numel() / std::max<int64_t>(rows, 1);
    if (cols >= 16 && rows > 1) {
      switch (x.dtype()) {
        case DType::f32:
          return sum_columns<float>(x, out, rows, cols);
        case DType::bf16:
          return sum_columns<bf16>(x, out, rows, cols);
        case DType::f16:
          return sum_columns<f16>(x, out, rows, cols);
        default:
          break;
      }
    }
  }
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
