// CUDA batch and layer normalisation, forward and backward (the cpu::batch_norm_* and
// cpu::layer_norm_* contracts, f32 only).
//
// Batch norm: with cuDNN (engine/ops/cuda/cudnn_conv.cpp; on unless OAR_CUDNN=0) training
// forward, inference forward and batch-statistics backward run cudnnBatchNormalization* in
// spatial mode. cuDNN saves the inverse standard deviation; a thread per channel turns it into
// the contract's biased variance, var = 1 / invstd^2 - eps (in double, clamped at 0), and
// backward turns var back into invstd = 1 / sqrt(var + eps). Without cuDNN, with running
// statistics in backward (global_stats), or for a shape cuDNN rejects, oar's kernels run: a
// block per channel whose threads are laid out as (rows of N) x (spatial positions), so the
// [N, C, S] walk needs no per-element division; per-thread sums in double, reduced across the
// block with warp shuffles in a fixed order (deterministic).
//
// Layer norm: a block per row (32 to 512 threads, about 4 elements each), sums in double reduced by
// warp shuffles. Backward stores each row's 1/sqrt(var + eps) for the weight and bias gradients,
// which are two deterministic passes: blocks of 32 columns x 8 row-walkers each sum a chunk of
// rows into double partials [chunks, K], then a thread per column adds the chunks in order
// (before: one thread per column walking all M rows, K threads in all).
#include "engine/ops/cuda/cudnn_conv.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
  return v;
}

// The block's sum of v (every thread gets it); blockDim.x a multiple of 32, at most 1024;
// `shared` holds 32 doubles. Fixed order: lanes by shuffle tree, then warps by shuffle tree.
__device__ double block_sum(double v, double* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = warp_sum_d(v);
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double r = lane < warps ? shared[lane] : 0.0;
  r = warp_sum_d(r);
  return r;
}

// A channel's [N, S] elements as (row nn, position j): thread t starts at (t / tpr, t % tpr)
// and steps rows by rpb = blockDim / tpr and positions by tpr (tpr: a power of two >= S or the
// block size).
struct ChannelWalk {
  int64_t r0, j0, rstep, jstep;
  __device__ ChannelWalk(int64_t hw) {
    int64_t tpr = 1;
    while (tpr < hw && tpr < blockDim.x) tpr *= 2;
    r0 = threadIdx.x / tpr;
    j0 = threadIdx.x % tpr;
    rstep = blockDim.x / tpr;
    jstep = tpr;
  }
};

__global__ void bn_forward_kernel(int64_t n, int64_t c, int64_t hw, const float* x, float* y,
                                  float* mean, float* var, const float* w, const float* b,
                                  double eps, bool global_stats) {
  __shared__ double shared[32];
  const int64_t ch = blockIdx.x;
  const int64_t count = n * hw;
  const ChannelWalk cw(hw);
  const float* xc = x + ch * hw;
  float* yc = y + ch * hw;
  const int64_t rs = c * hw;  // stride between rows of N
  double mu, v;
  if (global_stats) {
    mu = mean[ch];
    v = var[ch];
  } else {
    double s = 0;
    for (int64_t r = cw.r0; r < n; r += cw.rstep)
      for (int64_t j = cw.j0; j < hw; j += cw.jstep) s += xc[r * rs + j];
    mu = block_sum(s, shared) / static_cast<double>(count);
    const float m32 = static_cast<float>(mu);
    double q = 0;
    for (int64_t r = cw.r0; r < n; r += cw.rstep)
      for (int64_t j = cw.j0; j < hw; j += cw.jstep) {
        const float d = xc[r * rs + j] - m32;
        q += d * d;
      }
    v = block_sum(q, shared) / static_cast<double>(count);
    if (mean && threadIdx.x == 0) {
      mean[ch] = static_cast<float>(mu);
      var[ch] = static_cast<float>(v);
    }
  }
  const float rstd = static_cast<float>(1.0 / sqrt(v + eps));
  const float scale = (w ? w[ch] : 1.0f) * rstd;
  const float shift = (b ? b[ch] : 0.0f) - static_cast<float>(mu) * scale;
  for (int64_t r = cw.r0; r < n; r += cw.rstep)
    for (int64_t j = cw.j0; j < hw; j += cw.jstep) yc[r * rs + j] = xc[r * rs + j] * scale + shift;
}

