// CUDA max/min along dims, their arg positions and the gradient scatter (the cpu/minmax.cpp
// contract): the reduced dims are moved innermost and each thread scans one row in order with
// the CPU's rule (NaN wins; ties keep the first, or the last, position), so results match
// exactly.
#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

template <typename C>
__device__ __forceinline__ bool replaces(C v, C best, bool is_max, bool last) {
  const bool v_nan = v != v, best_nan = best != best;
  if (best_nan) return last && v_nan;
  if (v_nan) return true;
  if (v == best) return last;
  return is_max ? v > best : v < best;
}

template <typename T>
__global__ void extreme_rows_kernel(int64_t outer, int64_t n, const char* src, char* vals,
                                    int64_t* idx, bool is_max, bool last) {
  using C = typename compute_type<T>::type;
  constexpr int64_t es = sizeof(T);
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < outer;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const char* row = src + o * n * es;
    C best = load<T>(row);
    int64_t bi = 0;
    for (int64_t i = 1; i < n; ++i) {
      const C v = load<T>(row + i * es);
      if (replaces(v, best, is_max, last)) {
        best = v;
        bi = i;
      }
    }
    if (idx) idx[o] = bi;
    if (vals) *reinterpret_cast<T*>(vals + o * es) = *reinterpret_cast<const T*>(row + bi * es);
  }
}

template <typename T>
__global__ void put_rows_kernel(int64_t outer, int64_t n, int64_t k, const int64_t* index,
                                const char* src, char* dst) {
  constexpr int64_t es = sizeof(T);
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < outer;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    for (int64_t j = 0; j < k; ++j) {
      char* p = dst + (o * n + index[o * k + j]) * es;
      store<T>(p, load<T>(p) + load<T>(src + (o * k + j) * es));
    }
  }
}

template <typename T>
void launch_rows(Device dev, int64_t outer, int64_t n, const Tensor& rows, const Tensor& values,
                 int64_t* idx, bool is_max, bool last) {
  if (outer == 0) return;
  DeviceGuard guard(dev.index);
  extreme_rows_kernel<T><<<grid_for(outer), kThreads, 0, stream_of(dev)>>>(
      outer, n, static_cast<const char*>(rows.raw_data()),
      values.defined() ? static_cast<char*>(values.raw_data()) : nullptr, idx, is_max, last);
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                 bool is_max, bool last) {
  const Tensor rows = cpu::dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  int64_t* idx = static_cast<int64_t*>(indices.raw_data());
  OAR_DTYPE_SWITCH(x.dtype(),
                   launch_rows<T>(x.device(), outer, n, rows, values, idx, is_max, last));
}

void extreme(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims, bool is_max) {
  const Tensor rows = cpu::dims_last(x, dims);
  const int64_t outer = out.numel();
  const int64_t n = outer ? x.numel() / outer : 0;
  OAR_DTYPE_SWITCH(x.dtype(),
                   launch_rows<T>(x.device(), outer, n, rows, out, nullptr, is_max, false));
}

void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const Tensor idx_rows = cpu::dims_last(index, {dim});
  const Tensor src_rows = cpu::dims_last(src, {dim}).contiguous();
  const int64_t n = out.size(dim), k = index.size(dim);
  const int64_t outer = n ? out.numel() / n : 0;
  const Device dev = out.device();
  cpu::into_dims_last(out, {dim}, [&](const Tensor& rows) {
    Tensor r = rows;
    r.zero_();
    if (outer == 0 || k == 0) return;
    DeviceGuard guard(dev.index);
    OAR_CUDA_FLOAT_SWITCH(out.dtype(), "put_along", {
      put_rows_kernel<T><<<grid_for(outer), kThreads, 0, stream_of(dev)>>>(
          outer, n, k, static_cast<const int64_t*>(idx_rows.raw_data()),
          static_cast<const char*>(src_rows.raw_data()), static_cast<char*>(rows.raw_data()));
    });
    OAR_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace oar::cuda
