#pragma once
// A seeded, counter-based random generator: draw i of a fill depends only on (seed, offset + i),
// so results do not depend on the thread count, and the state is two integers that a checkpoint
// saves and restores exactly.
#include <cstdint>

// The draw functions are shared with the CUDA kernels, so both devices give the same numbers.
#ifdef __CUDACC__
#define OAR_HOST_DEVICE __host__ __device__
#else
#define OAR_HOST_DEVICE
#endif

namespace oar {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x6f6172ull) : state_{seed, 0} {}

  // A 64-bit draw from the stream position `index` (no state change).
  OAR_HOST_DEVICE static uint64_t hash(uint64_t seed, uint64_t index) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + index + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 bits, from a 64-bit draw.
  OAR_HOST_DEVICE static float to_unit_float(uint64_t x) {
    return static_cast<float>(x >> 40) * (1.0f / 16777216.0f);
  }
  OAR_HOST_DEVICE static double to_unit_double(uint64_t x) {
    return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);
  }

  uint64_t next_u64() { return hash(state_.seed, state_.offset++); }
  double uniform() { return to_unit_double(next_u64()); }
  double normal();
  // Reserves n draws and returns the first index; fills then use hash(seed(), base + i).
  uint64_t reserve(uint64_t n) {
    uint64_t base = state_.offset;
    state_.offset += n;
    return base;
  }
  uint64_t seed() const { return state_.seed; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState s) { state_ = s; }
  void manual_seed(uint64_t s) { state_ = {s, 0}; }

 private:
  GeneratorState state_;
};

// The process-wide default generator (used when a caller passes none).
Generator& default_generator();

}  // namespace oar
