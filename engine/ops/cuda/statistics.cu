// CUDA var/mean, p-norms and logsumexp over dims (the cpu/statistics.cpp contract): the reduced
// dims are moved innermost (contiguous rows, as on the CPU) and one block reduces a row in double
// in a fixed tree order.
#include <cmath>

#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cuda/block.cuh"

namespace oar::cuda {

namespace {

template <typename T>
__global__ void moments_kernel(int64_t outer, int64_t n, int64_t correction, const char* rows,
                               char* var, char* mean) {
  __shared__ double shared[kThreads];
  constexpr int64_t es = sizeof(T);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const char* row = rows + o * n * es;
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += load<T>(row + i * es);
    const double mu = block_sum_d(s, shared) / static_cast<double>(n);
    double ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double d = load<T>(row + i * es) - mu;
      ss += d * d;
    }
    const double v = block_sum_d(ss, shared) / static_cast<double>(n - correction);
    if (threadIdx.x == 0) {
      store<T>(mean + o * es, mu);
      store<T>(var + o * es, v);
    }
  }
}

template <typename T>
__global__ void pnorm_kernel(int64_t outer, int64_t n, double p, const char* rows, char* out) {
  __shared__ double shared[kThreads];
  constexpr int64_t es = sizeof(T);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const char* row = rows + o * n * es;
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double v = load<T>(row + i * es);
      if (p == 0.0)
        s += v != 0 ? 1.0 : 0.0;
      else if (p == 1.0)
        s += fabs(v);
      else if (p == 2.0)
        s += v * v;
      else
        s += ::pow(fabs(v), p);
    }
    const double t = block_sum_d(s, shared);
    if (threadIdx.x == 0) {
      const double r = p == 0.0 || p == 1.0 ? t : p == 2.0 ? sqrt(t) : ::pow(t, 1.0 / p);
      store<T>(out + o * es, r);
    }
  }
}

template <typename T>
__global__ void logsumexp_kernel(int64_t outer, int64_t n, const char* rows, char* out) {
  __shared__ double shared[kThreads];
  constexpr int64_t es = sizeof(T);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const char* row = rows + o * n * es;
    double m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      m = fmax(m, static_cast<double>(load<T>(row + i * es)));
    m = block_max_d(m, shared);
    if (isinf(m)) {  // all -inf, or an inf that dominates (uniform across the block)
      if (threadIdx.x == 0) store<T>(out + o * es, m);
      continue;
    }
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      s += exp(static_cast<double>(load<T>(row + i * es)) - m);
    const double t = block_sum_d(s, shared);
    if (threadIdx.x == 0) store<T>(out + o * es, m + ::log(t));
  }
}

struct Rows {
  Tensor rows;
  int64_t outer, n;
};

Rows rows_of(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out) {
  Rows r{cpu::dims_last(x, dims), out.numel(), 0};
  r.n = r.outer ? x.numel() / r.outer : 0;
  return r;
}

}  // namespace

void moments(const Tensor& var, const Tensor& mean, const Tensor& x,
             const std::vector<int64_t>& dims, int64_t correction) {
  const Rows r = rows_of(x, dims, var);
  if (r.outer == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "var", {
    moments_kernel<T><<<row_blocks(r.outer), row_threads(r.n), 0, stream_of(dev)>>>(
        r.outer, r.n, correction, static_cast<const char*>(r.rows.raw_data()),
        static_cast<char*>(var.raw_data()), static_cast<char*>(mean.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void pnorm(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, double p) {
  const Rows r = rows_of(x, dims, out);
  if (r.outer == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "norm", {
    pnorm_kernel<T><<<row_blocks(r.outer), row_threads(r.n), 0, stream_of(dev)>>>(
        r.outer, r.n, p, static_cast<const char*>(r.rows.raw_data()),
        static_cast<char*>(out.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void logsumexp(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  const Rows r = rows_of(x, dims, out);
  if (r.outer == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "logsumexp", {
    logsumexp_kernel<T><<<row_blocks(r.outer), row_threads(r.n), 0, stream_of(dev)>>>(
        r.outer, r.n, static_cast<const char*>(r.rows.raw_data()),
        static_cast<char*>(out.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda
