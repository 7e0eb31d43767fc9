#pragma once
// Dropout keep-masks as bits, generated fast (eight draws per AVX-512 instruction sequence where
// the CPU has AVX-512DQ, else one at a time; the bits are the same either way). Bit e (byte
// e / 8, least significant bit first) is 1 when the element-wise rule keeps element e:
// Generator::to_unit_float(Generator::hash(seed, index0 + e)) >= p. Include only from
// engine/ops/cpu/*.cpp.
#include <cstdint>

namespace oar::cpu {

// Writes (n + 7) / 8 bytes at `bits` (the unused high bits of the last byte are 0).
void dropout_keep_bits(uint64_t seed, uint64_t index0, int64_t n, double p, uint8_t* bits);

// out[e] = bit e of bits ? in[e] * scale : 0 for e in [0, n) (out may be in).
void apply_keep_bits(float* out, const float* in, const uint8_t* bits, int64_t n, float scale);

}  // namespace oar::cpu
