// CUDA kernels for the unary ops and their fused backward helpers (the cpu/unary.cpp contract:
// same enum, same formulas in float).
#include "engine/ops/cuda/loops.cuh"

namespace oar {
enum class UnaryOp {
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  sign,
  erf,
  sin,
  cos,
  reciprocal,
  square,
  clamp,
  relu,
  relu6,
  leaky_relu,
  elu,
  gelu,
  gelu_tanh,
  sigmoid,
  tanh,
  silu,
  hard_sigmoid,
  hard_swish,
  softplus,
  d_clamp,
  d_relu6,
  d_leaky_relu,
  d_elu,
  d_gelu,
  d_gelu_tanh,
  d_silu,
  d_hard_sigmoid,
  d_hard_swish,
  d_softplus
};

namespace cuda {
namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + ::expf(-x));
}
__device__ __forceinline__ float gelu_tanh_inner(float x) {
  return kSqrt2OverPi * (x + 0.044715f * x * x * x);
}

template <typename T>
void int_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  switch (op) {
    case UnaryOp::abs:
      if constexpr (std::is_unsigned_v<T>) {
        map1<T, T>(out, x, [] __device__(T v) { return v; });
      } else {
        map1<T, T>(out, x, [] __device__(T v) { return v < 0 ? static_cast<T>(-v) : v; });
      }
      break;
    case UnaryOp::sign:
      if constexpr (std::is_unsigned_v<T>) {
        map1<T, T>(out, x, [] __device__(T v) { return static_cast<T>(v > 0); });
      } else {
        map1<T, T>(out, x, [] __device__(T v) { return static_cast<T>((v > 0) - (v < 0)); });
      }
      break;
    case UnaryOp::square:
      map1<T, T>(out, x, [] __device__(T v) { return static_cast<T>(v * v); });
      break;
    case UnaryOp::relu:
      map1<T, T>(out, x, [] __device__(T v) { return v > 0 ? v : static_cast<T>(0); });
      break;
    default:
      OAR_FAIL("unary op on an integer tensor");
  }
}

template <typename T>
void float_unary(UnaryOp op, const Tensor& out, const Tensor& x, float a, float b) {
  auto m = [&](auto f) { map1<T, T>(out, x, f); };
  switch (op) {
    case UnaryOp::exp:
      m([] __device__(float v) { return ::expf(v); });
      break;
    case UnaryOp::log:
      m([] __device__(float v) { return ::logf(v); });
      break;
    case UnaryOp::sqrt:
      m([] __device__(float v) { return ::sqrtf(v); });
      break;
    case UnaryOp::rsqrt:
      m([] __device__(float v) { return 1.0f / ::sqrtf(v); });
      break;
    case UnaryOp::abs:
      m([] __device__(float v) { return ::fabsf(v); });
      break;
    case UnaryOp::sign:
      m([] __device__(float v) { return static_cast<float>((v > 0) - (v < 0)); });
      break;
    case UnaryOp::erf:
      m([] __device__(float v) { return ::erff(v); });
      break;
    case UnaryOp::sin:
      m([] __device__(float v) { return ::sinf(v); });
      break;
    case UnaryOp::cos:
      m([] __device__(float v) { return ::cosf(v); });
      break;
    case UnaryOp::reciprocal:
      m([] __device__(float v) { return 1.0f / v; });
      break;
    case UnaryOp::square:
      m([] __device__(float v) { return v * v; });
      break;
    case UnaryOp::clamp:
      m([a, b] __device__(float v) { return v != v ? v : ::fminf(::fmaxf(v, a), b); });
      break;
    case UnaryOp::relu:
      m([] __device__(float v) { return v > 0.f ? v : (v != v ? v : 0.f); });
      break;
    case UnaryOp::relu6:
      m([] __device__(float v) { return ::fminf(::fmaxf(v, 0.f), 6.f); });
      break;
    case UnaryOp::leaky_relu:
      m([a] __device__(float v) { return v > 0.f ? v : v * a; });
      break;
    case UnaryOp::elu:
      m([a] __device__(float v) { return v > 0.f ? v : a * (::expf(v) - 1.f); });
      break;
    case UnaryOp::gelu:
      m([] __device__(float v) { return 0.5f * v * (1.f + ::erff(v * kInvSqrt2)); });
      break;
    case UnaryOp::gelu_tanh:
      m([] __device__(float v) { return 0.5f * v * (1.f + ::tanhf(gelu_tanh_inner(v))); });
      break;
    case UnaryOp::sigmoid:
      m([] __device__(float v) { return sigmoidf(v); });
      break;
    case UnaryOp::tanh:
      m([] __device__(float v) { return ::tanhf(v); });
      break;
    case UnaryOp::silu:
      m([] __device__(float v) { return v * sigmoidf(v); });
      break;
    case UnaryOp::hard_sigmoid:
      m([] __device__(float v) { return ::fminf(::fmaxf(v + 3.f, 0.f), 6.f) / 6.f; });
      break;
    case UnaryOp::hard_swish:
      m([] __device__(float v) { return v * ::fminf(::fmaxf(v + 3.f, 0.f), 6.f) / 6.f; });
      break;
    case UnaryOp::softplus:
      m([a, b] __device__(float v) { return v * a > b ? v : ::log1pf(::expf(v * a)) / a; });
      break;
    default:
      OAR_FAIL("unary: backward op passed to forward kernel");
  }
}

