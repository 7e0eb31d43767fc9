// CUDA dropout (the cpu/dropout.cpp contract): the same counter-based mask, element i kept when
// the draw (seed, base + i) is at least p, so CPU and GPU drop the same elements.
#include "engine/core/generator.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

__global__ void dropout_mask_kernel(int64_t n, uint64_t seed, uint64_t base, float threshold,
                                    uint8_t* mask) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    mask[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >=
              threshold;
}

template <typename T>
struct ApplyMask {
  float scale;
  __device__ __forceinline__ float operator()(float v, uint8_t keep) const {
    return keep ? v * scale : 0.0f;
  }
};

}  // namespace

void dropout_mask(const Tensor& mask, uint64_t seed, uint64_t base, double p) {
  const int64_t n = mask.numel();
  if (n == 0) return;
  const Device dev = mask.device();
  DeviceGuard guard(dev.index);
  dropout_mask_kernel<<<grid_for(n), kThreads, 0, stream_of(dev)>>>(
      n, seed, base, static_cast<float>(p), static_cast<uint8_t*>(mask.raw_data()));
  OAR_CUDA_CHECK(cudaGetLastError());
}

void apply_dropout_mask(const Tensor& out, const Tensor& x, const Tensor& mask, double scale) {
  const float s = static_cast<float>(scale);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "dropout", map2<T, T, uint8_t>(out, x, mask, ApplyMask<T>{s}));
}

}  // namespace oar::cuda