__global__ void bn_backward_kernel(int64_t n, int64_t c, int64_t hw, const float* x,
                                   const float* gy, float* gx, const float* mean, const float* var,
                                   const float* w, float* gw, float* gb, double eps,
                                   bool global_stats) {
  __shared__ double shared[32];
  const int64_t ch = blockIdx.x;
  const int64_t count = n * hw;
  const ChannelWalk cw(hw);
  const int64_t rs = c * hw, off = ch * hw;
  const float mu = mean[ch];
  const float rstd = static_cast<float>(1.0 / sqrt(static_cast<double>(var[ch]) + eps));
  double sg = 0, sgx = 0;
  for (int64_t r = cw.r0; r < n; r += cw.rstep)
    for (int64_t j = cw.j0; j < hw; j += cw.jstep) {
      const int64_t o = off + r * rs + j;
      sg += gy[o];
      sgx += gy[o] * (x[o] - mu);
    }
  const double sum_g = block_sum(sg, shared), sum_gx = block_sum(sgx, shared);
  if (threadIdx.x == 0) {
    if (gw) gw[ch] = static_cast<float>(sum_gx * rstd);
    if (gb) gb[ch] = static_cast<float>(sum_g);
  }
  const float k1 = (w ? w[ch] : 1.0f) * rstd;
  const float mg = global_stats ? 0.0f : static_cast<float>(sum_g / static_cast<double>(count));
  const float k2 =
      global_stats ? 0.0f : static_cast<float>(sum_gx / static_cast<double>(count)) * rstd * rstd;
  for (int64_t r = cw.r0; r < n; r += cw.rstep)
    for (int64_t j = cw.j0; j < hw; j += cw.jstep) {
      const int64_t o = off + r * rs + j;
      gx[o] = global_stats ? gy[o] * k1 : k1 * (gy[o] - mg - (x[o] - mu) * k2);
    }
}

// var[c] = max(0, 1 / invstd[c]^2 - eps) (cuDNN's saved inverse std to the contract's variance).
__global__ void bn_invstd_to_var_kernel(int64_t c, const float* invstd, float* var, double eps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c) return;
  const double s = invstd[i];
  var[i] = static_cast<float>(fmax(0.0, 1.0 / (s * s) - eps));
}

// invstd[c] = 1 / sqrt(var[c] + eps).
__global__ void bn_var_to_invstd_kernel(int64_t c, const float* var, float* invstd, double eps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c) return;
  invstd[i] = static_cast<float>(1.0 / sqrt(static_cast<double>(var[i]) + eps));
}

__global__ void ln_forward_kernel(int64_t k, const float* x, float* y, float* mean, float* var,
                                  const float* w, const float* b, double eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * k;
  float* yr = y + row * k;
  double s = 0;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) s += xr[j];
  const double mu = block_sum(s, shared) / static_cast<double>(k);
  double q = 0;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    const double d = xr[j] - mu;
    q += d * d;
  }
  const double v = block_sum(q, shared) / static_cast<double>(k);
  if (mean && threadIdx.x == 0) {
    mean[row] = static_cast<float>(mu);
    var[row] = static_cast<float>(v);
  }
  const float rstd = static_cast<float>(1.0 / sqrt(v + eps));
  const float m32 = static_cast<float>(mu);
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    const float h = (xr[j] - m32) * rstd;
    yr[j] = h * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
  }
}

// gx of one row per block; row_rstd[row] (when non-null) receives the row's 1/sqrt(var + eps).
__global__ void ln_backward_kernel(int64_t k, const float* x, const float* gy, float* gx,
                                   const float* mean, const float* var, const float* w, double eps,
                                   float* row_rstd) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * k;
  const float* gr = gy + row * k;
  const float mu = mean[row];
  const float rstd = static_cast<float>(1.0 / sqrt(static_cast<double>(var[row]) + eps));
  if (row_rstd && threadIdx.x == 0) row_rstd[row] = rstd;
  double a = 0, bsum = 0;  // sum w*g, sum w*g*xhat
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    const float wg = gr[j] * (w ? w[j] : 1.0f);
    a += wg;
    bsum += wg * ((xr[j] - mu) * rstd);
  }
  const float ma = static_cast<float>(block_sum(a, shared) / static_cast<double>(k));
  const float mb = static_cast<float>(block_sum(bsum, shared) / static_cast<double>(k));
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    const float h = (xr[j] - mu) * rstd;
    gx[row * k + j] = rstd * (gr[j] * (w ? w[j] : 1.0f) - ma - h * mb);
  }
}

constexpr int kLnCols = 32, kLnWalkers = 8;

