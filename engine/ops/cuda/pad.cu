// CUDA pad (the cpu::pad contract): a thread per element of the contiguous output maps each of
// its coordinates to the input coordinate it reads (constant: none, so the fill value; reflect;
// edge) and copies the element's bytes. Negative pads crop.
#include "engine/ops/cuda/loops.cuh"

namespace oar {
enum class PadMode { constant, reflect, edge };

namespace cuda {

namespace {

struct PadGeo {
  int nd = 0;
  int64_t out[kMaxDims] = {}, in[kMaxDims] = {}, before[kMaxDims] = {};
  int64_t xstride[kMaxDims] = {};  // bytes
};

template <typename B>
__global__ void pad_kernel(int64_t total, PadGeo g, PadMode mode, const char* x, B fill, B* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, src = 0;
    bool inside = true;
    for (int d = g.nd - 1; d >= 0; --d) {
      const int64_t c = rest % g.out[d];
      rest /= g.out[d];
      int64_t p = c - g.before[d];
      const int64_t n = g.in[d];
      if (p < 0 || p >= n) {
        if (mode == PadMode::constant) {
          inside = false;
          break;
        }
        if (mode == PadMode::edge)
          p = p < 0 ? 0 : n - 1;
        else
          p = p < 0 ? -p : 2 * (n - 1) - p;
      }
      src += p * g.xstride[d];
    }
    out[i] = inside ? *reinterpret_cast<const B*>(x + src) : fill;
  }
}

template <typename B>
void launch_pad(Device dev, int64_t total, const PadGeo& g, PadMode mode, const Tensor& x,
                const char* fill_bytes, const Tensor& out) {
  B fill;
  std::memcpy(&fill, fill_bytes, sizeof(B));
  pad_kernel<B><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
      total, g, mode, static_cast<const char*>(x.raw_data()), fill,
      static_cast<B*>(out.raw_data()));
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void pad(const Tensor& out, const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
         double value) {
  const int64_t total = out.numel();
  if (total == 0) return;
  OAR_CHECK(x.dim() <= kMaxDims, "pad: CUDA kernel supports at most ", kMaxDims,
            " dimensions, got ", x.dim());
  char fill[8] = {};
  OAR_DTYPE_SWITCH(out.dtype(), {
    const T v = from_double<T>(value);
    std::memcpy(fill, &v, sizeof(T));
  });
  PadGeo g;
  g.nd = static_cast<int>(x.dim());
  const std::vector<int64_t> xbs = byte_strides(x);
  for (int d = 0; d < g.nd; ++d) {
    g.out[d] = out.size(d);
    g.in[d] = x.size(d);
    g.before[d] = pads[2 * d];
    g.xstride[d] = xbs[d];
  }
  const Device dev = out.device();
  DeviceGuard guard(dev.index);
  switch (dtype_size(out.dtype())) {
    case 1:
      launch_pad<uint8_t>(dev, total, g, mode, x, fill, out);
      break;
    case 2:
      launch_pad<uint16_t>(dev, total, g, mode, x, fill, out);
      break;
    case 4:
      launch_pad<uint32_t>(dev, total, g, mode, x, fill, out);
      break;
    case 8:
      launch_pad<uint64_t>(dev, total, g, mode, x, fill, out);
      break;
    default:
      OAR_FAIL("pad: element size ", dtype_size(out.dtype()), " not supported");
  }
}

}  // namespace cuda
}  // namespace oar
