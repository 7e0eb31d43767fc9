// CUDA index_select, gather, index_add and scatter_add (the cpu/index.cpp contract: embedding
// and gather forward and backward) and index validation. The adds are deterministic and in the
// CPU's order: index_add groups the indices by destination on the GPU (CUB's stable radix sort
// of (index, position) pairs over the bits that [0, n) needs, then a binary search per
// destination for where its run starts: no copy back to the host, so the embedding backward no
// longer waits for the stream) and each destination element adds its sources in index order
// (a block per destination row when rows hold at least 32 elements, so rows without sources
// cost nothing); scatter_add gives each fiber along dim to one thread.
#include <cub/device/device_radix_sort.cuh>

#include <utility>
#include <vector>

#include "engine/ops/cuda/loops.cuh"

namespace oar {
namespace cpu {
std::pair<int64_t, int64_t> wrap_indices(const Tensor& out, const Tensor& idx, int64_t n,
                                         bool allow_negative);
}  // namespace cpu

namespace cuda {

namespace {

template <typename E>
struct PickOp {
  int64_t step;  // bytes between slices of x along dim
  __device__ __forceinline__ void operator()(Ptrs<3> p) const {
    const int64_t v = *reinterpret_cast<const int64_t*>(p.p[1]);
    *reinterpret_cast<E*>(p.p[0]) = *reinterpret_cast<const E*>(p.p[2] + v * step);
  }
};

template <typename T>
__global__ void index_add_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k_total,
                                 const int64_t* offsets, const int64_t* order, const char* src,
                                 char* out) {
  const int64_t total = outer * n * inner;
  const int64_t es = sizeof(T);
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, r = (e / inner) % n, o = e / (inner * n);
    char* dst = out + e * es;
    for (int64_t j = offsets[r]; j < offsets[r + 1]; ++j) {
      const char* s = src + ((o * k_total + order[j]) * inner + i) * es;
      if constexpr (std::is_same_v<T, bool>) {
        store<T>(dst, load<T>(dst) || load<T>(s));
      } else {
        using C = typename compute_type<T>::type;
        store<T>(dst, static_cast<C>(load<T>(dst) + load<T>(s)));
      }
    }
  }
}

// The same adds with a block per destination row (o, r) whose threads split the row's inner
// elements: a row without sources (most of an embedding table) is skipped as a whole, and there
// is no per-element division. Each element adds its sources in the same order as above.
template <typename T>
__global__ void index_add_rows_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k_total,
                                      const int64_t* offsets, const int64_t* order, const char* src,
                                      char* out) {
  const int64_t es = sizeof(T);
  for (int64_t row = blockIdx.x; row < outer * n; row += gridDim.x) {
    const int64_t o = row / n, r = row % n;
    const int64_t b = offsets[r], e = offsets[r + 1];
    if (b == e) continue;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      char* dst = out + (row * inner + i) * es;
      for (int64_t j = b; j < e; ++j) {
        const char* s = src + ((o * k_total + order[j]) * inner + i) * es;
        if constexpr (std::is_same_v<T, bool>) {
          store<T>(dst, load<T>(dst) || load<T>(s));
        } else {
          using C = typename compute_type<T>::type;
          store<T>(dst, static_cast<C>(load<T>(dst) + load<T>(s)));
        }
      }
    }
  }
}