// Partial weight / bias gradient sums: block (column tile, chunk) with kLnCols x kLnWalkers
// threads; walker ty of column j sums rows chunk*rows_per_chunk + ty, + kLnWalkers, ...; the
// walkers are then added in order. part_w / part_b are [chunks, k].
__global__ void ln_param_partial_kernel(int64_t m, int64_t k, int64_t rows_per_chunk,
                                        const float* x, const float* gy, const float* mean,
                                        const float* rstd, double* part_w, double* part_b) {
  __shared__ double sw[kLnWalkers][kLnCols], sb[kLnWalkers][kLnCols];
  const int tx = threadIdx.x % kLnCols, ty = threadIdx.x / kLnCols;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kLnCols + tx;
  const int64_t chunk = blockIdx.y;
  const int64_t r_end = (chunk + 1) * rows_per_chunk < m ? (chunk + 1) * rows_per_chunk : m;
  double aw = 0, ab = 0;
  if (j < k)
    for (int64_t r = chunk * rows_per_chunk + ty; r < r_end; r += kLnWalkers) {
      const float g = gy[r * k + j];
      aw += g * ((x[r * k + j] - mean[r]) * rstd[r]);
      ab += g;
    }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && j < k) {
    for (int t = 1; t < kLnWalkers; ++t) {
      aw += sw[t][tx];
      ab += sb[t][tx];
    }
    part_w[chunk * k + j] = aw;
    part_b[chunk * k + j] = ab;
  }
}

__global__ void ln_param_final_kernel(int64_t chunks, int64_t k, const double* part_w,
                                      const double* part_b, float* gw, float* gb) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < k;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t q = 0; q < chunks; ++q) {
      sw += part_w[q * k + j];
      sb += part_b[q * k + j];
    }
    if (gw) gw[j] = static_cast<float>(sw);
    if (gb) gb[j] = static_cast<float>(sb);
  }
}

const float* cptr(const Tensor& t) {
  return t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr;
}
float* mptr(const Tensor& t) {
  return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr;
}

// Threads for a block that walks a row of k elements: a power of two in [32, 512], about four
// elements per thread.
int threads_for(int64_t k) {
  int t = 32;
  while (t < 512 && 4 * static_cast<int64_t>(t) < k) t *= 2;
  return t;
}

// Threads for a batch-norm channel block: enough for the channel's elements, at most 512.
int bn_threads(int64_t count) {
  int t = 32;
  while (t < 512 && t < count) t *= 2;
  return t;
}

Tensor or_fill(const Tensor& t, int64_t c, double value, Device dev) {
  return t.defined() ? t : full({c}, value, DType::f32, dev);
}

}  // namespace

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, bool global_stats,
                        bool training) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c);
  if (c == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  if (cudnn_conv_enabled()) {
    const Tensor scale = or_fill(weight, c, 1.0, dev), shift = or_fill(bias, c, 0.0, dev);
    if (global_stats) {
      if (cudnn_batch_norm_forward_inference(y, x, scale, shift, mean, var, eps)) return;
    } else {
      Tensor invstd = empty({c}, DType::f32, dev);
      if (cudnn_batch_norm_forward_training(y, mean, invstd, x, scale, shift, eps)) {
        bn_invstd_to_var_kernel<<<grid_for(c), kThreads, 0, stream_of(dev)>>>(c, cptr(invstd),
                                                                              mptr(var), eps);
        OAR_CUDA_CHECK(cudaGetLastError());
        return;
      }
    }
  }
  const bool keep = training || global_stats;
  OAR_CHECK(c <= INT32_MAX, "batch_norm: ", c, " channels");
  bn_forward_kernel<<<static_cast<int>(c), bn_threads(n * hw), 0, stream_of(dev)>>>(
      n, c, hw, cptr(x), mptr(y), keep ? mptr(mean) : nullptr, keep ? mptr(var) : nullptr,
      cptr(weight), cptr(bias), eps, global_stats);
  OAR_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& /*bias*/, double eps,
                         bool global_stats) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c);
  if (c == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  if (!global_stats && cudnn_conv_enabled()) {
    Tensor invstd = empty({c}, DType::f32, dev);
    bn_var_to_invstd_kernel<<<grid_for(c), kThreads, 0, stream_of(dev)>>>(c, cptr(var),
                                                                          mptr(invstd), eps);
    OAR_CUDA_CHECK(cudaGetLastError());
    const Tensor scale = or_fill(weight, c, 1.0, dev);
    const Tensor gscale = gw.defined() ? gw : empty({c}, DType::f32, dev);
    const Tensor gshift = gb.defined() ? gb : empty({c}, DType::f32, dev);
    if (cudnn_batch_norm_backward(gx, gscale, gshift, gy, x, scale, mean, invstd, eps)) return;
  }
  OAR_CHECK(c <= INT32_MAX, "batch_norm: ", c, " channels");
  bn_backward_kernel<<<static_cast<int>(c), bn_threads(n * hw), 0, stream_of(dev)>>>(
      n, c, hw, cptr(x), cptr(gy), mptr(gx), cptr(mean), cptr(var), cptr(weight), mptr(gw),
      mptr(gb), eps, global_stats);
  OAR_CUDA_CHECK(cudaGetLastError());
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t m = x.size(0), k = x.size(1);
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  const int threads = threads_for(k);
  for (int64_t r0 = 0; r0 < m; r0 += INT32_MAX) {
    const int64_t rows = std::min<int64_t>(INT32_MAX, m - r0);
    ln_forward_kernel<<<static_cast<int>(rows), threads, 0, stream_of(dev)>>>(
        k, cptr(x) + r0 * k, mptr(y) + r0 * k, mean.defined() ? mptr(mean) + r0 : nullptr,
        var.defined() ? mptr(var) + r0 : nullptr, cptr(weight), cptr(bias), eps);
  }
  OAR_CUDA_CHECK(cudaGetLastError());
}

