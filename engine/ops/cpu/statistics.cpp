#include <cmath>
#include <limits>

#include "engine/core/error.h"
#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// Calls f(row pointer, n) -> double for each of the `outer` rows and stores the result in out.
template <typename T, typename F>
void per_row(const Tensor& rows, const Tensor& out, F f) {
  const int64_t outer = out.numel();
  const int64_t n = outer ? rows.numel() / outer : 0;
  const char* src = static_cast<const char*>(rows.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  constexpr int64_t es = sizeof(T);
#pragma omp parallel for if (outer * n > kGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) store<T>(dst + o * es, f(src + o * n * es, n, o));
}

template <typename T>
void moments_typed(const Tensor& rows, const Tensor& var, const Tensor& mean, int64_t correction) {
  char* mp = static_cast<char*>(mean.raw_data());
  per_row<T>(rows, var, [&](const char* row, int64_t n, int64_t o) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += load<T>(row + i * sizeof(T));
    const double mu = s / static_cast<double>(n);
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = load<T>(row + i * sizeof(T)) - mu;
      ss += d * d;
    }
    store<T>(mp + o * static_cast<int64_t>(sizeof(T)), mu);
    return ss / static_cast<double>(n - correction);
  });
}

template <typename T>
void pnorm_typed(const Tensor& rows, const Tensor& out, double p) {
  per_row<T>(rows, out, [&](const char* row, int64_t n, int64_t) {
    double s = 0;
    if (p == 0.0) {
      for (int64_t i = 0; i < n; ++i) s += load<T>(row + i * sizeof(T)) != 0 ? 1.0 : 0.0;
      return s;
    }
    if (p == 1.0) {
      for (int64_t i = 0; i < n; ++i) s += std::fabs(load<T>(row + i * sizeof(T)));
      return s;
    }
    if (p == 2.0) {
      for (int64_t i = 0; i < n; ++i) {
        const double v = load<T>(row + i * sizeof(T));
        s += v * v;
      }
      return std::sqrt(s);
    }
    for (int64_t i = 0; i < n; ++i)
      s += std::pow(std::fabs(double(load<T>(row + i * sizeof(T)))), p);
    return std::pow(s, 1.0 / p);
  });
}

template <typename T>
void logsumexp_typed(const Tensor& rows, const Tensor& out) {
  per_row<T>(rows, out, [&](const char* row, int64_t n, int64_t) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::fmax(m, load<T>(row + i * sizeof(T)));
    if (std::isinf(m)) return m;  // all -inf, or an inf that dominates
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(load<T>(row + i * sizeof(T)) - m);
    return m + std::log(s);
  });
}

}  // namespace

void moments(const Tensor& var, const Tensor& mean, const Tensor& x,
             const std::vector<int64_t>& dims, int64_t correction) {
  const Tensor rows = dims_last(x, dims);
  OAR_FLOAT_SWITCH(x.dtype(), "var", moments_typed<T>(rows, var, mean, correction));
}

void pnorm(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, double p) {
  const Tensor rows = dims_last(x, dims);
  OAR_FLOAT_SWITCH(x.dtype(), "norm", pnorm_typed<T>(rows, out, p));
}

void logsumexp(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  const Tensor rows = dims_last(x, dims);
  OAR_FLOAT_SWITCH(x.dtype(), "logsumexp", logsumexp_typed<T>(rows, out));
}

}  // namespace oar::cpu