// Rows of at least a warp's elements take index_add_rows_kernel, shorter ones a thread each.
void launch_index_add(const Tensor& out, const Tensor& src, int64_t outer, int64_t n, int64_t inner,
                      int64_t k_total, const int64_t* offsets, const int64_t* order) {
  const Device dev = out.device();
  cudaStream_t stream = stream_of(dev);
  const char* ps = static_cast<const char*>(src.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  OAR_DTYPE_SWITCH(out.dtype(), {
    if (inner >= 32) {
      int threads = 32;
      while (threads < kThreads && threads < inner) threads *= 2;
      const int blocks = static_cast<int>(std::min<int64_t>(outer * n, 1 << 20));
      index_add_rows_kernel<T>
          <<<blocks, threads, 0, stream>>>(outer, n, inner, k_total, offsets, order, ps, po);
    } else {
      index_add_kernel<T><<<grid_for(outer * n * inner), kThreads, 0, stream>>>(
          outer, n, inner, k_total, offsets, order, ps, po);
    }
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

// One thread per fiber along dim (every other coordinate fixed): fibers write disjoint output
// elements, and each adds its sources in order, as the CPU does.
template <typename T>
__global__ void scatter_add_kernel(int64_t fibers, Indexer<3> ix, int64_t k_n, int64_t os,
                                   int64_t is, int64_t ss, char* out, const char* idx,
                                   const char* src) {
  for (int64_t f = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; f < fibers;
       f += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(f, off);
    for (int64_t k = 0; k < k_n; ++k) {
      const int64_t v = *reinterpret_cast<const int64_t*>(idx + off[1] + k * is);
      char* dst = out + off[0] + v * os;
      if constexpr (std::is_same_v<T, bool>) {
        store<T>(dst, load<T>(dst) || load<T>(src + off[2] + k * ss));
      } else {
        using C = typename compute_type<T>::type;
        store<T>(dst, static_cast<C>(load<T>(dst) + load<T>(src + off[2] + k * ss)));
      }
    }
  }
}

__global__ void iota_kernel(int64_t n, int64_t* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = i;
}

// offsets[r] = the first position p of the sorted keys [0, k) with keys[p] >= r, for r in [0, n]
// (so destination r's sources are sorted positions offsets[r] .. offsets[r + 1]).
__global__ void run_starts_kernel(int64_t n, int64_t k, const uint64_t* keys, int64_t* offsets) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r <= n;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = k;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (keys[mid] < static_cast<uint64_t>(r))
        lo = mid + 1;
      else
        hi = mid;
    }
    offsets[r] = lo;
  }
}

void pick(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx,
          const std::vector<int64_t>& idx_byte_strides) {
  if (out.numel() == 0) return;
  std::vector<int64_t> xs = byte_strides(x);
  const int64_t step = xs[dim];
  xs[dim] = 0;
  const std::array<char*, 3> base{static_cast<char*>(out.raw_data()),
                                  static_cast<char*>(idx.raw_data()),
                                  static_cast<char*>(x.raw_data())};
  const std::array<std::vector<int64_t>, 3> st{byte_strides(out), idx_byte_strides, xs};
  switch (dtype_size(x.dtype())) {
    case 1:
      return launch<3>(out.device(), out.shape(), base, st, PickOp<uint8_t>{step});
    case 2:
      return launch<3>(out.device(), out.shape(), base, st, PickOp<uint16_t>{step});
    case 4:
      return launch<3>(out.device(), out.shape(), base, st, PickOp<uint32_t>{step});
    case 8:
      return launch<3>(out.device(), out.shape(), base, st, PickOp<uint64_t>{step});
    default:
      OAR_FAIL("gather: element size ", dtype_size(x.dtype()), " not supported");
  }
}

int64_t prod(const Shape& s, int64_t b, int64_t e) {
  int64_t r = 1;
  for (int64_t i = b; i < e; ++i) r *= s[i];
  return r;
}

}  // namespace