void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& /*bias*/, double eps) {
  const int64_t m = x.size(0), k = x.size(1);
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  cudaStream_t s = stream_of(dev);
  const bool params = gw.defined() || gb.defined();
  Tensor rstd = params ? empty({m}, DType::f32, dev) : Tensor();
  const int threads = threads_for(k);
  for (int64_t r0 = 0; r0 < m; r0 += INT32_MAX) {
    const int64_t rows = std::min<int64_t>(INT32_MAX, m - r0);
    ln_backward_kernel<<<static_cast<int>(rows), threads, 0, s>>>(
        k, cptr(x) + r0 * k, cptr(gy) + r0 * k, mptr(gx) + r0 * k, cptr(mean) + r0, cptr(var) + r0,
        cptr(weight), eps, params ? mptr(rstd) + r0 : nullptr);
  }
  OAR_CUDA_CHECK(cudaGetLastError());
  if (!params || m == 0 || k == 0) return;
  // Chunks of at least 32 rows, at most 1024 chunks (partials: 16 bytes per chunk and column).
  const int64_t chunks = std::min<int64_t>(1024, (m + 31) / 32);
  const int64_t rows_per_chunk = (m + chunks - 1) / chunks;
  const int64_t tiles = (k + kLnCols - 1) / kLnCols;
  OAR_CHECK(tiles <= INT32_MAX, "layer_norm: ", k, " columns");
  Tensor part = empty({2 * chunks * k}, DType::i64, dev);  // doubles, 8 bytes each
  double* pw = static_cast<double*>(part.raw_data());
  double* pb = pw + chunks * k;
  ln_param_partial_kernel<<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks)),
                            kLnCols * kLnWalkers, 0, s>>>(m, k, rows_per_chunk, cptr(x), cptr(gy),
                                                          cptr(mean), cptr(rstd), pw, pb);
  ln_param_final_kernel<<<grid_for(k), kThreads, 0, s>>>(chunks, k, pw, pb, mptr(gw), mptr(gb));
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda

// ---- group normalisation (the cpu::group_norm_* contract, f32, contiguous x [N, C, *]): a
// block per (n, group) for the statistics and gx, a block per (n, c) for the per-channel sums of
// gy and gy * x, and a thread per channel for the parameter gradients; all sums in double.

namespace oar::cuda {

namespace {

__global__ void gn_forward_kernel(int64_t rows, int64_t groups, int64_t cpg, int64_t hw,
                                  const float* x, float* y, float* mean, float* rstd,
                                  const float* w, const float* b, double eps) {
  __shared__ double shared[kThreads];
  const int64_t m = cpg * hw;
  for (int64_t ng = blockIdx.x; ng < rows; ng += gridDim.x) {
    const int64_t g = ng % groups;
    const float* xg = x + ng * m;  // a group's channels are contiguous
    float* yg = y + ng * m;
    double s = 0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) s += xg[i];
    const double mu = m > 0 ? block_sum(s, shared) / static_cast<double>(m) : 0.0;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) ss += (xg[i] - mu) * (xg[i] - mu);
    const double var = m > 0 ? block_sum(ss, shared) / static_cast<double>(m) : 0.0;
    const double r = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[ng] = static_cast<float>(mu);
      rstd[ng] = static_cast<float>(r);
    }
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const int64_t ch = g * cpg + i / hw;
      const float a = static_cast<float>(r) * (w ? w[ch] : 1.0f);
      const float sh = (b ? b[ch] : 0.0f) - static_cast<float>(mu) * a;
      yg[i] = xg[i] * a + sh;
    }
  }
}

