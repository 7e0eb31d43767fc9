#pragma once
// Strided elementwise loops for CUDA kernels, the GPU twin of cpu/loops.h: an N-operand index
// space (dims of size 1 dropped, contiguous neighbours merged) walked by a grid-stride loop that
// turns each linear index into one byte offset per operand. Operators are functor objects or
// extended __device__ lambdas on compute types (float for f32/bf16/f16).
// map_kernel picks one of three loops per launch (uniform branch): when the operands merge into a
// single dimension (same-shape contiguous operands, or one uniform stride each) offsets are
// i * stride with no division; otherwise, below 2^31 elements, the per-dimension div/mod runs in
// 32-bit unsigned arithmetic (several times cheaper than 64-bit division on the GPU); beyond
// that, in 64-bit. map1 / map2 on contiguous operands of the output's shape (no broadcast) whose
// data are aligned take map_packed_kernel instead: kVec = 4 elements per thread and iteration,
// each operand read and written as one aligned vector access (16 bytes for f32, 8 for bf16), so
// each thread keeps four times the bytes in flight.
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "engine/core/cuda/check.h"
#include "engine/tensor/tensor.h"

namespace oar::cuda {

constexpr int kMaxDims = 12;
constexpr int kThreads = 256;

template <int N>
struct Ptrs {
  char* p[N];
};

template <int N>
struct Indexer {
  int nd = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims][N] = {};  // bytes

  // Byte offsets of linear index i; I is int64_t, or uint32_t when every index fits.
  template <typename I>
  __device__ __forceinline__ void offsets(I i, int64_t* off) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d > 0; --d) {
      const I sz = static_cast<I>(sizes[d]);
      const I idx = i % sz;
      i /= sz;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(idx) * strides[d][k];
    }
    if (nd > 0) {  // the outermost dimension takes what is left: no division
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(i) * strides[0][k];
    }
  }
};

template <int N>
Indexer<N> make_indexer(const Shape& shape, const std::array<std::vector<int64_t>, N>& st) {
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, N> s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sizes.push_back(shape[d]);
    for (int k = 0; k < N; ++k) s[k].push_back(st[k][d]);
  }
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k)
      if (s[k][d] != s[k][d + 1] * sizes[d + 1]) mergeable = false;
    if (!mergeable) continue;
    sizes[d] *= sizes[d + 1];
    sizes.erase(sizes.begin() + d + 1);
    for (int k = 0; k < N; ++k) {
      s[k][d] = s[k][d + 1];
      s[k].erase(s[k].begin() + d + 1);
    }
  }
  OAR_CHECK(static_cast<int>(sizes.size()) <= kMaxDims, "CUDA kernels: ", sizes.size(),
            " non-mergeable dimensions in ", shape_str(shape), " (at most ", kMaxDims, ")");
  Indexer<N> ix;
  ix.nd = static_cast<int>(sizes.size());
  for (int d = 0; d < ix.nd; ++d) {
    ix.sizes[d] = sizes[d];
    for (int k = 0; k < N; ++k) ix.strides[d][k] = s[k][d];
  }
  return ix;
}

inline std::vector<int64_t> byte_strides(const Tensor& t) {
  std::vector<int64_t> s(t.strides().begin(), t.strides().end());
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  for (auto& v : s) v *= es;
  return s;
}

// Byte strides of `t` broadcast to `shape` (0 for broadcast dimensions).
inline std::vector<int64_t> broadcast_byte_strides(const Tensor& t, const Shape& shape) {
  const size_t n = shape.size(), r = static_cast<size_t>(t.dim());
  OAR_CHECK(r <= n, "broadcast: rank ", r, " tensor to shape ", shape_str(shape));
  std::vector<int64_t> s(n, 0);
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  for (size_t i = 0; i < r; ++i) {
    const int64_t sz = t.shape()[i];
    const size_t o = i + n - r;
    OAR_CHECK(sz == shape[o] || sz == 1, "broadcast: ", shape_str(t.shape()), " to ",
              shape_str(shape));
    s[o] = sz == 1 ? 0 : t.strides()[i] * es;
  }
  return s;
}

inline int grid_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 16));
}

