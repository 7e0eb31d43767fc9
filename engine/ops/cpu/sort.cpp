#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// Strict order of (value, index) pairs: by value (NaN above everything), then by lower index.
template <typename C>
struct RowOrder {
  const C* v;
  bool descending;
  bool operator()(int64_t a, int64_t b) const {
    const C x = v[a], y = v[b];
    const bool xn = x != x, yn = y != y;
    if (xn != yn) return descending ? xn : yn;
    if (!xn && x != y) return descending ? x > y : x < y;
    return a < b;
  }
};

template <typename T>
void sort_typed(const Tensor& rows, const Tensor& vrows, const Tensor& irows, int64_t outer,
                int64_t n, int64_t k, bool descending) {
  using L = typename compute_type<T>::type;
  using C = std::conditional_t<std::is_same_v<L, bool>, uint8_t, L>;  // vector<bool> has no data()
  const char* src = static_cast<const char*>(rows.raw_data());
  char* vdst = static_cast<char*>(vrows.raw_data());
  int64_t* idst = irows.data<int64_t>();
  constexpr int64_t es = sizeof(T);
#pragma omp parallel if (outer * n > kGrain && outer > 1)
  {
    std::vector<C> vals(static_cast<size_t>(n));
    std::vector<int64_t> order(static_cast<size_t>(n));
#pragma omp for
    for (int64_t o = 0; o < outer; ++o) {
      const char* row = src + o * n * es;
      for (int64_t i = 0; i < n; ++i) vals[i] = load<T>(row + i * es);
      std::iota(order.begin(), order.end(), int64_t{0});
      const RowOrder<C> before{vals.data(), descending};
      if (k < n)
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      else
        std::sort(order.begin(), order.end(), before);  // total order: stable by index
      for (int64_t j = 0; j < k; ++j) {
        idst[o * k + j] = order[j];
        std::memcpy(vdst + (o * k + j) * es, row + order[j] * es, es);
      }
    }
  }
}

template <typename T, typename Acc>
void cumsum_typed(const Tensor& rows, const Tensor& orows, int64_t outer, int64_t n, bool exclusive,
                  bool reverse) {
  using To = std::conditional_t<std::is_integral_v<Acc>, int64_t, T>;
  const char* src = static_cast<const char*>(rows.raw_data());
  char* dst = static_cast<char*>(orows.raw_data());
  constexpr int64_t es = sizeof(T), eo = sizeof(To);
#pragma omp parallel for if (outer * n > kGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    Acc acc = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = reverse ? n - 1 - j : j;
      const Acc v = static_cast<Acc>(load<T>(src + (o * n + i) * es));
      if (!exclusive) acc += v;
      store<To>(dst + (o * n + i) * eo, acc);
      if (exclusive) acc += v;
    }
  }
}

template <typename T>
void cumsum_dispatch(const Tensor& rows, const Tensor& orows, int64_t outer, int64_t n,
                     bool exclusive, bool reverse) {
  if constexpr (std::is_integral_v<T>)
    cumsum_typed<T, int64_t>(rows, orows, outer, n, exclusive, reverse);
  else
    cumsum_typed<T, double>(rows, orows, outer, n, exclusive, reverse);
}

}  // namespace

void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
               bool descending) {
  const Tensor rows = dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  if (k == 0 || outer == 0) return;
  into_dims_last(values, {dim}, [&](const Tensor& vrows) {
    into_dims_last(indices, {dim}, [&](const Tensor& irows) {
      OAR_DTYPE_SWITCH(x.dtype(), sort_typed<T>(rows, vrows, irows, outer, n, k, descending));
    });
  });
}

void cumsum(const Tensor& out, const Tensor& x, int64_t dim, bool exclusive, bool reverse) {
  const Tensor rows = dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  if (outer == 0) return;
  into_dims_last(out, {dim}, [&](const Tensor& orows) {
    OAR_DTYPE_SWITCH(x.dtype(), cumsum_dispatch<T>(rows, orows, outer, n, exclusive, reverse));
  });
}

}  // namespace oar::cpu
