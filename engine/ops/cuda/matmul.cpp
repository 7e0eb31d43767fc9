// Matrix products on cuBLAS (the cpu::matmul contract): each operand is handed over by its
// strides as a column-major matrix, transposed or not, so transposed views need no copy; batch
// dims become one batch stride, or a copy when they cannot.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "engine/core/cuda/check.h"
#include "engine/core/cuda/runtime.h"
#include "engine/ops/cuda/blas.h"
#include "engine/tensor/tensor.h"

namespace oar::cuda {

namespace {

const char* status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "not supported";
    default:
      return "error";
  }
}

#define OAR_CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                          \
    const cublasStatus_t oar_st_ = (expr);                                                      \
    if (oar_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      OAR_FAIL("cuBLAS error in ", #expr, ": ", status_name(oar_st_), " (", int(oar_st_), ")"); \
  } while (0)

cublasHandle_t handle(Device dev) {
  constexpr int kMax = 16;
  static std::once_flag once[kMax];
  static cublasHandle_t handles[kMax] = {};
  OAR_CHECK(dev.index >= 0 && dev.index < kMax, "cuBLAS: device index ", dev.index);
  std::call_once(once[dev.index], [&] {
    DeviceGuard g(dev.index);
    OAR_CUBLAS_CHECK(cublasCreate(&handles[dev.index]));
  });
  OAR_CUBLAS_CHECK(cublasSetStream(handles[dev.index], stream_of(dev)));
  return handles[dev.index];
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      OAR_FAIL("cuBLAS: dtype ", dtype_name(t), " not supported (f32, bf16 or f16)");
  }
}

// One operand as cuBLAS sees it: a column-major matrix (maybe transposed) and a batch stride.
struct Operand {
  Tensor t;  // keeps a copy alive
  bool trans = false;
  int64_t ld = 1, batch_stride = 0;
};

// Row-major [rows, cols] of `t` (out's rank; batch dims 1 or out's) as cuBLAS's column-major
// [cols, rows], i.e. op(X) with X = t's memory read column-major.
Operand operand(const Tensor& t_in, const Shape& out_batch) {
  Tensor t = t_in;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t r = t.dim(), rows = t.size(r - 2), cols = t.size(r - 1);
    int64_t rs = t.stride(r - 2), cs = t.stride(r - 1);
    // Size-1 dims get strides that keep the matrix unambiguously row- or column-major.
    if (rows == 1 && cols == 1) {
      rs = cs = 1;
    } else if (rows == 1) {
      if (cs == 1)
        rs = cols;
      else
        rs = 1;
    } else if (cols == 1) {
      if (rs == 1)
        cs = rows;
      else
        cs = 1;
    }
    Operand o;
    bool ok = true;
    if (cs == 1 && rs >= std::max<int64_t>(cols, 1)) {
      o.trans = false;  // row-major: column-major [cols, rows], ld = rs
      o.ld = rs;
    } else if (rs == 1 && cs >= std::max<int64_t>(rows, 1)) {
      o.trans = true;  // column-major [rows, cols] with ld = cs: transpose to [cols, rows]
      o.ld = cs;
    } else {
      ok = false;
    }
    // Batch dims: a single stride s with stride[d] = s * (product of out's sizes after d).
    int64_t s = -1, inner = 1;
    for (int64_t d = static_cast<int64_t>(out_batch.size()) - 1; ok && d >= 0; --d) {
      const int64_t n = out_batch[d];
      if (n == 1) continue;
      const int64_t st = t.size(d) == 1 ? 0 : t.stride(d);
      if (st % inner != 0) {
        ok = false;
      } else if (s < 0) {
        s = st / inner;
      } else if (st != s * inner) {
        ok = false;
      }
      inner *= n;
    }
    if (ok) {
      o.t = t;
      o.batch_stride = s < 0 ? 0 : s;
      return o;
    }
    // A copy with the batch dims expanded to out's: dense row-major matrices.
    Shape full = out_batch;
    full.push_back(rows);
    full.push_back(cols);
    bool broadcast = true;
    for (int64_t d = 0; d < static_cast<int64_t>(out_batch.size()); ++d)
      broadcast = broadcast && t.size(d) == 1;
    t = broadcast ? t.contiguous() : t.expand(full).contiguous();
  }
  OAR_FAIL("matmul: no cuBLAS layout for operand ", shape_str(t_in.shape()));
}

}  // namespace

void gemm(Device dev, DType ab, DType c, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, float alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
          int64_t ldb, int64_t stride_b, float beta, void* cmat, int64_t ldc, int64_t stride_c,
          int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  DeviceGuard g(dev.index);
  cublasHandle_t h = handle(dev);
  const cublasComputeType_t compute =
      ab == DType::f32 && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  OAR_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX, "cuBLAS: matrix of ", m, " x ", n,
            " x ", k, " is too large");
  // cuBLAS requires ld >= rows of the stored matrix even when it is a single column.
  const int64_t rows_a = trans_a ? k : m, rows_b = trans_b ? n : k;
  lda = std::max<int64_t>(lda, std::max<int64_t>(rows_a, 1));
  ldb = std::max<int64_t>(ldb, std::max<int64_t>(rows_b, 1));
  ldc = std::max<int64_t>(ldc, std::max<int64_t>(m, 1));
  const cublasOperation_t oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  constexpr int64_t kMaxBatch = 1 << 30;
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxBatch) {
    const int64_t nb = std::min(kMaxBatch, batch - b0);
    const size_t es_ab = dtype_size(ab), es_c = dtype_size(c);
    OAR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, oa, ob, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &alpha,
        static_cast<const char*>(a) + b0 * stride_a * es_ab, cuda_type(ab), lda, stride_a,
        static_cast<const char*>(b) + b0 * stride_b * es_ab, cuda_type(ab), ldb, stride_b, &beta,
        static_cast<char*>(cmat) + b0 * stride_c * es_c, cuda_type(c), ldc, stride_c,
        static_cast<int>(nb), compute, CUBLAS_GEMM_DEFAULT));
  }
}

// out [..., M, N] = a [..., M, K] x b [..., K, N] (+ bias broadcastable to out); out contiguous.
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  const int64_t r = out.dim(), m = out.size(r - 2), n = out.size(r - 1), k = a.size(r - 1);
  const Shape batch_shape(out.shape().begin(), out.shape().end() - 2);
  const int64_t batch = shape_numel(batch_shape);
  const Operand oa = operand(a, batch_shape), ob = operand(b, batch_shape);
  float beta = 0.0f;
  if (bias.defined()) {
    Tensor o = out;
    o.copy_(bias.expand(out.shape()));
    beta = 1.0f;
  }
  // Row-major out = a b is column-major out^T = b^T a^T: cuBLAS's A is b and its B is a.
  gemm(out.device(), a.dtype(), out.dtype(), ob.trans, oa.trans, n, m, k, 1.0f, ob.t.raw_data(),
       ob.ld, ob.batch_stride, oa.t.raw_data(), oa.ld, oa.batch_stride, beta, out.raw_data(), n,
       m * n, batch);
}

}  // namespace oar::cuda