template <typename T>
void float_unary_backward(UnaryOp op, const Tensor& out, const Tensor& g, const Tensor& x, float a,
                          float b) {
  auto m = [&](auto f) { map2<T, T, T>(out, g, x, f); };
  switch (op) {
    case UnaryOp::d_clamp:
      m([a, b] __device__(float gv, float v) { return (v >= a && v <= b) ? gv : 0.f; });
      break;
    case UnaryOp::d_relu6:
      m([] __device__(float gv, float v) { return (v > 0.f && v < 6.f) ? gv : 0.f; });
      break;
    case UnaryOp::d_leaky_relu:
      m([a] __device__(float gv, float v) { return v > 0.f ? gv : gv * a; });
      break;
    case UnaryOp::d_elu:
      m([a] __device__(float gv, float v) { return v > 0.f ? gv : gv * a * ::expf(v); });
      break;
    case UnaryOp::d_gelu:
      m([] __device__(float gv, float v) {
        const float cdf = 0.5f * (1.f + ::erff(v * kInvSqrt2));
        const float pdf = 0.3989422804014327f * ::expf(-0.5f * v * v);
        return gv * (cdf + v * pdf);
      });
      break;
    case UnaryOp::d_gelu_tanh:
      m([] __device__(float gv, float v) {
        const float t = ::tanhf(gelu_tanh_inner(v));
        const float dinner = kSqrt2OverPi * (1.f + 3.f * 0.044715f * v * v);
        return gv * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * dinner);
      });
      break;
    case UnaryOp::d_silu:
      m([] __device__(float gv, float v) {
        const float s = sigmoidf(v);
        return gv * s * (1.f + v * (1.f - s));
      });
      break;
    case UnaryOp::d_hard_sigmoid:
      m([] __device__(float gv, float v) { return (v > -3.f && v < 3.f) ? gv / 6.f : 0.f; });
      break;
    case UnaryOp::d_hard_swish:
      m([] __device__(float gv, float v) {
        if (v < -3.f) return 0.f;
        if (v > 3.f) return gv;
        return gv * (2.f * v + 3.f) / 6.f;
      });
      break;
    case UnaryOp::d_softplus:
      m([a, b] __device__(float gv, float v) { return v * a > b ? gv : gv * sigmoidf(v * a); });
      break;
    default:
      OAR_FAIL("unary_backward: forward op passed to backward kernel");
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double p0, double p1) {
  switch (x.dtype()) {
    case DType::i64:
      return int_unary<int64_t>(op, out, x);
    case DType::i32:
      return int_unary<int32_t>(op, out, x);
    case DType::u8:
      return int_unary<uint8_t>(op, out, x);
    case DType::boolean:
      OAR_FAIL("unary op on a bool tensor");
    default:
      break;
  }
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "unary", float_unary<T>(op, out, x, a, b));
}

void unary_backward(UnaryOp op, const Tensor& out, const Tensor& g, const Tensor& x, double p0,
                    double p1) {
  OAR_CHECK(g.dtype() == x.dtype(), "unary backward: gradient dtype ", dtype_name(g.dtype()),
            " differs from input dtype ", dtype_name(x.dtype()));
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  OAR_CUDA_FLOAT_SWITCH(x.dtype(), "unary_backward", float_unary_backward<T>(op, out, g, x, a, b));
}

}  // namespace cuda
}  // namespace oar
