// CUDA sort / topk rows and cumsum (the cpu/sort.cpp contract). Sorting: each element becomes an
// unsigned key whose ascending order is the wanted order (NaN above everything, -0 == +0, all
// bits flipped for descending), and CUB's stable segmented sort orders (key, index) pairs per
// row, so ties keep the lower index first as on the CPU; the first k of each row are gathered.
// cumsum: one thread per row accumulating in double (i64 for integers), the CPU's exact order;
// long rows (few of them) a block per row, chunked.
#include <cub/device/device_segmented_sort.cuh>

#include "engine/ops/cpu/along_dim.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

template <typename T>
using key_t_of = std::conditional_t<std::is_floating_point_v<typename compute_type<T>::type>,
                                    uint32_t, uint64_t>;

template <typename T>
__device__ __forceinline__ key_t_of<T> sort_key(const char* p, bool descending) {
  using K = key_t_of<T>;
  K k;
  if constexpr (std::is_same_v<K, uint32_t>) {
    float v = load<T>(p);
    if (v != v) {
      k = 0xffffffffu;
    } else {
      if (v == 0.0f) v = 0.0f;  // -0 sorts with +0 (tie broken by index)
      const uint32_t u = __float_as_uint(v);
      k = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    }
  } else {
    const int64_t v = static_cast<int64_t>(load<T>(p));
    k = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  }
  return descending ? static_cast<K>(~k) : k;
}

template <typename T>
__global__ void keys_kernel(int64_t total, int64_t n, const char* rows, bool descending,
                            key_t_of<T>* keys, int64_t* idx) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keys[i] = sort_key<T>(rows + i * static_cast<int64_t>(sizeof(T)), descending);
    idx[i] = i % n;
  }
}

__global__ void offsets_kernel(int64_t outer, int64_t n, int64_t* offsets) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i <= outer;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    offsets[i] = i * n;
}

// values / indices [outer, k] = the first k of each sorted row.
template <typename T>
__global__ void take_kernel(int64_t outer, int64_t n, int64_t k, const char* rows,
                            const int64_t* order, char* values, int64_t* indices) {
  const int64_t total = outer * k;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = i / k, j = i % k;
    const int64_t src = order[o * n + j];
    indices[i] = src;
    using B = std::conditional_t<
        sizeof(T) == 1, uint8_t,
        std::conditional_t<sizeof(T) == 2, uint16_t,
                           std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
    static_assert(sizeof(B) == sizeof(T), "element size");
    *reinterpret_cast<B*>(values + i * static_cast<int64_t>(sizeof(T))) =
        *reinterpret_cast<const B*>(rows + (o * n + src) * static_cast<int64_t>(sizeof(T)));
  }
}

template <typename T>
void sort_typed(Device dev, const Tensor& rows, const Tensor& vrows, const Tensor& irows,
                int64_t outer, int64_t n, int64_t k, bool descending) {
  using K = key_t_of<T>;
  const int64_t total = outer * n;
  cudaStream_t s = stream_of(dev);
  // Keys and indices in and out, then the row offsets: i64 buffers from the caching allocator.
  const int64_t kw = (total * static_cast<int64_t>(sizeof(K)) + 7) / 8;
  Tensor buf = empty({2 * kw + 2 * total + outer + 1}, DType::i64, dev);
  int64_t* base = static_cast<int64_t*>(buf.raw_data());
  K* keys_in = reinterpret_cast<K*>(base);
  K* keys_out = reinterpret_cast<K*>(base + kw);
  int64_t* idx_in = base + 2 * kw;
  int64_t* idx_out = idx_in + total;
  int64_t* offsets = idx_out + total;
  keys_kernel<T><<<grid_for(total), kThreads, 0, s>>>(
      total, n, static_cast<const char*>(rows.raw_data()), descending, keys_in, idx_in);
  offsets_kernel<<<grid_for(outer + 1), kThreads, 0, s>>>(outer, n, offsets);
  OAR_CUDA_CHECK(cudaGetLastError());
  size_t temp_bytes = 0;
  OAR_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, keys_in, keys_out,
                                                           idx_in, idx_out, total, outer, offsets,
                                                           offsets + 1, s));
  Tensor temp = empty({static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))}, DType::u8, dev);
  OAR_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairs(temp.raw_data(), temp_bytes, keys_in,
                                                           keys_out, idx_in, idx_out, total, outer,
                                                           offsets, offsets + 1, s));
  take_kernel<T><<<grid_for(outer * k), kThreads, 0, s>>>(
      outer, n, k, static_cast<const char*>(rows.raw_data()), idx_out,
      static_cast<char*>(vrows.raw_data()), static_cast<int64_t*>(irows.raw_data()));
  OAR_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename Acc, typename To>
