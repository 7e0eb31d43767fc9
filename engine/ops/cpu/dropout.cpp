#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define OAR_DROPOUT_AVX512 1
#endif

#include "engine/core/cpu_features.h"
#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "engine/ops/cpu/dropout_bits.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// keep <=> to_unit_float(h) >= float(p) <=> (h >> 40) * 2^-24 >= float(p) (both exact) <=>
// (h >> 40) >= ceil(float(p) * 2^24): an integer comparison.
uint64_t keep_threshold(double p) {
  return static_cast<uint64_t>(std::ceil(static_cast<double>(static_cast<float>(p)) * 16777216.0));
}

void keep_bits_scalar(uint64_t seed, uint64_t index0, int64_t n, uint64_t threshold,
                      uint8_t* bits) {
  for (int64_t e0 = 0; e0 < n; e0 += 8) {
    unsigned byte = 0;
    const int64_t k1 = std::min<int64_t>(8, n - e0);
    for (int64_t k = 0; k < k1; ++k) {
      const uint64_t h = Generator::hash(seed, index0 + static_cast<uint64_t>(e0 + k));
      byte |= static_cast<unsigned>((h >> 40) >= threshold) << k;
    }
    bits[e0 / 8] = static_cast<uint8_t>(byte);
  }
}

#ifdef OAR_DROPOUT_AVX512
typedef uint64_t v8u64 __attribute__((vector_size(64)));

// Generator::hash on eight consecutive indices at once (the 64-bit multiplies are AVX-512DQ's
// vpmullq). Vector-extension arithmetic rather than shift intrinsics, which trip GCC 12's
// -Wmaybe-uninitialized.
__attribute__((target("avx512f,avx512dq"))) void keep_bits_avx512(uint64_t seed, uint64_t index0,
                                                                  int64_t n, uint64_t threshold,
                                                                  uint8_t* bits) {
  const uint64_t start = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull + index0;
  v8u64 z0 = v8u64{0, 1, 2, 3, 4, 5, 6, 7} + start;
  const __m512i thr = _mm512_set1_epi64(static_cast<long long>(threshold));
  int64_t e = 0;
  for (; e + 8 <= n; e += 8) {
    v8u64 z = (z0 ^ (z0 >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z = (z ^ (z >> 31)) >> 40;
    bits[e / 8] = static_cast<uint8_t>(_mm512_cmpge_epu64_mask(reinterpret_cast<__m512i>(z), thr));
    z0 += 8;
  }
  if (e < n)
    keep_bits_scalar(seed, index0 + static_cast<uint64_t>(e), n - e, threshold, bits + e / 8);
}

// Eight floats per mask byte in one masked multiply.
__attribute__((target("avx512f,avx512vl"))) void apply_bits_avx512(float* out, const float* in,
                                                                   const uint8_t* bits, int64_t n,
                                                                   float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  int64_t e = 0;
  for (; e + 8 <= n; e += 8)
    _mm256_storeu_ps(out + e, _mm256_maskz_mul_ps(bits[e / 8], _mm256_loadu_ps(in + e), s));
  for (; e < n; ++e) out[e] = ((bits[e / 8] >> (e % 8)) & 1u) ? in[e] * scale : 0.0f;
}

#endif

}  // namespace

void dropout_keep_bits(uint64_t seed, uint64_t index0, int64_t n, double p, uint8_t* bits) {
  if (n <= 0) return;
  const uint64_t threshold = keep_threshold(p);
#ifdef OAR_DROPOUT_AVX512
  if (cpu_has_avx512()) return keep_bits_avx512(seed, index0, n, threshold, bits);
#endif
  keep_bits_scalar(seed, index0, n, threshold, bits);
}

void apply_keep_bits(float* out, const float* in, const uint8_t* bits, int64_t n, float scale) {
#ifdef OAR_DROPOUT_AVX512
  if (cpu_has_avx512()) return apply_bits_avx512(out, in, bits, n, scale);
#endif
  for (int64_t e = 0; e < n; ++e) out[e] = ((bits[e / 8] >> (e % 8)) & 1u) ? in[e] * scale : 0.0f;
}

// Blocks of 4096 elements (512 mask bytes) split across threads.
constexpr int64_t kBitsBlock = 4096;

void dropout_bits(const Tensor& bits, uint64_t seed, uint64_t base, int64_t n, double p) {
  uint8_t* b = bits.data<uint8_t>();
  const int64_t blocks = (n + kBitsBlock - 1) / kBitsBlock;
#pragma omp parallel for if (n > kGrain)
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t e0 = k * kBitsBlock;
    dropout_keep_bits(seed, base + static_cast<uint64_t>(e0), std::min(kBitsBlock, n - e0), p,
                      b + e0 / 8);
  }
}

void apply_dropout_bits(const Tensor& out, const Tensor& x, const Tensor& bits, double scale) {
  float* o = out.data<float>();
  const float* in = x.data<float>();
  const uint8_t* b = bits.data<uint8_t>();
  const int64_t n = x.numel();
  const int64_t blocks = (n + kBitsBlock - 1) / kBitsBlock;
  const float s = static_cast<float>(scale);
#pragma omp parallel for if (n > kGrain)
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t e0 = k * kBitsBlock;
    apply_keep_bits(o + e0, in + e0, b + e0 / 8, std::min(kBitsBlock, n - e0), s);
  }
}

void dropout_mask(const Tensor& mask, uint64_t seed, uint64_t base, double p) {
  uint8_t* m = mask.data<uint8_t>();
  const int64_t n = mask.numel();
  const float threshold = static_cast<float>(p);
#pragma omp parallel for if (n > kGrain)
  for (int64_t i = 0; i < n; ++i)
    m[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >=
           threshold;
}

namespace {
template <typename T>
void apply_typed(const Tensor& out, const Tensor& x, const Tensor& mask, double scale) {
  using C = typename compute_type<T>::type;
  const C s = static_cast<C>(scale);
  map2<T, T, uint8_t>(out, x, mask,
                      [s](C v, uint8_t keep) { return keep ? static_cast<C>(v * s) : C(0); });
}
}  // namespace

void apply_dropout_mask(const Tensor& out, const Tensor& x, const Tensor& mask, double scale) {
  OAR_FLOAT_SWITCH(x.dtype(), "dropout", apply_typed<T>(out, x, mask, scale));
}

}  // namespace oar::cpu
