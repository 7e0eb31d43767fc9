// CUDA kernels for copying (with dtype conversion and broadcasting, within a GPU and across
// devices), filling (a contiguous fill with +0 is a cudaMemsetAsync) and random fills (the CPU's
// counter-based draws, so both give equal numbers).
#include <cmath>

#include "engine/core/generator.h"
#include "engine/ops/cuda/loops.cuh"

namespace oar {
namespace cpu {
void copy(const Tensor& dst, const Tensor& src);
}

namespace cuda {

namespace {

struct Identity {
  template <typename V>
  __device__ __forceinline__ V operator()(V v) const {
    return v;
  }
};

bool plain_copy(const Tensor& dst, const Tensor& src) {
  return dst.dtype() == src.dtype() && dst.shape() == src.shape() && dst.is_contiguous() &&
         src.is_contiguous();
}

// dst and src on the same GPU.
void copy_on_device(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (plain_copy(dst, src)) {
    if (dst.raw_data() == src.raw_data()) return;
    DeviceGuard g(dst.device().index);
    OAR_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(),
                                   cudaMemcpyDeviceToDevice, stream_of(dst.device())));
    return;
  }
  OAR_DTYPE_SWITCH(dst.dtype(), {
    using To = T;
    OAR_DTYPE_SWITCH(src.dtype(), {
      using From = T;
      map1<To, From>(dst, src, Identity{});
    });
  });
}

// A contiguous tensor on src's device with src's values (src itself when already contiguous).
Tensor dense(const Tensor& src) {
  Tensor s = src.detach();
  if (s.is_contiguous()) return s;
  Tensor t = empty(s.shape(), s.dtype(), s.device());
  if (s.device().is_cpu()) {
    cpu::copy(t, s);
  } else {
    copy_on_device(t, s);
  }
  return t;
}

}  // namespace

// Staging copies keep src's dtype and shape; conversion and broadcasting happen on the side of
// the destination. Copies to the host wait for the stream, so the host may read at once. Copies
// from pageable host memory are staged by the driver before cudaMemcpyAsync returns, so the
// source may be freed at once; from pinned memory they are truly asynchronous.
void copy(const Tensor& dst, const Tensor& src) {
  const Device dd = dst.device(), sd = src.device();
  if (dd == sd) return copy_on_device(dst, src);
  if (dst.numel() == 0) return;
  const Tensor s = dense(src);
  if (sd.is_cpu()) {
    DeviceGuard g(dd.index);
    if (plain_copy(dst, s)) {
      OAR_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), s.raw_data(), dst.nbytes(),
                                     cudaMemcpyHostToDevice, stream_of(dd)));
      return;
    }
    Tensor staged = empty(s.shape(), s.dtype(), dd);
    OAR_CUDA_CHECK(cudaMemcpyAsync(staged.raw_data(), s.raw_data(), s.nbytes(),
                                   cudaMemcpyHostToDevice, stream_of(dd)));
    copy_on_device(dst, staged);
    return;
  }
  if (dd.is_cpu()) {
    DeviceGuard g(sd.index);
    if (plain_copy(dst, s)) {
      OAR_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), s.raw_data(), dst.nbytes(),
                                     cudaMemcpyDeviceToHost, stream_of(sd)));
      OAR_CUDA_CHECK(cudaStreamSynchronize(stream_of(sd)));
      return;
    }
    Tensor host = empty(s.shape(), s.dtype());
    OAR_CUDA_CHECK(cudaMemcpyAsync(host.raw_data(), s.raw_data(), s.nbytes(),
                                   cudaMemcpyDeviceToHost, stream_of(sd)));
    OAR_CUDA_CHECK(cudaStreamSynchronize(stream_of(sd)));
    cpu::copy(dst, host);
    return;
  }
  // GPU to GPU: a peer copy on the source's stream, finished before the destination's stream
  // reads it.
  Tensor staged = plain_copy(dst, s) ? dst : empty(s.shape(), s.dtype(), dd);
  {
    DeviceGuard g(sd.index);
    OAR_CUDA_CHECK(cudaMemcpyPeerAsync(staged.raw_data(), dd.index, s.raw_data(), sd.index,
                                       s.nbytes(), stream_of(sd)));
    OAR_CUDA_CHECK(cudaStreamSynchronize(stream_of(sd)));
  }
  if (!staged.same_storage(dst)) copy_on_device(dst, staged);
}

namespace {
template <typename T>
struct FillOp {
  T v;
  __device__ __forceinline__ void operator()(Ptrs<1> p) const { *reinterpret_cast<T*>(p.p[0]) = v; }
};
}  // namespace

void fill(const Tensor& dst, double value) {
  // +0 has all bits zero in every dtype: a contiguous zero fill is a memset.
  if (value == 0.0 && !std::signbit(value) && dst.is_contiguous()) {
    if (dst.numel() == 0) return;
    DeviceGuard g(dst.device().index);
    OAR_CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, dst.nbytes(), stream_of(dst.device())));
    return;
  }
  OAR_DTYPE_SWITCH(dst.dtype(), {
    launch<1>(dst.device(), dst.shape(), {static_cast<char*>(dst.raw_data())}, {byte_strides(dst)},
              FillOp<T>{from_double<T>(value)});
  });
}

namespace {

// Random draws, in double as on the CPU; the _rn intrinsics keep nvcc from fusing into an FMA,
// which would round differently from the CPU.
struct UniformDraw {
  uint64_t seed, base;
  double low, high;
  __device__ double operator()(int64_t i) const {
    const double u = Generator::to_unit_double(Generator::hash(seed, base + i));
    return __dadd_rn(low, __dmul_rn(high - low, u));
  }
};

struct NormalDraw {
  uint64_t seed, base;
  double mean, std;
  __device__ double operator()(int64_t i) const {
    double u1 = Generator::to_unit_double(Generator::hash(seed, base + 2 * i));
    const double u2 = Generator::to_unit_double(Generator::hash(seed, base + 2 * i + 1));
    if (u1 < 1e-300) u1 = 1e-300;
    const double r = __dmul_rn(std, ::sqrt(-2.0 * ::log(u1)));
    return __dadd_rn(mean, __dmul_rn(r, ::cos(__dmul_rn(6.283185307179586, u2))));
  }
};

struct RandintDraw {
  uint64_t seed, base, range;
  int64_t low;
  __device__ double operator()(int64_t i) const {
    return static_cast<double>(low + static_cast<int64_t>(Generator::hash(seed, base + i) % range));
  }
};

template <typename T, typename F>
__global__ void fill_indexed_kernel(int64_t n, char* p, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    store<T>(p + i * static_cast<int64_t>(sizeof(T)), f(i));
}

template <typename F>
void fill_indexed(const Tensor& dst, F f) {
  OAR_CHECK(dst.is_contiguous(), "random fill needs a contiguous tensor");
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard g(dst.device().index);
  OAR_DTYPE_SWITCH(dst.dtype(), {
    fill_indexed_kernel<T><<<grid_for(n), kThreads, 0, stream_of(dst.device())>>>(
        n, static_cast<char*>(dst.raw_data()), f);
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void fill_uniform(const Tensor& dst, uint64_t seed, uint64_t base, double low, double high) {
  fill_indexed(dst, UniformDraw{seed, base, low, high});
}

void fill_normal(const Tensor& dst, uint64_t seed, uint64_t base, double mean, double std) {
  fill_indexed(dst, NormalDraw{seed, base, mean, std});
}

void fill_randint(const Tensor& dst, uint64_t seed, uint64_t base, int64_t low, int64_t high) {
  fill_indexed(dst, RandintDraw{seed, base, static_cast<uint64_t>(high - low), low});
}

}  // namespace cuda
}  // namespace oar
