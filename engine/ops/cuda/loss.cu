// CUDA cross entropy (fused log-softmax + NLL with label smoothing) and NLL, forward and
// backward (the cpu/loss.cpp contract: same formulas, double accumulation, totals summed in
// double). A thread per position; totals are summed by one block in a fixed order.
#include "engine/ops/cuda/loops.cuh"

namespace oar {
namespace cpu {
double class_target_weight(const Tensor& target, const Tensor& weight, int64_t classes,
                           int64_t ignore_index, const char* op);
}  // namespace cpu

namespace cuda {

namespace {

struct Layout3 {
  int64_t n, c, s;
};

Layout3 layout_of(const Tensor& t) {
  const int64_t n = t.dim() == 1 ? 1 : t.size(0);
  const int64_t c = t.dim() == 1 ? t.size(0) : t.size(1);
  const int64_t s = (n * c != 0) ? t.numel() / (n * c) : 1;
  return {n, c, s};
}

__device__ __forceinline__ double wt(const float* w, int64_t k) {
  return w ? static_cast<double>(w[k]) : 1.0;
}

template <typename T>
__global__ void cross_entropy_kernel(Layout3 l, const char* x, const int64_t* target,
                                     const float* w, double wsum, int64_t ignore_index, double eps,
                                     double nll_scale, double smooth_scale, float* lse_out,
                                     char* out, double* partial) {
  const int64_t positions = l.n * l.s;
  const int64_t es = sizeof(T);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ni = p / l.s, si = p % l.s;
    const char* row = x + (ni * l.c * l.s + si) * es;
    const int64_t stride = l.s * es;
    double m = -INFINITY;
    for (int64_t k = 0; k < l.c; ++k) m = fmax(m, static_cast<double>(load<T>(row + k * stride)));
    double lse = m;
    if (!isinf(m)) {
      double acc = 0;
      for (int64_t k = 0; k < l.c; ++k)
        acc += exp(static_cast<double>(load<T>(row + k * stride)) - m);
      lse = m + ::log(acc);
    }
    lse_out[p] = static_cast<float>(lse);
    const int64_t t = target[p];
    double v = 0;
    if (t != ignore_index) {
      v = (1.0 - eps) * nll_scale * wt(w, t) * (lse - load<T>(row + t * stride));
      if (eps > 0) {
        double wx = 0;
        for (int64_t k = 0; k < l.c; ++k) wx += wt(w, k) * load<T>(row + k * stride);
        v += eps / static_cast<double>(l.c) * smooth_scale * (lse * wsum - wx);
      }
    }
    if (partial)
      partial[p] = v;
    else
      store<T>(out + p * es, v);
  }
}

template <typename T>
__global__ void cross_entropy_backward_kernel(Layout3 l, const char* x, const int64_t* target,
                                              const float* w, double wsum, int64_t ignore_index,
                                              double eps, double nll_scale, double smooth_scale,
                                              const float* lse, const char* g, bool total,
                                              char* gx) {
  const int64_t positions = l.n * l.s;
  const int64_t es = sizeof(T);
  const double smooth = eps / static_cast<double>(l.c) * smooth_scale;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ni = p / l.s, si = p % l.s;
    const int64_t off = (ni * l.c * l.s + si) * es, stride = l.s * es;
    const int64_t t = target[p];
    if (t == ignore_index) {
      for (int64_t k = 0; k < l.c; ++k) store<T>(gx + off + k * stride, 0.0);
      continue;
    }
    const double gv = load<T>(g + (total ? 0 : p) * es);
    const double nll = (1.0 - eps) * nll_scale * wt(w, t);
    for (int64_t k = 0; k < l.c; ++k) {
      const double prob = exp(static_cast<double>(load<T>(x + off + k * stride)) - lse[p]);
      double d = nll * (prob - (k == t ? 1.0 : 0.0));
      if (eps > 0) d += smooth * (wsum * prob - wt(w, k));
      store<T>(gx + off + k * stride, gv * d);
    }
  }
}

template <typename T>
__global__ void nll_kernel(Layout3 l, const char* x, const int64_t* target, const float* w,
                           int64_t ignore_index, double scale, char* out, double* partial) {
  const int64_t positions = l.n * l.s;
  const int64_t es = sizeof(T);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = target[p];
    double v = 0;
    if (t != ignore_index) {
      const int64_t ni = p / l.s, si = p % l.s;
      v = -scale * wt(w, t) * load<T>(x + ((ni * l.c + t) * l.s + si) * es);
    }
    if (partial)
      partial[p] = v;
    else
      store<T>(out + p * es, v);
  }
}