template <int N, typename F>
__global__ void map_kernel(int64_t n, Indexer<N> ix, Ptrs<N> base, F f) {
  if (n <= INT32_MAX) {
    // i + step stays below 2^32: step <= 2^16 blocks * kThreads.
    const uint32_t n32 = static_cast<uint32_t>(n);
    const uint32_t step = gridDim.x * blockDim.x;
    const uint32_t first = blockIdx.x * blockDim.x + threadIdx.x;
    if (ix.nd <= 1) {  // one merged dimension (nd 0: a single element)
      int64_t st[N];
#pragma unroll
      for (int k = 0; k < N; ++k) st[k] = ix.nd == 1 ? ix.strides[0][k] : 0;
      for (uint32_t i = first; i < n32; i += step) {
        Ptrs<N> p;
#pragma unroll
        for (int k = 0; k < N; ++k) p.p[k] = base.p[k] + static_cast<int64_t>(i) * st[k];
        f(p);
      }
    } else {
      for (uint32_t i = first; i < n32; i += step) {
        int64_t off[N];
        ix.offsets(i, off);
        Ptrs<N> p;
#pragma unroll
        for (int k = 0; k < N; ++k) p.p[k] = base.p[k] + off[k];
        f(p);
      }
    }
    return;
  }
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[N];
    ix.offsets(i, off);
    Ptrs<N> p;
#pragma unroll
    for (int k = 0; k < N; ++k) p.p[k] = base.p[k] + off[k];
    f(p);
  }
}

// Runs f(Ptrs) for every element of `shape` on `dev`'s current stream.
template <int N, typename F>
void launch(Device dev, const Shape& shape, const std::array<char*, N>& base,
            const std::array<std::vector<int64_t>, N>& st, F f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const Indexer<N> ix = make_indexer<N>(shape, st);
  Ptrs<N> p;
  for (int k = 0; k < N; ++k) p.p[k] = base[k];
  DeviceGuard g(dev.index);
  map_kernel<N><<<grid_for(n), kThreads, 0, stream_of(dev)>>>(n, ix, p, f);
  OAR_CUDA_CHECK(cudaGetLastError());
}

// ---- loads and stores through compute types

template <typename T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<::oar::bf16> {
  using type = float;
};
template <>
struct compute_type<::oar::f16> {
  using type = float;
};

template <typename T>
__device__ __forceinline__ typename compute_type<T>::type load(const char* p) {
  if constexpr (std::is_same_v<T, ::oar::bf16>) {
    return __uint_as_float(static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(p)) << 16);
  } else if constexpr (std::is_same_v<T, ::oar::f16>) {
    return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
  } else {
    return *reinterpret_cast<const T*>(p);
  }
}

// Round to nearest even, NaN stays NaN: the same bits as float_to_bf16 on the CPU.
__device__ __forceinline__ uint16_t bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

template <typename T, typename V>
__device__ __forceinline__ void store(char* p, V v) {
  if constexpr (std::is_same_v<T, ::oar::bf16>) {
    *reinterpret_cast<uint16_t*>(p) = bf16_bits(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, ::oar::f16>) {
    *reinterpret_cast<unsigned short*>(p) =
        __half_as_ushort(__float2half_rn(static_cast<float>(v)));
  } else {
    *reinterpret_cast<T*>(p) = static_cast<T>(v);
  }
}

template <typename Tout, typename Ta, typename F>
struct Map1Op {
  F f;
  __device__ __forceinline__ void operator()(Ptrs<2> p) const {
    store<Tout>(p.p[0], f(load<Ta>(p.p[1])));
  }
};

template <typename Tout, typename Ta, typename Tb, typename F>
struct Map2Op {
  F f;
  __device__ __forceinline__ void operator()(Ptrs<3> p) const {
    store<Tout>(p.p[0], f(load<Ta>(p.p[1]), load<Tb>(p.p[2])));
  }
};

// ---- packed path: contiguous operands of one shape (no broadcast), kVec elements per access

constexpr int kVec = 4;

// kVec elements of T read or written as one aligned access (16 bytes for f32, 8 for bf16/f16).
template <typename T>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

// out = f(a) (kTwo false) or f(a, b): thread t takes packs t, t + step, ...; the n % kVec tail
// goes to the first threads of the grid, one element each.
template <typename Tout, typename Ta, typename Tb, bool kTwo, typename F>
__global__ void map_packed_kernel(int64_t n, char* out, const char* a, const char* b, F f) {
  const int64_t packs = n / kVec;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t v = first; v < packs; v += step) {
    const Pack<Ta> pa = reinterpret_cast<const Pack<Ta>*>(a)[v];
    Pack<Tout> po;
    if constexpr (kTwo) {
      const Pack<Tb> pb = reinterpret_cast<const Pack<Tb>*>(b)[v];
#pragma unroll
      for (int k = 0; k < kVec; ++k)
        store<Tout>(reinterpret_cast<char*>(&po.v[k]),
                    f(load<Ta>(reinterpret_cast<const char*>(&pa.v[k])),
                      load<Tb>(reinterpret_cast<const char*>(&pb.v[k]))));
    } else {
#pragma unroll
      for (int k = 0; k < kVec; ++k)
        store<Tout>(reinterpret_cast<char*>(&po.v[k]),
                    f(load<Ta>(reinterpret_cast<const char*>(&pa.v[k]))));
    }
    reinterpret_cast<Pack<Tout>*>(out)[v] = po;
  }
  const int64_t i = packs * kVec + first;
  if (i < n) {
    char* o = out + i * static_cast<int64_t>(sizeof(Tout));
    const char* pa = a + i * static_cast<int64_t>(sizeof(Ta));
    if constexpr (kTwo)
      store<Tout>(o, f(load<Ta>(pa), load<Tb>(b + i * static_cast<int64_t>(sizeof(Tb)))));
    else
      store<Tout>(o, f(load<Ta>(pa)));
  }
}