// sdy[nc], sdyx[nc] = sums of gy and gy * x over the spatial positions of (n, c).
__global__ void gn_channel_sums_kernel(int64_t rows, int64_t hw, const float* x, const float* gy,
                                       double* sdy, double* sdyx) {
  __shared__ double shared[kThreads];
  for (int64_t nc = blockIdx.x; nc < rows; nc += gridDim.x) {
    double a = 0, bb = 0;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
      const float g = gy[nc * hw + i];
      a += g;
      bb += static_cast<double>(g) * x[nc * hw + i];
    }
    a = block_sum(a, shared);
    bb = block_sum(bb, shared);
    if (threadIdx.x == 0) {
      sdy[nc] = a;
      sdyx[nc] = bb;
    }
  }
}

__global__ void gn_backward_kernel(int64_t rows, int64_t c, int64_t groups, int64_t cpg, int64_t hw,
                                   const float* x, const float* gy, const float* mean,
                                   const float* rstd, const float* w, const double* sdy,
                                   const double* sdyx, float* gx) {
  const int64_t m = cpg * hw;
  for (int64_t ng = blockIdx.x; ng < rows; ng += gridDim.x) {
    const int64_t nn = ng / groups, g = ng % groups;
    const double mu = mean[ng], r = rstd[ng];
    double sw = 0, swx = 0;  // every thread sums the group's channels in the same order
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = g * cpg + cc;
      const double wc = w ? w[ch] : 1.0;
      sw += wc * sdy[nn * c + ch];
      swx += wc * sdyx[nn * c + ch];
    }
    const double a = sw / static_cast<double>(m);
    const double bcoef = r * (swx - mu * sw) / static_cast<double>(m);
    const int64_t base = ng * m;  // == (nn * c + g * cpg) * hw
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const int64_t ch = g * cpg + i / hw;
      const float wc = w ? w[ch] : 1.0f;
      const double xhat = (x[base + i] - mu) * r;
      gx[base + i] = static_cast<float>(r * (gy[base + i] * wc - a - xhat * bcoef));
    }
  }
}

__global__ void gn_param_grad_kernel(int64_t n, int64_t c, int64_t groups, int64_t cpg,
                                     const float* mean, const float* rstd, const double* sdy,
                                     const double* sdyx, float* gw, float* gb) {
  for (int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; ch < c;
       ch += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t g = ch / cpg;
    double aw = 0, ab = 0;
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t ng = nn * groups + g;
      aw += rstd[ng] * (sdyx[nn * c + ch] - mean[ng] * sdy[nn * c + ch]);
      ab += sdy[nn * c + ch];
    }
    if (gw) gw[ch] = static_cast<float>(aw);
    if (gb) gb[ch] = static_cast<float>(ab);
  }
}

int blocks_for_rows(int64_t rows) {
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(rows, 1), 1 << 20));
}

}  // namespace

void group_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t groups, double eps) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t rows = n * groups;
  if (rows == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  gn_forward_kernel<<<blocks_for_rows(rows), kThreads, 0, stream_of(dev)>>>(
      rows, groups, c / groups, hw, cptr(x), mptr(y), mptr(mean), mptr(rstd), cptr(weight),
      cptr(bias), eps);
  OAR_CUDA_CHECK(cudaGetLastError());
}

void group_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, int64_t groups) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t cpg = c / groups;
  const Device dev = x.device();
  if (n * c == 0) {
    for (const Tensor* t : {&gx, &gw, &gb})
      if (t->defined()) {
        Tensor z = *t;
        z.zero_();
      }
    return;
  }
  // Per-(n, c) sums in double (two i64 buffers of 8-byte elements).
  Tensor sums = empty({2 * n * c}, DType::i64, dev);
  double* sdy = static_cast<double*>(sums.raw_data());
  double* sdyx = sdy + n * c;
  DeviceGuard guard(dev.index);
  cudaStream_t s = stream_of(dev);
  gn_channel_sums_kernel<<<blocks_for_rows(n * c), kThreads, 0, s>>>(n * c, hw, cptr(x), cptr(gy),
                                                                     sdy, sdyx);
  if (gx.defined())
    gn_backward_kernel<<<blocks_for_rows(n * groups), kThreads, 0, s>>>(
        n * groups, c, groups, cpg, hw, cptr(x), cptr(gy), cptr(mean), cptr(rstd), cptr(weight),
        sdy, sdyx, mptr(gx));
  if (gw.defined() || gb.defined())
    gn_param_grad_kernel<<<grid_for(c), kThreads, 0, s>>>(n, c, groups, cpg, cptr(mean), cptr(rstd),
                                                          sdy, sdyx, mptr(gw), mptr(gb));
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda
