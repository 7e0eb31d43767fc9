// Convolution forward, backward data and backward filter, and spatial batch normalisation
// (forward training / inference, backward), on cuDNN's legacy API. Each convolution
// (direction, device, dtype, shapes, geometry, math mode) picks its algorithm once, from
// cudnnGet*Algorithm_v7's ranked list (the first that cuDNN can run with its workspace, a
// deterministic one preferred as the engine's other GPU kernels are deterministic;
// OAR_CUDNN_DETERMINISTIC=0 takes the heuristics' order as is), and
// caches it with its workspace size; a configuration cuDNN rejects is cached as rejected so the
// im2col path takes it without asking again. Workspaces come from the caching allocator; one
// cudnnHandle per thread and device, bound to the device's current stream at every call.
// f32 uses TF32 tensor cores only when allow_tf32() (CUDNN_DEFAULT_MATH, else CUDNN_FMA_MATH);
// bf16 / f16 compute in f32 (CUDNN_TENSOR_OP_MATH). 1-D convolutions run as 2-D with height 1.
// Batch normalisation takes contiguous f32 x [N, C, *] as NCHW [N, C, prod(*), 1] in
// CUDNN_BATCHNORM_SPATIAL mode, without running statistics (the op updates its own); training
// saves the batch mean and inverse standard deviation 1/sqrt(var + eps), which backward reuses.
#include "engine/ops/cuda/cudnn_conv.h"

#ifdef OAR_WITH_CUDNN
#include <cudnn.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "engine/core/cuda/check.h"
#include "engine/core/cuda/runtime.h"
#endif

namespace oar::cuda {

#ifdef OAR_WITH_CUDNN

namespace {

#define OAR_CUDNN_TRY(expr)                                        \
  do {                                                             \
    if ((expr) != CUDNN_STATUS_SUCCESS) return false; /* reject */ \
  } while (0)

#define OAR_CUDNN_CHECK(expr)                                                                    \
  do {                                                                                           \
    const cudnnStatus_t oar_st_ = (expr);                                                        \
    if (oar_st_ != CUDNN_STATUS_SUCCESS)                                                         \
      OAR_FAIL("cuDNN error in ", #expr, ": ", cudnnGetErrorString(oar_st_), " (", int(oar_st_), \
               ")");                                                                             \
  } while (0)

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{[] {
    const char* v = std::getenv("OAR_CUDNN");
    return !(v && std::strcmp(v, "0") == 0);
  }()};
  return flag;
}

// Deterministic algorithms first unless OAR_CUDNN_DETERMINISTIC=0 (then heuristics order only).
bool prefer_deterministic() {
  static const bool on = [] {
    const char* v = std::getenv("OAR_CUDNN_DETERMINISTIC");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

constexpr int kMaxDevices = 16;

// One handle per thread and device, destroyed with the thread.
struct Handles {
  std::array<cudnnHandle_t, kMaxDevices> h{};
  ~Handles() {
    for (cudnnHandle_t x : h)
      if (x) cudnnDestroy(x);
  }
};

cudnnHandle_t handle(Device dev) {
  OAR_CHECK(dev.index >= 0 && dev.index < kMaxDevices, "cuDNN: device index ", dev.index);
  thread_local Handles handles;
  cudnnHandle_t& h = handles.h[dev.index];
  if (!h) OAR_CUDNN_CHECK(cudnnCreate(&h));
  OAR_CUDNN_CHECK(cudnnSetStream(h, stream_of(dev)));
  return h;
}

enum class Dir { forward, backward_data, backward_filter };

struct Key {
  int dir, device, dtype, math;
  std::vector<int> x, w, y, pad, stride, dil;
  int groups;
  bool operator<(const Key& o) const {
    return std::tie(dir, device, dtype, math, x, w, y, pad, stride, dil, groups) <
           std::tie(o.dir, o.device, o.dtype, o.math, o.x, o.w, o.y, o.pad, o.stride, o.dil,
                    o.groups);
  }
};

struct Choice {
  bool ok = false;  // false: cuDNN rejects this configuration
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

std::mutex cache_mutex;
std::map<Key, Choice>& cache() {
  static std::map<Key, Choice> c;
  return c;
}

// RAII descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { OAR_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { OAR_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { OAR_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

bool data_type(DType t, cudnnDataType_t* out) {
  switch (t) {
    case DType::f32:
      *out = CUDNN_DATA_FLOAT;
      return true;
    case DType::bf16:
      *out = CUDNN_DATA_BFLOAT16;
      return true;
    case DType::f16:
      *out = CUDNN_DATA_HALF;
      return true;
    default:
      return false;
  }
}

// The problem in cuDNN's terms: dims of x, w, y with 1-D lifted to 2-D, and the geometry.
struct Problem {
  std::vector<int> x, w, y, pad, stride, dil;
  int groups = 1;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool fma_only = false;  // f32 without TF32: tensor-op algorithms are not allowed
};

bool fits_int(int64_t v) {
  return v >= 0 && v <= INT32_MAX;
}

bool make_problem(const Shape& xs, const Shape& ws, const Shape& ys, const ConvGeometry& g,
                  DType dt, Problem* p) {
  if (!data_type(dt, &p->type)) return false;
  const size_t nd = xs.size() - 2;
  if (nd < 1 || nd > 3) return false;
  for (size_t d = 0; d < nd; ++d)
    if (g.pad_begin[d] != g.pad_end[d]) return false;  // cuDNN pads both sides alike
  const bool lift = nd == 1;
  auto dims = [&](const Shape& s, std::vector<int>* out) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (!fits_int(s[i])) return false;
      if (lift && i == 2) out->push_back(1);
      out->push_back(static_cast<int>(s[i]));
    }
    return true;
  };
  if (!dims(xs, &p->x) || !dims(ws, &p->w) || !dims(ys, &p->y)) return false;
  if (lift) {
    p->pad.push_back(0);
    p->stride.push_back(1);
    p->dil.push_back(1);
  }
  for (size_t d = 0; d < nd; ++d) {
    if (!fits_int(g.pad_begin[d]) || !fits_int(g.stride[d]) || !fits_int(g.dilation[d]))
      return false;
    p->pad.push_back(static_cast<int>(g.pad_begin[d]));
    p->stride.push_back(static_cast<int>(g.stride[d]));
    p->dil.push_back(static_cast<int>(g.dilation[d]));
  }
  if (!fits_int(g.groups)) return false;
  p->groups = static_cast<int>(g.groups);
  if (dt == DType::f32) {
    p->math = allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    p->fma_only = !allow_tf32();
  } else {
    p->math = CUDNN_TENSOR_OP_MATH;
  }
  return true;
}

std::vector<int> packed_strides(const std::vector<int>& dims) {
  std::vector<int> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

bool set_tensor(const TensorDesc& t, cudnnDataType_t type, const std::vector<int>& dims) {
  const std::vector<int> st = packed_strides(dims);
  return cudnnSetTensorNdDescriptor(t.d, type, static_cast<int>(dims.size()), dims.data(),
                                    st.data()) == CUDNN_STATUS_SUCCESS;
}

struct Descs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
};

bool set_descs(const Problem& p, Descs* d) {
  if (!set_tensor(d->x, p.type, p.x) || !set_tensor(d->y, p.type, p.y)) return false;
  OAR_CUDNN_TRY(cudnnSetFilterNdDescriptor(d->w.d, p.type, CUDNN_TENSOR_NCHW,
                                           static_cast<int>(p.w.size()), p.w.data()));
  // Products accumulate in f32 for every data type.
  OAR_CUDNN_TRY(cudnnSetConvolutionNdDescriptor(d->conv.d, static_cast<int>(p.pad.size()),
                                                p.pad.data(), p.stride.data(), p.dil.data(),
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  OAR_CUDNN_TRY(cudnnSetConvolutionGroupCount(d->conv.d, p.groups));
  OAR_CUDNN_TRY(cudnnSetConvolutionMathType(d->conv.d, p.math));
  // cuDNN's own output shape must be ours.
  std::vector<int> y(p.y.size());
  OAR_CUDNN_TRY(cudnnGetConvolutionNdForwardOutputDim(d->conv.d, d->x.d, d->w.d,
                                                      static_cast<int>(y.size()), y.data()));
  return y == p.y;
}

bool tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The first usable entry of a ranked perf list, deterministic ones first.
template <typename Perf>
Choice pick(const Perf* perf, int n, bool fma_only) {
  Choice c;
  for (int pass = 0; pass < 2 && !c.ok; ++pass)
    for (int i = 0; i < n; ++i) {
      const Perf& r = perf[i];
      if (r.status != CUDNN_STATUS_SUCCESS) continue;
      if (fma_only && tensor_op(r.mathType)) continue;
      if (pass == 0 && prefer_deterministic() && r.determinism != CUDNN_DETERMINISTIC) continue;
      c.ok = true;
      c.algo = static_cast<int>(r.algo);
      c.math = fma_only ? CUDNN_FMA_MATH : r.mathType;
      c.workspace = r.memory;
      break;
    }
  return c;
}

Choice choose(Dir dir, cudnnHandle_t h, const Problem& p, const Descs& d) {
  constexpr int kMaxAlgos = 16;
  int n = 0;
  Choice c;
  switch (dir) {
    case Dir::forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
      if (cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.d, d.w.d, d.conv.d, d.y.d, kMaxAlgos, &n,
                                                 perf) != CUDNN_STATUS_SUCCESS)
        return c;
      c = pick(perf, n, p.fma_only);
      if (c.ok &&
          cudnnGetConvolutionForwardWorkspaceSize(h, d.x.d, d.w.d, d.conv.d, d.y.d,
                                                  static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                                  &c.workspace) != CUDNN_STATUS_SUCCESS)
        c.ok = false;
      break;
    }
    case Dir::backward_data: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
      if (cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.d, d.y.d, d.conv.d, d.x.d, kMaxAlgos,
                                                      &n, perf) != CUDNN_STATUS_SUCCESS)
        return c;
      c = pick(perf, n, p.fma_only);
      if (c.ok &&
          cudnnGetConvolutionBackwardDataWorkspaceSize(
              h, d.w.d, d.y.d, d.conv.d, d.x.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo),
              &c.workspace) != CUDNN_STATUS_SUCCESS)
        c.ok = false;
      break;
    }
    case Dir::backward_filter: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
      if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.d, d.y.d, d.conv.d, d.w.d, kMaxAlgos,
                                                        &n, perf) != CUDNN_STATUS_SUCCESS)
        return c;
      c = pick(perf, n, p.fma_only);
      if (c.ok && cudnnGetConvolutionBackwardFilterWorkspaceSize(
                      h, d.x.d, d.y.d, d.conv.d, d.w.d,
                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                      &c.workspace) != CUDNN_STATUS_SUCCESS)
        c.ok = false;
      break;
    }
  }
  return c;
}

// Runs one direction: x, w, y are the three tensors in cuDNN's roles (the output among them is
// written with y = alpha * conv + beta * y).
bool run(Dir dir, Device dev, DType dt, const Shape& xs, const Shape& ws, const Shape& ys,
         const ConvGeometry& g, const void* x, const void* w, const void* y, float beta) {
  if (!enabled_flag().load(std::memory_order_relaxed)) return false;
  Problem p;
  if (!make_problem(xs, ws, ys, g, dt, &p)) return false;
  DeviceGuard guard(dev.index);
  Descs d;
  if (!set_descs(p, &d)) return false;
  cudnnHandle_t h = handle(dev);
  const Key key{static_cast<int>(dir),
                dev.index,
                static_cast<int>(dt),
                static_cast<int>(p.math),
                p.x,
                p.w,
                p.y,
                p.pad,
                p.stride,
                p.dil,
                p.groups};
  Choice c;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache().find(key);
    if (it != cache().end()) {
      c = it->second;
      known = true;
    }
  }
  if (!known) {
    c = choose(dir, h, p, d);
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache().emplace(key, c);
  }
  if (!c.ok) return false;
  if (cudnnSetConvolutionMathType(d.conv.d, c.math) != CUDNN_STATUS_SUCCESS) return false;
  Tensor ws_buf;
  void* ws_ptr = nullptr;
  if (c.workspace > 0) {
    ws_buf = empty({static_cast<int64_t>(c.workspace)}, DType::u8, dev);
    ws_ptr = ws_buf.raw_data();
  }
  const float alpha = 1.0f;
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  switch (dir) {
    case Dir::forward:
      st = cudnnConvolutionForward(h, &alpha, d.x.d, x, d.w.d, w, d.conv.d,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws_ptr,
                                   c.workspace, &beta, d.y.d, const_cast<void*>(y));
      break;
    case Dir::backward_data:
      st = cudnnConvolutionBackwardData(h, &alpha, d.w.d, w, d.y.d, y, d.conv.d,
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws_ptr,
                                        c.workspace, &beta, d.x.d, const_cast<void*>(x));
      break;
    case Dir::backward_filter:
      st = cudnnConvolutionBackwardFilter(h, &alpha, d.x.d, x, d.y.d, y, d.conv.d,
                                          static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                                          ws_ptr, c.workspace, &beta, d.w.d, const_cast<void*>(w));
      break;
  }
  if (st == CUDNN_STATUS_NOT_SUPPORTED || st == CUDNN_STATUS_BAD_PARAM) {
    // Rejected at launch (nothing was written): remember, and let im2col take it.
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache()[key].ok = false;
    return false;
  }
  OAR_CUDNN_CHECK(st);
  return true;
}

}  // namespace

bool cudnn_conv_enabled() {
  return enabled_flag().load(std::memory_order_relaxed);
}

void set_cudnn_conv_enabled(bool on) {
  enabled_flag().store(on, std::memory_order_relaxed);
}

bool cudnn_conv_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const ConvGeometry& g) {
  float beta = 0.0f;
  if (bias.defined()) {
    if (!cudnn_conv_enabled()) return false;
    Shape bs(out.dim(), 1);
    bs[1] = out.size(1);
    Tensor o = out;
    o.copy_(bias.view(bs).expand(out.shape()));
    beta = 1.0f;
  }
  return run(Dir::forward, x.device(), x.dtype(), x.shape(), w.shape(), out.shape(), g,
             x.raw_data(), w.raw_data(), out.raw_data(), beta);
}

bool cudnn_conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w,
                              const ConvGeometry& g) {
  return run(Dir::backward_data, gy.device(), gy.dtype(), gx.shape(), w.shape(), gy.shape(), g,
             gx.raw_data(), w.raw_data(), gy.raw_data(), 0.0f);
}

bool cudnn_conv_backward_filter(const Tensor& gw, const Tensor& x, const Tensor& gy,
                                const ConvGeometry& g) {
  return run(Dir::backward_filter, x.device(), x.dtype(), x.shape(), gw.shape(), gy.shape(), g,
             x.raw_data(), gw.raw_data(), gy.raw_data(), 0.0f);
}

// ---- batch normalisation (spatial mode: statistics per channel over N and the spatial dims)