// Whether t can take the packed path for an output of `shape`: contiguous, the same shape (no
// broadcast) and its first element aligned for Pack<T>.
template <typename T>
bool packable(const Tensor& t, const Shape& shape) {
  return t.is_contiguous() && t.shape() == shape &&
         reinterpret_cast<uintptr_t>(t.raw_data()) % alignof(Pack<T>) == 0;
}

template <typename Tout, typename Ta, typename Tb, bool kTwo, typename F>
void launch_packed(const Tensor& out, const Tensor& a, const Tensor* b, F f) {
  const int64_t n = out.numel();
  const Device dev = out.device();
  DeviceGuard g(dev.index);
  map_packed_kernel<Tout, Ta, Tb, kTwo>
      <<<grid_for(std::max<int64_t>(n / kVec, 1)), kThreads, 0, stream_of(dev)>>>(
          n, static_cast<char*>(out.raw_data()), static_cast<const char*>(a.raw_data()),
          b ? static_cast<const char*>(b->raw_data()) : nullptr, f);
  OAR_CUDA_CHECK(cudaGetLastError());
}

// out[i] = f(a[i]) with a broadcast to out's shape.
template <typename Tout, typename Ta, typename F>
void map1(const Tensor& out, const Tensor& a, F f) {
  if (out.numel() >= kVec && packable<Tout>(out, out.shape()) && packable<Ta>(a, out.shape()))
    return launch_packed<Tout, Ta, Ta, false>(out, a, nullptr, f);
  launch<2>(out.device(), out.shape(),
            {static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data())},
            {byte_strides(out), broadcast_byte_strides(a, out.shape())}, Map1Op<Tout, Ta, F>{f});
}

// out[i] = f(a[i], b[i]) with a and b broadcast to out's shape.
template <typename Tout, typename Ta, typename Tb, typename F>
void map2(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  if (out.numel() >= kVec && packable<Tout>(out, out.shape()) && packable<Ta>(a, out.shape()) &&
      packable<Tb>(b, out.shape()))
    return launch_packed<Tout, Ta, Tb, true>(out, a, &b, f);
  launch<3>(out.device(), out.shape(),
            {static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data()),
             static_cast<char*>(b.raw_data())},
            {byte_strides(out), broadcast_byte_strides(a, out.shape()),
             broadcast_byte_strides(b, out.shape())},
            Map2Op<Tout, Ta, Tb, F>{f});
}

}  // namespace oar::cuda

// OAR_CUDA_FLOAT_SWITCH(dt, opname, body): body with T in {float, bf16, f16}.
#define OAR_CUDA_FLOAT_SWITCH(dt, opname, ...)                                                     \
  switch (dt) {                                                                                    \
    OAR_DTYPE_CASE(f32, float, __VA_ARGS__)                                                        \
    OAR_DTYPE_CASE(bf16, ::oar::bf16, __VA_ARGS__)                                                 \
    OAR_DTYPE_CASE(f16, ::oar::f16, __VA_ARGS__)                                                   \
    default:                                                                                       \
      OAR_FAIL(opname, ": dtype ", ::oar::dtype_name(dt), " not supported (floating types only)"); \
  }
