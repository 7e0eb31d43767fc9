#include <algorithm>

#include "engine/core/error.h"
#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// Whether v replaces the current best: NaN wins (it propagates, as in PyTorch); equal values
// replace only when the last position is wanted.
template <typename C>
inline bool replaces(C v, C best, bool is_max, bool last) {
  const bool v_nan = v != v, best_nan = best != best;
  if (best_nan) return last && v_nan;
  if (v_nan) return true;
  if (v == best) return last;
  return is_max ? v > best : v < best;
}

template <typename T>
void arg_extreme_rows(const Tensor& rows, int64_t outer, int64_t n, const Tensor& values,
                      int64_t* idx, bool is_max, bool last) {
  using C = typename compute_type<T>::type;
  const char* src = static_cast<const char*>(rows.raw_data());
  char* vals = values.defined() ? static_cast<char*>(values.raw_data()) : nullptr;
  constexpr int64_t es = sizeof(T);
#pragma omp parallel for if (outer * n > kGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    const char* row = src + o * n * es;
    C best = load<T>(row);
    int64_t bi = 0;
    for (int64_t i = 1; i < n; ++i) {
      const C v = load<T>(row + i * es);
      if (replaces(v, best, is_max, last)) {
        best = v;
        bi = i;
      }
    }
    idx[o] = bi;
    if (vals) std::memcpy(vals + o * es, row + bi * es, es);
  }
}

template <typename T>
void extreme_rows(const Tensor& rows, int64_t outer, int64_t n, const Tensor& out, bool is_max) {
  using C = typename compute_type<T>::type;
  const char* src = static_cast<const char*>(rows.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  constexpr int64_t es = sizeof(T);
#pragma omp parallel for if (outer * n > kGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    const char* row = src + o * n * es;
    C best = load<T>(row);
    int64_t bi = 0;
    for (int64_t i = 1; i < n; ++i) {
      const C v = load<T>(row + i * es);
      if (replaces(v, best, is_max, false)) {
        best = v;
        bi = i;
      }
    }
    std::memcpy(dst + o * es, row + bi * es, es);
  }
}

template <typename T>
void put_rows(const Tensor& rows, int64_t outer, int64_t n, const Tensor& index, const Tensor& src,
              int64_t k) {
  char* dst = static_cast<char*>(rows.raw_data());
  const int64_t* ip = index.data<int64_t>();
  const char* sp = static_cast<const char*>(src.raw_data());
  constexpr int64_t es = sizeof(T);
#pragma omp parallel for if (outer * k > kGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = ip[o * k + j];
      char* p = dst + (o * n + i) * es;
      store<T>(p, load<T>(p) + load<T>(sp + (o * k + j) * es));
    }
  }
}

}  // namespace

void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                 bool is_max, bool last) {
  const Tensor rows = dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  int64_t* idx = indices.data<int64_t>();
  OAR_DTYPE_SWITCH(x.dtype(), arg_extreme_rows<T>(rows, outer, n, values, idx, is_max, last));
}

void extreme(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, bool is_max) {
  const Tensor rows = dims_last(x, dims);
  const int64_t outer = out.numel();
  const int64_t n = outer ? x.numel() / outer : 0;
  OAR_DTYPE_SWITCH(x.dtype(), extreme_rows<T>(rows, outer, n, out, is_max));
}

void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const Tensor idx_rows = dims_last(index, {dim});
  const Tensor src_rows = dims_last(src, {dim}).contiguous();
  const int64_t n = out.size(dim), k = index.size(dim);
  const int64_t outer = n ? out.numel() / n : 0;
  into_dims_last(out, {dim}, [&](const Tensor& rows) {
    Tensor r = rows;
    r.zero_();
    OAR_FLOAT_SWITCH(out.dtype(), "put_along", put_rows<T>(rows, outer, n, idx_rows, src_rows, k));
  });
}

}  // namespace oar::cpu
