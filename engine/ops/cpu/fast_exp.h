#pragma once
// exp, sigmoid, tanh, erf and the GELUs that the compiler vectorises (no libm call, no branch),
// for kernels whose time goes to transcendental functions (RNN gates, softmax, GELU). exp is
// Cephes' expf polynomial: about 2 ulp over its range, 0 below -87 (so -inf gives exactly 0);
// tanh has absolute (not relative) error ~1e-7 near 0. erf is Norbert Juffa's two-piece fit
// (about 1 ulp with a libm exp, 2-3 ulp with fast_exp). All are always inlined, so that the loops
// calling them vectorise (GCC otherwise calls the larger ones, through the PLT in a shared
// library).
#include <bit>
#include <cmath>
#include <cstdint>

namespace oar::cpu {

// c ? a : b on bit patterns: with the default -ftrapping-math GCC will not if-convert a float
// select that feeds arithmetic, which blocks vectorisation.
[[gnu::always_inline]] inline float select_bits(bool c, float a, float b) {
  const int32_t m = -static_cast<int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

[[gnu::always_inline]] inline float fast_exp(float in) {
  float x = select_bits(in < -87.0f, -87.0f, in);
  x = select_bits(x > 88.0f, 88.0f, x);
  // Round x/ln2 to nearest with the 1.5*2^23 trick (SSE2 has no vector floor).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return select_bits(in < -87.0f, 0.0f, y * scale);
}

[[gnu::always_inline]] inline float fast_sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}

[[gnu::always_inline]] inline float fast_tanh(float x) {
  return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
}

// The standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2. For |z| = |x / sqrt 2| > 475/512,
// erfc(|z|) = exp(poly(|z|)) is computed directly (so Phi stays accurate, relative to its value,
// far into the negative tail, where 1 + erf would cancel); below, erf(z) = z + z poly(z^2).
[[gnu::always_inline]] inline float fast_normal_cdf(float x) {
  const float z = x * 0.70710678118654752f;
  const float t = std::fabs(z), s = z * z;
  float r = std::fma(-1.72853470e-5f, t, 3.83197126e-4f);
  const float u = std::fma(-3.88396438e-3f, t, 2.42546219e-2f);
  r = std::fma(r, s, u);
  r = std::fma(r, t, -1.06777877e-1f);
  r = std::fma(r, t, -6.34846687e-1f);
  r = std::fma(r, t, -1.28717512e-1f);
  r = std::fma(r, t, -t);
  const float erfc_t = fast_exp(r);  // erfc(|z|)
  const float tail = select_bits(z > 0.0f, 1.0f - 0.5f * erfc_t, 0.5f * erfc_t);
  float q = -5.96761703e-4f;
  q = std::fma(q, s, 4.99119423e-3f);
  q = std::fma(q, s, -2.67681349e-2f);
  q = std::fma(q, s, 1.12819925e-1f);
  q = std::fma(q, s, -3.76125336e-1f);
  q = std::fma(q, s, 1.28379166e-1f);
  q = std::fma(q, z, z);  // erf(z)
  return select_bits(t > 0.927734375f, tail, 0.5f + 0.5f * q);
}

// GELU (erf form) x Phi(x), and its derivative Phi(x) + x phi(x).
[[gnu::always_inline]] inline float fast_gelu(float x) {
  return x * fast_normal_cdf(x);
}
[[gnu::always_inline]] inline float fast_gelu_grad(float x) {
  return fast_normal_cdf(x) + x * 0.39894228040143268f * fast_exp(-0.5f * x * x);
}

// GELU (tanh form) x (1 + tanh(u)) / 2 with u = sqrt(2/pi) (x + 0.044715 x^3), written as
// x sigmoid(2u) (no cancellation for negative x), and its derivative.
[[gnu::always_inline]] inline float fast_gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.0f + fast_exp(-2.0f * u));
}
[[gnu::always_inline]] inline float fast_gelu_tanh_grad(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  const float sg = 1.0f / (1.0f + fast_exp(-2.0f * u));
  const float du = 0.79788456080286536f * (1.0f + 3.0f * 0.044715f * x * x);
  return sg + x * sg * (1.0f - sg) * 2.0f * du;
}

}  // namespace oar::cpu
