// CUDA convolution (the cpu::conv_* contract): cuDNN first (cudnn_conv.cpp), and where cuDNN
// does not take a configuration (asymmetric padding, a build without cuDNN, OAR_CUDNN=0)
// im2col + cuBLAS: per image, the patches of all channels become a matrix [C * K, L] (K kernel
// taps, L output positions) and each group is one product with its weights, batched over groups.
// Backward data multiplies by the weights' transpose and folds the patches back with a gather (no
// atomics: deterministic); backward weights accumulates one product per image in f32. Spatial dims
// are padded to three.
#include "engine/ops/conv_backward.h"
#include "engine/ops/cuda/blas.h"
#include "engine/ops/cuda/cudnn_conv.h"
#include "engine/ops/cuda/loops.cuh"
#include "engine/ops/reduce.h"

namespace oar::cuda {

namespace {

struct Geo3 {
  int64_t c, o, groups;
  int64_t in[3], k[3], out[3], stride[3], pad[3], dil[3];
  __host__ __device__ int64_t taps() const { return k[0] * k[1] * k[2]; }
  __host__ __device__ int64_t positions() const { return out[0] * out[1] * out[2]; }
  __host__ __device__ int64_t plane() const { return in[0] * in[1] * in[2]; }
};

Geo3 geo3(const Shape& x, const Shape& w, const Shape& y, const ConvGeometry& g) {
  Geo3 r{};
  r.c = x[1];
  r.o = w[0];
  r.groups = g.groups;
  const int nd = static_cast<int>(x.size()) - 2;
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - nd);  // spatial dim of the tensors, < 0 for padding dims
    r.in[d] = s < 0 ? 1 : x[2 + s];
    r.k[d] = s < 0 ? 1 : w[2 + s];
    r.out[d] = s < 0 ? 1 : y[2 + s];
    r.stride[d] = s < 0 ? 1 : g.stride[s];
    r.pad[d] = s < 0 ? 0 : g.pad_begin[s];
    r.dil[d] = s < 0 ? 1 : g.dilation[s];
  }
  return r;
}

// col [C, K, L] (dtype T) of one image x [C, *in] (contiguous).
template <typename T>
__global__ void im2col_kernel(Geo3 g, const char* x, char* col) {
  const int64_t taps = g.taps(), l_n = g.positions(), total = g.c * taps * l_n;
  const int64_t es = sizeof(T);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t l = i % l_n, tap = (i / l_n) % taps, c = i / (l_n * taps);
    const int64_t ow = l % g.out[2], oh = (l / g.out[2]) % g.out[1], od = l / (g.out[2] * g.out[1]);
    const int64_t kw = tap % g.k[2], kh = (tap / g.k[2]) % g.k[1], kd = tap / (g.k[2] * g.k[1]);
    const int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dil[0];
    const int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dil[1];
    const int64_t iw = ow * g.stride[2] - g.pad[2] + kw * g.dil[2];
    float v = 0.0f;
    if (id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2])
      v = load<T>(x + (((c * g.in[0] + id) * g.in[1] + ih) * g.in[2] + iw) * es);
    store<T>(col + i * es, v);
  }
}

// gx [C, *in] (dtype T) of one image = the sum of the col [C, K, L] (f32) entries that read it.
template <typename T>
__global__ void col2im_kernel(Geo3 g, const float* col, char* gx) {
  const int64_t taps = g.taps(), l_n = g.positions(), total = g.c * g.plane();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = i % g.in[2], ih = (i / g.in[2]) % g.in[1];
    const int64_t id = (i / (g.in[2] * g.in[1])) % g.in[0], c = i / g.plane();
    float acc = 0.0f;
    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
      const int64_t td = id + g.pad[0] - kd * g.dil[0];
      if (td < 0 || td % g.stride[0] != 0 || td / g.stride[0] >= g.out[0]) continue;
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        const int64_t th = ih + g.pad[1] - kh * g.dil[1];
        if (th < 0 || th % g.stride[1] != 0 || th / g.stride[1] >= g.out[1]) continue;
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          const int64_t tw = iw + g.pad[2] - kw * g.dil[2];
          if (tw < 0 || tw % g.stride[2] != 0 || tw / g.stride[2] >= g.out[2]) continue;
          const int64_t l =
              ((td / g.stride[0]) * g.out[1] + th / g.stride[1]) * g.out[2] + tw / g.stride[2];
          const int64_t tap = (kd * g.k[1] + kh) * g.k[2] + kw;
          acc += col[(c * taps + tap) * l_n + l];
        }
      }
    }
    store<T>(gx + i * static_cast<int64_t>(sizeof(T)), acc);
  }
}

template <typename T>
void im2col(Device dev, const Geo3& g, const char* x, char* col) {
  const int64_t total = g.c * g.taps() * g.positions();
  im2col_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(g, x, col);
  OAR_CUDA_CHECK(cudaGetLastError());
}

void im2col_any(DType dt, Device dev, const Geo3& g, const char* x, char* col) {
  OAR_CUDA_FLOAT_SWITCH(dt, "conv", im2col<T>(dev, g, x, col));
}

}  // namespace

void im2col_backward_weights(const Tensor& gw, const Tensor& x, const Tensor& gy,
                             const ConvGeometry& geo);

