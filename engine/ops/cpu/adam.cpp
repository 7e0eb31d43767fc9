// The fused Adam / AdamW update on the CPU (engine/optim/adam.cpp's fast path): one pass reads
// the parameter, its gradient and the moments once and writes them back, where the composition
// of element-wise ops made about ten passes (and temporaries) over every parameter.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

// p, g, m, v (and vmax when amsgrad) are contiguous f32 arrays of n elements. As torch.optim:
// AdamW (decoupled) first scales p by 1 - lr wd; Adam adds wd p to the gradient. Then
// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, (vmax = max(vmax, v)),
// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
void adam_step(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               double bc1, double bc2) {
  const float decay = decoupled ? static_cast<float>(1.0 - lr * weight_decay) : 1.0f;
  const float l2 = decoupled ? 0.0f : static_cast<float>(weight_decay);
  const float b1 = static_cast<float>(beta1), c1 = static_cast<float>(1.0 - beta1);
  const float b2 = static_cast<float>(beta2), c2 = static_cast<float>(1.0 - beta2);
  const float step = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float e = static_cast<float>(eps);
  // Blocks of 4096 keep the threads' shares cache-line aligned and the loop vectorised.
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    if (vmax) {
      for (int64_t i = i0; i < i1; ++i) {
        const float pi = p[i];
        const float gi = g[i] + l2 * pi;
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * (gi * gi);
        const float vm = std::fmax(vmax[i], vi);
        m[i] = mi;
        v[i] = vi;
        vmax[i] = vm;
        p[i] = pi * decay - step * (mi / (std::sqrt(vm) * inv_sqrt_bc2 + e));
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float pi = p[i];
        const float gi = g[i] + l2 * pi;
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi * decay - step * (mi / (std::sqrt(vi) * inv_sqrt_bc2 + e));
      }
    }
  }
}

}  // namespace oar::cpu
