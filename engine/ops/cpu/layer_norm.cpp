// The residual sublayer's tail on the CPU in one pass per row: s = dropout(x) + residual, then
// layer normalisation of s (BERT's LayerNorm(dropout(dense(h)) + h)). The row of s stays in L1
// between the sum and the statistics; the keep bits are dropout's (dropout_bits), so the fused
// op draws the same mask as dropout followed by add and layer_norm. Statistics as
// layer_norm_forward: row sums in eight-float vectors folded into double every kLayerNormChunk
// elements (layer_norm_row.h), biased variance.
#include <algorithm>
#include <cmath>

#include "engine/ops/cpu/dropout_bits.h"
#include "engine/ops/cpu/layer_norm_row.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/vec8.h"

namespace oar::cpu {

namespace {}  // namespace

// x, residual, y [M, K] contiguous f32; sum [M, K] receives s when defined (else s is built in
// y and normalised in place); mean/var [M] when defined. bits: dropout's keep bits for x's
// elements (undefined: no dropout), kept elements scaled by `scale`.
void dropout_add_layer_norm_forward(const Tensor& y, const Tensor& sum, const Tensor& mean,
                                    const Tensor& var, const Tensor& x, const Tensor& residual,
                                    const Tensor& weight, const Tensor& bias, const Tensor& bits,
                                    double scale, double eps) {
  const int64_t m = x.size(0), k = x.size(1);
  const float* px = x.data<float>();
  const float* pr = residual.data<float>();
  float* py = y.data<float>();
  float* ps = sum.defined() ? sum.data<float>() : py;
  float* pm = mean.defined() ? mean.data<float>() : nullptr;
  float* pv = var.defined() ? var.data<float>() : nullptr;
  const float* pw = weight.defined() ? weight.data<float>() : nullptr;
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
  const uint8_t* pbits = bits.defined() ? bits.data<uint8_t>() : nullptr;
  const float sc = static_cast<float>(scale);
#pragma omp parallel for schedule(static) if (m * k > kGrain && m > 1)
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = px + r * k;
    const float* rr = pr + r * k;
    float* sr = ps + r * k;
    float* yr = py + r * k;
    if (pbits) {
      const int64_t e0 = r * k;
      if (e0 % 8 == 0) {
        apply_keep_bits(sr, xr, pbits + e0 / 8, k, sc);
      } else {
        for (int64_t j = 0; j < k; ++j) {
          const int64_t e = e0 + j;
          sr[j] = ((pbits[e / 8] >> (e % 8)) & 1u) ? xr[j] * sc : 0.0f;
        }
      }
      for (int64_t j = 0; j < k; ++j) sr[j] += rr[j];
    } else {
      for (int64_t j = 0; j < k; ++j) sr[j] = xr[j] + rr[j];
    }
    layer_norm_row(sr, yr, k, eps, pw, pb, pm ? pm + r : nullptr, pv ? pv + r : nullptr);
  }
}

}  // namespace oar::cpu