void conv_forward(const Tensor& out, const Tensor& x_in, const Tensor& w, const Tensor& bias,
                  const ConvGeometry& geo, bool /*cache_weight*/) {
  const Tensor x = x_in.contiguous();
  if (cudnn_conv_forward(out, x, w, bias, geo)) return;
  const Geo3 g = geo3(x.shape(), w.shape(), out.shape(), geo);
  const Device dev = x.device();
  const DType dt = x.dtype();
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  const int64_t n = x.size(0), cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t ck = cg * g.taps(), l_n = g.positions();
  float beta = 0.0f;
  if (bias.defined()) {
    Shape bs(out.dim(), 1);
    bs[1] = g.o;
    Tensor o = out;
    o.copy_(bias.view(bs).expand(out.shape()));
    beta = 1.0f;
  }
  const bool one_by_one = g.taps() == 1 && g.stride[0] * g.stride[1] * g.stride[2] == 1 &&
                          g.pad[0] + g.pad[1] + g.pad[2] == 0;
  Tensor col = one_by_one ? Tensor() : empty({g.c * g.taps() * l_n}, dt, dev);
  DeviceGuard guard(dev.index);
  for (int64_t i = 0; i < n; ++i) {
    const char* xi = static_cast<const char*>(x.raw_data()) + i * g.c * g.plane() * es;
    const char* a = xi;
    if (!one_by_one) {
      im2col_any(dt, dev, g, xi, static_cast<char*>(col.raw_data()));
      a = static_cast<const char*>(col.raw_data());
    }
    // Column-major out_g^T [L, Og] = col_g^T [L, CgK] x w_g^T [CgK, Og].
    gemm(dev, dt, dt, false, false, l_n, og, ck, 1.0f, a, l_n, ck * l_n, w.raw_data(), ck, og * ck,
         beta, static_cast<char*>(out.raw_data()) + i * g.o * l_n * es, l_n, og * l_n, g.groups);
  }
}

void conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w,
                        const ConvGeometry& geo, bool /*cache_weight*/) {
  if (cudnn_conv_backward_data(gx, gy, w, geo)) return;
  const Geo3 g = geo3(gx.shape(), w.shape(), gy.shape(), geo);
  const Device dev = gy.device();
  const DType dt = gy.dtype();
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  const int64_t n = gx.size(0), cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t ck = cg * g.taps(), l_n = g.positions();
  Tensor col = empty({g.c * g.taps() * l_n}, DType::f32, dev);
  DeviceGuard guard(dev.index);
  for (int64_t i = 0; i < n; ++i) {
    // Column-major col_g^T [L, CgK] = gy_g^T [L, Og] x w_g [Og, CgK].
    gemm(dev, dt, DType::f32, false, true, l_n, ck, og, 1.0f,
         static_cast<const char*>(gy.raw_data()) + i * g.o * l_n * es, l_n, og * l_n, w.raw_data(),
         ck, og * ck, 0.0f, col.raw_data(), l_n, ck * l_n, g.groups);
    char* gxi = static_cast<char*>(gx.raw_data()) + i * g.c * g.plane() * es;
    const int64_t total = g.c * g.plane();
    OAR_CUDA_FLOAT_SWITCH(dt, "conv", {
      col2im_kernel<T><<<grid_for(total), kThreads, 0, stream_of(dev)>>>(
          g, static_cast<const float*>(col.raw_data()), gxi);
    });
    OAR_CUDA_CHECK(cudaGetLastError());
  }
}

void conv_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x_in, const Tensor& gy,
                           const ConvGeometry& geo) {
  const Tensor x = x_in.contiguous();
  if (!cudnn_conv_backward_filter(gw, x, gy, geo)) im2col_backward_weights(gw, x, gy, geo);
  if (gb.defined()) {
    Shape dims{0};
    for (int64_t d = 2; d < gy.dim(); ++d) dims.push_back(d);
    Tensor b = gb;
    b.copy_(::oar::sum(gy.to(DType::f32), dims));
  }
}

void im2col_backward_weights(const Tensor& gw, const Tensor& x, const Tensor& gy,
                             const ConvGeometry& geo) {
  const Geo3 g = geo3(x.shape(), gw.shape(), gy.shape(), geo);
  const Device dev = x.device();
  const DType dt = x.dtype();
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  const int64_t n = x.size(0), cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t ck = cg * g.taps(), l_n = g.positions();
  Tensor acc = dt == DType::f32 ? gw : empty(gw.shape(), DType::f32, dev);
  Tensor col = empty({g.c * g.taps() * l_n}, dt, dev);
  {
    DeviceGuard guard(dev.index);
    for (int64_t i = 0; i < n; ++i) {
      const char* xi = static_cast<const char*>(x.raw_data()) + i * g.c * g.plane() * es;
      im2col_any(dt, dev, g, xi, static_cast<char*>(col.raw_data()));
      // Column-major gw_g^T [CgK, Og] += col_g [CgK, L] x gy_g^T [L, Og].
      gemm(dev, dt, DType::f32, true, false, ck, og, l_n, 1.0f, col.raw_data(), l_n, ck * l_n,
           static_cast<const char*>(gy.raw_data()) + i * g.o * l_n * es, l_n, og * l_n,
           i == 0 ? 0.0f : 1.0f, acc.raw_data(), ck, og * ck, g.groups);
    }
  }
  if (acc.raw_data() != gw.raw_data()) {
    Tensor w = gw;
    w.copy_(acc);
  }
}

}  // namespace oar::cuda
