#include "engine/ops/reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/core/context.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

// Sum of x [a, b, c] over `dims` by hand, in double.
std::vector<double> by_hand(const Tensor& x, bool d0, bool d1, bool d2) {
  const int64_t a = x.size(0), b = x.size(1), c = x.size(2);
  const auto v = x.contiguous().to_vector<float>();
  const int64_t oa = d0 ? 1 : a, ob = d1 ? 1 : b, oc = d2 ? 1 : c;
  std::vector<double> out(oa * ob * oc, 0.0);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < c; ++k)
        out[((d0 ? 0 : i) * ob + (d1 ? 0 : j)) * oc + (d2 ? 0 : k)] += v[(i * b + j) * c + k];
  return out;
}

void expect_sums(const Tensor& x) {
  const struct {
    Shape dims;
    bool d0, d1, d2;
  } cases[] = {{{}, true, true, true},    {{0}, true, false, false}, {{0, 1}, true, true, false},
               {{2}, false, false, true}, {{1}, false, true, false}, {{0, 2}, true, false, true}};
  for (const auto& c : cases) {
    const auto got = sum(x, c.dims).to_vector<float>();
    const auto want = by_hand(x, c.d0, c.d1, c.d2);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-5 * (1.0 + std::abs(want[i]))) << shape_str(c.dims) << i;
  }
}

}  // namespace

// Large enough for the threaded paths: full reductions split across threads, leading dims
// summed as columns.
TEST(Sum, MatchesHandSumsOneAndTwoThreads) {
  const Tensor x = rand_input({37, 19, 300}, 1);
  const int before = num_threads();
  for (int t : {1, 2}) {
    set_num_threads(t);
    expect_sums(x);
    expect_sums(rand_input({3, 5, 7}, 2));
  }
  set_num_threads(before);
}

TEST(Sum, Gradients) {
  const std::vector<Tensor> in{rand_input({4, 20}, 3)};
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return sum(v[0], {0}); }, in);
}
