#pragma once
// Block-wide reductions in double for the row kernels (one block of kThreads threads per row):
// every thread gets the result. The tree order is fixed, so results are deterministic.
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

// Sum of v over the block; `shared` holds kThreads doubles.
__device__ __forceinline__ double block_sum_d(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double r = shared[0];
  __syncthreads();
  return r;
}

// fmax of v over the block (NaNs ignored unless all are NaN, like std::fmax).
__device__ __forceinline__ double block_max_d(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s)
      shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + s]);
    __syncthreads();
  }
  const double r = shared[0];
  __syncthreads();
  return r;
}

// Blocks for `rows` rows, one row per block and grid-stride over rows beyond the grid limit.
inline int row_blocks(int64_t rows) {
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(rows, 1), 1 << 20));
}

}  // namespace oar::cuda