std::pair<int64_t, int64_t> wrap_indices(const Tensor& out, const Tensor& idx, int64_t n,
                                         bool allow_negative) {
  // The caller needs the first bad index on the host anyway: check and wrap there.
  Tensor host = empty(idx.shape(), DType::i64);
  const auto r = cpu::wrap_indices(host, idx.to(Device::cpu()), n, allow_negative);
  Tensor o = out;
  o.copy_(host);
  return r;
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  std::vector<int64_t> is(out.dim(), 0);
  is[dim] = static_cast<int64_t>(sizeof(int64_t));
  pick(out, x, dim, idx, is);
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  pick(out, x, dim, idx, byte_strides(idx));
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  Shape outer;
  std::array<std::vector<int64_t>, 3> st;
  const std::vector<int64_t> obs = byte_strides(out), ibs = byte_strides(idx),
                             sbs = byte_strides(src);
  for (int64_t d = 0; d < idx.dim(); ++d) {
    if (d == dim) continue;
    outer.push_back(idx.size(d));
    st[0].push_back(obs[d]);
    st[1].push_back(ibs[d]);
    st[2].push_back(sbs[d]);
  }
  const int64_t fibers = shape_numel(outer), k_n = idx.size(dim);
  if (fibers == 0 || k_n == 0) return;
  const Indexer<3> ix = make_indexer<3>(outer, st);
  const Device dev = out.device();
  DeviceGuard guard(dev.index);
  OAR_DTYPE_SWITCH(out.dtype(), {
    scatter_add_kernel<T><<<grid_for(fibers), kThreads, 0, stream_of(dev)>>>(
        fibers, ix, k_n, obs[dim], ibs[dim], sbs[dim], static_cast<char*>(out.raw_data()),
        static_cast<const char*>(idx.raw_data()), static_cast<const char*>(src.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void index_add(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx) {
  const int64_t n = out.size(dim), k_total = idx.numel();
  const int64_t outer = prod(out.shape(), 0, dim), inner = prod(out.shape(), dim + 1, out.dim());
  if (out.numel() == 0 || k_total == 0) return;
  const Device dev = out.device();
  if (k_total <= INT32_MAX && idx.dtype() == DType::i64) {
    // Destination row r's sources: order[offsets[r] .. offsets[r + 1]), in index order (the
    // radix sort is stable). Indices are valid (in [0, n)): the low `bits` bits order them.
    DeviceGuard guard(dev.index);
    cudaStream_t stream = stream_of(dev);
    const Tensor keys_in = idx.contiguous();
    int bits = 1;
    while (bits < 63 && (int64_t{1} << bits) < n) ++bits;
    // One i64 buffer: positions, sorted keys, sorted positions, offsets [n + 1].
    Tensor buf = empty({3 * k_total + n + 1}, DType::i64, dev);
    int64_t* pos = static_cast<int64_t*>(buf.raw_data());
    uint64_t* keys_out = reinterpret_cast<uint64_t*>(pos + k_total);
    int64_t* order = pos + 2 * k_total;
    int64_t* offsets = pos + 3 * k_total;
    const uint64_t* keys = static_cast<const uint64_t*>(keys_in.raw_data());
    const int items = static_cast<int>(k_total);
    size_t temp_bytes = 0;
    OAR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, keys_out, pos, order,
                                                   items, 0, bits, stream));
    Tensor temp = empty({static_cast<int64_t>(temp_bytes) + 1}, DType::u8, dev);
    iota_kernel<<<grid_for(k_total), kThreads, 0, stream>>>(k_total, pos);
    OAR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw_data(), temp_bytes, keys, keys_out, pos,
                                                   order, items, 0, bits, stream));
    run_starts_kernel<<<grid_for(n + 1), kThreads, 0, stream>>>(n, k_total, keys_out, offsets);
    OAR_CUDA_CHECK(cudaGetLastError());
    launch_index_add(out, src, outer, n, inner, k_total, offsets, order);
    return;
  }
  // Beyond 2^31 indices: group them on the host.
  const std::vector<int64_t> ids = idx.to(Device::cpu()).to_vector<int64_t>();
  std::vector<int64_t> csr(static_cast<size_t>(n + 1 + k_total), 0);
  int64_t* offsets = csr.data();
  int64_t* order = csr.data() + n + 1;
  for (int64_t v : ids) ++offsets[v + 1];
  for (int64_t r = 0; r < n; ++r) offsets[r + 1] += offsets[r];
  std::vector<int64_t> fill(offsets, offsets + n);
  for (int64_t k = 0; k < k_total; ++k) order[fill[static_cast<size_t>(ids[k])]++] = k;
  const Tensor table = tensor<int64_t>(csr, {static_cast<int64_t>(csr.size())}).to(dev);
  const int64_t* t = static_cast<const int64_t*>(table.raw_data());
  DeviceGuard guard(dev.index);
  launch_index_add(out, src, outer, n, inner, k_total, t, t + n + 1);
}

}  // namespace cuda
}  // namespace oar
