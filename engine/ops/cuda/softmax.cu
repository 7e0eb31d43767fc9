// CUDA softmax / log_softmax and their backward (the cpu::softmax contract): any dim is the
// middle axis of [outer, n, inner]. Rows with inner = 1 get a warp each; otherwise each thread
// walks one (outer, inner) column. Float arithmetic for every dtype, as oneDNN's f32 path.
#include <cfloat>

#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

__device__ __forceinline__ float warp_max(float v) {
  for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
  return v;
}

// Threads of one row: a warp (lanes 0..31, stride 1 between classes) or a single thread.
template <typename T, bool kWarp>
__global__ void softmax_kernel(int64_t rows, int64_t n, int64_t inner, const char* x, char* out,
                               bool log) {
  constexpr int G = kWarp ? 32 : 1;
  const int lane = threadIdx.x % G;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x / G;
  const int64_t es = sizeof(T);
  for (int64_t r = first; r < rows; r += step) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    float m = -INFINITY;
    for (int64_t k = lane; k < n; k += G) m = fmaxf(m, load<T>(x + (base + k * inner) * es));
    if constexpr (kWarp) m = warp_max(m);
    float s = 0;
    for (int64_t k = lane; k < n; k += G) s += ::expf(load<T>(x + (base + k * inner) * es) - m);
    if constexpr (kWarp) s = warp_sum(s);
    const float ls = ::logf(s);
    for (int64_t k = lane; k < n; k += G) {
      const float v = load<T>(x + (base + k * inner) * es) - m;
      store<T>(out + (base + k * inner) * es, log ? v - ls : ::expf(v) / s);
    }
  }
}

template <typename T, bool kWarp>
__global__ void softmax_backward_kernel(int64_t rows, int64_t n, int64_t inner, const char* g,
                                        const char* y, char* gx, bool log) {
  constexpr int G = kWarp ? 32 : 1;
  const int lane = threadIdx.x % G;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x / G;
  const int64_t es = sizeof(T);
  for (int64_t r = first; r < rows; r += step) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    float acc = 0;  // sum g (log) or sum g * y
    for (int64_t k = lane; k < n; k += G) {
      const int64_t o = (base + k * inner) * es;
      acc += log ? load<T>(g + o) : load<T>(g + o) * load<T>(y + o);
    }
    if constexpr (kWarp) acc = warp_sum(acc);
    for (int64_t k = lane; k < n; k += G) {
      const int64_t o = (base + k * inner) * es;
      const float gv = load<T>(g + o), yv = load<T>(y + o);
      store<T>(gx + o, log ? gv - ::expf(yv) * acc : yv * (gv - acc));
    }
  }
}

void sizes(const Shape& s, int64_t dim, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[i];
  for (size_t i = static_cast<size_t>(dim) + 1; i < s.size(); ++i) inner *= s[i];
  n = s[dim];
}

int blocks_for(int64_t rows, bool warp) {
  const int64_t threads = warp ? rows * 32 : rows;
  return grid_for(threads);
}

}  // namespace

void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  int64_t outer, n, inner;
  sizes(x.shape(), dim, outer, n, inner);
  const int64_t rows = outer * inner;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  const char* px = static_cast<const char*>(x.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  const bool warp = inner == 1;
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "softmax", {
    if (warp)
      softmax_kernel<T, true>
          <<<blocks_for(rows, true), kThreads, 0, stream_of(dev)>>>(rows, n, inner, px, po, log);
    else
      softmax_kernel<T, false>
          <<<blocks_for(rows, false), kThreads, 0, stream_of(dev)>>>(rows, n, inner, px, po, log);
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void softmax_backward(const Tensor& gx, const Tensor& g_in, const Tensor& out, int64_t dim,
                      bool log) {
  const Tensor g = g_in.dtype() == out.dtype() ? g_in : g_in.to(out.dtype()).contiguous();
  int64_t outer, n, inner;
  sizes(out.shape(), dim, outer, n, inner);
  const int64_t rows = outer * inner;
  const Device dev = out.device();
  DeviceGuard guard(dev.index);
  const char* pg = static_cast<const char*>(g.raw_data());
  const char* py = static_cast<const char*>(out.raw_data());
  char* pd = static_cast<char*>(gx.raw_data());
  const bool warp = inner == 1;
  OAR_CUDA_FLOAT_SWITCH(out.dtype(), "softmax", {
    if (warp)
      softmax_backward_kernel<T, true><<<blocks_for(rows, true), kThreads, 0, stream_of(dev)>>>(
          rows, n, inner, pg, py, pd, log);
    else
      softmax_backward_kernel<T, false><<<blocks_for(rows, false), kThreads, 0, stream_of(dev)>>>(
          rows, n, inner, pg, py, pd, log);
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda
