// The fused SGD update on the CPU (engine/optim/sgd.cpp's fast path): one pass reads the
// parameter, its gradient and the momentum buffer once and writes them back, where the
// composition of element-wise ops made five or six passes and two temporaries per parameter.
#include <algorithm>
#include <cstdint>

#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

// p, g (and buf when momentum != 0) are contiguous f32 arrays of n elements. As torch.optim.SGD:
// d = g + wd p; buf = d on the first step, else momentum buf + (1 - dampening) d;
// d = nesterov ? d + momentum buf : buf; p -= lr d.
void sgd_step(float* p, const float* g, float* buf, bool first, int64_t n, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov) {
  const float wd = static_cast<float>(weight_decay), mom = static_cast<float>(momentum);
  const float keep = static_cast<float>(1.0 - dampening), rate = static_cast<float>(lr);
  constexpr int64_t kBlock = 4096;  // threads' shares stay cache-line aligned
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
    if (!buf) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) p[i] -= rate * (g[i] + wd * p[i]);
    } else if (first) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float d = g[i] + wd * p[i];
        buf[i] = d;
        p[i] -= rate * (nesterov ? d + mom * d : d);
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float d = g[i] + wd * p[i];
        const float b = mom * buf[i] + keep * d;
        buf[i] = b;
        p[i] -= rate * (nesterov ? d + mom * b : b);
      }
    }
  }
}

}  // namespace oar::cpu
