// CUDA max and average pooling (the cpu::pool_* contract; spatial dims padded to three). Max
// pooling's workspace holds each output's argmax as an i32 index into its input plane.
// Backward gathers, for each input element, the outputs whose windows hold it: no atomics, so
// results are deterministic and bf16 gradients accumulate in f32.
#include "engine/ops/cuda/loops.cuh"

namespace oar {
enum class PoolKind { max, avg_include_pad, avg_exclude_pad };

namespace cuda {

namespace {

struct Win3 {
  int64_t planes;
  int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3];
  __host__ __device__ int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  __host__ __device__ int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

Win3 win3(const Shape& x, const Shape& y, const Shape& kernel, const Shape& stride,
          const Shape& dilation, const Shape& pad_l) {
  Win3 w{};
  w.planes = x[0] * x[1];
  const int nd = static_cast<int>(x.size()) - 2;
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - nd);
    w.in[d] = s < 0 ? 1 : x[2 + s];
    w.out[d] = s < 0 ? 1 : y[2 + s];
    w.k[d] = s < 0 ? 1 : kernel[s];
    w.stride[d] = s < 0 ? 1 : stride[s];
    w.pad[d] = s < 0 ? 0 : pad_l[s];
    w.dil[d] = s < 0 ? 1 : dilation[s] + 1;  // oneDNN's dilation: 0 is dense
  }
  return w;
}

// Taps of window o along dim d that fall inside the input.
__device__ __forceinline__ int64_t inside(const Win3& w, int d, int64_t o) {
  int64_t n = 0;
  for (int64_t k = 0; k < w.k[d]; ++k) {
    const int64_t i = o * w.stride[d] - w.pad[d] + k * w.dil[d];
    n += (i >= 0 && i < w.in[d]) ? 1 : 0;
  }
  return n;
}

template <typename T>
__global__ void pool_forward_kernel(Win3 w, PoolKind kind, const char* x, char* y, int32_t* ws) {
  const int64_t total = w.planes * w.out_plane();
  const int64_t es = sizeof(T);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = i % w.out[2], oh = (i / w.out[2]) % w.out[1];
    const int64_t od = (i / (w.out[2] * w.out[1])) % w.out[0], p = i / w.out_plane();
    const char* xp = x + p * w.in_plane() * es;
    float best = -INFINITY;
    int32_t arg = -1;
    float acc = 0.0f;
    int64_t count = 0;
    for (int64_t kd = 0; kd < w.k[0]; ++kd) {
      const int64_t id = od * w.stride[0] - w.pad[0] + kd * w.dil[0];
      if (id < 0 || id >= w.in[0]) continue;
      for (int64_t kh = 0; kh < w.k[1]; ++kh) {
        const int64_t ih = oh * w.stride[1] - w.pad[1] + kh * w.dil[1];
        if (ih < 0 || ih >= w.in[1]) continue;
        for (int64_t kw = 0; kw < w.k[2]; ++kw) {
          const int64_t iw = ow * w.stride[2] - w.pad[2] + kw * w.dil[2];
          if (iw < 0 || iw >= w.in[2]) continue;
          const int64_t flat = (id * w.in[1] + ih) * w.in[2] + iw;
          const float v = load<T>(xp + flat * es);
          if (v > best || arg < 0) {
            best = v;
            arg = static_cast<int32_t>(flat);
          }
          acc += v;
          ++count;
        }
      }
    }
    float r;
    if (kind == PoolKind::max) {
      r = best;
      if (ws) ws[i] = arg;
    } else {
      const int64_t div =
          kind == PoolKind::avg_include_pad ? w.k[0] * w.k[1] * w.k[2] : (count > 0 ? count : 1);
      r = acc / static_cast<float>(div);
    }
    store<T>(y + i * es, r);
  }
}

