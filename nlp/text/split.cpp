#include "nlp/text/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"

namespace oar::nlp::text {

std::vector<int64_t> split_counts(int64_t n, const std::vector<double>& ratios) {
  OAR_CHECK(!ratios.empty(), "split ratios are empty");
  double sum = 0;
  for (const double r : ratios) {
    OAR_CHECK(r >= 0 && std::isfinite(r), "split ratios must be non-negative, got ", r);
    sum += r;
  }
  OAR_CHECK(sum > 0, "split ratios must not all be zero");
  std::vector<int64_t> counts(ratios.size());
  std::vector<double> frac(ratios.size());
  int64_t given = 0;
  for (size_t k = 0; k < ratios.size(); ++k) {
    const double exact = double(n) * ratios[k] / sum;
    counts[k] = static_cast<int64_t>(std::floor(exact));
    frac[k] = exact - double(counts[k]);
    given += counts[k];
  }
  std::vector<size_t> order(ratios.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return frac[a] > frac[b]; });
  for (size_t k = 0; given < n; ++k, ++given) ++counts[order[k % order.size()]];
  return counts;
}

SplitAssigner::SplitAssigner(const std::unordered_map<std::string, int64_t>& counts,
                             const std::vector<double>& ratios, uint64_t seed)
    : rng_(seed) {
  for (const auto& [name, n] : counts) {
    Stratum s;
    s.planned = split_counts(n, ratios);
    s.left = s.planned;
    s.remaining = n;
    strata_.emplace(name, std::move(s));
  }
}

size_t SplitAssigner::assign(const std::string& stratum) {
  auto it = strata_.find(stratum);
  OAR_CHECK(it != strata_.end() && it->second.remaining > 0, "label '", stratum,
            "' has more lines than the first pass counted (did the input change?)");
  Stratum& s = it->second;
  // Uniform in [0, remaining) without std::uniform_int_distribution, whose mapping differs
  // between standard libraries; the rejection removes modulo bias.
  const auto r = static_cast<uint64_t>(s.remaining);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % r;
  uint64_t x;
  do x = rng_();
  while (x >= limit);
  auto u = static_cast<int64_t>(x % r);
  size_t part = 0;
  while (u >= s.left[part]) u -= s.left[part++];
  --s.left[part];
  --s.remaining;
  return part;
}

const std::vector<int64_t>& SplitAssigner::planned(const std::string& stratum) const {
  auto it = strata_.find(stratum);
  OAR_CHECK(it != strata_.end(), "no label '", stratum, "'");
  return it->second.planned;
}

}  // namespace oar::nlp::text