__global__ void cumsum_kernel(int64_t outer, int64_t n, bool exclusive, bool reverse,
                              const char* src, char* dst) {
  constexpr int64_t es = sizeof(T), eo = sizeof(To);
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < outer;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Acc acc = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = reverse ? n - 1 - j : j;
      const Acc v = static_cast<Acc>(load<T>(src + (o * n + i) * es));
      if (!exclusive) acc += v;
      store<To>(dst + (o * n + i) * eo, acc);
      if (exclusive) acc += v;
    }
  }
}

// Long rows, few of them: a block per row. Each thread sums a contiguous chunk (in processing
// order), thread 0 turns the chunk sums into offsets in order, then every thread rewrites its
// chunk as running sums from its offset. Sums are in double (i64 for integers), fixed order.
template <typename T, typename Acc, typename To>
__global__ void cumsum_block_kernel(int64_t outer, int64_t n, bool exclusive, bool reverse,
                                    const char* src, char* dst) {
  __shared__ Acc part[kThreads];
  constexpr int64_t es = sizeof(T), eo = sizeof(To);
  const int64_t chunk = (n + blockDim.x - 1) / blockDim.x;
  const int64_t b = static_cast<int64_t>(threadIdx.x) * chunk;
  const int64_t j0 = b < n ? b : n, j1 = j0 + chunk < n ? j0 + chunk : n;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    Acc s = 0;
    for (int64_t j = j0; j < j1; ++j)
      s += static_cast<Acc>(load<T>(src + (o * n + (reverse ? n - 1 - j : j)) * es));
    part[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
      Acc run = 0;
      for (unsigned t = 0; t < blockDim.x; ++t) {
        const Acc v = part[t];
        part[t] = run;
        run += v;
      }
    }
    __syncthreads();
    Acc acc = part[threadIdx.x];
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t i = reverse ? n - 1 - j : j;
      const Acc v = static_cast<Acc>(load<T>(src + (o * n + i) * es));
      if (!exclusive) acc += v;
      store<To>(dst + (o * n + i) * eo, acc);
      if (exclusive) acc += v;
    }
    __syncthreads();  // part is reused by the next row
  }
}

template <typename T, typename Acc, typename To>
void launch_cumsum_as(Device dev, int64_t outer, int64_t n, bool exclusive, bool reverse,
                      const char* src, char* dst) {
  cudaStream_t s = stream_of(dev);
  if (n >= 1024 && outer < 4096)
    cumsum_block_kernel<T, Acc, To>
        <<<static_cast<int>(outer), kThreads, 0, s>>>(outer, n, exclusive, reverse, src, dst);
  else
    cumsum_kernel<T, Acc, To>
        <<<grid_for(outer), kThreads, 0, s>>>(outer, n, exclusive, reverse, src, dst);
}

// Integers sum in i64 into an i64 output; floating types in double into their own dtype.
template <typename T>
void launch_cumsum(Device dev, int64_t outer, int64_t n, bool exclusive, bool reverse,
                   const char* src, char* dst) {
  if constexpr (std::is_integral_v<T>)
    launch_cumsum_as<T, int64_t, int64_t>(dev, outer, n, exclusive, reverse, src, dst);
  else
    launch_cumsum_as<T, double, T>(dev, outer, n, exclusive, reverse, src, dst);
}

}  // namespace

void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
               bool descending) {
  const Tensor rows = cpu::dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  if (k == 0 || outer == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  cpu::into_dims_last(values, {dim}, [&](const Tensor& vrows) {
    cpu::into_dims_last(indices, {dim}, [&](const Tensor& irows) {
      OAR_DTYPE_SWITCH(x.dtype(), sort_typed<T>(dev, rows, vrows, irows, outer, n, k, descending));
    });
  });
}

void cumsum(const Tensor& out, const Tensor& x, int64_t dim, bool exclusive, bool reverse) {
  const Tensor rows = cpu::dims_last(x, {dim});
  const int64_t n = x.size(dim);
  const int64_t outer = n ? x.numel() / n : 0;
  if (outer == 0) return;
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  cpu::into_dims_last(out, {dim}, [&](const Tensor& orows) {
    const char* src = static_cast<const char*>(rows.raw_data());
    char* dst = static_cast<char*>(orows.raw_data());
    OAR_DTYPE_SWITCH(x.dtype(), launch_cumsum<T>(dev, outer, n, exclusive, reverse, src, dst));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda
