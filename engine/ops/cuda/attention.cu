// CUDA fused scaled-dot-product attention (the cpu::attention_* contract, f32): the same
// row-major products as the CPU kernel, batched over heads on cuBLAS, with a warp per score row
// for the mask, the softmax (a fully masked row gets zero weights) and dropout (the same
// counter-based draws: weight (b, i, j) uses index base + (b*Lq + i)*Lk + j).
#include "engine/core/generator.h"
#include "engine/ops/cuda/blas.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

// Row-major C[M, N] = alpha op(A)[M, K] op(B)[K, N], batched: cuBLAS's column-major
// C^T = op(B)^T op(A)^T.
void rm_gemm(Device dev, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, int64_t sa, const float* b, int64_t ldb, int64_t sb,
             float* c, int64_t ldc, int64_t sc, int64_t batch) {
  gemm(dev, DType::f32, DType::f32, tb, ta, n, m, k, alpha, b, ldb, sb, a, lda, sa, 0.0f, c, ldc,
       sc, batch);
}

__device__ __forceinline__ float keep_scale(float p, uint64_t seed, uint64_t index) {
  return Generator::to_unit_float(Generator::hash(seed, index)) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

struct MaskView {
  const float* f = nullptr;
  const bool* b = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0;
};

// probs rows (scores on entry) -> softmax; dropped = probs * keep when p > 0.
__global__ void attention_rows_kernel(int64_t rows, int64_t lq, int64_t lk, MaskView mask,
                                      float* probs, float* dropped, float p, uint64_t seed,
                                      uint64_t base) {
  const int lane = threadIdx.x % 32;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t r = first; r < rows; r += step) {
    const int64_t b = r / lq, i = r % lq;
    float* row = probs + r * lk;
    float mx = -INFINITY;
    for (int64_t j = lane; j < lk; j += 32) {
      float v = row[j];
      if (mask.f || mask.b) {
        const int64_t mo = b * mask.s0 + i * mask.s1 + j * mask.s2;
        v += mask.f ? mask.f[mo] : (mask.b[mo] ? 0.0f : -INFINITY);
        row[j] = v;
      }
      mx = fmaxf(mx, v);
    }
    for (int s = 16; s > 0; s >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, s));
    float sum = 0.0f;
    for (int64_t j = lane; j < lk; j += 32) {
      const float e = mx == -INFINITY ? 0.0f : ::expf(row[j] - mx);
      row[j] = e;
      sum += e;
    }
    for (int s = 16; s > 0; s >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, s);
    const float inv = mx == -INFINITY ? 0.0f : 1.0f / sum;
    for (int64_t j = lane; j < lk; j += 32) {
      row[j] *= inv;
      if (dropped)
        dropped[r * lk + j] =
            row[j] * keep_scale(p, seed, base + static_cast<uint64_t>(r * lk + j));
    }
  }
}

// dS rows (dO v^T on entry) -> P * (dP - rowsum(P * dP)) with dP = dS * keep.
__global__ void attention_grad_rows_kernel(int64_t rows, int64_t lk, const float* probs, float* ds,
                                           float p, uint64_t seed, uint64_t base) {
  const int lane = threadIdx.x % 32;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t r = first; r < rows; r += step) {
    float* row = ds + r * lk;
    const float* prow = probs + r * lk;
    float dot = 0.0f;
    for (int64_t j = lane; j < lk; j += 32) {
      if (p > 0.0f) row[j] *= keep_scale(p, seed, base + static_cast<uint64_t>(r * lk + j));
      dot += prow[j] * row[j];
    }
    for (int s = 16; s > 0; s >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, s);
    for (int64_t j = lane; j < lk; j += 32) row[j] = prow[j] * (row[j] - dot);
  }
}

__global__ void apply_keep_kernel(int64_t n, const float* probs, float* out, float p, uint64_t seed,
                                  uint64_t base) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = probs[e] * keep_scale(p, seed, base + static_cast<uint64_t>(e));
}

