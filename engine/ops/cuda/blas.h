#pragma once
// cuBLAS as the CUDA kernels use it (internal to engine/**/cuda/; pulls in no CUDA headers).
#include <cstdint>

#include "engine/core/device.h"
#include "engine/core/dtype.h"

namespace oar::cuda {

// Column-major C[m, n] = alpha * op(A)[m, k] op(B)[k, n] + beta * C, `batch` times with element
// strides between batches (0 broadcasts). A and B have dtype `ab` (f32, bf16 or f16), C has
// dtype `c` (`ab` or f32); products accumulate in f32 (TF32 only when allow_tf32() says so).
void gemm(Device dev, DType ab, DType c, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, float alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
          int64_t ldb, int64_t stride_b, float beta, void* cmat, int64_t ldc, int64_t stride_c,
          int64_t batch);

}  // namespace oar::cuda
