#pragma once
// One row of layer normalisation on the CPU, shared by layer_norm_forward (norm.cpp) and the
// fused dropout + add + layer norm (layer_norm.cpp), so both give the same bits: row sums in
// eight-float vectors folded into double every kLayerNormChunk elements, biased variance.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/ops/cpu/vec8.h"

namespace oar::cpu {

constexpr int64_t kLayerNormChunk = 512;

// Sum over j in [0, k) of f(j) for a vector (8 elements from j) and scalar form of f.
template <typename V, typename S>
double layer_norm_row_sum(int64_t k, V vf, S sf) {
  double total = 0;
  for (int64_t c0 = 0; c0 < k; c0 += kLayerNormChunk) {
    const int64_t c1 = std::min(k, c0 + kLayerNormChunk);
    v8f a0 = {}, a1 = {};
    int64_t j = c0;
    for (; j + 2 * kV <= c1; j += 2 * kV) {
      a0 += vf(j);
      a1 += vf(j + kV);
    }
    for (; j + kV <= c1; j += kV) a0 += vf(j);
    float s = hsum(a0 + a1);
    for (; j < c1; ++j) s += sf(j);
    total += s;
  }
  return total;
}

// yr = (xr - mean) / sqrt(var + eps) [* w] [+ b] over k elements; *mean_out/*var_out receive the
// statistics when given. yr may equal xr.
inline void layer_norm_row(const float* xr, float* yr, int64_t k, double eps, const float* pw,
                           const float* pb, float* mean_out, float* var_out) {
  const double mu =
      layer_norm_row_sum(
          k, [&](int64_t j) { return load8(xr + j); }, [&](int64_t j) { return xr[j]; }) /
      static_cast<double>(k);
  const float m32 = static_cast<float>(mu);
  const v8f mv = splat(m32);
  const double v = layer_norm_row_sum(
                       k,
                       [&](int64_t j) {
                         const v8f d = load8(xr + j) - mv;
                         return d * d;
                       },
                       [&](int64_t j) {
                         const float d = xr[j] - m32;
                         return d * d;
                       }) /
                   static_cast<double>(k);
  if (mean_out) {
    *mean_out = m32;
    *var_out = static_cast<float>(v);
  }
  const float rstd = static_cast<float>(1.0 / std::sqrt(v + eps));
  if (pw && pb)
    for (int64_t j = 0; j < k; ++j) yr[j] = (xr[j] - m32) * rstd * pw[j] + pb[j];
  else if (pw)
    for (int64_t j = 0; j < k; ++j) yr[j] = (xr[j] - m32) * rstd * pw[j];
  else if (pb)
    for (int64_t j = 0; j < k; ++j) yr[j] = (xr[j] - m32) * rstd + pb[j];
  else
    for (int64_t j = 0; j < k; ++j) yr[j] = (xr[j] - m32) * rstd;
}

}  // namespace oar::cpu
