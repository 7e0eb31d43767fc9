#pragma once
// `oar text split`'s assignment of lines to train/dev/test. Given how many lines each stratum (a
// label, or the whole file) holds, each stratum is divided into parts whose sizes are its count
// times the ratios, rounded by largest remainder; which lines go where is a uniformly random
// partition drawn line by line by sequential sampling without replacement (each line goes to part
// i with probability remaining_i / remaining), so one streaming pass assigns exact counts with
// memory per stratum, not per line. Seeded, and the same on every platform (own RNG mapping).
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace oar::nlp::text {

// Sizes of the parts of `n` lines for `ratios` (non-negative, positive sum), by largest remainder
// (ties to the earlier part); they sum to n.
std::vector<int64_t> split_counts(int64_t n, const std::vector<double>& ratios);

class SplitAssigner {
 public:
  // `counts`: lines per stratum, as the first pass saw them.
  SplitAssigner(const std::unordered_map<std::string, int64_t>& counts,
                const std::vector<double>& ratios, uint64_t seed);
  // The part (index into the ratios) of the next line of `stratum`. Throws oar::Error when the
  // stratum has more lines than counted (the input changed between the passes).
  size_t assign(const std::string& stratum);
  // Planned sizes of each part of `stratum`.
  const std::vector<int64_t>& planned(const std::string& stratum) const;

 private:
  struct Stratum {
    std::vector<int64_t> planned, left;
    int64_t remaining = 0;
  };
  std::unordered_map<std::string, Stratum> strata_;
  std::mt19937_64 rng_;
};

}  // namespace oar::nlp::text
