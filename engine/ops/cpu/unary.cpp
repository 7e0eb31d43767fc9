// Selects such as relu's backward (v > 0 ? g : g * a) only vectorise when GCC may evaluate
// both sides and compare without honouring FP traps; values are unchanged (oar never enables
// FP exceptions). First in the file so every function here shares the setting (and inlines).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/ops/cpu/loops.h"

namespace oar {
enum class UnaryOp {
  exp, log, sqrt, rsqrt, abs, sign, erf, sin, cos, reciprocal, square, clamp, relu, relu6,
  leaky_relu, elu, gelu, gelu_tanh, sigmoid, tanh, silu, hard_sigmoid, hard_swish, softplus,
  d_clamp, d_relu6, d_leaky_relu, d_elu, d_gelu, d_gelu_tanh, d_silu, d_hard_sigmoid,
  d_hard_swish, d_softplus
};

namespace cpu {
namespace {

// On a lambda: inlined into the loop that calls it, so that the loop vectorises.
#define OAR_INLINE __attribute__((always_inline))

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

template <typename T>
void int_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  switch (op) {
    case UnaryOp::abs: map1<T, T>(out, x, [](T v) { return v < 0 ? static_cast<T>(-v) : v; }); break;
    case UnaryOp::sign: map1<T, T>(out, x, [](T v) { return static_cast<T>((v > 0) - (v < 0)); }); break;
    case UnaryOp::square: map1<T, T>(out, x, [](T v) { return static_cast<T>(v * v); }); break;
    case UnaryOp::relu: map1<T, T>(out, x, [](T v) { return v > 0 ? v : static_cast<T>(0); }); break;
    default: OAR_FAIL("unary op on an integer tensor");
  }
}

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double p0, double p1) {
  switch (x.dtype()) {
    case DType::i64: return int_unary<int64_t>(op, out, x);
    case DType::i32: return int_unary<int32_t>(op, out, x);
    case DType::u8: return int_unary<uint8_t>(op, out, x);
    case DType::boolean: OAR_FAIL("unary op on a bool tensor");
    default: break;
  }
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  OAR_FLOAT_SWITCH(x.dtype(), "unary", {
    auto m = [&](auto f) { map1<T, T>(out, x, f); };
    switch (op) {
      case UnaryOp::exp: m([](float v) { return std::exp(v); }); break;
      case UnaryOp::log: m([](float v) { return std::log(v); }); break;
      case UnaryOp::sqrt: m([](float v) { return std::sqrt(v); }); break;
      case UnaryOp::rsqrt: m([](float v) { return 1.0f / std::sqrt(v); }); break;
      case UnaryOp::abs: m([](float v) { return std::fabs(v); }); break;
      case UnaryOp::sign: m([](float v) { return static_cast<float>((v > 0) - (v < 0)); }); break;
      case UnaryOp::erf: m([](float v) { return std::erf(v); }); break;
      case UnaryOp::sin: m([](float v) { return std::sin(v); }); break;
      case UnaryOp::cos: m([](float v) { return std::cos(v); }); break;
      case UnaryOp::reciprocal: m([](float v) { return 1.0f / v; }); break;
      case UnaryOp::square: m([](float v) { return v * v; }); break;
      case UnaryOp::clamp: m([a, b](float v) { return v != v ? v : std::fmin(std::fmax(v, a), b); }); break;
      case UnaryOp::relu: m([](float v) { return v > 0.f ? v : (v != v ? v : 0.f); }); break;
      case UnaryOp::relu6: m([](float v) { return std::fmin(std::fmax(v, 0.f), 6.f); }); break;
      case UnaryOp::leaky_relu: m([a](float v) { return v > 0.f ? v : v * a; }); break;
      case UnaryOp::elu: m([a](float v) { return v > 0.f ? v : a * (std::exp(v) - 1.f); }); break;
      case UnaryOp::gelu: m([](float v) OAR_INLINE { return fast_gelu(v); }); break;
      case UnaryOp::gelu_tanh: m([](float v) OAR_INLINE { return fast_gelu_tanh(v); }); break;
      case UnaryOp::sigmoid: m([](float v) { return sigmoidf(v); }); break;
      case UnaryOp::tanh: m([](float v) { return std::tanh(v); }); break;
      case UnaryOp::silu: m([](float v) { return v * sigmoidf(v); }); break;
      case UnaryOp::hard_sigmoid: m([](float v) { return std::fmin(std::fmax(v + 3.f, 0.f), 6.f) / 6.f; }); break;
      case UnaryOp::hard_swish: m([](float v) { return v * std::fmin(std::fmax(v + 3.f, 0.f), 6.f) / 6.f; }); break;
      case UnaryOp::softplus:
        m([a, b](float v) { return v * a > b ? v : std::log1p(std::exp(v * a)) / a; });
        break;
      default: OAR_FAIL("unary: backward op passed to forward kernel");
    }
  });
}

void unary_backward(UnaryOp op, const Tensor& out, const Tensor& g, const Tensor& x, double p0,
                    double p1) {
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  OAR_CHECK(g.dtype() == x.dtype(), "unary backward: gradient dtype ", dtype_name(g.dtype()),
            " differs from input dtype ", dtype_name(x.dtype()));
  OAR_FLOAT_SWITCH(x.dtype(), "unary_backward", {
    auto m = [&](auto f) { map2<T, T, T>(out, g, x, f); };
    switch (op) {
      case UnaryOp::d_clamp: m([a, b](float gv, float v) { return (v >= a && v <= b) ? gv : 0.f; }); break;
      case UnaryOp::d_relu6: m([](float gv, float v) { return (v > 0.f && v < 6.f) ? gv : 0.f; }); break;
      case UnaryOp::d_leaky_relu:  // (relu's backward too) both sides computed: a select vectorises
        m([a](float gv, float v) {
          const float neg = gv * a;
          return v > 0.f ? gv : neg;
        });
        break;
      case UnaryOp::d_elu: m([a](float gv, float v) { return v > 0.f ? gv : gv * a * std::exp(v); }); break;
      case UnaryOp::d_gelu: m([](float gv, float v) OAR_INLINE { return gv * fast_gelu_grad(v); }); break;
      case UnaryOp::d_gelu_tanh: m([](float gv, float v) OAR_INLINE { return gv * fast_gelu_tanh_grad(v); }); break;
      case UnaryOp::d_silu:
        m([](float gv, float v) {
          const float s = sigmoidf(v);
          return gv * s * (1.f + v * (1.f - s));
        });
        break;
      case UnaryOp::d_hard_sigmoid:
        m([](float gv, float v) { return (v > -3.f && v < 3.f) ? gv / 6.f : 0.f; });
        break;
      case UnaryOp::d_hard_swish:
        m([](float gv, float v) {
          if (v < -3.f) return 0.f;
          if (v > 3.f) return gv;
          return gv * (2.f * v + 3.f) / 6.f;
        });
        break;
      case UnaryOp::d_softplus:
        m([a, b](float gv, float v) { return v * a > b ? gv : gv * sigmoidf(v * a); });
        break;
      default: OAR_FAIL("unary_backward: forward op passed to backward kernel");
    }
  });
}

}  // namespace cpu
}  // namespace oar