template <typename T>
__global__ void pool_backward_kernel(Win3 w, PoolKind kind, const char* gy, const int32_t* ws,
                                     char* gx) {
  const int64_t total = w.planes * w.in_plane();
  const int64_t es = sizeof(T);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t flat = i % w.in_plane(), p = i / w.in_plane();
    const int64_t iw = flat % w.in[2], ih = (flat / w.in[2]) % w.in[1],
                  id = flat / (w.in[2] * w.in[1]);
    const char* gp = gy + p * w.out_plane() * es;
    const int32_t* wp = ws ? ws + p * w.out_plane() : nullptr;
    float acc = 0.0f;
    for (int64_t kd = 0; kd < w.k[0]; ++kd) {
      const int64_t td = id + w.pad[0] - kd * w.dil[0];
      if (td < 0 || td % w.stride[0] != 0 || td / w.stride[0] >= w.out[0]) continue;
      const int64_t od = td / w.stride[0];
      for (int64_t kh = 0; kh < w.k[1]; ++kh) {
        const int64_t th = ih + w.pad[1] - kh * w.dil[1];
        if (th < 0 || th % w.stride[1] != 0 || th / w.stride[1] >= w.out[1]) continue;
        const int64_t oh = th / w.stride[1];
        for (int64_t kw = 0; kw < w.k[2]; ++kw) {
          const int64_t tw = iw + w.pad[2] - kw * w.dil[2];
          if (tw < 0 || tw % w.stride[2] != 0 || tw / w.stride[2] >= w.out[2]) continue;
          const int64_t ow = tw / w.stride[2];
          const int64_t o = (od * w.out[1] + oh) * w.out[2] + ow;
          const float g = load<T>(gp + o * es);
          if (kind == PoolKind::max) {
            if (wp[o] == flat) acc += g;
          } else if (kind == PoolKind::avg_include_pad) {
            acc += g / static_cast<float>(w.k[0] * w.k[1] * w.k[2]);
          } else {
            const int64_t n = inside(w, 0, od) * inside(w, 1, oh) * inside(w, 2, ow);
            acc += g / static_cast<float>(n > 0 ? n : 1);
          }
        }
      }
    }
    store<T>(gx + i * es, acc);
  }
}

// PyTorch's adaptive window [start, end) of output i.
__device__ __forceinline__ int64_t win_start(int64_t i, int64_t out, int64_t in) {
  return (i * in) / out;
}
__device__ __forceinline__ int64_t win_end(int64_t i, int64_t out, int64_t in) {
  return ((i + 1) * in + out - 1) / out;
}

struct Adaptive3 {
  int64_t planes, in[3], out[3];
};

Adaptive3 adaptive3(const Shape& x, const Shape& y) {
  Adaptive3 a{};
  a.planes = x[0] * x[1];
  const int nd = static_cast<int>(x.size()) - 2;
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - nd);
    a.in[d] = s < 0 ? 1 : x[2 + s];
    a.out[d] = s < 0 ? 1 : y[2 + s];
  }
  return a;
}

template <typename T>
__global__ void adaptive_forward_kernel(Adaptive3 a, bool is_max, const char* x, char* y,
                                        int64_t* argmax) {
  const int64_t osz = a.out[0] * a.out[1] * a.out[2], isz = a.in[0] * a.in[1] * a.in[2];
  const int64_t es = sizeof(T);
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < a.planes * osz;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = o % a.out[2], oh = (o / a.out[2]) % a.out[1];
    const int64_t od = (o / (a.out[2] * a.out[1])) % a.out[0], p = o / osz;
    const char* xp = x + p * isz * es;
    const int64_t d0 = win_start(od, a.out[0], a.in[0]), d1 = win_end(od, a.out[0], a.in[0]);
    const int64_t h0 = win_start(oh, a.out[1], a.in[1]), h1 = win_end(oh, a.out[1], a.in[1]);
    const int64_t w0 = win_start(ow, a.out[2], a.in[2]), w1 = win_end(ow, a.out[2], a.in[2]);
    if (is_max) {
      float best = -INFINITY;
      int64_t bi = (d0 * a.in[1] + h0) * a.in[2] + w0;
      for (int64_t d = d0; d < d1; ++d)
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const int64_t i = (d * a.in[1] + h) * a.in[2] + w;
            const float v = load<T>(xp + i * es);
            if (v > best || isnan(v)) {
              best = v;
              bi = i;
            }
          }
      store<T>(y + o * es, best);
      argmax[o] = bi;
    } else {
      double acc = 0;
      for (int64_t d = d0; d < d1; ++d)
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w)
            acc += load<T>(xp + ((d * a.in[1] + h) * a.in[2] + w) * es);
      store<T>(y + o * es, acc / static_cast<double>((d1 - d0) * (h1 - h0) * (w1 - w0)));
    }
  }
}

