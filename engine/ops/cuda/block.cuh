#pragma once
// Block-wide reductions in double for the row kernels (one block per row, a power of two of at
// most kThreads threads): every thread gets the result. The tree order is fixed, so results are
// deterministic.
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

// Sum of v over the block; `shared` holds kThreads doubles.
__device__ __forceinline__ double block_sum_d(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
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
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s)
      shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + s]);
    __syncthreads();
  }
  const double r = shared[0];
  __syncthreads();
  return r;
}

// Threads per block for rows of n elements: a power of two in [32, kThreads], so short rows do
// not leave most of a block idle.
inline int row_threads(int64_t n) {
  int t = 32;
  while (t < kThreads && t < n) t *= 2;
  return t;
}

// Blocks for `rows` rows, one row per block and grid-stride over rows beyond the grid limit.
inline int row_blocks(int64_t rows) {
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(rows, 1), 1 << 20));
}

}  // namespace oar::cuda