namespace oar::cpu {

namespace {
constexpr int64_t kActBlock = 4096;
}  // namespace

// linear_act's training pass: for the pre-activation h (contiguous f32, n elements), y = act(h)
// and h is overwritten by act'(h), all backward needs. act: 1 GELU (erf), 2 GELU (tanh), 3 ReLU.
void act_forward_keep_grad(float* y, float* h, int64_t n, int act) {
  const int64_t blocks = (n + kActBlock - 1) / kActBlock;
#pragma omp parallel for if (n > kGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kActBlock, i1 = std::min(n, i0 + kActBlock);
    if (act == 1) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float v = h[i], cdf = fast_normal_cdf(v);
        y[i] = v * cdf;
        h[i] = cdf + v * 0.39894228040143268f * fast_exp(-0.5f * v * v);
      }
    } else if (act == 2) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float v = h[i];
        y[i] = fast_gelu_tanh(v);
        h[i] = fast_gelu_tanh_grad(v);
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float v = h[i];
        y[i] = v > 0.0f ? v : (v != v ? v : 0.0f);
        h[i] = v > 0.0f ? 1.0f : 0.0f;
      }
    }
  }
}

// gh = g * d for [rows, n] contiguous f32; gb (n floats, may be null) = column sums of gh, the
// bias gradient, from per-thread partial sums added in thread order.
void act_backward_bias(float* gh, float* gb, const float* g, const float* d, int64_t rows,
                       int64_t n) {
  const int threads = (rows * n > kGrain && rows > 1 && !omp_in_parallel())
                          ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), rows))
                          : 1;
  std::vector<float> part(gb ? static_cast<size_t>(threads) * n : 0, 0.0f);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = threads > 1 ? omp_get_thread_num() : 0;
    const int64_t r0 = rows * t / threads, r1 = rows * (t + 1) / threads;
    float* acc = gb ? part.data() + static_cast<size_t>(t) * n : nullptr;
    for (int64_t r = r0; r < r1; ++r) {
      const float* gr = g + r * n;
      const float* dr = d + r * n;
      float* o = gh + r * n;
      if (acc) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const float v = gr[j] * dr[j];
          o[j] = v;
          acc[j] += v;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) o[j] = gr[j] * dr[j];
      }
    }
  }
  if (!gb) return;
  for (int64_t j = 0; j < n; ++j) {
    float s = 0.0f;
    for (int t = 0; t < threads; ++t) s += part[static_cast<size_t>(t) * n + j];
    gb[j] = s;
  }
}

}  // namespace oar::cpu