template <typename T>
__global__ void nll_backward_kernel(Layout3 l, const int64_t* target, const float* w,
                                    int64_t ignore_index, double scale, const char* g, bool total,
                                    char* gx) {
  const int64_t positions = l.n * l.s;
  const int64_t es = sizeof(T);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = target[p];
    if (t == ignore_index) continue;
    const int64_t ni = p / l.s, si = p % l.s;
    const double gv = load<T>(g + (total ? 0 : p) * es);
    store<T>(gx + ((ni * l.c + t) * l.s + si) * es, -scale * wt(w, t) * gv);
  }
}

// out (one T) = the sum of n doubles, by one block in a fixed order.
template <typename T>
__global__ void total_kernel(const double* v, int64_t n, char* out) {
  __shared__ double part[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += v[i];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) store<T>(out, part[0]);
}

const float* weight_ptr(const Tensor& w) {
  return w.defined() ? static_cast<const float*>(w.raw_data()) : nullptr;
}

// Per-position doubles for a total (8-byte elements of an i64 tensor).
Tensor partial_buffer(int64_t positions, Device dev) {
  return empty({std::max<int64_t>(positions, 1)}, DType::i64, dev);
}

double weight_sum(const Tensor& w, int64_t c) {
  if (!w.defined()) return static_cast<double>(c);
  const std::vector<float> v = w.to(Device::cpu()).to_vector<float>();
  double t = 0;
  for (float x : v) t += x;
  return t;
}

}  // namespace

double class_target_weight(const Tensor& target, const Tensor& weight, int64_t classes,
                           int64_t ignore_index, const char* op) {
  // The caller needs the number on the host (a scale for the kernels): one small copy back.
  return cpu::class_target_weight(target.to(Device::cpu()),
                                  weight.defined() ? weight.to(Device::cpu()) : weight, classes,
                                  ignore_index, op);
}

