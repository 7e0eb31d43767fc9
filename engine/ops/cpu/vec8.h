#pragma once
// Eight-float vectors for our own CPU loops (GCC/Clang vector extensions: AVX2 registers under
// the project's x86-64-v3 flags, SSE pairs on the baseline), for loops the compiler cannot
// vectorise by itself (float reductions, taps summed in registers). Arithmetic stays separate
// multiplies and adds (no FMA), as elsewhere in our code. Include only from engine/ops/cpu/*.cpp.
#include <cstdint>
#include <cstring>

namespace oar::cpu {

typedef float v8f __attribute__((vector_size(32)));
constexpr int64_t kV = 8;

inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8f v) {
  std::memcpy(p, &v, sizeof v);
}
inline v8f splat(float s) {
  return v8f{s, s, s, s, s, s, s, s};
}
// Lanes summed pairwise: ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)).
inline float hsum(v8f v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

}  // namespace oar::cpu
