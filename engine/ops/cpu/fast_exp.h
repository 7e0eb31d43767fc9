#pragma once
// exp, sigmoid and tanh that the compiler vectorises (no libm call, no branch), for kernels whose
// time goes to transcendental functions (RNN gates, softmax). exp is Cephes' expf polynomial:
// about 2 ulp over its range, 0 below -87 (so -inf gives exactly 0); tanh has absolute (not
// relative) error ~1e-7 near 0.
#include <bit>
#include <cstdint>

namespace oar::cpu {

// c ? a : b on bit patterns: with the default -ftrapping-math GCC will not if-convert a float
// select that feeds arithmetic, which blocks vectorisation.
inline float select_bits(bool c, float a, float b) {
  const int32_t m = -static_cast<int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

inline float fast_exp(float in) {
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

inline float fast_sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}

inline float fast_tanh(float x) {
  return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
}

}  // namespace oar::cpu