namespace {

// x [N, C, *] contiguous f32 as cuDNN's NCHW [N, C, S, 1]; bn [1, C, 1, 1] derived from it.
struct BnDescs {
  TensorDesc x, bn;
};

bool bn_descs(const Tensor& x, BnDescs* d) {
  if (x.dtype() != DType::f32 || !x.is_contiguous() || x.dim() < 2) return false;
  const int64_t n = x.size(0), c = x.size(1);
  if (n <= 0 || c <= 0) return false;
  const int64_t s = x.numel() / (n * c);
  if (s <= 0 || !fits_int(x.numel()) || !fits_int(n) || !fits_int(c) || !fits_int(s)) return false;
  OAR_CUDNN_TRY(cudnnSetTensor4dDescriptor(d->x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                           static_cast<int>(n), static_cast<int>(c),
                                           static_cast<int>(s), 1));
  OAR_CUDNN_TRY(cudnnDeriveBNTensorDescriptor(d->bn.d, d->x.d, CUDNN_BATCHNORM_SPATIAL));
  return true;
}

bool bn_eps_ok(double eps) {
  return eps >= CUDNN_BN_MIN_EPSILON;
}

}  // namespace

bool cudnn_batch_norm_forward_training(const Tensor& y, const Tensor& save_mean,
                                       const Tensor& save_invstd, const Tensor& x,
                                       const Tensor& scale, const Tensor& bias, double eps) {
  if (!cudnn_conv_enabled() || !bn_eps_ok(eps)) return false;
  BnDescs d;
  if (!bn_descs(x, &d)) return false;
  const float one = 1.0f, zero = 0.0f;
  // No running statistics (both null): the op updates its own from the saved mean and variance.
  OAR_CUDNN_TRY(cudnnBatchNormalizationForwardTraining(
      handle(x.device()), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.d, x.raw_data(), d.x.d,
      y.raw_data(), d.bn.d, scale.raw_data(), bias.raw_data(), 1.0, nullptr, nullptr, eps,
      save_mean.raw_data(), save_invstd.raw_data()));
  return true;
}

bool cudnn_batch_norm_forward_inference(const Tensor& y, const Tensor& x, const Tensor& scale,
                                        const Tensor& bias, const Tensor& mean, const Tensor& var,
                                        double eps) {
  if (!cudnn_conv_enabled() || !bn_eps_ok(eps)) return false;
  BnDescs d;
  if (!bn_descs(x, &d)) return false;
  const float one = 1.0f, zero = 0.0f;
  OAR_CUDNN_TRY(cudnnBatchNormalizationForwardInference(
      handle(x.device()), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.d, x.raw_data(), d.x.d,
      y.raw_data(), d.bn.d, scale.raw_data(), bias.raw_data(), mean.raw_data(), var.raw_data(),
      eps));
  return true;
}

bool cudnn_batch_norm_backward(const Tensor& gx, const Tensor& gscale, const Tensor& gbias,
                               const Tensor& gy, const Tensor& x, const Tensor& scale,
                               const Tensor& save_mean, const Tensor& save_invstd, double eps) {
  if (!cudnn_conv_enabled() || !bn_eps_ok(eps) || !gy.is_contiguous()) return false;
  BnDescs d;
  if (!bn_descs(x, &d)) return false;
  const float one = 1.0f, zero = 0.0f;
  OAR_CUDNN_TRY(cudnnBatchNormalizationBackward(
      handle(x.device()), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.x.d, x.raw_data(),
      d.x.d, gy.raw_data(), d.x.d, gx.raw_data(), d.bn.d, scale.raw_data(), gscale.raw_data(),
      gbias.raw_data(), eps, save_mean.raw_data(), save_invstd.raw_data()));
  return true;
}

#else  // a build without cuDNN: every convolution takes the im2col path

bool cudnn_conv_enabled() {
  return false;
}
void set_cudnn_conv_enabled(bool) {}
bool cudnn_conv_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const ConvGeometry&) {
  return false;
}
bool cudnn_conv_backward_data(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&) {
  return false;
}
bool cudnn_conv_backward_filter(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&) {
  return false;
}
bool cudnn_batch_norm_forward_training(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                       const Tensor&, const Tensor&, double) {
  return false;
}
bool cudnn_batch_norm_forward_inference(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                        const Tensor&, const Tensor&, double) {
  return false;
}
bool cudnn_batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&, double) {
  return false;
}

#endif

}  // namespace oar::cuda