// Each input element sums, in output order, what the outputs whose windows hold it send back.
template <typename T>
__global__ void adaptive_backward_kernel(Adaptive3 a, bool is_max, const char* gy,
                                         const int64_t* argmax, char* gx) {
  const int64_t osz = a.out[0] * a.out[1] * a.out[2], isz = a.in[0] * a.in[1] * a.in[2];
  const int64_t es = sizeof(T);
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.planes * isz;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t flat = e % isz, p = e / isz;
    const int64_t iw = flat % a.in[2], ih = (flat / a.in[2]) % a.in[1];
    const int64_t id = flat / (a.in[2] * a.in[1]);
    float acc = 0.0f;
    for (int64_t od = 0; od < a.out[0]; ++od) {
      const int64_t d0 = win_start(od, a.out[0], a.in[0]), d1 = win_end(od, a.out[0], a.in[0]);
      if (id < d0 || id >= d1) continue;
      for (int64_t oh = 0; oh < a.out[1]; ++oh) {
        const int64_t h0 = win_start(oh, a.out[1], a.in[1]), h1 = win_end(oh, a.out[1], a.in[1]);
        if (ih < h0 || ih >= h1) continue;
        for (int64_t ow = 0; ow < a.out[2]; ++ow) {
          const int64_t w0 = win_start(ow, a.out[2], a.in[2]), w1 = win_end(ow, a.out[2], a.in[2]);
          if (iw < w0 || iw >= w1) continue;
          const int64_t o = p * osz + (od * a.out[1] + oh) * a.out[2] + ow;
          const float g = load<T>(gy + o * es);
          if (is_max) {
            if (argmax[o] == flat) acc += g;
          } else {
            acc += g / static_cast<float>((d1 - d0) * (h1 - h0) * (w1 - w0));
          }
        }
      }
    }
    store<T>(gx + e * es, acc);
  }
}

}  // namespace

Tensor pool_forward(PoolKind kind, const Tensor& out, const Tensor& x, const Shape& kernel,
                    const Shape& stride, const Shape& dilation, const Shape& pad_l,
                    const Shape& /*pad_r*/, bool training) {
  const Win3 w = win3(x.shape(), out.shape(), kernel, stride, dilation, pad_l);
  OAR_CHECK(w.in_plane() <= INT32_MAX, "max_pool: input plane of ", w.in_plane(),
            " elements is too large for the CUDA kernel");
  const Device dev = x.device();
  Tensor ws = training && kind == PoolKind::max ? empty(out.shape(), DType::i32, dev) : Tensor();
  const int64_t total = out.numel();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "pool", {
    pool_forward_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
        w, kind, static_cast<const char*>(x.raw_data()), static_cast<char*>(out.raw_data()),
        ws.defined() ? static_cast<int32_t*>(ws.raw_data()) : nullptr);
  });
  OAR_CUDA_CHECK(cudaGetLastError());
  return ws;
}

void pool_backward(PoolKind kind, const Tensor& gx, const Tensor& gy, const Tensor& workspace,
                   const Shape& kernel, const Shape& stride, const Shape& dilation,
                   const Shape& pad_l, const Shape& /*pad_r*/) {
  OAR_CHECK(kind != PoolKind::max || workspace.defined(),
            "max_pool backward: no workspace (the forward ran without autograd)");
  const Win3 w = win3(gx.shape(), gy.shape(), kernel, stride, dilation, pad_l);
  const Device dev = gx.device();
  const int64_t total = gx.numel();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(gx.dtype(), "pool", {
    pool_backward_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
        w, kind, static_cast<const char*>(gy.raw_data()),
        kind == PoolKind::max ? static_cast<const int32_t*>(workspace.raw_data()) : nullptr,
        static_cast<char*>(gx.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cuda
}  // namespace oar

namespace oar::cuda {

void adaptive_pool_forward(bool is_max, const Tensor& out, const Tensor& argmax, const Tensor& x) {
  const Adaptive3 a = adaptive3(x.shape(), out.shape());
  const Device dev = x.device();
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "adaptive_pool", {
    adaptive_forward_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
        a, is_max, static_cast<const char*>(x.raw_data()), static_cast<char*>(out.raw_data()),
        is_max ? static_cast<int64_t*>(argmax.raw_data()) : nullptr);
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void adaptive_pool_backward(bool is_max, const Tensor& gx, const Tensor& gy, const Tensor& argmax) {
  const Adaptive3 a = adaptive3(gx.shape(), gy.shape());
  const Device dev = gx.device();
  const int64_t total = gx.numel();
  if (total == 0) return;
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(gx.dtype(), "adaptive_pool", {
    adaptive_backward_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
        a, is_max, static_cast<const char*>(gy.raw_data()),
        is_max ? static_cast<const int64_t*>(argmax.raw_data()) : nullptr,
        static_cast<char*>(gx.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace oar::cuda