void cross_entropy(const Tensor& out, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   const Tensor& weight, int64_t ignore_index, double eps, double nll_scale,
                   double smooth_scale, bool total) {
  const Layout3 l = layout_of(logits);
  const int64_t positions = l.n * l.s;
  const Device dev = logits.device();
  const double wsum = eps > 0 ? weight_sum(weight, l.c) : 0.0;
  Tensor partial = total ? partial_buffer(positions, dev) : Tensor();
  double* pp = total ? static_cast<double*>(partial.raw_data()) : nullptr;
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(logits.dtype(), "cross_entropy", {
    if (positions > 0)
      cross_entropy_kernel<T><<<grid_for(positions), kThreads, 0, stream_of(dev)>>>(
          l, static_cast<const char*>(logits.raw_data()),
          static_cast<const int64_t*>(target.raw_data()), weight_ptr(weight), wsum, ignore_index,
          eps, nll_scale, smooth_scale, static_cast<float*>(lse.raw_data()),
          static_cast<char*>(out.raw_data()), pp);
    if (total)
      total_kernel<T>
          <<<1, kThreads, 0, stream_of(dev)>>>(pp, positions, static_cast<char*>(out.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void cross_entropy_backward(const Tensor& gx, const Tensor& g, const Tensor& lse,
                            const Tensor& logits, const Tensor& target, const Tensor& weight,
                            int64_t ignore_index, double eps, double nll_scale, double smooth_scale,
                            bool total) {
  const Layout3 l = layout_of(logits);
  const int64_t positions = l.n * l.s;
  if (positions == 0) return;
  const Device dev = logits.device();
  const double wsum = eps > 0 ? weight_sum(weight, l.c) : 0.0;
  const Tensor gt = g.to(logits.dtype()).contiguous();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(logits.dtype(), "cross_entropy", {
    cross_entropy_backward_kernel<T><<<grid_for(positions), kThreads, 0, stream_of(dev)>>>(
        l, static_cast<const char*>(logits.raw_data()),
        static_cast<const int64_t*>(target.raw_data()), weight_ptr(weight), wsum, ignore_index, eps,
        nll_scale, smooth_scale, static_cast<const float*>(lse.raw_data()),
        static_cast<const char*>(gt.raw_data()), total, static_cast<char*>(gx.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void nll_loss(const Tensor& out, const Tensor& log_probs, const Tensor& target,
              const Tensor& weight, int64_t ignore_index, double scale, bool total) {
  const Layout3 l = layout_of(log_probs);
  const int64_t positions = l.n * l.s;
  const Device dev = log_probs.device();
  Tensor partial = total ? partial_buffer(positions, dev) : Tensor();
  double* pp = total ? static_cast<double*>(partial.raw_data()) : nullptr;
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(log_probs.dtype(), "nll_loss", {
    if (positions > 0)
      nll_kernel<T><<<grid_for(positions), kThreads, 0, stream_of(dev)>>>(
          l, static_cast<const char*>(log_probs.raw_data()),
          static_cast<const int64_t*>(target.raw_data()), weight_ptr(weight), ignore_index, scale,
          static_cast<char*>(out.raw_data()), pp);
    if (total)
      total_kernel<T>
          <<<1, kThreads, 0, stream_of(dev)>>>(pp, positions, static_cast<char*>(out.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

void nll_loss_backward(const Tensor& gx, const Tensor& g, const Tensor& target,
                       const Tensor& weight, int64_t ignore_index, double scale, bool total) {
  const Layout3 l = layout_of(gx);
  const int64_t positions = l.n * l.s;
  Tensor z = gx;
  z.zero_();
  if (positions == 0) return;
  const Device dev = gx.device();
  const Tensor gt = g.to(gx.dtype()).contiguous();
  DeviceGuard guard(dev.index);
  OAR_CUDA_FLOAT_SWITCH(gx.dtype(), "nll_loss", {
    nll_backward_kernel<T><<<grid_for(positions), kThreads, 0, stream_of(dev)>>>(
        l, static_cast<const int64_t*>(target.raw_data()), weight_ptr(weight), ignore_index, scale,
        static_cast<const char*>(gt.raw_data()), total, static_cast<char*>(gx.raw_data()));
  });
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cuda
}  // namespace oar

// ---- smooth L1 (the cpu::smooth_l1 contract: f32 math on compute types)

namespace oar::cuda {

namespace {

struct SmoothL1 {
  float b;
  __device__ __forceinline__ float operator()(float x, float y) const {
    const float d = fabsf(x - y);
    return d < b ? 0.5f * d * d / b : d - 0.5f * b;
  }
};

template <typename T>
struct SmoothL1Backward {
  float b;
  __device__ __forceinline__ void operator()(Ptrs<4> p) const {
    const float gv = load<T>(p.p[1]), d = load<T>(p.p[2]) - load<T>(p.p[3]);
    float r;
    if (fabsf(d) < b)
      r = gv * d / b;
    else
      r = d > 0.f ? gv : (d < 0.f ? -gv : 0.f);
    store<T>(p.p[0], r);
  }
};

}  // namespace

void smooth_l1(const Tensor& out, const Tensor& input, const Tensor& target, double beta) {
  const float b = static_cast<float>(beta);
  OAR_CUDA_FLOAT_SWITCH(input.dtype(), "smooth_l1_loss",
                        map2<T, T, T>(out, input, target, SmoothL1{b}));
}

void smooth_l1_backward(const Tensor& out, const Tensor& g, const Tensor& input,
                        const Tensor& target, double beta) {
  const float b = static_cast<float>(beta);
  const Tensor gt = g.to(input.dtype());
  const Shape& s = out.shape();
  OAR_CUDA_FLOAT_SWITCH(input.dtype(), "smooth_l1_loss", {
    launch<4>(out.device(), s,
              {static_cast<char*>(out.raw_data()), static_cast<char*>(gt.raw_data()),
               static_cast<char*>(input.raw_data()), static_cast<char*>(target.raw_data())},
              {byte_strides(out), broadcast_byte_strides(gt, s), broadcast_byte_strides(input, s),
               broadcast_byte_strides(target, s)},
              SmoothL1Backward<T>{b});
  });
}

}  // namespace oar::cuda