const float* f32(const Tensor& t) {
  return static_cast<const float*>(t.raw_data());
}
float* f32m(const Tensor& t) {
  return static_cast<float*>(t.raw_data());
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       double scale, double p, uint64_t seed, uint64_t base, const Tensor& out,
                       const Tensor& probs) {
  const int64_t B = q.size(0), Lq = q.size(1), D = q.size(2), Lk = k.size(1), Dv = v.size(2);
  const Device dev = q.device();
  float* s = f32m(probs);
  if (Lk == 0) {  // no keys: zero weights and a zero output
    Tensor o = out;
    o.zero_();
    return;
  }
  rm_gemm(dev, false, true, Lq, Lk, D, static_cast<float>(scale), f32(q), D, Lq * D, f32(k), D,
          Lk * D, s, Lk, Lq * Lk, B);
  MaskView mv;
  if (mask.defined()) {
    if (mask.dtype() == DType::boolean)
      mv.b = static_cast<const bool*>(mask.raw_data());
    else
      mv.f = f32(mask);
    mv.s0 = mask.stride(0);
    mv.s1 = mask.stride(1);
    mv.s2 = mask.stride(2);
  }
  Tensor dropped = p > 0.0 ? empty({B, Lq, Lk}, DType::f32, dev) : Tensor();
  const int64_t rows = B * Lq;
  {
    DeviceGuard guard(dev.index);
    attention_rows_kernel<<<grid_for(rows * 32), kThreads, 0, stream_of(dev)>>>(
        rows, Lq, Lk, mv, s, dropped.defined() ? f32m(dropped) : nullptr, static_cast<float>(p),
        seed, base);
    OAR_CUDA_CHECK(cudaGetLastError());
  }
  const float* w = dropped.defined() ? f32(dropped) : s;
  rm_gemm(dev, false, false, Lq, Dv, Lk, 1.0f, w, Lk, Lq * Lk, f32(v), Dv, Lk * Dv, f32m(out), Dv,
          Lq * Dv, B);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, double scale, double p, uint64_t seed, uint64_t base,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& dscores) {
  const int64_t B = q.size(0), Lq = q.size(1), D = q.size(2), Lk = k.size(1), Dv = v.size(2);
  const Device dev = q.device();
  const float sc = static_cast<float>(scale);
  const float pf = static_cast<float>(p);
  if (dv.defined()) {
    const float* w = f32(probs);
    Tensor dropped;
    if (p > 0.0) {
      dropped = empty({B, Lq, Lk}, DType::f32, dev);
      DeviceGuard guard(dev.index);
      apply_keep_kernel<<<grid_for(B * Lq * Lk), kThreads, 0, stream_of(dev)>>>(
          B * Lq * Lk, f32(probs), f32m(dropped), pf, seed, base);
      OAR_CUDA_CHECK(cudaGetLastError());
      w = f32(dropped);
    }
    rm_gemm(dev, true, false, Lk, Dv, Lq, 1.0f, w, Lk, Lq * Lk, f32(dout), Dv, Lq * Dv, f32m(dv),
            Dv, Lk * Dv, B);
  }
  if (!dq.defined() && !dk.defined() && !dscores.defined()) return;
  Tensor ds = dscores.defined() ? dscores : empty({B, Lq, Lk}, DType::f32, dev);
  rm_gemm(dev, false, true, Lq, Lk, Dv, 1.0f, f32(dout), Dv, Lq * Dv, f32(v), Dv, Lk * Dv, f32m(ds),
          Lk, Lq * Lk, B);
  {
    DeviceGuard guard(dev.index);
    attention_grad_rows_kernel<<<grid_for(B * Lq * 32), kThreads, 0, stream_of(dev)>>>(
        B * Lq, Lk, f32(probs), f32m(ds), pf, seed, base);
    OAR_CUDA_CHECK(cudaGetLastError());
  }
  if (dq.defined())
    rm_gemm(dev, false, false, Lq, D, Lk, sc, f32(ds), Lk, Lq * Lk, f32(k), D, Lk * D, f32m(dq), D,
            Lq * D, B);
  if (dk.defined())
    rm_gemm(dev, true, false, Lk, D, Lq, sc, f32(ds), Lk, Lq * Lk, f32(q), D, Lq * D, f32m(dk), D,
            Lk * D, B);
}

}  // namespace oar::cuda
