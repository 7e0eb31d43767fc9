// Frame sampling: TSN segments as PaddleVideo's KineticsReader and dense clips as MMAction2's
// SampleFrames, checked against hand-computed indices; random draws repeat for a seed.
#include <gtest/gtest.h>

#include <set>

#include "engine/core/error.h"
#include "readers/video/sampling.h"

using namespace oar;
using namespace oar::readers;

namespace {

using V = std::vector<int64_t>;

TEST(Sampling, TsnEvalIsCentred) {
  Generator g(1);
  // average_dur = 25; centred offset (25 - 1) / 2 = 12 in each segment.
  EXPECT_EQ(sample_tsn(100, 4, 1, false, g), (V{12, 37, 62, 87}));
  // seglen 5: offset (25 - 5) / 2 = 10, five consecutive frames each.
  EXPECT_EQ(sample_tsn(100, 2, 5, false, g), (V{22, 23, 24, 25, 26, 72, 73, 74, 75, 76}));
  EXPECT_EQ(g.state().offset, 0u) << "eval sampling must not draw";
}

TEST(Sampling, TsnTrainDrawsInsideEachSegment) {
  std::set<V> seen;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Generator g(seed);
    const V a = sample_tsn(100, 4, 3, true, g);
    Generator g2(seed);
    EXPECT_EQ(a, sample_tsn(100, 4, 3, true, g2)) << "same seed, same frames";
    ASSERT_EQ(a.size(), 12u);
    for (int64_t s = 0; s < 4; ++s) {
      const int64_t start = a[s * 3];
      EXPECT_GE(start, s * 25);
      EXPECT_LE(start, s * 25 + 25 - 3);
      EXPECT_EQ(a[s * 3 + 1], start + 1);
      EXPECT_EQ(a[s * 3 + 2], start + 2);
    }
    seen.insert(a);
  }
  EXPECT_GT(seen.size(), 40u) << "draws should vary with the seed";
}

TEST(Sampling, TsnShortVideosFallBackAndWrap) {
  Generator g(3);
  // average_dur 2 < seglen 3: start at i * 2; indices wrap modulo 8.
  EXPECT_EQ(sample_tsn(8, 4, 3, true, g), (V{0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 0}));
  // average_dur 0: segment i starts at frame i (mod 3).
  EXPECT_EQ(sample_tsn(3, 5, 1, false, g), (V{0, 1, 2, 0, 1}));
  EXPECT_THROW(sample_tsn(0, 3, 1, false, g), Error);
}

TEST(Sampling, DenseEvalTakesBinCentres) {
  Generator g(1);
  // span 4 * 2 = 8; bins of (100 - 8 + 1) / 3 = 31: starts int(31 c + 15.5) = 15, 46, 77.
  EXPECT_EQ(sample_dense(100, 4, 2, 3, false, g),
            (V{15, 17, 19, 21, 46, 48, 50, 52, 77, 79, 81, 83}));
  // One clip longer than the video: start 0, indices wrap.
  EXPECT_EQ(sample_dense(5, 4, 2, 1, false, g), (V{0, 2, 4, 1}));
  EXPECT_EQ(g.state().offset, 0u);
}

TEST(Sampling, DenseTrainJittersInsideBins) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    Generator g(seed);
    const V a = sample_dense(100, 4, 2, 3, true, g);
    Generator g2(seed);
    EXPECT_EQ(a, sample_dense(100, 4, 2, 3, true, g2));
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_GE(a[c * 4], c * 31);
      EXPECT_LT(a[c * 4], c * 31 + 31);
      for (int64_t j = 1; j < 4; ++j) EXPECT_EQ(a[c * 4 + j], a[c * 4] + 2 * j);
    }
  }
  // Fewer frames than clips x span but more than one span: sorted random starts.
  Generator g(5);
  const V b = sample_dense(20, 4, 2, 4, true, g);
  for (int64_t c = 1; c < 4; ++c) EXPECT_LE(b[(c - 1) * 4], b[c * 4]);
  for (int64_t i : b) EXPECT_LT(i, 20);
}

TEST(Sampling, RandintIsInclusive) {
  Generator g(9);
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(randint(g, 2, 5));
  EXPECT_EQ(seen, (std::set<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(randint(g, 7, 7), 7);
}

}  // namespace
