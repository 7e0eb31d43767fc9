// `oar text split`'s assignment: exact part sizes per stratum, seeded and reproducible, and a
// uniformly random partition.
#include <gtest/gtest.h>

#include <map>

#include "engine/core/error.h"
#include "nlp/text/split.h"

namespace oar::nlp::text {
namespace {

TEST(Split, CountsByLargestRemainder) {
  EXPECT_EQ(split_counts(10, {0.8, 0.1, 0.1}), (std::vector<int64_t>{8, 1, 1}));
  // 3.5, 1.75, 1.75: floors 3, 1, 1; the two left go to the larger remainders (.75, .75).
  EXPECT_EQ(split_counts(7, {0.5, 0.25, 0.25}), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(split_counts(3, {1, 1, 1}), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(split_counts(0, {0.8, 0.2}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(split_counts(5, {8, 2}), (std::vector<int64_t>{4, 1}));  // ratios need not sum to 1
  EXPECT_THROW(split_counts(5, {0, 0}), Error);
  EXPECT_THROW(split_counts(5, {-1, 2}), Error);
}

TEST(Split, ExactSizesPerStratumAndSeeded) {
  const std::unordered_map<std::string, int64_t> counts = {{"pos", 70}, {"neg", 30}};
  const auto run = [&](uint64_t seed) {
    SplitAssigner a(counts, {0.8, 0.1, 0.1}, seed);
    std::vector<size_t> parts;
    std::map<std::string, std::vector<int64_t>> got;
    for (int i = 0; i < 100; ++i) {
      const std::string label = i % 10 < 7 ? "pos" : "neg";
      const size_t p = a.assign(label);
      parts.push_back(p);
      auto& g = got[label];
      g.resize(3);
      ++g[p];
    }
    EXPECT_EQ(got["pos"], (std::vector<int64_t>{56, 7, 7}));
    EXPECT_EQ(got["neg"], (std::vector<int64_t>{24, 3, 3}));
    EXPECT_THROW(a.assign("pos"), Error);  // more lines than counted
    EXPECT_THROW(a.assign("other"), Error);
    return parts;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(Split, PartitionIsUniform) {
  // Over many seeds, each of 10 lines lands in part 0 (3 of 10 places) about 30% of the time.
  std::vector<int> in_first(10);
  const int trials = 4000;
  for (int s = 0; s < trials; ++s) {
    SplitAssigner a({{"", 10}}, {0.3, 0.7}, uint64_t(s));
    for (int i = 0; i < 10; ++i) in_first[size_t(i)] += a.assign("") == 0;
  }
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(in_first[size_t(i)] / double(trials), 0.3, 0.035) << i;
}

}  // namespace
}  // namespace oar::nlp::text
